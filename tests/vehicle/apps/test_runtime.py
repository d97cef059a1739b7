"""The app runtime with real processes: least-privilege tokens, hardware checks, restarts, logs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from opensdv.model._files import CatalogError
from opensdv.model.vehicles import load_catalog
from opensdv.vehicle.apps.manifest import load_manifest
from opensdv.vehicle.apps.runtime import AppRuntime
from opensdv.vehicle.apps.testing import app_broker
from opensdv.vehicle.broker import ALLOW_ALL, TokenVerifier, generate_key_pair

LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"


def write_app(root: Path, name: str, manifest: str, code: str) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "app.toml").write_text(textwrap.dedent(manifest))
    (directory / "main.py").write_text(textwrap.dedent(code))
    return directory


ROGUE = """
    from opensdv.vehicle.apps import SignalDenied, VehicleApp

    class App(VehicleApp):
        async def on_start(self):
            try:
                await self.vehicle.body.trunk.rear.is_open.actuate(True)
            except SignalDenied as exc:
                print("denied:", exc, flush=True)
            await self.vehicle.powertrain.traction_battery.charging.charge_limit.actuate(70)
            self.stop()
"""


async def test_apps_get_exactly_their_manifest_rights_and_the_runtime_supervises_them(tmp_path: Path) -> None:
    private, public = generate_key_pair("ES256")
    leaf = load_catalog().vehicle("nissan-leaf-40")
    rogue = write_app(
        tmp_path,
        "rogue",
        f'name = "rogue"\nversion = "1.0.0"\npublisher = "t"\nentry = "main:App"\nactuates = ["{LIMIT}"]\n',
        ROGUE,
    )
    crasher = write_app(
        tmp_path, "crasher",
        'name = "crasher"\nversion = "1.0.0"\npublisher = "t"\nentry = "main:App"\n[limits]\nmax_restarts = 1\n',
        "from opensdv.vehicle.apps import VehicleApp\nclass App(VehicleApp):\n    async def on_start(self):\n        raise RuntimeError('boom')\n",
    )  # fmt: skip
    big = write_app(
        tmp_path,
        "sports",
        'name = "sports"\nversion = "1.0.0"\npublisher = "t"\nentry = "main:App"\n[requires]\npack_voltage_class = "800V"\neaxle_positions = ["rear"]\n',
        "",
    )
    async with app_broker(verifier=TokenVerifier([public])) as server:
        provider = server.broker.register_provider(ALLOW_ALL, "bms")
        provider.claim([LIMIT, TRUNK])
        runtime = AppRuntime(leaf, server.target, private, tmp_path / "logs", backoff_s=0.01)

        await runtime.start(rogue)
        assert (await runtime.wait("rogue")).state == "stopped"
        assert await provider.wait_actuation() == {LIMIT: 70}
        log = runtime.log_file("rogue").read_text()
        assert f"denied: {TRUNK}" in log and "not in the token's scope (rogue)" in log

        await runtime.start(crasher)
        status = await runtime.wait("crasher")
        assert (status.state, status.restarts) == ("failed", 1) and status.exit_code != 0
        assert runtime.log_file("crasher").read_text().count("RuntimeError: boom") == 2

        refused = await runtime.start(big)
        assert refused.state == "refused"
        assert refused.detail == "pack is 400V, the app needs 800V; no standard e-axle at rear (has front)"
        assert {s.name: s.state for s in runtime.statuses()} == {
            "rogue": "stopped",
            "crasher": "failed",
            "sports": "refused",
        }


def test_bad_manifests_name_the_file_and_field(tmp_path: Path) -> None:
    app = tmp_path / "a"
    app.mkdir()
    (app / "app.toml").write_text('name = "Bad Name"\nversion = "1"\npublisher = "t"\nreads = ["Speed"]\n')
    with pytest.raises(CatalogError) as caught:
        load_manifest(app)
    message = str(caught.value)
    assert str(app / "app.toml") in message
    assert (
        "name: String should match pattern" in message
        and "version:" in message
        and "not VSS paths" in message
    )
    (app / "app.toml").write_text("name = [")
    with pytest.raises(CatalogError, match="invalid TOML"):
        load_manifest(app)
