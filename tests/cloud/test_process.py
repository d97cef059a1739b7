"""`opensdv cloud run`'s checks before anything starts, and its ops endpoints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from opensdv.cloud.process import CloudProcess, CloudProcessError, ops_app
from opensdv.config import load_settings


@pytest.mark.parametrize(
    ("only", "message"),
    [
        ({"api"}, "api and ingest share the embedded DuckDB telemetry file"),
        ({"ingest", "ota"}, "api and ingest share"),
        ({"api", "ingest", "billing"}, "--only: billing; the services are api, ingest, ota, energy"),
        (set(), "--only: nothing"),
    ],
)
def test_services_that_cannot_run_as_asked_are_refused_by_name(only: set[str], message: str) -> None:
    with pytest.raises(CloudProcessError, match=message):
        CloudProcess(load_settings(), frozenset(only))


def test_ops_endpoints_say_what_is_ready_and_export_metrics() -> None:
    process = CloudProcess(load_settings(), frozenset({"ota", "energy"}))
    client = TestClient(ops_app(process))
    assert client.get("/healthz").json() == {"status": "ok", "services": ["energy", "ota"]}
    not_yet = client.get("/readyz")
    assert not_yet.status_code == 503 and not_yet.json()["services"] == {"energy": False, "ota": False}
    process.ready["ota"] = process.ready["energy"] = True
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'opensdv_service_ready{service="ota"} 1.0' in metrics.text
