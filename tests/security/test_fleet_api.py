"""Attacks on the fleet API: guessing secrets, keeping a removed operator's token, framing or
scripting the dashboard from elsewhere, huge bodies, non-finite or unbounded parameters, a flood
of live streams, and what the audit log must show afterwards."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import urllib3
import uvicorn
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opensdv.clock import FakeClock
from opensdv.cloud.fleet.api import create_api
from opensdv.cloud.fleet.commands import CommandOrder
from opensdv.cloud.fleet.limits import MAX_BODY_BYTES, MAX_LIVE_STREAMS
from opensdv.cloud.fleet.operators import PLATFORM, Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.fleet.service import FleetCloud
from opensdv.cloud.fleet.throttle import LoginThrottle
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import Command
from opensdv.model.vehicles import load_catalog
from opensdv.storage import Database
from tests.fleet_identities import Fleet

SECRET = "correct horse battery"
VIN = "JN1NSSAN0DD000001"


@pytest.fixture
def world(tmp_path: Path, fleet: Fleet) -> tuple[FleetCloud, TestClient, FakeClock]:
    database = Database(f"sqlite:///{tmp_path / 'fleet.db'}")
    database.migrate()
    registry = VehicleRegistry(database)
    registry.register(VIN, load_catalog().vehicle("nissan-leaf-40"), "JP")
    operators = Operators(database, b"k" * 32)
    operators.add("nissan-ops", SECRET, "Nissan", can_command=True)
    operators.add("honda-ops", SECRET, "Honda", can_command=True)
    operators.add("platform", SECRET, PLATFORM)
    signer = fleet.signer()

    async def send(order: CommandOrder) -> Command:
        return signer.command(order.vin, order.tenant, order.operator, order.path, order.value)

    clock = FakeClock()
    cloud = FleetCloud(registry, TelemetryStore(), operators, send, clock=clock)
    return cloud, TestClient(create_api(cloud)), clock


def _login(client: TestClient, name: str, secret: str = SECRET) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/api/v1/token", data={"grant_type": "password", "username": name, "password": secret}
    )
    return response.status_code, {**response.json(), "retry-after": response.headers.get("Retry-After")}


async def test_guessing_a_secret_is_throttled_per_operator_and_per_address(
    world: tuple[FleetCloud, TestClient, FakeClock],
) -> None:
    cloud, client, clock = world
    for _ in range(cloud.throttle.free):
        assert _login(client, "nissan-ops", "wrong guess!!")[0] == 400
    status, body = _login(client, "nissan-ops")  # even the right secret must wait now
    assert status == 429 and body["retry-after"] == "1"
    status, _ = _login(client, "honda-ops")  # the same address is throttled for other names too
    assert status == 429
    await clock.advance(1.0)  # the wait is over: one more guess is allowed, and fails
    assert _login(client, "nissan-ops", "wrong again!!")[0] == 400
    assert _login(client, "nissan-ops")[1]["retry-after"] == "2"  # the wait doubles
    # the lockout is in the audit log once (not per guess), where the account's tenant sees it
    platform = cloud.operators.authenticate("platform", SECRET)
    lockouts = [e for e in cloud.audit.entries(platform) if e.action == "login-locked-out"]
    assert [(e.operator, e.tenant, e.target) for e in lockouts] == [
        ("nissan-ops", "Nissan", "address:testclient"), ("nissan-ops", "Nissan", "operator:nissan-ops")
    ]
    honda = cloud.operators.authenticate("honda-ops", SECRET)
    assert not [e for e in cloud.audit.entries(honda) if e.action == "login-locked-out"]  # not another brand's


def test_the_back_off_doubles_is_capped_and_a_success_clears_it() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock, free=2, base_s=1.0, cap_s=8.0, max_keys=3)
    throttle.failed("op:a")
    assert throttle.retry_after_s("op:a") == 0
    waits = []
    for _ in range(6):
        throttle.failed("op:a")
        waits.append(throttle.retry_after_s("op:a"))
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    throttle.succeeded("op:a")
    assert throttle.retry_after_s("op:a") == 0
    for n in range(10):  # random names cannot grow the record without bound
        throttle.failed(f"op:{n}")
    assert len(throttle._failures) == 3


def test_a_removed_operators_token_stops_working_at_once(
    world: tuple[FleetCloud, TestClient, FakeClock],
) -> None:
    cloud, client, _ = world
    token = _login(client, "nissan-ops")[1]["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/fleet", headers=headers).status_code == 200
    cloud.operators.remove("nissan-ops")
    answer = client.get("/api/v1/fleet", headers=headers)
    assert answer.status_code == 401 and "no longer exists" in answer.json()["detail"]


def test_security_headers_and_no_cors(world: tuple[FleetCloud, TestClient, FakeClock]) -> None:
    _, client, _ = world
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "script-src 'sha256-" in csp
    assert page.headers["X-Frame-Options"] == "DENY" and page.headers["X-Content-Type-Options"] == "nosniff"
    api = client.get("/api/v1/fleet", headers={"Origin": "https://evil.example"})
    assert api.headers["Cache-Control"] == "no-store" and "access-control-allow-origin" not in api.headers
    preflight = client.options(
        "/api/v1/fleet", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_configured_cors_origins_only(world: tuple[FleetCloud, TestClient, FakeClock]) -> None:
    cloud, _, _ = world
    client = TestClient(create_api(cloud, cors_origins=["https://ops.example"]))
    ok = client.get("/api/v1/fleet", headers={"Origin": "https://ops.example"})
    evil = client.get("/api/v1/fleet", headers={"Origin": "https://evil.example"})
    assert ok.headers["access-control-allow-origin"] == "https://ops.example"
    assert "access-control-allow-origin" not in evil.headers


def test_every_command_is_audited_with_operator_and_tenant(
    world: tuple[FleetCloud, TestClient, FakeClock],
) -> None:
    _, client, _ = world
    nissan = {"Authorization": f"Bearer {_login(client, 'nissan-ops')[1]['access_token']}"}
    body = {"path": "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit", "value": 80}
    sent = client.post(f"/api/v1/vehicles/{VIN}/commands", json=body, headers=nissan)
    assert sent.status_code == 202
    entries = client.get("/api/v1/audit", headers=nissan).json()
    assert [(e["operator"], e["tenant"], e["action"], e["target"]) for e in entries] == [
        ("nissan-ops", "Nissan", "command", VIN)
    ]
    assert sent.json()["id"] in entries[0]["detail"] and "ChargeLimit = 80" in entries[0]["detail"]
    honda = {"Authorization": f"Bearer {_login(client, 'honda-ops')[1]['access_token']}"}
    assert client.get("/api/v1/audit", headers=honda).json() == []  # another tenant's actions stay hidden
    platform = {"Authorization": f"Bearer {_login(client, 'platform')[1]['access_token']}"}
    assert len(client.get("/api/v1/audit", headers=platform).json()) == 1


def test_an_unknown_name_costs_the_same_work_as_a_wrong_secret(
    world: tuple[FleetCloud, TestClient, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No enumeration of operator names by timing: one scrypt either way."""
    import hashlib

    from opensdv.cloud.fleet import operators as module

    cloud, _, _ = world
    calls: list[int] = []
    real = hashlib.scrypt
    monkeypatch.setattr(module.hashlib, "scrypt", lambda *a, **k: calls.append(1) or real(*a, **k))
    for name in ("nobody-at-all", "nissan-ops"):
        module._unknown()  # hashed once per process, not per attempt
        calls.clear()
        with pytest.raises(module.AuthError):
            cloud.operators.authenticate(name, "wrong guess!!")
        assert len(calls) == 1, name


