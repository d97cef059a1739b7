"""Velocitas apps in the app runtime: the SDK from PyPI in an environment of its own, talking
``sdv.databroker.v1`` to a listener scoped to the app's manifest, through the safety guard.

Velocitas's own seat-adjuster example runs unchanged from the wheel (only the vehicle model, which
Velocitas generates from VSS, is ours); a second app subscribes with a WHERE condition.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiomqtt
import pytest

from opensdv.model.vehicles import load_catalog
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.apps.environments import AppEnvironments
from opensdv.vehicle.apps.examples import EXAMPLES
from opensdv.vehicle.apps.manifest import load_manifest
from opensdv.vehicle.apps.runtime import AppRuntime
from opensdv.vehicle.broker import ALLOW_ALL, Broker, generate_key_pair, vehicle_source
from opensdv.vehicle.safety import ActuationGuard, load_policy
from tests.conftest import free_port, need_mosquitto
from tests.fleet_identities import run_mosquitto

APPS = Path(__file__).parent / "velocitas"  # speed-watch; the seat-adjuster ships as an example
SEAT_ADJUSTER = EXAMPLES / "seat-adjuster"
SEAT = "Vehicle.Cabin.Seat.Row1.DriverSide.Position"
SPEED = "Vehicle.Speed"
POLICY = f"""
default: deny
signals:
  {SPEED}: {{max_age_s: 600.0, max_rate_per_s: 40.0}}
actuators:
  - paths: [{SEAT}]
    range: {{min: 0, max: 800, out_of_range: reject}}
    when: [{{signal: {SPEED}, below: 1}}]
"""


def test_manifests_of_velocitas_apps() -> None:
    seat = load_manifest(SEAT_ADJUSTER)
    assert seat.kind == "velocitas" and seat.script == "main.py"
    assert seat.environment is not None and seat.environment.requirements == ["velocitas-sdk==0.15.7"]
    assert seat.scope() == f"read:{SPEED} read:{SEAT} actuate:{SEAT}"


async def _request(mqtt: aiomqtt.Client, replies: asyncio.Queue[dict[str, object]], position: int, number: int) -> dict[str, object]:
    """Ask the seat-adjuster over MQTT; ask again until it answers (its MQTT subscription may still be on its way)."""
    request = json.dumps({"requestId": number, "position": position})
    for _ in range(60):
        await mqtt.publish("seatadjuster/setPosition/request", request)
        try:
            reply = await asyncio.wait_for(replies.get(), 2.0)
        except TimeoutError:
            continue
        if reply["requestId"] == number:
            return reply
    raise AssertionError(f"the seat-adjuster never answered request {number}")


async def test_velocitas_apps_run_against_the_broker_through_the_guard(tmp_path: Path) -> None:
    need_mosquitto()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    # the platform's rule for seats, with a speed reading that stays fresh while pip builds the environment
    broker = Broker(load_default_vss(), guard=ActuationGuard(load_policy(policy), time.time))
    broker.publish({SPEED: 0.0}, vehicle_source())
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")  # the in-car bus of this test only
    runtime = AppRuntime(
        load_catalog().vehicle("nissan-leaf-40"), "unused:0", generate_key_pair("ES256")[0], tmp_path / "logs",
        separate_users=False, broker=broker, environments=AppEnvironments(tmp_path / "environments"),
        mqtt_address=f"mqtt://127.0.0.1:{port}",
    )  # fmt: skip
    async with run_mosquitto(config), aiomqtt.Client("127.0.0.1", port) as mqtt:
        await mqtt.subscribe("seatadjuster/setPosition/response")
        await mqtt.subscribe("speedwatch/fast")
        replies: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        fast: asyncio.Queue[dict[str, object]] = asyncio.Queue()

        async def listen() -> None:
            async for message in mqtt.messages:
                assert isinstance(message.payload, bytes)
                payload = json.loads(message.payload)
                await (fast if message.topic.matches("speedwatch/fast") else replies).put(payload)

        listener = asyncio.create_task(listen())
        try:
            for name, directory in (("seat-adjuster", SEAT_ADJUSTER), ("speed-watch", APPS / "speed-watch")):
                status = await runtime.start(directory)
                log = runtime.log_file(name).read_text() if runtime.log_file(name).exists() else ""
                assert status.state == "running", f"{status.detail}\n{log}"
            # both apps subscribed to the broker (the seat position, the speed WHERE > 80)
            await asyncio.wait_for(broker.changed.wait_until(lambda: broker.statistics().subscriptions >= 2), 60)

            allowed = await _request(mqtt, replies, 300, 1)
            assert allowed["result"] == {"status": 0, "message": "Set Seat position to: 300"}
            assert broker.get_target(SEAT, ALLOW_ALL).value == 300  # type: ignore[union-attr]
            refused = await _request(mqtt, replies, 900, 2)  # above the policy's 800 mm: the guard says no
            assert refused["result"]["status"] == 1  # type: ignore[index]
            assert broker.get_target(SEAT, ALLOW_ALL).value == 300  # type: ignore[union-attr]

            broker.publish({SPEED: 50.0}, vehicle_source())  # not above 80: the condition holds it back
            broker.publish({SPEED: 95.0}, vehicle_source())
            assert await asyncio.wait_for(fast.get(), 30) == {"speed": 95.0}
            assert fast.empty()
        finally:
            listener.cancel()
            await runtime.stop_all()
    assert all(status.state == "stopped" for status in runtime.statuses())
    assert broker.statistics().subscriptions == 0  # their listeners are closed with them


def test_a_loose_requirement_or_an_escaping_script_is_refused(tmp_path: Path) -> None:
    from opensdv.model._files import CatalogError

    for change, problem in (
        ('requirements = ["velocitas-sdk>=0.15"]', "pin each requirement"),
        ('requirements = ["velocitas-sdk @ https://example.com/x.whl"]', "pin each requirement"),
    ):
        app = tmp_path / "app"
        app.mkdir(exist_ok=True)
        (app / "app.toml").write_text(
            (SEAT_ADJUSTER / "app.toml").read_text().replace('requirements = ["velocitas-sdk==0.15.7"]', change)
        )
        with pytest.raises(CatalogError, match=problem):
            load_manifest(app)
    (app / "app.toml").write_text((SEAT_ADJUSTER / "app.toml").read_text().replace('"main.py"', '"../main.py"'))
    with pytest.raises(CatalogError, match="relative path to a .py file inside the app"):
        load_manifest(app)


async def test_runtimes_sharing_an_environment_directory_build_it_once(tmp_path: Path) -> None:
    """Four cars' runtimes on one cache: one build (the others wait on its lock), one environment."""
    built: list[str] = []

    class Counting(AppEnvironments):
        async def _build(self, requirements: list[str], target: Path) -> None:
            built.append(target.name)
            target.mkdir(parents=True)
            (target / "opensdv-environment.json").write_text("{}")

    cache = tmp_path / "environments"
    pythons = await asyncio.gather(*(Counting(cache).python(["velocitas-sdk==0.15.7"]) for _ in range(4)))
    assert len(built) == 1 and len(set(pythons)) == 1
