"""CAN decoding and feeding, against cantools' ``decode_message`` on the same frames.

    python -m bench.can [--repeats 5] [--seconds 10]

For each demo vehicle a realistic mixed bus is synthesised: every message of the brand DBC (the
mapped ones at the cycle times in the mapping, the others at 100 ms) plus the standard-component
messages at their DBC cycle times, ``--seconds`` of traffic with valid payloads. Measured, median of
``--repeats`` passes over the same frames:

- cantools ``Database.decode_message`` on the frames of mapped messages (the baseline);
- ``Adapter.decode`` (only the mapped signals) on the same frames;
- the whole feeder (decode, map, throttle, publish into the in-process broker) on the whole bus.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from typing import Any

import can
from rich.console import Console
from rich.table import Table

from opensdv.model import load_catalog
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.broker import Broker
from opensdv.vehicle.can import Adapter, BrokerSink, Feeder, load_dbc, load_mapping
from opensdv.vehicle.can._adapter import frame_key

console = Console()
VEHICLES = ["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"]


def _bus(adapter: Adapter, seconds: float, rng: random.Random) -> tuple[list[can.Message], float]:
    """Frames of ``seconds`` of traffic, in time order, and the bus's frame rate."""
    schedule: list[tuple[Any, float]] = []
    for source in adapter.mapping.dbc:
        for message in load_dbc(source).messages:
            cycle = adapter.mapping.cycle_ms.get(message.name) or message.cycle_time or 100
            schedule.append((message, cycle / 1000))
    frames: list[can.Message] = []
    for message, period in schedule:
        phase = rng.random() * period
        count = int(seconds / period)
        for k in range(count):
            payload = {}
            for signal in message.signals:
                bit_low = -(1 << (signal.length - 1)) if signal.is_signed else 0
                bit_high = (1 << (signal.length - 1)) - 1 if signal.is_signed else (1 << signal.length) - 1
                bounds = [
                    (limit - signal.offset) / signal.scale
                    for limit in (signal.minimum, signal.maximum)
                    if limit is not None
                ]
                low, high = (int(min(bounds)), int(max(bounds))) if len(bounds) == 2 else (bit_low, bit_high)
                low, high = min(max(low, bit_low), bit_high), min(max(high, bit_low), bit_high)
                payload[signal.name] = rng.randint(low, high)
            data = message.encode(payload, scaling=False, strict=False)
            frames.append(
                can.Message(
                    timestamp=phase + k * period,
                    arbitration_id=message.frame_id,
                    is_extended_id=message.is_extended_frame,
                    data=data,
                    is_fd=message.length > 8,
                )
            )
    frames.sort(key=lambda f: f.timestamp)
    return frames, sum(1 / period for _, period in schedule)


def _rate(work: Any, frames: list[Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work(frames)
        times.append(time.perf_counter() - start)
    return len(frames) / statistics.median(times)


def _measure(vehicle_id: str, seconds: float, repeats: int) -> dict[str, float]:
    catalog = load_default_vss()
    mapping_id = load_catalog().vehicle(vehicle_id).definition.can_adapter
    adapter = Adapter(load_mapping(str(mapping_id)), catalog)
    frames, bus_rate = _bus(adapter, seconds, random.Random(7))
    mapped_ids = set(adapter.decoders)
    mapped = [
        (f.arbitration_id, f.is_extended_id, bytes(f.data))
        for f in frames
        if (f.arbitration_id, f.is_extended_id) in mapped_ids
    ]
    databases = {}
    for source in adapter.mapping.dbc:
        for message in load_dbc(source).messages:
            databases[message.frame_id] = load_dbc(source)

    def baseline(items: list[tuple[int, bool, bytes]]) -> None:
        for frame_id, _, data in items:
            databases[frame_id].decode_message(frame_id, data)

    decoders = adapter.fast_decoders

    def ours(items: list[tuple[int, bool, bytes]]) -> None:
        for frame_id, extended, data in items:
            decoders[frame_key(frame_id, extended)](data)

    updates = 0

    def feed(items: list[can.Message]) -> None:
        nonlocal updates
        broker = Broker(catalog)

        async def source() -> Any:
            for frame in items:
                yield frame

        stats = asyncio.run(Feeder(adapter).run(source(), BrokerSink(broker)))
        updates = stats.updates

    baseline_rate = _rate(baseline, mapped, repeats)
    ours_rate = _rate(ours, mapped, repeats)
    feed_rate = _rate(feed, frames, repeats)
    return {
        "bus_rate": bus_rate,
        "frames": len(frames),
        "baseline": baseline_rate,
        "ours": ours_rate,
        "feeder": feed_rate,
        "updates_per_s": updates / (len(frames) / feed_rate),
    }


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.can", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    results = {}
    with console.status("decoding ..."):
        for vehicle in VEHICLES:
            results[vehicle] = _measure(vehicle, args.seconds, args.repeats)
    table = Table(
        title=f"CAN: median of {args.repeats} passes over {args.seconds:g} s of synthesised bus traffic"
    )
    for column in (
        "vehicle",
        "bus frames/s",
        "cantools frames/s",
        "mapped-only frames/s",
        "speed-up",
        "feeder frames/s",
        "VSS updates/s",
        "x bus rate",
    ):
        table.add_column(column, justify="left" if column == "vehicle" else "right")
    for vehicle, r in results.items():
        table.add_row(
            vehicle, f"{r['bus_rate']:,.0f}", f"{r['baseline']:,.0f}", f"{r['ours']:,.0f}", f"{r['ours'] / r['baseline']:.1f}x",
            f"{r['feeder']:,.0f}", f"{r['updates_per_s']:,.0f}", f"{r['feeder'] / r['bus_rate']:.0f}x",
        )  # fmt: skip
    console.print(table)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