def test_a_malformed_command_is_refused_with_422_naming_the_field(world: tuple[FleetCloud, TestClient, FakeClock]) -> None:
    _, client, _ = world
    nissan = {"Authorization": f"Bearer {_login(client, 'nissan-ops')[1]['access_token']}", "Content-Type": "application/json"}
    for body, field in ((b'{"path": "../../etc", "value": 1}', "path"), (b'{"path": "Vehicle.Speed", "value": NaN}', "value")):
        answer = client.post(f"/api/v1/vehicles/{VIN}/commands", content=body, headers=nissan)
        assert answer.status_code == 422, answer.text
        assert any(field in error["loc"] for error in answer.json()["detail"])
    assert client.get("/api/v1/audit", headers=nissan).json() == []  # nothing was sent


def test_oversized_bodies_are_refused_before_they_are_read(world: tuple[FleetCloud, TestClient, FakeClock]) -> None:
    _, client, _ = world
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    huge = client.post("/api/v1/token", content=b"x" * (MAX_BODY_BYTES + 1), headers=form)  # unauthenticated
    assert huge.status_code == 413 and "over 65536 bytes" in huge.json()["detail"]
    token = client.post("/api/v1/token", data={"grant_type": "password", "username": "nissan-ops", "password": SECRET})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Content-Type": "application/json"}

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
        yield b'{"path": "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit", "value": "'
        for _ in range(40):
            yield b"x" * 4096
        yield b'"}'

    streamed = client.post(f"/api/v1/vehicles/{VIN}/commands", content=chunked(), headers=headers)
    assert streamed.status_code == 413
    assert client.post("/api/v1/token", content=b"x" * 10, headers={**form, "Content-Length": "nonsense"}).status_code == 413


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("passport?daily_km=nan", "daily_km"), ("passport?ambient_c=-300", "ambient_c"), ("passport?years=inf", "years"),
        ("series?path=Vehicle.Speed&bucket_s=nan", "bucket_s"), ("series?path=Vehicle.Speed&start=nan", "start"),
        ("series?path=Vehicle.Speed&start=0&end=1e12&bucket_s=1", "buckets"), ("health?hours=nan", "hours"),
    ],
)  # fmt: skip
def test_unbounded_or_non_finite_parameters_are_refused_by_name(
    world: tuple[FleetCloud, TestClient, FakeClock], query: str, field: str
) -> None:
    _, client, _ = world
    token = client.post("/api/v1/token", data={"grant_type": "password", "username": "nissan-ops", "password": SECRET})
    answer = client.get(f"/api/v1/vehicles/{VIN}/{query}", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    assert answer.status_code == 422 and field in answer.json()["detail"], answer.text


@contextmanager
def _serving(cloud: FleetCloud) -> Iterator[str]:
    """The API on a real HTTP server (live streams never end, so they need one)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(create_api(cloud), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            threading.Event().wait(0.01)  # the server's own start, not a test condition
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_live_streams_are_capped_per_operator_and_end_when_rights_go(tmp_path: Path, fleet: Fleet) -> None:
    database = Database(f"sqlite:///{tmp_path / 'fleet.db'}")
    database.migrate()
    VehicleRegistry(database).register(VIN, load_catalog().vehicle("nissan-leaf-40"), "JP")
    operators = Operators(database, b"k" * 32)
    operators.add("nissan-ops", SECRET, "Nissan")

    async def send(order: CommandOrder) -> Command:
        raise AssertionError("no commands here")

    cloud = FleetCloud(VehicleRegistry(database), TelemetryStore(), operators, send)
    token = operators.token(operators.authenticate("nissan-ops", SECRET))
    pool = urllib3.PoolManager(maxsize=MAX_LIVE_STREAMS + 2)
    with _serving(cloud) as url:
        def live(period_s: str = "0.01") -> str:
            issued = pool.request("POST", f"{url}/api/v1/vehicles/{VIN}/live-ticket", headers={"Authorization": f"Bearer {token}"})
            return f"{url}/api/v1/vehicles/{VIN}/live?ticket={json.loads(issued.data)['ticket']}&period_s={period_s}"

        opened = [pool.request("GET", live(), preload_content=False) for _ in range(MAX_LIVE_STREAMS)]
        assert all(r.status == 200 for r in opened)
        refused = pool.request("GET", live(), preload_content=False)
        assert refused.status == 429  # one operator cannot flood the API with streams
        assert pool.request("GET", live("nan")).status == 422
        first = opened[0]
        assert b"event: signals" in first.read(64)
        operators.remove("nissan-ops")  # its rights go: every stream of it ends
        rest = first.read()
        assert rest.rstrip().endswith(b"event: closed\ndata: {}")
        for response in opened:
            response.release_conn()


_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-(10**20), 10**20).map(str),
    st.text(max_size=12),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(["passport", "health", "series"]),
    params=st.dictionaries(
        st.sampled_from(["years", "daily_km", "ambient_c", "hours", "start", "end", "bucket_s", "path"]),
        _NUMBERS, max_size=4,
    ),
    command=st.dictionaries(st.sampled_from(["path", "value", "x"]), st.one_of(_NUMBERS, st.none(), st.booleans()), max_size=3),
)  # fmt: skip
def test_fuzz_no_parameter_or_command_body_gets_a_server_error(
    world: tuple[FleetCloud, TestClient, FakeClock], route: str, params: dict[str, str], command: dict[str, object]
) -> None:
    _, client, _ = world
    token = client.post("/api/v1/token", data={"grant_type": "password", "username": "nissan-ops", "password": SECRET})
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    if route == "series":
        params.setdefault("path", "Vehicle.Speed")
    answer = client.get(f"/api/v1/vehicles/{VIN}/{route}", params=params, headers=headers)
    assert answer.status_code < 500, (route, params, answer.text)
    sent = client.post(f"/api/v1/vehicles/{VIN}/commands", json=command, headers=headers)
    assert sent.status_code < 500, (command, sent.text)
