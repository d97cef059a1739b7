"""The managed site as an OpenADR 2.0b VEN of a real openleadr VTN, over HTTPS with signed
messages: a utility's power cap, price and load-shed events reach the plan, a cancelled event
leaves it, a signal the site cannot act on is opted out of, and an unsigned VTN is refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.ocpp.csms_state import Transaction
from opensdv.cloud.energy.openadr import OpenAdrSettings, SiteVen, event_signals
from opensdv.cloud.energy.site_controller import SiteController
from opensdv.cloud.energy.site_file import ManagedSite
from tests.conftest import free_port

openleadr = pytest.importorskip("openleadr")
from openleadr.utils import certificate_fingerprint  # noqa: E402

UTC = dt.UTC


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed EC certificate for 127.0.0.1 (each party's own, as a utility's PKI would issue)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


class Utility:
    """An openleadr VTN that knows one VEN; each event's reply (optIn/optOut) is awaited."""

    def __init__(self, directory: Path) -> None:
        self.cert, self.key = _certificate(directory, "vtn")
        self.ven_cert, self.ven_key = _certificate(directory, "ven")
        self.port = free_port()
        self.replies: dict[str, asyncio.Future[str]] = {}
        ven = {"ven_id": "ven-1", "ven_name": "depot-north", "registration_id": "reg-1",
               "fingerprint": certificate_fingerprint(self.ven_cert.read_text())}  # fmt: skip
        self.server = openleadr.OpenADRServer(
            vtn_id="utility", cert=str(self.cert), key=str(self.key), http_cert=str(self.cert), http_key=str(self.key),
            http_ca_file=str(self.ven_cert),  # mutual TLS: the VEN shows its certificate
            http_host="127.0.0.1", http_port=self.port, requested_poll_freq=dt.timedelta(seconds=1),
            ven_lookup=lambda ven_id: ven if ven_id == "ven-1" else {}, show_fingerprint=False,
        )  # fmt: skip
        self.server.add_handler("on_create_party_registration",
                                lambda info: ("ven-1", "reg-1") if info["ven_name"] == "depot-north" else False)  # fmt: skip

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/OpenADR2/Simple/2.0b"

    def settings(self) -> OpenAdrSettings:
        return OpenAdrSettings(vtn_url=self.url, ven_name="depot-north", cert=self.ven_cert, key=self.ven_key,
                               vtn_fingerprint=certificate_fingerprint(self.cert.read_text()), ca_file=self.cert)  # fmt: skip

    def event(self, signal_name: str, signal_type: str, payload: float, minutes: float = 60) -> asyncio.Future[str]:
        """Publish an event starting now; the future gets the VEN's reply."""
        reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def answered(ven_id: str, event_id: str, opt_type: str) -> None:
            if not reply.done():
                reply.set_result(opt_type)

        start = dt.datetime.now(UTC)
        intervals = [{"dtstart": start, "duration": dt.timedelta(minutes=minutes), "signal_payload": payload}]
        self.server.add_event("ven-1", signal_name, signal_type, intervals, callback=answered)
        return reply


@pytest.fixture
async def utility(tmp_path: Path) -> AsyncIterator[Utility]:
    vtn = Utility(tmp_path)
    await vtn.server.run()
    try:
        yield vtn
    finally:
        await vtn.server.stop()


def _site_with_a_car(**openadr: Any) -> SiteController:
    site = ManagedSite.model_validate({"name": "Depot North", "cap_kw": 20, "stations": [{"id": "CS-001", "max_kw": 11},
                                      {"id": "CS-002", "max_kw": 11}]})  # fmt: skip
    csms = Csms(["CS-001", "CS-002"])
    for station in ("CS-001", "CS-002"):
        stamp = dt.datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds")
        csms.stations[station].transactions["tx-" + station] = Transaction("tx-" + station, 1, stamp, "TAG")
    return SiteController(site, csms)


async def test_a_utilitys_events_reach_the_plan_and_leave_it_when_cancelled(utility: Utility) -> None:
    controller = _site_with_a_car()
    ven = await SiteVen(utility.settings(), controller).run()
    try:
        async with asyncio.timeout(60):
            assert await utility.event("LOAD_DISPATCH", "setpoint", 4.0) == "optIn"
            assert [s.cap_kw for s in controller.signals] == [4.0]
            assert controller.plan().site_kw[0] <= 4.0 + 1e-6  # the cap holds now

            assert await utility.event("SIMPLE", "level", 3) == "optIn"  # a load-shed window
            assert sorted(s.cap_kw for s in controller.signals) == [0.0, 4.0]
            assert controller.plan().site_kw[0] == pytest.approx(0.0, abs=1e-6)

            assert await utility.event("ELECTRICITY_PRICE", "price", 0.05) == "optIn"
            assert [p.price for p in controller.prices] == [0.05]

            assert await utility.event("BID_LOAD", "setpoint", 1.0) == "optOut"  # nothing the site acts on

            (shed,) = [s.source.removeprefix("openadr ") for s in controller.signals if s.cap_kw == 0.0]
            utility.server.cancel_event("ven-1", shed)
            while any(s.cap_kw == 0.0 for s in controller.signals):  # the cancellation arrives with a poll
                await controller._changed.wait()
                controller._changed.clear()
            assert [s.cap_kw for s in controller.signals] == [4.0]
    finally:
        await ven.stop()


def test_signals_map_to_caps_and_prices() -> None:
    start = dt.datetime(2026, 12, 2, 17, tzinfo=UTC)

    def event(name: str, kind: str, payload: float) -> dict[str, Any]:
        return {"event_signals": [{"signal_name": name, "signal_type": kind,
                                   "intervals": [{"dtstart": start, "duration": dt.timedelta(hours=1), "signal_payload": payload}]}]}  # fmt: skip

    t0, t1 = start.timestamp(), start.timestamp() + 3600
    assert event_signals(event("LOAD_CONTROL", "x-loadControlCapacity", 0.25), 80.0) == ([(t0, t1, 20.0)], [])
    assert event_signals(event("SIMPLE", "level", 1), 80.0) == ([(t0, t1, 60.0)], [])
    assert event_signals(event("ELECTRICITY_PRICE", "price", 0.31), 80.0) == ([], [(t0, t1, 0.31)])
    with pytest.raises(Exception, match="not a number"):
        event_signals(event("LOAD_DISPATCH", "setpoint", float("nan")), 80.0)


def test_an_unsigned_or_plaintext_vtn_is_refused_unless_asked_for(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="https://"):
        OpenAdrSettings(vtn_url="http://vtn.example/OpenADR2/Simple/2.0b", ven_name="v")
    with pytest.raises(ValueError, match="cert, key and vtn_fingerprint"):
        OpenAdrSettings(vtn_url="https://vtn.example/OpenADR2/Simple/2.0b", ven_name="v")
    lab = OpenAdrSettings(vtn_url="http://127.0.0.1:8080/OpenADR2/Simple/2.0b", ven_name="v", allow_unsigned=True)
    assert lab.allow_unsigned
