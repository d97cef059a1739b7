"""The CSMS and simulated stations over real websockets, OCPP 2.0.1 end to end."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from opensdv.cli import app
from opensdv.clock import FakeClock
from opensdv.cloud.energy.ocpp.credentials import StationCredentials, csms_tls, load_station_passwords
from opensdv.cloud.energy.ocpp.csms import SUBPROTOCOL, Csms, CsmsError, listening_url
from opensdv.cloud.energy.ocpp.csms_store import CsmsStore
from opensdv.cloud.energy.ocpp.stations import StationSimulator
from opensdv.cloud.fleet.identities import FleetCa
from opensdv.config import load_settings
from opensdv.storage.database import Database
from opensdv.vehicle.broker import write_dev_pki


@pytest.fixture
async def csms() -> AsyncIterator[tuple[Csms, str]]:
    system = Csms([f"CS-{n:02d}" for n in range(3)], heartbeat_s=30)
    server = await system.serve(port=0)
    try:
        yield system, listening_url(server)
    finally:
        server.close()
        await server.wait_closed()


async def test_boot_status_and_a_metered_transaction(csms: tuple[Csms, str]) -> None:
    system, url = csms
    async with StationSimulator.connected(url, "CS-00", max_power_w=7_400) as station:
        state = system.stations["CS-00"]
        assert state.booted and state.vendor == "OpenSDV" and state.model == "SimCharger-11"
        assert state.connectors[(1, 1)] == "Available"
        tid = await station.plug_in("RFID-1234")
        assert state.connectors[(1, 1)] == "Occupied"
        await station.charge(1800)  # half an hour at 7.4 kW
        transaction = state.transactions[tid]
        assert transaction.energy_wh == pytest.approx(3700) and transaction.power_w == pytest.approx(7400)
        assert transaction.id_token == "RFID-1234" and transaction.ended is None
        await station.unplug()
        assert transaction.ended is not None and transaction.stopped_reason == "EVDisconnected"
        assert state.connectors[(1, 1)] == "Available"


async def test_charging_profiles_limit_and_discharge(csms: tuple[Csms, str]) -> None:
    system, url = csms
    async with StationSimulator.connected(url, "CS-01", max_power_w=11_000) as station:
        tid = await station.plug_in("FLEET-7")
        await system.set_power_limit("CS-01", 1, 4_000)
        await station.charge(3600)
        assert system.stations["CS-01"].transactions[tid].energy_wh == pytest.approx(4000)
        await system.set_power_limit("CS-01", 1, -5_000)  # V2G: a negative setpoint discharges
        await station.charge(3600)
        assert system.stations["CS-01"].transactions[tid].energy_wh == pytest.approx(-1000)
        assert await system.power_schedule("CS-01", 1, 3600) == [(0, -5000.0)]
        await system.clear_power_limits("CS-01", 1)
        assert await system.power_schedule("CS-01", 1, 3600) == [(0, 11000.0)]
        with pytest.raises(CsmsError, match="ClearChargingProfile on EVSE 1 was Unknown"):
            await system.clear_power_limits("CS-01", 1)  # nothing left to clear


async def test_remote_start_and_stop(csms: tuple[Csms, str]) -> None:
    system, url = csms
    async with StationSimulator.connected(url, "CS-02") as station:
        await system.remote_start("CS-02", 1, "APP-USER-9", remote_start_id=42)
        await station.settled()
        (transaction,) = system.stations["CS-02"].transactions.values()
        assert transaction.id_token == "APP-USER-9"
        with pytest.raises(CsmsError, match="RequestStartTransaction.*Rejected"):
            await system.remote_start("CS-02", 1, "APP-USER-9", remote_start_id=43)  # already charging
        await system.remote_stop("CS-02", transaction.transaction_id)
        await station.settled()
        assert transaction.ended is not None


async def test_unknown_stations_and_wrong_protocols_are_refused_at_the_handshake(
    csms: tuple[Csms, str],
) -> None:
    _, url = csms
    with pytest.raises(InvalidStatus) as unknown:
        async with connect(f"{url}/INTRUDER", subprotocols=[SUBPROTOCOL]):
            pass
    assert unknown.value.response.status_code == 404
    with pytest.raises(InvalidStatus) as old:
        async with connect(f"{url}/CS-00", subprotocols=[Subprotocol("ocpp1.2")]):
            pass
    assert old.value.response.status_code == 400


async def test_security_profile_1_requires_the_stations_password() -> None:
    system = Csms({"CS-SECURE": "s3cret-passw0rd"})
    server = await system.serve(port=0)
    url = listening_url(server)
    try:
        async with StationSimulator.connected(url, "CS-SECURE", password="s3cret-passw0rd"):
            assert system.stations["CS-SECURE"].booted
        for wrong in (None, "guess"):
            with pytest.raises(InvalidStatus) as refused:
                async with StationSimulator.connected(url, "CS-SECURE", password=wrong):
                    pass
            assert refused.value.response.status_code == 401
    finally:
        server.close()
        await server.wait_closed()


async def test_commands_to_a_station_that_is_not_connected_say_so(csms: tuple[Csms, str]) -> None:
    system, _ = csms
    with pytest.raises(CsmsError, match="'CS-00' is not connected"):
        await system.set_power_limit("CS-00", 1, 3_000)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ([2, "m1", "BootNotification", {"reason": "PowerUp"}], "ProtocolError"),  # required field missing
        (
            [
                2,
                "m2",
                "BootNotification",
                {"reason": "Kicked", "chargingStation": {"vendorName": "x", "model": "y"}},
            ],
            "FormatViolation",
        ),  # not in the enum
        ([2, "m3", "Heartbeat", {"extra": 1}], "FormatViolation"),  # no additional properties
        ([2, "m4", "NoSuchAction", {}], "NotSupported"),
    ],
)
async def test_messages_that_fail_the_schema_get_the_protocols_error(
    csms: tuple[Csms, str], message: list[object], error: str
) -> None:
    system, url = csms
    async with connect(f"{url}/CS-00", subprotocols=[SUBPROTOCOL]) as raw:
        await raw.send(json.dumps(message))
        reply = json.loads(await raw.recv())
        assert reply[0] == 4 and reply[1] == message[1] and reply[2] == error
        await raw.send(json.dumps([2, "ok", "Heartbeat", {}]))  # the session survives bad input
        assert json.loads(await raw.recv())[0] == 3
    assert not system.stations["CS-00"].booted


def test_station_credentials_csms_and_simulators_from_the_command_line(tmp_path: Path) -> None:
    """`energy station add` gives each station its own password; the simulators (their own event
    loop) log in with them over wss:// to a CSMS on another thread's loop; a wrong one is refused."""
    env = {"OPENSDV_DATA_DIR": str(tmp_path)}
    runner = CliRunner()
    passwords = tmp_path / "stations.toml"
    added = runner.invoke(app, ["energy", "station", "add", "CS-001", "CS-002", "CS-003", "--out", str(passwords)], env=env)
    assert added.exit_code == 0, added.output
    assert passwords.stat().st_mode & 0o077 == 0 and len(load_station_passwords(passwords)) == 3
    ca = FleetCa.init(tmp_path / "ca")
    ca.provision_service("energy", tmp_path / "identities", hosts=("127.0.0.1",))
    credentials = StationCredentials(Database(load_settings(data_dir=tmp_path).effective_database_url))
    assert [login.station_id for login in credentials.all()] == ["CS-001", "CS-002", "CS-003"]

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    system = Csms(["CS-001", "CS-002", "CS-003"], credentials=credentials)
    server = asyncio.run_coroutine_threadsafe(system.serve(port=0, tls=csms_tls(tmp_path / "identities")), loop).result()
    url = listening_url(server, "wss")
    try:
        args = ["energy", "stations", "simulate", "--csms", url, "--ca", str(ca.cert_file), "--hours", "1", "--step-minutes", "30"]
        ran = runner.invoke(app, [*args, "--credentials", str(passwords), "--max-kw", "7"], env=env)
        assert ran.exit_code == 0, ran.output
        assert "3 stations delivered 21.0 kWh" in ran.output
        finished = [t for s in system.stations.values() for t in s.transactions.values()]
        assert len(finished) == 3 and all(t.ended and t.energy_wh == pytest.approx(7000) for t in finished)
        known = load_station_passwords(passwords)
        borrowed = tmp_path / "borrowed.toml"  # CS-003 with CS-001's password
        borrowed.write_text(f'"CS-003" = "{known["CS-001"]}"\n')
        refused = runner.invoke(app, [*args, "--credentials", str(borrowed)], env=env)
        assert isinstance(refused.exception, CsmsError) and "HTTP 401" in str(refused.exception)
    finally:
        server.close()
        asyncio.run_coroutine_threadsafe(server.wait_closed(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


_METER = [
    {
        "timestamp": "2026-11-23T10:00:00Z",
        "sampledValue": [{"value": 1200.5, "measurand": "Power.Active.Import"}],
    }
]
_VALID: dict[str, dict[str, object]] = {
    "BootNotification": {"reason": "PowerUp", "chargingStation": {"vendorName": "v", "model": "m"}},
    "Heartbeat": {},
    "StatusNotification": {"timestamp": "2026-11-23T10:00:00Z", "connectorStatus": "Available", "evseId": 1, "connectorId": 1},
    "Authorize": {"idToken": {"idToken": "RFID-1", "type": "ISO14443"}},
    "TransactionEvent": {"eventType": "Started", "timestamp": "2026-11-23T10:00:00Z", "triggerReason": "Authorized",
                         "seqNo": 0, "transactionInfo": {"transactionId": "T1"}, "evse": {"id": 1}, "meterValue": _METER},
    "MeterValues": {"evseId": 1, "meterValue": _METER},
}  # fmt: skip
_FIELDS = sorted({key for payload in _VALID.values() for key in payload})
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_ERROR_CODES = {"FormatViolation", "ProtocolError", "PropertyConstraintViolation", "OccurrenceConstraintViolation",
                "TypeConstraintViolation", "NotSupported", "NotImplemented"}  # fmt: skip
# (an InternalError reply would be a handler crash, so it is not allowed)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    action=st.sampled_from(sorted(_VALID)),
    change=st.dictionaries(st.sampled_from(_FIELDS), _JSON, max_size=2)
    | st.dictionaries(st.text(max_size=16), _JSON, max_size=4),
    drop=st.booleans(),
)
def test_fuzzed_messages_get_a_reply_and_never_end_the_session(
    action: str, change: dict[str, object], drop: bool
) -> None:
    """Valid messages with fields replaced, added or (with ``drop``) replaced wholesale."""
    payload = change if drop else {**_VALID[action], **change}

    async def exchange() -> None:
        system = Csms(["CS-00"])
        server = await system.serve(port=0)
        url = listening_url(server)
        try:
            async with connect(f"{url}/CS-00", subprotocols=[SUBPROTOCOL]) as raw:
                await raw.send(json.dumps([2, "fuzz", action, payload]))
                reply = json.loads(await raw.recv())
                assert reply[1] == "fuzz"
                assert reply[0] == 3 or (reply[0] == 4 and reply[2] in _ERROR_CODES), reply
                await raw.send(json.dumps([2, "after", "Heartbeat", {}]))
                assert json.loads(await raw.recv())[:2] == [3, "after"]
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(exchange())


async def test_security_profile_2_tls_and_basic_auth(tmp_path: Path) -> None:
    pki = write_dev_pki(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(pki.server_cert, pki.server_key)
    station_tls = ssl.create_default_context(cafile=str(pki.ca_cert))
    system = Csms({"CS-TLS": "s3cret-passw0rd"})
    server = await system.serve(port=0, tls=server_tls)
    port = next(iter(server.sockets)).getsockname()[1]
    try:
        async with StationSimulator.connected(
            f"wss://localhost:{port}", "CS-TLS", "s3cret-passw0rd", tls=station_tls
        ):
            assert system.stations["CS-TLS"].booted
        with pytest.raises(ssl.SSLCertVerificationError):  # a station must not trust an unknown CSMS
            async with StationSimulator.connected(
                f"wss://localhost:{port}", "CS-TLS", "s3cret-passw0rd", tls=ssl.create_default_context()
            ):
                pass
    finally:
        server.close()
        await server.wait_closed()


async def test_firmware_update(csms: tuple[Csms, str]) -> None:
    system, url = csms
    async with StationSimulator.connected(url, "CS-01") as station:
        await system.update_firmware("CS-01", "https://firmware.example/simcharger-1.1.bin", request_id=7)
        await station.settled()
        assert system.stations["CS-01"].firmware_status == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        assert station.firmware_location == "https://firmware.example/simcharger-1.1.bin"


async def test_a_csms_restart_loses_nothing_and_resyncs_open_transactions(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'csms.db'}")
    database.migrate()
    ids = ["CS-A", "CS-B", "CS-C"]

    async def started(store: CsmsStore) -> tuple[Csms, object, str]:
        system = Csms(ids, store=store)
        server = await system.serve(port=0)
        return system, server, listening_url(server)

    system, server, url = await started(CsmsStore(database))
    async with (
        StationSimulator.connected(url, "CS-A") as a,
        StationSimulator.connected(url, "CS-B") as b,
        StationSimulator.connected(url, "CS-C") as c,
    ):
        for station in (a, b, c):
            await station.plug_in(f"TOKEN-{station.id}")
            await station.charge(1800)
        await a.unplug()  # finished before the restart
        finished = a.energy_wh
        server.close()  # type: ignore[attr-defined]
        await server.wait_closed()  # type: ignore[attr-defined]
        c.transaction_id = None  # C's driver leaves while the CSMS is down: the station's Ended event is lost

    system, server, url = await started(CsmsStore(database))  # a new process: state from the database
    try:
        loaded = {sid: list(state.transactions.values()) for sid, state in system.stations.items()}
        assert loaded["CS-A"][0].ended is not None and loaded["CS-A"][0].energy_wh == finished
        assert loaded["CS-B"][0].ended is None and loaded["CS-C"][0].ended is None
        open_b = loaded["CS-B"][0].transaction_id
        async with (
            StationSimulator.connected(url, "CS-C"),
            StationSimulator.connected(url, "CS-B", transaction_id=open_b),  # B is still charging
        ):
            await system.wait_synced("CS-C")
            await system.wait_synced("CS-B")
        assert system.stations["CS-B"].transactions[open_b].ended is None
        assert (
            system.stations["CS-C"].transactions[loaded["CS-C"][0].transaction_id].stopped_reason
            == "EndedWhileCsmsAway"
        )
        assert (
            CsmsStore(database).load()["CS-C"].transactions[loaded["CS-C"][0].transaction_id].ended
            is not None
        )
    finally:
        server.close()  # type: ignore[attr-defined]
        await server.wait_closed()  # type: ignore[attr-defined]


async def test_the_csms_and_stations_stamp_time_from_their_clock() -> None:
    """Time is a parameter: with a clock of 2030, the transaction the CSMS records and the
    station's own timestamps all say 2030."""
    clock = FakeClock(epoch_s=1_893_456_000.0)  # 2030-01-01T00:00:00Z
    system = Csms(["CS-CLOCK"], clock=clock)
    server = await system.serve(port=0)
    try:
        async with StationSimulator.connected(listening_url(server), "CS-CLOCK", clock=clock) as station:
            tid = await station.plug_in("RFID-1")
            await station.unplug()
        state = system.stations["CS-CLOCK"]
        assert state.transactions[tid].started.startswith("2030-01-01T00:00:00")
        assert state.transactions[tid].ended is not None and state.transactions[tid].ended.startswith("2030-01-01")
    finally:
        server.close()
        await server.wait_closed()
