"""A managed site through the fleet API: platform operators with the right to command send grid
signals and drivers' needs; a brand's operators see their own cars only and steer nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.ocpp.csms_state import Transaction
from opensdv.cloud.energy.site_controller import SiteController
from opensdv.cloud.energy.site_file import ManagedSite
from opensdv.cloud.fleet.api import FleetCloud, create_api
from opensdv.cloud.fleet.commands import CommandOrder
from opensdv.cloud.fleet.operators import PLATFORM, Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import Command
from opensdv.storage.database import Database

SECRET = "correct horse battery"
VIN = "JN1NSSAN0DD000001"


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, SiteController]:
    database = Database(f"sqlite:///{tmp_path / 'fleet.db'}")
    database.migrate()
    operators = Operators(database, b"k" * 32)
    operators.add("nissan-ops", SECRET, "Nissan", can_command=True)
    operators.add("platform-viewer", SECRET, PLATFORM)
    operators.add("platform", SECRET, PLATFORM, can_command=True)
    csms = Csms(["CS-001", "CS-002"])
    csms.stations["CS-001"].transactions["tx-1"] = Transaction("tx-1", 1, _iso(time.time()), VIN)
    site = ManagedSite.model_validate(
        {"name": "Depot", "cap_kw": 22, "stations": [{"id": "CS-001", "max_kw": 11}, {"id": "CS-002", "max_kw": 11}]}
    )
    controller = SiteController(site, csms)
    controller.plan()

    async def send(order: CommandOrder) -> Command:
        raise AssertionError("no command in these tests")

    cloud = FleetCloud(VehicleRegistry(database), TelemetryStore(), operators, send, sites={"depot": controller})
    return TestClient(create_api(cloud)), controller


def _login(client: TestClient, name: str) -> dict[str, str]:
    reply = client.post("/api/v1/token", data={"grant_type": "password", "username": name, "password": SECRET})
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def test_the_platform_steers_a_managed_site_and_nobody_else(api: tuple[TestClient, SiteController]) -> None:
    client, controller = api
    platform, viewer, brand = (_login(client, n) for n in ("platform", "platform-viewer", "nissan-ops"))
    later = datetime.fromtimestamp(time.time() + 3600, UTC).isoformat()
    signal = {"cap_kw": 4.0, "end": later}
    for who in (viewer, brand):
        assert client.post("/api/v1/energy/sites/depot/signals", json=signal, headers=who).status_code == 403
    assert controller.signals == []

    assert client.post("/api/v1/energy/sites/depot/signals", json=signal, headers=platform).status_code == 202
    assert [s.cap_kw for s in controller.signals] == [4.0] and controller.signals[0].source == "operator platform"
    controller.plan()
    assert max(controller.load_curve()[:4]) <= 4.0 + 1e-6

    needs = {"departure": later, "kwh": 3.5}
    reply = client.put("/api/v1/energy/sites/depot/sessions/tx-1/needs", json=needs, headers=platform)
    assert reply.status_code == 202, reply.text
    controller.plan()
    site = client.get("/api/v1/energy/sites/depot", headers=platform).json()
    (car,) = site["sessions"]
    assert (car["transaction_id"], car["needs_from"], car["kwh_requested"]) == ("tx-1", "driver", 3.5)
    assert client.put("/api/v1/energy/sites/depot/sessions/tx-9/needs", json=needs, headers=platform).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"cap_kw": float("nan"), "end": "2030-01-01T00:00:00Z"},
        {"cap_kw": -1, "end": "2030-01-01T00:00:00Z"},
        {"cap_kw": 5, "end": "2030-01-01T00:00:00"},  # no time zone
        {"cap_kw": 5, "end": "2020-01-01T00:00:00Z"},  # already over
        {"cap_kw": 5, "end": "2030-01-01T00:00:00Z", "until": "never"},
    ],
)
def test_a_bad_grid_signal_is_refused_by_field(api: tuple[TestClient, SiteController], body: dict[str, object]) -> None:
    client, controller = api
    platform = _login(client, "platform")
    content = str(body).replace("'", '"').replace("nan", "NaN")
    reply = client.post("/api/v1/energy/sites/depot/signals", content=content, headers={**platform, "Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert controller.signals == []
