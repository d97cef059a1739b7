"""OTA: primary full verification against python-tuf's ngclient, deltas, director throughput.

    python -m bench.ota [--repeats 5]

- Verification: a director targets file naming N ECUs (N = 10, 100, 1,000; one image each in the
  image repository). Baseline: two ``tuf.ngclient.Updater`` refreshing the director and the image
  repository the plain way (plus ``get_targetinfo`` for each image, the cross-check's lookups).
  Ours: ``FullVerifier.verify`` (both repositories, the Uptane cross-check). Both start from an
  empty metadata directory and fetch from the same files in memory, so only the client work counts.
- Deltas: a real binary (the largest shared library of this Python) and two edits of it: a
  patch-level change (a few hundred bytes rewritten in place, the version string bumped) and a
  minor-level one (64 KiB of new code inserted, which shifts everything after it, plus 40 scattered
  edits). Delta size as % of the image, build and apply time, and peak RSS of a child process.
- Director: per-vehicle targets metadata generated and signed per second (extrapolated to a
  100,000-vehicle campaign) and vehicle manifests verified and recorded per second.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tuf.api.metadata import TargetFile, Targets
from tuf.ngclient import FetcherInterface, Updater

from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.ota.director import Assignment
from opensdv.link.delta import CODECS, apply_delta, make_delta
from opensdv.storage.database import Database
from opensdv.vehicle.ota.transport import LocalTransport
from opensdv.vehicle.ota.verification import FullVerifier

console = Console()
VIN = "JN1NSSAN0DD000001"


def _median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


class _MemoryFetcher(FetcherInterface):
    def __init__(self, read: Callable[[str], bytes | None]) -> None:
        self._read = read

    def _fetch(self, url: str) -> Iterator[bytes]:
        from tuf.api.exceptions import DownloadHTTPError

        data = self._read(url.removeprefix("mem://"))
        if data is None:
            raise DownloadHTTPError(f"{url} not found", 404)
        return iter([data])


def _world(path: Path, ecus: int) -> tuple[OtaBackend, dict[str, str]]:
    """Repositories with one image per ECU and a director instruction for all of them."""
    database = Database(f"sqlite:///{path / 'ota.db'}")
    database.migrate()
    backend = OtaBackend(path / "cloud", database)
    backend.initialise()
    hardware = {f"{VIN}-ECU{n:04d}": f"HW-{n:04d}" for n in range(ecus)}
    top = backend.images.repo.targets().signed
    instructions: dict[str, TargetFile] = {}
    for n, (serial, hw) in enumerate(hardware.items()):
        target = TargetFile.from_data(f"ecu{n:04d}-1.1.0.bin", f"image {n}".encode() * 50, ["sha256"])
        target.unrecognized_fields["custom"] = {
            "hardware_ids": [hw],
            "version": "1.1.0",
            "release_counter": 1,
        }
        top.targets[target.path] = target
        entry = TargetFile(target.length, dict(target.hashes), target.path)
        entry.unrecognized_fields["custom"] = {"ecu_identifiers": {serial: {"hardware_id": hw}}}
        instructions[target.path] = entry
    backend.images.repo.publish({Targets.type: top})
    repo = backend.director.repository(VIN)
    director_targets = repo.targets().signed
    director_targets.targets = instructions
    director_targets.unrecognized_fields["custom"] = {"vehicle_id": VIN}
    repo.publish({Targets.type: director_targets})
    return backend, hardware


def _verification_row(ecus: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        backend, hardware = _world(Path(tmp), ecus)
        roots = (backend.read(f"director/{VIN}/1.root.json"), backend.read("image/metadata/1.root.json"))
        assert roots[0] is not None and roots[1] is not None
        transport = LocalTransport(backend.read, backend.post)
        counters = dict.fromkeys(hardware, 0)
        fetcher = _MemoryFetcher(backend.read)

        def ours() -> None:
            with tempfile.TemporaryDirectory() as store:
                verifier = FullVerifier(VIN, Path(store), roots[0], roots[1], lambda: datetime.now(UTC))  # type: ignore[arg-type]
                verified, _ = verifier.verify(transport, hardware, counters)
                assert len(verified) == ecus

        def baseline() -> None:
            with tempfile.TemporaryDirectory() as store:
                found = 0
                updaters = []
                for name, prefix, root in (
                    ("d", f"director/{VIN}", roots[0]),
                    ("i", "image/metadata", roots[1]),
                ):
                    directory = Path(store) / name
                    directory.mkdir()
                    updater = Updater(str(directory), f"mem://{prefix}/", fetcher=fetcher, bootstrap=root)
                    updater.refresh()
                    updaters.append(updater)
                for path in updaters[0]._trusted_set.targets.targets:
                    found += updaters[1].get_targetinfo(path) is not None
                assert found == ecus

        base, mine = _median_ms(baseline, repeats), _median_ms(ours, repeats)
    return {"ecus": ecus, "baseline_ms": base, "ours_ms": mine, "speedup": base / mine}


def bench_verification(repeats: int) -> list[dict[str, float]]:
    return [_verification_row(ecus, repeats) for ecus in (10, 100, 1000)]


def _real_binary() -> bytes:
    libdir = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    candidates = sorted(libdir.glob("*.so"), key=lambda p: p.stat().st_size)
    return candidates[-1].read_bytes()


def _edits(base: bytes) -> dict[str, bytes]:
    rng = random.Random(7)
    patch = bytearray(base)
    spot = len(base) // 3
    patch[spot : spot + 300] = rng.randbytes(300)
    patch[-200:-180] = b"version 2.4.1\x00\x00\x00\x00\x00\x00\x00"
    minor = bytearray(patch)
    for _ in range(40):
        at = rng.randrange(len(minor) - 64)
        minor[at : at + 64] = rng.randbytes(64)
    insert_at = len(minor) // 2
    new_code = bytes(base[insert_at // 2 : insert_at // 2 + 32768]) + rng.randbytes(32768)
    minor[insert_at:insert_at] = new_code
    return {"patch-level": bytes(patch), "minor-level": bytes(minor)}


def _delta_child(codec: str, old: bytes, new: bytes, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if codec == "detools":
        import io

        import detools

        out = io.BytesIO()
        detools.create_patch(io.BytesIO(old), io.BytesIO(new), out, compression="lzma")
        delta = out.getvalue()
        build = time.perf_counter() - started
        started = time.perf_counter()
        rebuilt = io.BytesIO()
        detools.apply_patch(io.BytesIO(old), io.BytesIO(delta), rebuilt)
        ok = rebuilt.getvalue() == new
    else:
        delta = make_delta(old, new, codec)
        build = time.perf_counter() - started
        started = time.perf_counter()
        ok = apply_delta(old, delta, len(new)) == new
    apply = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    queue.put((len(delta), build, apply, peak / 1024, ok))


def bench_deltas() -> list[dict[str, object]]:
    base = _real_binary()
    rows = []
    context = multiprocessing.get_context("spawn")
    for change, new in _edits(base).items():
        for codec in (*CODECS, "detools"):
            queue = context.Queue()
            child = context.Process(target=_delta_child, args=(codec, base, new, queue))
            child.start()
            size, build, apply, peak_mib, ok = queue.get()
            child.join()
            rows.append(
                {
                    "change": change,
                    "codec": codec,
                    "image_kib": len(new) / 1024,
                    "delta_pct": 100 * size / len(new),
                    "build_s": build,
                    "apply_ms": apply * 1000,
                    "peak_mib": peak_mib,
                    "ok": ok,
                }
            )
    return rows


def bench_director(vehicles: int = 40, rounds: int = 5) -> dict[str, float]:
    from opensdv.cloud.fleet.registry import VehicleRegistry
    from opensdv.demo.vehicles import demo_vin
    from opensdv.model.vehicles import load_catalog
    from opensdv.vehicle.ota.setup import EcuSpec, build_vehicle, ecu_key

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        database = Database(f"sqlite:///{path / 'ota.db'}")
        database.migrate()
        backend = OtaBackend(path / "cloud", database)
        backend.initialise()
        leaf = load_catalog().vehicle("nissan-leaf-40")
        registry = VehicleRegistry(database)
        image = backend.images.add_image(
            "eaxle/inverter-2.4.0.bin", b"x" * 4096, ["KDS-INV-110-400-B"], "2.4.0", 24
        )
        target, _ = backend.images.image(image.name)
        primaries = []
        for n in range(vehicles):
            vin = demo_vin(leaf, n + 1)
            registry.register(vin, leaf, "JP")
            ecus = [EcuSpec(name, f"{vin}-{name}", e.hardware_id) for name, e in leaf.ecus.items()]
            keys = {e.name: ecu_key(path / vin / "ecus" / e.serial).public_key for e in ecus}
            backend.enrol(vin, keys, "TCU")
            roots = (
                backend.read(f"director/{vin}/1.root.json") or b"",
                backend.read("image/metadata/1.root.json") or b"",
            )
            primaries.append(
                (
                    vin,
                    build_vehicle(
                        vin,
                        ecus,
                        "TCU",
                        path / vin,
                        *roots,
                        LocalTransport(backend.read, backend.post),
                        lambda: datetime.now(UTC),
                    ),
                )
            )
        started = time.perf_counter()
        for _ in range(rounds):
            for vin, _p in primaries:
                backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_FRONT", "KDS-INV-110-400-B", target)])
        targets_per_s = vehicles * rounds / (time.perf_counter() - started)
        manifests = [(vin, p.manifest()) for vin, p in primaries for _ in range(rounds)]
        started = time.perf_counter()
        for vin, data in manifests:
            backend.receive_manifest(vin, data)
        manifests_per_s = len(manifests) / (time.perf_counter() - started)
    return {
        "targets_per_s": targets_per_s,
        "campaign_100k_min": 100_000 / targets_per_s / 60,
        "manifests_per_s": manifests_per_s,
    }


def main(argv: list[str]) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="python -m bench.ota")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    verification = bench_verification(args.repeats)
    table = Table(
        "ECUs",
        "ngclient x2 (ms)",
        "ours (ms)",
        "speed-up",
        title=f"Full verification, median of {args.repeats}",
    )
    for r in verification:
        table.add_row(
            str(r["ecus"]), f"{r['baseline_ms']:.1f}", f"{r['ours_ms']:.1f}", f"{r['speedup']:.2f}x"
        )
    console.print(table)

    deltas = bench_deltas()
    table = Table(
        "change",
        "codec",
        "image KiB",
        "delta %",
        "build s",
        "apply ms",
        "peak RSS MiB",
        "rebuilt ok",
        title="Deltas",
    )
    for d in deltas:
        table.add_row(
            str(d["change"]),
            str(d["codec"]),
            f"{d['image_kib']:.0f}",
            f"{d['delta_pct']:.2f}",
            f"{d['build_s']:.2f}",
            f"{d['apply_ms']:.1f}",
            f"{d['peak_mib']:.1f}",
            str(d["ok"]),
        )
    console.print(table)

    director = bench_director()
    table = Table("director", "value", title="Director throughput (SQLite, one process)")
    table.add_row("vehicle targets metadata signed / s", f"{director['targets_per_s']:.0f}")
    table.add_row("100,000-vehicle campaign (minutes)", f"{director['campaign_100k_min']:.1f}")
    table.add_row("vehicle manifests verified + recorded / s", f"{director['manifests_per_s']:.0f}")
    console.print(table)
    return {"verification": verification, "deltas": deltas, "director": director}


if __name__ == "__main__":
    main(sys.argv[1:])
