"""Attacks on the CSMS as the cloud runs it (wss://, each station's own credentials): taking over
a station's session, logging in as another station, NaN and absurd meter values, frames that are
not JSON or nest without end. Loopback only, bounded."""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from opensdv.cloud.energy.ocpp.credentials import StationCredentials, StationCredentialsError, csms_tls
from opensdv.cloud.energy.ocpp.csms import SUBPROTOCOL, Csms, listening_url
from opensdv.cloud.energy.ocpp.stations import StationSimulator
from opensdv.cloud.fleet.identities import FleetCa, IdentityError
from opensdv.storage.database import Database

STATIONS = ["CS-001", "CS-002", "CS-003"]


@dataclass
class Site:
    csms: Csms
    url: str
    ca: FleetCa
    trust: ssl.SSLContext
    passwords: dict[str, str]
    directory: Path

    def certificate(self, station_id: str) -> ssl.SSLContext:
        return self.ca.provision_station(station_id, self.directory / "stations" / station_id).client_context()

    def raw(self, station_id: str, password: str | None, tls: ssl.SSLContext | None = None) -> connect:
        headers = {}
        if password is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{station_id}:{password}".encode()).decode()
        return connect(
            f"{self.url}/{station_id}", subprotocols=[SUBPROTOCOL], additional_headers=headers, ssl=tls or self.trust
        )


def _database(directory: Path) -> Database:
    database = Database(f"sqlite:///{directory / 'platform.db'}")
    database.migrate()
    return database


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    ca = FleetCa.init(tmp_path / "ca")
    ca.provision_service("energy", tmp_path / "identities", hosts=("127.0.0.1",))
    credentials = StationCredentials(_database(tmp_path))
    passwords = {sid: credentials.set_password(sid) for sid in STATIONS[:2]}
    credentials.allow_certificate("CS-003")  # profile 3 only
    system = Csms(STATIONS, credentials=credentials, liveness_s=0.5)
    server = await system.serve(port=0, tls=csms_tls(tmp_path / "identities"))
    trust = ssl.create_default_context(cafile=str(ca.cert_file))
    try:
        yield Site(system, listening_url(server, "wss"), ca, trust, passwords, tmp_path)
    finally:
        server.close()
        await server.wait_closed()


async def _status(site: Site, station_id: str, password: str | None, tls: ssl.SSLContext | None = None) -> int:
    try:
        async with site.raw(station_id, password, tls):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


async def test_each_station_logs_in_with_its_own_credentials_only(site: Site) -> None:
    assert await _status(site, "CS-001", site.passwords["CS-001"]) == 101
    assert await _status(site, "CS-002", site.passwords["CS-001"]) == 401  # another station's password
    assert await _status(site, "CS-001", None) == 401  # anonymous
    assert await _status(site, "CS-003", site.passwords["CS-001"]) == 401  # a certificate-only station
    assert await _status(site, "CS-003", None, site.certificate("CS-003")) == 101  # profile 3
    assert await _status(site, "CS-001", None, site.certificate("CS-002")) == 401  # CS-002's certificate as CS-001
    assert await _status(site, "CS-009", site.passwords["CS-001"]) == 404
    rogue = FleetCa.init(site.directory / "rogue").provision_station("CS-003", site.directory / "rogue-station")
    rogue_tls = rogue.client_context()
    rogue_tls.load_verify_locations(cafile=str(site.ca.cert_file))
    with pytest.raises((ssl.SSLError, ConnectionError, InvalidHandshake)):  # another CA's certificate: no TLS session
        async with site.raw("CS-003", None, rogue_tls) as connection:
            await connection.recv()
    with pytest.raises((OSError, InvalidHandshake)):  # plaintext: the listener speaks TLS only
        async with connect(site.url.replace("wss://", "ws://") + "/CS-001", subprotocols=[SUBPROTOCOL], open_timeout=2):
            pass


def test_a_station_id_that_could_be_a_car_or_a_service_is_refused(tmp_path: Path) -> None:
    credentials = StationCredentials(_database(tmp_path))
    ca = FleetCa.init(tmp_path / "ca")
    for claimed in ("JN1NSSAN0DD000001", "opensdv-api"):  # a car's certificate would log in as that station
        with pytest.raises(StationCredentialsError, match="looks like"):
            credentials.set_password(claimed)
        with pytest.raises(IdentityError, match="looks like"):
            ca.provision_station(claimed, tmp_path / "station")


async def test_a_live_station_is_never_taken_over_and_a_dead_one_is_replaced(site: Site) -> None:
    password = site.passwords["CS-001"]
    async with StationSimulator.connected(site.url, "CS-001", password, tls=site.trust):
        assert await _status(site, "CS-001", password) == 409  # a second connection while the first answers
        assert site.csms.connected() == ["CS-001"]
    await site.csms.wait_disconnected("CS-001")
    assert site.csms.connected() == []
    async with StationSimulator.connected(site.url, "CS-001", password, tls=site.trust) as first:
        first._connection.transport.pause_reading()  # the first goes silent: no pong comes back
        silent = site.csms._sessions["CS-001"]
        async with StationSimulator.connected(site.url, "CS-001", password, tls=site.trust):
            await silent.ended.wait()  # the replaced session's end must not mark the new one gone
            assert site.csms.connected() == ["CS-001"]
            assert await site.csms.power_schedule("CS-001", 1, 60) is not None  # the CSMS talks to the new one
        first._connection.transport.abort()  # (its own close handshake would wait for a reply that never comes)


async def _exchange(connection: ClientConnection, frame: str) -> list[object]:
    await connection.send(frame)
    reply: list[object] = json.loads(await connection.recv())
    return reply


async def test_bad_frames_get_a_call_error_and_the_session_goes_on(site: Site) -> None:
    started = {"eventType": "Started", "timestamp": "2026-11-23T10:00:00Z", "triggerReason": "Authorized",
               "seqNo": 0, "transactionInfo": {"transactionId": "T1"}, "evse": {"id": 1}}  # fmt: skip

    def meter(value: str) -> str:
        sampled = f'[{{"timestamp": "2026-11-23T10:05:00Z", "sampledValue": [{{"value": {value}}}]}}]'
        return json.dumps([2, "m", "TransactionEvent", started]).replace('"evse": {"id": 1}}', f'"evse": {{"id": 1}}, "meterValue": {sampled}}}')

    async with site.raw("CS-001", site.passwords["CS-001"]) as connection:
        for frame, code in [
            (meter("NaN"), "FormatViolation"),  # not JSON (RFC 8259 has no NaN)
            (meter("Infinity"), "FormatViolation"),
            (meter("1e300"), "PropertyConstraintViolation"),  # JSON, but no meter reads that
            ("{not json", "FormatViolation"),
            ("[" * 100_000, "FormatViolation"),  # would recurse the decoder to death
            ("[2, \"deep\", \"Heartbeat\", " + "[" * 40 + "]" * 40 + "]", "FormatViolation"),
        ]:
            reply = await _exchange(connection, frame)
            assert reply[0] == 4 and reply[2] == code, (frame[:60], reply)
            assert reply[1] in ("m", "deep", "-1")
            assert (await _exchange(connection, json.dumps([2, "alive", "Heartbeat", {}])))[:2] == [3, "alive"]
    transactions = site.csms.stations["CS-001"].transactions
    assert all(t.energy_wh == t.energy_wh and abs(t.energy_wh) < 1e12 for t in transactions.values())
