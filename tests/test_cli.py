"""The command line as a user meets it: help with examples, tables, exit codes, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from opensdv.cli import app

runner = CliRunner()

SUB_COMMANDS = [
    ["vss", "tree"], ["vss", "show"], ["vss", "validate"],
    ["components", "list"], ["components", "show"], ["components", "check"],
    ["vehicles", "list"], ["vehicles", "show"],
    ["db", "upgrade"], ["db", "status"], ["config", "show"], ["demo"],
    ["broker", "serve"], ["broker", "token"], ["broker", "keygen"], ["broker", "certs"],
    ["can", "feed"], ["can", "map"], ["can", "stats"],
    ["cloud", "job", "health"], ["cloud", "job", "sweep"], ["twin", "run"], ["twin", "range"], ["twin", "compare"], ["twin", "age"], ["energy", "plan"], ["energy", "soh"],
]  # fmt: skip


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    return result.exit_code, result.output


def test_root_help_lists_every_part() -> None:
    code, out = run("--help")
    assert code == 0
    for name in ("demo", "vss", "components", "vehicles", "broker", "can", "twin", "energy", "db", "config"):
        assert name in out


@pytest.mark.parametrize("command", SUB_COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(command: list[str]) -> None:
    code, out = run(*command, "--help")
    assert code == 0 and "Examples" in out and f"opensdv {command[0]}" in out


def test_vss_commands() -> None:
    code, out = run("vss", "show", "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit")
    assert code == 0 and "actuator" in out and "uint8" in out and "percent" in out
    code, out = run("vss", "tree", "--root", "Vehicle.Powertrain", "--depth", "1")
    assert code == 0 and "TractionBattery" in out and "ElectricMotor" in out


def test_vss_validate_counts_an_official_export(shared: Path) -> None:
    code, out = run("vss", "validate", str(shared / "vss" / "vss_5.1.json"))
    assert code == 0 and "1321 leaves" in out and "valid" in out


def test_components_and_vehicles() -> None:
    code, out = run("components", "list")
    assert code == 0 and "lfp-prismatic-12s1p-60ah" in out and "ea-rear-160kw-800v" in out
    code, out = run("components", "show", "ea-front-47kw-400v")
    assert code == 0 and '"peak_torque_nm": 195' in out
    code, out = run("vehicles", "show", "mitsubishi-ek-x-ev")
    assert code == 0 and "NMKV-EVECU-B5A-01" in out and "pass" in out and "FAIL" not in out


def test_check_file_exits_1_on_failed_rule(tmp_path: Path) -> None:
    leaf = Path(__file__).resolve().parents[1] / "src/opensdv/model/data/vehicles.yaml"
    text = leaf.read_text().split("  - id: honda-e-advance")[0]
    text = text.replace("nissan-leaf-40", "leaf-on-800v").replace(
        "[ea-front-110kw-400v]", "[ea-rear-160kw-800v]"
    )
    (tmp_path / "mine.yaml").write_text(text)
    code, out = run("components", "check", str(tmp_path / "mine.yaml"))
    assert code == 1 and "FAIL" in out and "voltage-window" in out


def test_demo_shows_three_brands_with_running_brokers() -> None:
    code, out = run("demo", "--duration", "0", "--base-port", "0", "--http-port", "0")
    assert code == 0, out
    assert "compatibility checks: all pass" in out
    assert "brands read back over kuksa.val gRPC: Nissan, Honda, Mitsubishi, Nissan" in out
    assert "campaign eaxle-inverter-2-4: running, stage 1/2 (assigned 2, pending 2)" in " ".join(out.split())


def test_demo_with_a_bigger_fleet() -> None:
    code, out = run("demo", "--duration", "0", "--base-port", "0", "--http-port", "0", "--vehicles", "6")
    assert code == 0, out
    assert "brands read back over kuksa.val gRPC: Nissan, Honda, Mitsubishi, Nissan, Nissan, Honda" in out
    assert "6 vehicles of 3 brands" in out


def test_db_upgrade_then_status(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert "revision 0009" in run("db", "upgrade", "--url", url)[1]
    assert "up to date" in run("db", "status", "--url", url)[1]


def console_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opensdv", *args], capture_output=True, text=True, check=False, timeout=60
    )


def test_bad_input_is_one_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("Vehicle.Speed: {type: sensor, datatype: float64}")
    result = console_script("vss", "validate", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {bad}: Vehicle.Speed.datatype: unknown datatype 'float64'"
    )
    assert "Traceback" not in result.stderr + result.stdout
    result = console_script("--config", str(tmp_path / "missing.toml"), "demo")
    assert result.returncode == 2 and "configuration file not found" in result.stderr


def test_demo_runs_as_a_process() -> None:
    result = console_script("demo", "--duration", "0", "--base-port", "0")
    assert result.returncode == 0, result.stderr
    assert "Mitsubishi" in result.stdout


def test_demo_vins_are_valid() -> None:
    from opensdv.cloud.fleet.registry import validate_vin
    from opensdv.demo.vehicles import demo_vin
    from opensdv.model import load_catalog

    vins = [demo_vin(v, i) for i, v in enumerate(load_catalog().all_vehicles(), 1)]
    assert all(validate_vin(vin) == vin for vin in vins)
    assert len(set(vins)) == len(vins)


def test_data_commands_say_what_is_missing_or_unreachable(tmp_path: Path) -> None:
    """The API client's errors name the cause in one line (no traceback): no secret, no API, a bad file."""
    import os
    from socket import socket

    def data(*args: str, secret: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "OPENSDV_API_SECRET"} | ({"OPENSDV_API_SECRET": secret} if secret else {})
        return subprocess.run([sys.executable, "-m", "opensdv", "data", *args, "--operator", "ops"], capture_output=True,
                              text=True, check=False, timeout=60, env=env)  # fmt: skip

    missing = data("campaign", "list", "--api", "http://127.0.0.1:9")
    assert missing.returncode == 2 and "set OPENSDV_API_SECRET to operator ops's secret" in missing.stderr
    with socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        refused = data("export", "cruise", "-o", str(tmp_path / "x.parquet"), "--api", f"http://127.0.0.1:{port}", secret="s" * 16)
    assert refused.returncode == 2 and f"cannot reach the fleet API at http://127.0.0.1:{port}" in refused.stderr
    assert not (tmp_path / "x.parquet").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n")
    broken = data("campaign", "create", str(bad), secret="s" * 16)
    assert broken.returncode == 2 and "bad.yaml" in broken.stderr
    for result in (missing, refused, broken):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    wrong = data("export", "cruise", "--format", "csv", "-o", str(tmp_path / "x"))
    assert wrong.returncode == 2 and "only parquet" in wrong.stderr


def test_running_a_sub_command_leaves_the_root_command_in_place() -> None:
    """Importing a sub-command's module must not replace ``opensdv.cli.app`` (the root command)
    with that module: a later ``from opensdv.cli import app`` in the same process would get it."""
    import opensdv.cli

    for name in opensdv.cli.SUBCOMMANDS:
        assert runner.invoke(app, [name, "--help"]).exit_code == 0, name
        assert opensdv.cli.app is app, f"running {name!r} replaced the root command"
