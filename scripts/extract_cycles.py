"""Extract the standard drive cycles shipped in src/opensdv/physics/data/cycles/.

Sources (run once by a maintainer; the CSVs are committed, users never need these packages):
- UDDS and HWFET: the speed traces inside NREL's FASTSim package (``fastsim.Cycle.from_resource``).
- WLTC class 1, class 2, class 3b, and Japan's WLTC mode (class 3b without its extra-high phase,
  0-1477 s): the cycle tables of the ``wltp`` package (JRC, from UN GTR No. 15), read from its wheel
  (downloaded with pip into a temporary folder; its own dependencies are not installed).

    python scripts/extract_cycles.py
"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/opensdv/physics/data/cycles"


def write(name: str, source: str, speeds_kmh: list[float]) -> None:
    path = OUT / f"{name}.csv"
    with path.open("w", newline="") as handle:
        handle.write(f"# {source}\n")
        writer = csv.writer(handle)
        writer.writerow(["time_s", "speed_kmh"])
        for second, speed in enumerate(speeds_kmh):
            writer.writerow([second, f"{speed:.3f}".rstrip("0").rstrip(".") if "." in f"{speed:.3f}" else f"{speed:.3f}"])
    print(f"{path.name}: {len(speeds_kmh)} s, max {max(speeds_kmh):.1f} km/h")


def fastsim_cycles() -> None:
    import fastsim

    for name in ("udds", "hwfet"):
        data = fastsim.Cycle.from_resource(f"{name}.csv").to_dict()
        times = data["time_seconds"]
        assert times == list(range(len(times))), "1 Hz traces expected"
        write(name, f"FASTSim {fastsim.__version__} Cycle.from_resource('{name}.csv') (US EPA)", [v * 3.6 for v in data["speed_meters_per_second"]])


def wltp_cycles() -> None:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", folder, "wltp==0.1.2a0"], check=True)
        wheel = next(Path(folder).glob("wltp-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(folder)

        def module(name: str):  # type: ignore[no-untyped-def]
            spec = importlib.util.spec_from_file_location(name, Path(folder) / "wltp/cycles" / f"{name}.py")
            assert spec and spec.loader
            loaded = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(loaded)
            return loaded

        source = "wltp 0.1.2a0 (JRC) cycle tables, UN GTR No. 15"
        write("wltc_class1", f"{source}: class 1", module("class1").class_data()["cycle"])
        write("wltc_class2", f"{source}: class 2", module("class2").class_data()["cycle"])
        class3b = module("class3").class_data_b()
        write("wltc_class3b", f"{source}: class 3b", class3b["cycle"])
        low_mid_high = class3b["parts"][2][1] + 1
        write("wltc_japan", f"{source}: class 3b without the extra-high phase (Japan's WLTC mode)", class3b["cycle"][:low_mid_high])


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    fastsim_cycles()
    wltp_cycles()
