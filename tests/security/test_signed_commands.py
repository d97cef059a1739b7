"""Attacks on the car's command check (link.signing): nothing but a command the cloud signed for
this car, now, once, is carried out — and every refusal reaches the cloud as an event."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opensdv.clock import FakeClock
from opensdv.cloud.fleet.identities import FleetCa, write_private_key
from opensdv.link.fleet import VehicleStatus
from opensdv.link.memory import MemoryBroker
from opensdv.link.signing import (
    SIGNER_SUBJECT,
    CommandRefused,
    CommandSigner,
    CommandVerifier,
    canonical_command,
)
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.agent.agent import VehicleAgent
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from opensdv.vehicle.broker import Broker, Permissions

VIN, OTHER = "JN1NSSAN0DD000001", "JHMHNDAE0ED000002"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
NOW = 1_796_000_000.0  # 2026-11-30: the CA below issues on this clock


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FleetCa:
    ca = FleetCa.init(tmp_path_factory.mktemp("ca"), clock=FakeClock(NOW))
    ca.command_key(ca.directory / "signer")
    return ca


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW + 60)


def _signer(ca: FleetCa, clock: FakeClock, directory: str = "signer") -> CommandSigner:
    return CommandSigner(
        ca.directory / directory / "command-signer.key",
        ca.directory / directory / "command-signer.pem",
        clock=clock,
    )


def _signer_of(
    key: ed25519.Ed25519PrivateKey, cert: x509.Certificate, directory: Path, clock: FakeClock
) -> CommandSigner:
    """A signer from a key and certificate made by the test (not by ``FleetCa.command_key``)."""
    write_private_key(directory / "k.pem", key)
    (directory / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return CommandSigner(directory / "k.pem", directory / "c.pem", clock=clock)


def _verifier(ca: FleetCa, clock: FakeClock, seen: Path | None = None) -> CommandVerifier:
    return CommandVerifier(VIN, ca.cert_file, seen, clock=clock)


def _refused(verifier: CommandVerifier, payload: bytes, why: str) -> None:
    with pytest.raises(CommandRefused, match=why):
        verifier.verify(payload)


def test_a_signed_command_for_this_car_is_accepted(ca: FleetCa, clock: FakeClock) -> None:
    signer = _signer(ca, clock)
    command = signer.command(VIN, "Nissan", "ops", LIMIT, 80)
    assert _verifier(ca, clock).verify(signer.sign(command)) == command


def test_unsigned_tampered_and_foreign_signed_commands_are_refused(
    ca: FleetCa, clock: FakeClock, tmp_path: Path
) -> None:
    signer, verifier = _signer(ca, clock), _verifier(ca, clock)
    command = signer.command(VIN, "Nissan", "ops", LIMIT, 80)
    _refused(verifier, command.model_dump_json().encode(), "not a signed command")  # no signature at all
    envelope = json.loads(signer.sign(command))
    envelope["command"]["value"] = 100  # a broker in the middle raises the limit
    _refused(verifier, json.dumps(envelope).encode(), "signature does not verify")
    envelope = json.loads(signer.sign(command))
    envelope["signature"] = base64.b64encode(b"\0" * 64).decode()
    _refused(verifier, json.dumps(envelope).encode(), "signature does not verify")
    # an attacker's own CA and command key: correct form, wrong trust anchor
    rogue = FleetCa.init(tmp_path / "rogue", clock=FakeClock(NOW))
    rogue.command_key(tmp_path / "rogue-key")
    forged = CommandSigner(
        tmp_path / "rogue-key" / "command-signer.key",
        tmp_path / "rogue-key" / "command-signer.pem",
        clock=clock,
    )
    _refused(
        verifier, forged.sign(forged.command(VIN, "Nissan", "ops", LIMIT, 100)), "not one the fleet CA issued"
    )


def test_a_certificate_of_the_ca_without_the_command_usage_cannot_sign(
    ca: FleetCa, clock: FakeClock, tmp_path: Path
) -> None:
    """A service's TLS identity (say, the ingest's) is the CA's too, but may not sign commands."""
    key = ed25519.Ed25519PrivateKey.generate()
    cert = ca.issue("opensdv-ingest", key.public_key(), "client", days=30)
    impostor = _signer_of(key, cert, tmp_path, clock)
    _refused(
        _verifier(ca, clock),
        impostor.sign(impostor.command(VIN, "Nissan", "ops", LIMIT, 80)),
        "may not sign commands",
    )


def test_expired_future_overlong_and_other_vin_commands_are_refused(ca: FleetCa, clock: FakeClock) -> None:
    signer, verifier = _signer(ca, clock), _verifier(ca, clock)
    stale = signer.sign(signer.command(VIN, "Nissan", "ops", LIMIT, 80))
    later = FakeClock(clock.time() + signer.lifetime_s + 1)
    _refused(_verifier(ca, later), stale, "expired")
    early = FakeClock(clock.time() + 3600)
    _refused(
        verifier,
        _signer(ca, early).sign(_signer(ca, early).command(VIN, "Nissan", "ops", LIMIT, 80)),
        "in the future",
    )
    patient = _signer(ca, clock)
    patient.lifetime_s = 7 * 24 * 3600
    _refused(verifier, patient.sign(patient.command(VIN, "Nissan", "ops", LIMIT, 80)), "valid longer")
    _refused(verifier, signer.sign(signer.command(OTHER, "Nissan", "ops", LIMIT, 80)), f"for vehicle {OTHER}")


