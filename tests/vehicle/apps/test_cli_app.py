"""``opensdv app``: a new app's own test passes out of the box; model, list and package work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.vehicle.apps.examples import EXAMPLES
from opensdv.vehicle.apps.package import unpack_app_set


def test_new_app_scaffold_runs_its_test(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["app", "new", "seat-heater", "--dir", str(tmp_path), "--publisher", "Honda"]
    )
    assert result.exit_code == 0, result.output
    directory = tmp_path / "seat-heater"
    assert sorted(p.name for p in directory.iterdir()) == [
        "app.toml",
        "seat_heater.py",
        "test_seat_heater.py",
    ]
    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", str(directory)],
        cwd=directory, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    again = CliRunner().invoke(app, ["app", "new", "seat-heater", "--dir", str(tmp_path)])
    assert again.exit_code != 0 and "already exists" in str(again.exception)


def test_model_list_and_package(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["app", "model", "-o", str(tmp_path / "m.py")]).exit_code == 0
    assert "class Vehicle(_Vehicle)" in (tmp_path / "m.py").read_text()
    listed = runner.invoke(app, ["app", "list"])
    assert listed.exit_code == 0 and "eco-coach" in listed.output
    out = tmp_path / "set.tar.gz"
    packaged = runner.invoke(app, ["app", "package", str(EXAMPLES / "eco-coach"), "-o", str(out)])
    assert packaged.exit_code == 0, packaged.output
    assert [d.name for d in unpack_app_set(out.read_bytes(), tmp_path / "x")] == ["eco-coach"]
