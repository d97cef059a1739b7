"""What an app can see of the platform, tried from inside an app: the platform's environment (a
CSMS password in it), its token in its own environment, other apps' files, and its memory from
another process of the same user. And under root, that each app runs as a user of its own."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from opensdv.model.vehicles import load_catalog
from opensdv.vehicle.apps.isolation import APP_UIDS, isolation_blocker
from opensdv.vehicle.apps.runtime import AppRuntime
from opensdv.vehicle.broker import generate_key_pair

SPY = """
    import ctypes, json, os, pathlib
    from opensdv.vehicle.apps import VehicleApp

    class App(VehicleApp):
        async def run(self):
            home, key = pathlib.Path(os.environ["HOME"]), pathlib.Path(self.settings["key"])
            try:
                key.read_bytes()
                key_readable = True
            except OSError:
                key_readable = False
            report = {
                "environment": dict(os.environ), "cwd": os.getcwd(), "uid": os.getuid(),
                "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),  # PR_GET_DUMPABLE
                "home_mode": oct(home.stat().st_mode & 0o777), "tmp_mode": oct(pathlib.Path(os.environ["TMPDIR"]).stat().st_mode & 0o777),
                "key_readable": key_readable, "token": bool(self.client._metadata),
            }
            (home / "report.json").write_text(json.dumps(report))
"""


def _spy(root: Path, name: str, key: Path) -> Path:
    directory = root / name
    directory.mkdir(parents=True)
    (directory / "app.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\npublisher = "t"\nentry = "main:App"\n[settings]\nkey = "{key}"\n'
    )
    (directory / "main.py").write_text(textwrap.dedent(SPY))
    return directory


async def _report(runtime: AppRuntime, app: Path, name: str) -> dict[str, object]:
    status = await runtime.start(app)
    final = await runtime.wait(name)
    assert final.state == "stopped" and final.exit_code == 0, (final, runtime.log_file(name).read_text())
    report: dict[str, object] = json.loads((runtime.sandbox.root / name / "home" / "report.json").read_text())
    report["isolation"] = status.isolation
    return report


async def test_an_app_sees_no_platform_secret_and_no_other_apps_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENSDV_CSMS_PASSWORD", "the-platform-secret")
    monkeypatch.setenv("OPENSDV_DATABASE_URL", "postgresql://admin:pw@db/opensdv")
    private, _ = generate_key_pair("ES256")
    key = tmp_path / "jwt.key"
    key.write_bytes(private)
    runtime = AppRuntime(load_catalog().vehicle("nissan-leaf-40"), "127.0.0.1:1", private, tmp_path / "logs",
                         separate_users=False)  # fmt: skip
    first = await _report(runtime, _spy(tmp_path / "apps", "spy-one", key), "spy-one")
    await _report(runtime, _spy(tmp_path / "apps", "spy-two", key), "spy-two")
    environment = first["environment"]
    assert isinstance(environment, dict)
    assert not [k for k in environment if k.startswith("OPENSDV_")]  # no setting, no token
    assert "the-platform-secret" not in json.dumps(environment)
    assert first["token"] is True  # it has its token all the same (from standard input)
    assert first["dumpable"] == 0  # another process of this user cannot read its memory
    assert first["home_mode"] == first["tmp_mode"] == "0o700"
    assert first["cwd"] == str(runtime.sandbox.root / "spy-one" / "home")
    assert environment["HOME"] != str(runtime.sandbox.root / "spy-two" / "home")


async def test_under_root_each_app_runs_as_its_own_user_or_says_why_it_cannot(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("separate users need the platform to run as root")
    private, _ = generate_key_pair("ES256")
    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # a place other users may enter
    shared.chmod(0o711)
    key = shared / "jwt.key"
    key.write_bytes(private)
    key.chmod(0o600)
    apps = shared / "apps"
    apps.mkdir(mode=0o755, exist_ok=True)
    app = _spy(apps, "spy-root", key)
    for path in (app, *app.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    runtime = AppRuntime(load_catalog().vehicle("nissan-leaf-40"), "127.0.0.1:1", private, shared / "logs",
                         private_root=shared / "private")  # fmt: skip
    blocker = isolation_blocker([Path(sys.executable)])
    try:
        report = await _report(runtime, app, "spy-root")
    finally:
        shutil.rmtree(shared)
    if blocker is None:
        assert report["uid"] in APP_UIDS and report["key_readable"] is False  # the platform's key stays its own
        assert f"uid {report['uid']}" in str(report["isolation"])
    else:  # this interpreter cannot be run by another user: the app runs as root, and says so
        assert report["uid"] == 0 and blocker in str(report["isolation"])


def test_the_isolation_check_names_the_directory_that_blocks_other_users() -> None:
    base = Path(tempfile.mkdtemp(dir="/tmp"))  # (pytest's own tmp_path is closed to other users)
    try:
        base.chmod(0o755)
        (base / "closed" / "inner").mkdir(parents=True)
        (base / "closed").chmod(0o700)
        assert isolation_blocker([base / "closed" / "inner"]) == f"{base / 'closed'} is not enterable by other users"
        (base / "closed").chmod(0o755)
        (base / "closed" / "inner").chmod(0o700)
        assert isolation_blocker([base / "closed" / "inner"]) == f"{base / 'closed' / 'inner'} is not readable by other users"
        (base / "closed" / "inner").chmod(0o755)
        assert isolation_blocker([base / "closed" / "inner"]) is None
    finally:
        shutil.rmtree(base)
