"""Feeders on real buses into a real broker: one app, three brands; replay; the CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import can
import pytest
from kuksa_client.grpc import Datapoint
from kuksa_client.grpc.aio import VSSClient
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.model import load_catalog
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.broker import ALLOW_ALL, Broker
from opensdv.vehicle.can import Adapter, BrokerSink, Feeder, GrpcSink, bus_frames, load_mapping, log_frames
from tests.can_frames import consistent_frames
from tests.vehicle.broker.conftest import start_broker

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
CATALOG = load_default_vss()


def adapter_for(vehicle_id: str) -> Adapter:
    mapping = load_catalog().vehicle(vehicle_id).definition.can_adapter
    assert mapping is not None
    return Adapter(load_mapping(mapping), CATALOG)


async def charge_app(client: VSSClient, send: Any) -> dict[str, Any]:
    """A small app: watch speed and state of charge, then ask for an 80 % charge limit."""
    seen: dict[str, Any] = {}
    updates = client.subscribe_current_values([SPEED, SOC])
    await updates.__anext__()  # the initial (empty) values
    send({SPEED: 42.0, SOC: 77.5})
    while len(seen) < 2:
        update = await asyncio.wait_for(updates.__anext__(), timeout=10)
        seen.update(
            {
                path: round(point.value, 2)
                for path, point in update.items()
                if point is not None and point.value is not None
            }
        )
    await updates.aclose()
    await client.set_target_values({LIMIT: Datapoint(80)})
    return seen


@pytest.mark.parametrize("vehicle", ["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"])
async def test_one_app_behaves_the_same_on_three_brands(vehicle: str) -> None:
    adapter = adapter_for(vehicle)
    channel = f"test-{uuid.uuid4().hex}"
    car = can.Bus(interface="virtual", channel=channel)  # the vehicle's ECUs
    gateway = can.Bus(interface="virtual", channel=channel)  # where the feeder listens
    handle = start_broker()
    feeder = Feeder(adapter)
    task = asyncio.create_task(feeder.run(bus_frames(gateway), GrpcSink(handle.target, CATALOG), bus=gateway))
    try:
        await asyncio.wait_for(feeder.ready.wait(), timeout=10)

        def send(values: dict[str, Any]) -> None:
            for frame in consistent_frames(adapter, values):
                car.send(frame)

        async with VSSClient("127.0.0.1", handle.port) as client:
            seen = await charge_app(client, send)
        command = await asyncio.get_running_loop().run_in_executor(None, lambda: car.recv(timeout=10))
        assert command is not None
        decoded = adapter.messages["BMS_CHARGE_CMD"].decode(bytes(command.data))
        assert seen == {SPEED: 42.0, SOC: 77.5}
        assert decoded["CHARGE_LIMIT_REQ"] == 80
        assert feeder.stats.actuation_frames == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        car.shutdown()
        gateway.shutdown()
        handle.stop()


def _drive(adapter: Adapter) -> list[can.Message]:
    """A short recorded drive: speeds and charge states with timestamps 10 ms apart."""
    frames = []
    for step in range(50):
        for frame in consistent_frames(
            adapter, {SPEED: step * 1.5, SOC: 90 - step * 0.1, "Vehicle.Powertrain.ElectricMotor.Speed": step * 120.0}
        ):
            frame.timestamp = 1_700_000_000 + step * 0.01
            frames.append(frame)
    return frames


async def test_replaying_a_candump_log_gives_identical_values(tmp_path: Path) -> None:
    adapter = adapter_for("honda-e-advance")
    frames = _drive(adapter)
    log = tmp_path / "drive.log"
    with can.Logger(str(log)) as writer:  # candump -L format
        for frame in frames:
            writer.on_message_received(frame)
    live, replayed = Broker(CATALOG), Broker(CATALOG)

    async def source() -> Any:
        for frame in frames:
            yield frame

    await Feeder(adapter, clock=lambda: 0.0).run(source(), BrokerSink(live))
    stats = await Feeder(adapter, clock=lambda: 0.0).run(log_frames(log, speed=0), BrokerSink(replayed))
    assert stats.frames == len(frames)
    for path in (SPEED, SOC, "Vehicle.Powertrain.ElectricMotor.Speed"):
        assert replayed.get(path, ALLOW_ALL).value == live.get(path, ALLOW_ALL).value  # type: ignore[union-attr]


def test_feed_and_stats_commands(tmp_path: Path) -> None:
    adapter = adapter_for("honda-e-advance")
    log = tmp_path / "drive.asc"
    with can.Logger(str(log)) as writer:
        for frame in _drive(adapter):
            writer.on_message_received(frame)
        writer.on_message_received(
            can.Message(arbitration_id=0x7AB, is_extended_id=False, data=bytes(8), timestamp=1_700_000_001)
        )
    handle = start_broker()
    stats_file = tmp_path / "stats.json"
    try:
        runner = CliRunner()
        result = runner.invoke(
            app,
            ["can", "feed", "--vehicle", "honda-e-advance", "--bus", f"file:{log}", "--speed", "0",
             "--broker", handle.target, "--stats-file", str(stats_file)],
            catch_exceptions=False,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert handle.call(handle.broker.get, SPEED, ALLOW_ALL).value == pytest.approx(73.5)  # type: ignore[union-attr]
        stats = json.loads(stats_file.read_text())
        assert stats["unknown_ids"] == 1 and stats["frames"] == 201  # 50 steps x 4 messages (wheels with speed), +1
        shown = runner.invoke(app, ["can", "stats", "--file", str(stats_file)], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and "unknown_ids" in shown.output
    finally:
        handle.stop()


def test_map_check_command() -> None:
    result = CliRunner().invoke(app, ["can", "map", "--check"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert result.output.count("ok ") == 6