def test_a_replayed_command_is_refused_even_after_the_car_restarts(
    ca: FleetCa, clock: FakeClock, tmp_path: Path
) -> None:
    signer = _signer(ca, clock)
    payload = signer.sign(signer.command(VIN, "Nissan", "ops", LIMIT, 80))
    seen = tmp_path / "seen-commands.json"
    _verifier(ca, clock, seen).verify(payload)
    _refused(_verifier(ca, clock, seen), payload, "a replay")  # a new process reads the nonces kept
    seen.write_text("{not json")
    with pytest.raises(Exception, match="unreadable nonce record"):  # never silently forgets them
        _verifier(ca, clock, seen)


def test_a_rotated_command_key_is_trusted_without_reprovisioning(ca: FleetCa, clock: FakeClock) -> None:
    ca.command_key(ca.directory / "rotated")
    rotated = _signer(ca, clock, "rotated")
    assert rotated.key_id != _signer(ca, clock).key_id
    command = rotated.command(VIN, "Nissan", "ops", LIMIT, 70)
    assert _verifier(ca, clock).verify(rotated.sign(command)) == command


def test_a_signer_certificate_past_its_validity_is_refused(ca: FleetCa, clock: FakeClock) -> None:
    late = FakeClock(NOW + 91 * 24 * 3600)  # command keys live 90 days
    signer = _signer(ca, late)
    _refused(
        _verifier(ca, late), signer.sign(signer.command(VIN, "Nissan", "ops", LIMIT, 80)), "not valid now"
    )


async def test_the_agent_carries_out_only_verified_commands_and_reports_each_refusal(
    ca: FleetCa, clock: FakeClock, tmp_path: Path
) -> None:
    broker = Broker(load_default_vss(), clock=clock.time)
    broker.register_provider(Permissions.from_scope("provide"), "charger-ecu").claim([LIMIT])
    status = VehicleStatus(vin=VIN, online=True, at=clock.time())
    uplink = Uplink(MemoryBroker(), status, Spool(tmp_path / "spool.db"), clock=clock)
    agent = VehicleAgent(broker, uplink, clock=clock, verifier=_verifier(ca, clock))
    signer = _signer(ca, clock)
    good = signer.sign(signer.command(VIN, "Nissan", "ops", LIMIT, 80))
    assert (await agent.command(good)).accepted
    replay = await agent.command(good)
    unsigned = await agent.command(b'{"command": {"id": "x1"}}')
    assert not replay.accepted and "replay" in replay.reason
    assert not unsigned.accepted and unsigned.id == "x1"
    events = [uplink._events.get_nowait() for _ in range(uplink._events.qsize())]
    assert [e.kind for e in events] == ["command-refused", "command-refused"] and agent.refused == 2


async def test_a_car_provisioned_without_the_fleet_ca_takes_no_command(
    ca: FleetCa, clock: FakeClock, tmp_path: Path
) -> None:
    uplink = Uplink(
        MemoryBroker(), VehicleStatus(vin=VIN, online=True, at=0.0), Spool(tmp_path / "s.db"), clock=clock
    )
    agent = VehicleAgent(Broker(load_default_vss()), uplink, clock=clock)
    signer = _signer(ca, clock)
    result = await agent.command(signer.sign(signer.command(VIN, "Nissan", "ops", LIMIT, 80)))
    assert not result.accepted and "takes no commands" in result.reason


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(data=st.data())
def test_fuzz_no_mutation_of_a_signed_command_is_accepted(ca: FleetCa, data: st.DataObject) -> None:
    """Random bytes, and random edits of a good envelope: refused with CommandRefused, never a
    crash, never accepted unless the signed part is unchanged."""
    clock = FakeClock(NOW + 60)
    signer = _signer(ca, clock)
    command = signer.command(VIN, "Nissan", "ops", LIMIT, 80)
    good = signer.sign(command)
    choice = data.draw(st.sampled_from(["bytes", "flip", "field"]))
    if choice == "bytes":
        payload = data.draw(st.binary(max_size=512))
    elif choice == "flip":
        i = data.draw(st.integers(0, len(good) - 1))
        payload = good[:i] + bytes([good[i] ^ data.draw(st.integers(1, 255))]) + good[i + 1 :]
    else:
        envelope = json.loads(good)
        field = data.draw(st.sampled_from(sorted(envelope["command"])))
        envelope["command"][field] = data.draw(
            st.one_of(st.integers(), st.text(max_size=20), st.none(), st.floats(allow_nan=False))
        )
        payload = json.dumps(envelope).encode()
    verifier = _verifier(ca, clock)
    try:
        accepted = verifier.verify(payload)
    except CommandRefused:
        return
    assert canonical_command(accepted.model_dump(mode="json")) == canonical_command(
        command.model_dump(mode="json")
    )


def test_a_self_signed_signer_with_the_cas_name_is_refused(
    ca: FleetCa, clock: FakeClock, tmp_path: Path
) -> None:
    """Same issuer name as the fleet CA, different key: the chain check is on the signature."""
    fake_ca = ec.generate_private_key(ec.SECP256R1())
    key = ed25519.Ed25519PrivateKey.generate()
    now = dt.datetime.fromtimestamp(NOW, dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SIGNER_SUBJECT)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(fake_ca, hashes.SHA256())
    )
    forger = _signer_of(key, cert, tmp_path, clock)
    _refused(
        _verifier(ca, clock),
        forger.sign(forger.command(VIN, "Nissan", "ops", LIMIT, 80)),
        "not one the fleet CA issued",
    )
