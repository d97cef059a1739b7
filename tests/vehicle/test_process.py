"""`opensdv vehicle init` and `run`: a starting config that loads, and errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opensdv.config import load_settings
from opensdv.vehicle.process import VehicleLayout, VehicleProcess, VehicleProcessError

VIN = "JN1NSSAN0DD000001"


def _opensdv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opensdv", *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def test_init_writes_a_config_that_runs_and_keys_that_stay(tmp_path: Path) -> None:
    done = _opensdv("vehicle", "init", VIN, "--model", "nissan-leaf-40", "--dir", "car", "--bus", "virtual:x", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    settings = load_settings(tmp_path / "vehicle.toml")
    assert settings.vehicle.vin == VIN and settings.vehicle.bus.interface == "virtual"
    layout = VehicleLayout(tmp_path / "car")
    assert settings.broker.jwt_public_keys == [layout.jwt_public_key]  # tokens checked from the start
    key = layout.jwt_private_key.read_bytes()
    assert (layout.jwt_private_key.stat().st_mode & 0o077) == 0
    assert len(list((layout.ota / "ecus").glob("*/ecu_key.pem"))) == 6
    again = _opensdv("vehicle", "init", VIN, "--model", "nissan-leaf-40", "--dir", "car", cwd=tmp_path)
    assert again.returncode == 2 and "vehicle.toml exists; --force overwrites it" in again.stderr
    forced = _opensdv("vehicle", "init", VIN, "--model", "nissan-leaf-40", "--dir", "car", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and layout.jwt_private_key.read_bytes() == key  # keys are kept


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[vehicle]\nmodel = 'nissan-leaf-40'\n", "vehicle.vin is not set"),
        ("[vehicle]\nvin = 'JN1NSSAN0DD000001'\nmodel = 'no-such-car'\n", "no-such-car"),
        ("[vehicle]\nvin = 'not a vin'\n", "vehicle.vin"),
        ("[vehicle.bus]\nspeed = 500\n", "vehicle.bus.speed"),
        (f"[vehicle]\nvin = '{VIN}'\nota_url = 'http://ota:8081'\n", "vehicle.ota_url"),
        (f"[vehicle]\nvin = '{VIN}'\nmodel = 'nissan-leaf-40'\nsimulated_faults = ['FLUX']\n", "vehicle.simulated_faults: FLUX"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "vehicle.toml").write_text(toml)
    done = _opensdv("vehicle", "run", "--config", "vehicle.toml", cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_an_ota_url_without_enrolment_says_what_to_do(tmp_path: Path) -> None:
    settings = load_settings(
        vehicle={"vin": VIN, "model": "nissan-leaf-40", "state_dir": tmp_path, "ota_url": "https://127.0.0.1:1"}
    )
    process = VehicleProcess(settings)
    with pytest.raises(VehicleProcessError, match=f"opensdv ota enrol {VIN}"):
        process._start_ota()


def test_a_linked_car_without_its_identity_says_how_to_provision_it(tmp_path: Path) -> None:
    settings = load_settings(
        vehicle={"vin": VIN, "model": "nissan-leaf-40", "state_dir": tmp_path, "mqtt_url": "mqtts://fleet:8883"}
    )
    process = VehicleProcess(settings)
    process._start_broker()
    with pytest.raises(VehicleProcessError, match=f"opensdv fleet provision {VIN} --vehicle-dir"):
        process._start_agent()
