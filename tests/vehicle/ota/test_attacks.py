"""The Uptane threat model, one test per attack: each is detected, the vehicle keeps the software
it had, and the director hears of it in the next manifest."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tuf.api.metadata import Metadata, Root, TargetFile, Targets

from opensdv.cloud.ota.director import Assignment
from opensdv.cloud.ota.repository import RoleKeys
from opensdv.vehicle.ota.errors import DownloadError
from opensdv.vehicle.ota.primary import Primary
from opensdv.vehicle.ota.transport import HttpTransport, LocalTransport
from tests.ota_world import World, installed, make_world

BMS_HW = "KCM-BMS-8S-A1"


class Attacker(LocalTransport):
    """A man in the middle: answers some paths itself, drops others, passes the rest through."""

    def __init__(self, world: World) -> None:
        super().__init__(world.backend.read, world.backend.post)
        self.replace: dict[str, bytes] = {}
        self.drop: Callable[[str], bool] = lambda _path: False

    def get(self, path: str, max_length: int) -> bytes:
        if self.drop(path):
            raise DownloadError(f"{path}: connection reset")
        if path in self.replace:
            return self.replace[path]
        return super().get(path, max_length)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path)


def _leaf(world: World, attacker: Attacker | None = None) -> tuple[str, Primary]:
    vin = world.add_vehicle("nissan-leaf-40", 1)
    if attacker is not None:
        world.vehicles[vin].transport = attacker
    return vin, world.vehicles[vin]


def _assign(
    world: World, vin: str, name: str, ecu: str = "EAXLE_FRONT", hw: str = "KDS-INV-110-400-B"
) -> TargetFile:
    target, _ = world.backend.images.image(name)
    world.backend.director.assign(vin, [Assignment(f"{vin}-{ecu}", hw, target)])
    return target


def _reported_attacks(world: World, vin: str) -> list[str]:
    world.vehicles[vin].send_manifest()
    return [e.detail for e in world.backend.inventory.events(vin) if e.kind == "attack-detected"]


def test_rollback_attack_replaying_an_older_timestamp_is_refused(world: World) -> None:
    attacker = Attacker(world)
    vin, primary = _leaf(world, attacker)
    old_timestamp = world.backend.read(f"director/{vin}/timestamp.json")
    assert old_timestamp is not None
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    _assign(world, vin, "eaxle/inverter-2.4.0.bin")
    assert primary.update().status == "installed"
    attacker.replace[f"director/{vin}/timestamp.json"] = old_timestamp

    outcome = primary.update()

    assert outcome.status == "refused" and outcome.detail.startswith("rollback")
    assert installed(primary, "EAXLE_FRONT") == "eaxle/inverter-2.4.0.bin"
    assert any(a.startswith("rollback") for a in _reported_attacks(world, vin))


def test_rollback_attack_to_an_older_release_is_refused(world: World) -> None:
    vin, primary = _leaf(world)
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    world.add_image("eaxle/inverter-2.3.0.bin", "2.3.0", 23)
    _assign(world, vin, "eaxle/inverter-2.4.0.bin")
    assert primary.update().status == "installed"
    _assign(world, vin, "eaxle/inverter-2.3.0.bin")  # a compromised or mistaken director

    outcome = primary.update()

    assert outcome.status == "refused" and "release counter 23 is below" in outcome.detail
    assert installed(primary, "EAXLE_FRONT") == "eaxle/inverter-2.4.0.bin"
    assert any("release counter" in a for a in _reported_attacks(world, vin))


def test_freeze_attack_replaying_stale_metadata_is_detected_by_trusted_time(world: World) -> None:
    attacker = Attacker(world)
    vin, primary = _leaf(world, attacker)
    frozen = {p: world.backend.read(p) for p in (f"director/{vin}/timestamp.json",)}
    world.clock.advance(days=2)  # the timestamp lives one day; the attacker keeps serving it
    world.backend.director.repository(vin).refresh_timestamp()
    attacker.replace.update({p: d for p, d in frozen.items() if d is not None})

    outcome = primary.update()

    assert outcome.status == "refused" and outcome.detail.startswith("freeze")
    assert any(a.startswith("freeze") for a in _reported_attacks(world, vin))


def test_mix_and_match_attack_with_an_older_targets_file_is_refused(world: World) -> None:
    attacker = Attacker(world)
    vin, primary = _leaf(world, attacker)
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    _assign(world, vin, "eaxle/inverter-2.4.0.bin")
    version = world.backend.director.repository(vin).targets().signed.version
    old = world.backend.read(f"director/{vin}/{version - 1}.targets.json")
    assert old is not None
    attacker.replace[f"director/{vin}/{version}.targets.json"] = old

    outcome = primary.update()

    assert outcome.status == "refused" and outcome.detail.startswith("mix-and-match")
    assert installed(primary, "EAXLE_FRONT").startswith("factory/")


def test_arbitrary_software_swapped_in_transit_is_not_installed(world: World) -> None:
    attacker = Attacker(world)
    vin, primary = _leaf(world, attacker)
    primary.use_deltas = False
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    target = _assign(world, vin, "eaxle/inverter-2.4.0.bin")
    path = f"image/targets/eaxle/{target.hashes['sha256']}.inverter-2.4.0.bin"
    attacker.replace[path] = b"\x90" * target.length  # same length, other contents

    outcome = primary.update()

    assert outcome.status == "failed" and outcome.detail.startswith("arbitrary-software")
    assert installed(primary, "EAXLE_FRONT").startswith("factory/")
    assert any(a.startswith("arbitrary-software") for a in _reported_attacks(world, vin))


def test_partial_bundle_installation_is_prevented(world: World) -> None:
    """Inverter and BMS images go together: one bad image and neither is installed."""
    attacker = Attacker(world)
    vin, primary = _leaf(world, attacker)
    primary.use_deltas = False
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    world.add_image("bms/bms-2.3.0.bin", "2.3.0", 23, [BMS_HW])
    inverter, _ = world.backend.images.image("eaxle/inverter-2.4.0.bin")
    bms, _ = world.backend.images.image("bms/bms-2.3.0.bin")
    world.backend.director.assign(
        vin,
        [
            Assignment(f"{vin}-EAXLE_FRONT", "KDS-INV-110-400-B", inverter),
            Assignment(f"{vin}-BMS", BMS_HW, bms),
        ],
    )
    attacker.drop = lambda path: path.endswith(".bms-2.3.0.bin")

    outcome = primary.update()

    assert outcome.status == "failed"
    assert installed(primary, "EAXLE_FRONT").startswith("factory/")
    assert installed(primary, "BMS").startswith("factory/")
    primary.send_manifest()
    failures = [e for e in world.backend.inventory.events(vin) if e.kind == "install-failed"]
    assert {e.ecu_serial for e in failures} == {f"{vin}-EAXLE_FRONT", f"{vin}-BMS"}


def test_drop_request_attack_leaves_the_vehicle_running_and_is_reported_later(world: World) -> None:
    attacker = Attacker(world)
    vin, primary = _leaf(world, attacker)
    attacker.drop = lambda path: path.startswith("director/")

    outcome = primary.update()

    assert outcome.status == "refused" and outcome.detail.startswith("download")
    assert installed(primary, "EAXLE_FRONT").startswith("factory/")
    attacker.drop = lambda _path: False
    primary.send_manifest()
    failed = [e for e in world.backend.inventory.events(vin) if e.kind == "install-failed"]
    assert failed and "connection reset" in failed[-1].detail


def test_compromised_director_key_cannot_install_what_the_image_repository_did_not_sign(world: World) -> None:
    vin, primary = _leaf(world)
    evil = TargetFile.from_data("eaxle/inverter-9.9.9.bin", b"malware" * 100, ["sha256"])
    # the attacker holds the director's online targets key, so this instruction is validly signed
    world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_FRONT", "KDS-INV-110-400-B", evil)])

    outcome = primary.update()

    assert outcome.status == "refused" and outcome.detail.startswith("arbitrary-software")
    assert installed(primary, "EAXLE_FRONT").startswith("factory/")


def test_online_key_compromise_recovery_by_rotation(world: World) -> None:
    """After the director rotates its targets key, metadata signed with the stolen key is refused."""
    attacker = Attacker(world)
    vin, primary = _leaf(world, attacker)
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    stolen = world.backend.keys.signer("director-targets-1")
    world.backend.director.rotate(Targets.type, RoleKeys(("director-targets-2",)))
    _assign(world, vin, "eaxle/inverter-2.4.0.bin")
    assert primary.update().status == "installed"  # the vehicle followed the root chain to version 2
    assert (
        Root.from_dict(json.loads(primary.verifier.director.store.load(Root.type) or b"")["signed"]).version
        == 2
    )

    # the attacker re-signs the current instruction with the stolen key and serves it
    version = world.backend.director.repository(vin).targets().signed.version
    forged = Metadata.from_bytes(world.backend.read(f"director/{vin}/{version}.targets.json") or b"")
    forged.signatures.clear()
    forged.sign(stolen)
    attacker.replace[f"director/{vin}/{version}.targets.json"] = forged.to_bytes()
    primary.verifier.director.store.delete(Targets.type)

    outcome = primary.update()

    assert outcome.status == "refused" and outcome.detail.startswith("signature"), outcome


# -- endless data and slow retrieval need a real (misbehaving) HTTP server --------------------------
class _BadServer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        if self.path == "/endless":
            chunk = b"x" * 65536
            try:
                while True:
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
        if self.path == "/slow":
            stop = self.server.stop  # type: ignore[attr-defined]
            try:
                while not stop.wait(0.05):
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def bad_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadServer)
    server.daemon_threads = True
    server.stop = threading.Event()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.stop.set()  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


def test_endless_data_attack_is_cut_at_the_expected_length(bad_server: str) -> None:
    with HttpTransport(bad_server) as transport, pytest.raises(DownloadError, match="endless data") as caught:
        transport.get("endless", max_length=1 << 20)
    assert caught.value.code == "endless-data"


def test_slow_retrieval_attack_is_abandoned(bad_server: str) -> None:
    with (
        HttpTransport(bad_server, grace_s=0.3, min_bytes_per_s=1000) as transport,
        pytest.raises(DownloadError, match="slow retrieval") as caught,
    ):
        transport.get("slow", max_length=1 << 20)
    assert caught.value.code == "slow-retrieval"
