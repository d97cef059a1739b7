"""Broker throughput and latency over loopback, against a bare grpcio relay in the same run.

    python -m bench.broker [--repeats 3] [--seconds 3]

The server (our broker, or the relay) runs in its own process so that it has a core to itself;
the provider and the subscriber share the client process. Measured:

(a) provider-stream publish throughput with one subscriber receiving everything (signals/s):
    ``OpenProviderStream`` messages of 100 signals each, at most ``WINDOW`` messages ahead of the
    subscriber, so nothing is dropped and every signal is counted on arrival;
(b) publish -> subscriber latency (p50/p95/p99) at 1,000 signals/s over 100 signals (one signal
    per message, every millisecond) and at saturation (during (a));
(c) the same bytes through a bare grpcio relay: a stream-unary publish call whose messages the
    server hands to a server-streaming subscribe call untouched (no parsing, no broker logic).

Anchor: kuksa-perf reports 83,935 signals/s and p99 1.2 ms for the Rust databroker (v2, 101 signals).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc import aio
from kuksa.val.v2 import types_pb2 as t
from kuksa.val.v2 import val_pb2 as v
from kuksa.val.v2 import val_pb2_grpc
from rich.console import Console
from rich.table import Table

SIGNALS = 100
WINDOW = 64  # messages the provider may run ahead of the subscriber
console = Console()


# ------------------------------------------------------------------------------- server side


async def _serve_broker() -> None:
    from opensdv.model.vss import load_default_vss
    from opensdv.vehicle.broker import Broker, BrokerServer

    server = BrokerServer(Broker(load_default_vss()), "127.0.0.1:0")
    await server.start()
    gc.freeze()  # as `opensdv broker serve` does: start-up objects leave the collector's work
    print(f"READY {server.port}", flush=True)
    await server.wait_closed()


async def _serve_relay() -> None:
    """No broker logic: publish hands each raw message to every subscriber queue."""
    queues: list[asyncio.Queue[bytes]] = []

    async def publish(requests: AsyncIterator[bytes], context: Any) -> bytes:
        async for message in requests:
            for queue in queues:
                queue.put_nowait(message)
        return b""

    async def subscribe(request: bytes, context: Any) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        queues.append(queue)
        yield b""  # tells the client it is subscribed
        try:
            while True:
                yield await queue.get()
        finally:
            queues.remove(queue)

    server = aio.server()
    handlers = {
        "Publish": grpc.stream_unary_rpc_method_handler(publish),
        "Subscribe": grpc.unary_stream_rpc_method_handler(subscribe),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("bench.Relay", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"READY {port}", flush=True)
    await server.wait_for_termination()


# ------------------------------------------------------------------------------- client side


def _signals() -> list[tuple[int, str, t.Value]]:
    """The first 100 numeric signals of the shipped catalog: (id, path, a valid value)."""
    from opensdv.model.vss import load_default_vss
    from opensdv.vehicle.broker.grpc._convert import v2_value

    chosen = []
    for leaf in load_default_vss():
        if leaf.datatype.is_numeric and not leaf.datatype.is_array:
            low = leaf.min if leaf.min is not None else 0
            value = int(low) if leaf.datatype.is_integer else float(low)
            chosen.append((leaf.id, leaf.path, v2_value(leaf, value)))
    if len(chosen) < SIGNALS:
        raise RuntimeError(f"the catalog has only {len(chosen)} numeric signals")
    return chosen[:SIGNALS]


def _message(seq: int, signals: list[tuple[int, str, t.Value]], now: float) -> v.OpenProviderStreamRequest:
    request = v.PublishValuesRequest(request_id=seq)
    for signal_id, _, value in signals:
        request.data_points[signal_id].value.CopyFrom(value)
    request.data_points[signals[0][0]].timestamp.FromNanoseconds(int(now * 1e9))
    return v.OpenProviderStreamRequest(publish_values_request=request)


@dataclass
class Run:
    signals: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.signals / self.seconds if self.seconds else 0.0


class Target:
    """How the client publishes to and subscribes from one kind of server."""

    def __init__(self, kind: str, port: int) -> None:
        self.kind = kind
        self.channel = aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = val_pb2_grpc.VALStub(self.channel)

    def publish(self, requests: AsyncIterator[v.OpenProviderStreamRequest]) -> Any:
        if self.kind == "broker":
            return self.stub.OpenProviderStream(requests)
        call = self.channel.stream_unary(
            "/bench.Relay/Publish", request_serializer=lambda m: m.SerializeToString()
        )
        return call(requests)

    async def subscribe(self, paths: list[str]) -> AsyncIterator[tuple[int, float]]:
        """Yield (signals in the update, its send timestamp) for each update after the initial one."""
        if self.kind == "broker":
            stream = self.stub.Subscribe(v.SubscribeRequest(signal_paths=paths, buffer_size=1000))
            first = True
            async for response in stream:
                if first:
                    first = False
                    yield -1, 0.0
                    continue
                stamped = [p.timestamp for p in response.entries.values() if p.timestamp.seconds]
                yield len(response.entries), (stamped[0].ToNanoseconds() / 1e9 if stamped else 0.0)
        else:
            call = self.channel.unary_stream("/bench.Relay/Subscribe", response_deserializer=lambda b: b)
            first = True
            async for raw in call(b""):
                if first:
                    first = False
                    yield -1, 0.0
                    continue
                message = v.OpenProviderStreamRequest.FromString(raw)
                points = message.publish_values_request.data_points
                stamped = [p.timestamp for p in points.values() if p.timestamp.seconds]
                yield len(points), (stamped[0].ToNanoseconds() / 1e9 if stamped else 0.0)


async def _throughput(target: Target, signals: list[tuple[int, str, t.Value]], seconds: float) -> Run:
    paths = [p for _, p, _ in signals]
    run = Run()
    sent = received = 0
    progress = asyncio.Condition()
    subscribed = asyncio.Event()
    stop_at = 0.0

    async def consume() -> None:
        nonlocal received
        async for count, stamp in target.subscribe(paths):
            if count < 0:
                subscribed.set()
                continue
            now = time.time()
            received += 1
            run.signals += count
            if stamp:
                run.latencies_ms.append((now - stamp) * 1000)
            async with progress:
                progress.notify_all()

    async def produce() -> AsyncIterator[v.OpenProviderStreamRequest]:
        nonlocal sent
        while time.monotonic() < stop_at:
            async with progress:
                await progress.wait_for(lambda: sent - received < WINDOW)  # noqa: B023  (nonlocal, read live)
            sent += 1
            yield _message(sent, signals, time.time())

    consumer = asyncio.create_task(consume())
    await subscribed.wait()
    started = time.monotonic()
    stop_at = started + seconds
    call = target.publish(produce())
    async with progress:
        await asyncio.wait_for(
            progress.wait_for(lambda: time.monotonic() >= stop_at and received >= sent), timeout=seconds + 30
        )
    run.seconds = time.monotonic() - started
    call.cancel()
    consumer.cancel()
    return run


async def _latency(
    target: Target, signals: list[tuple[int, str, t.Value]], seconds: float, rate: float
) -> Run:
    """One signal per message at ``rate`` messages/s, round-robin over the signals."""
    paths = [p for _, p, _ in signals]
    run = Run()
    subscribed = asyncio.Event()
    total = int(seconds * rate)
    done = asyncio.Event()

    async def consume() -> None:
        async for count, stamp in target.subscribe(paths):
            if count < 0:
                subscribed.set()
            elif stamp:
                run.latencies_ms.append((time.time() - stamp) * 1000)
                run.signals += count
                if run.signals >= total:
                    done.set()

    async def produce() -> AsyncIterator[v.OpenProviderStreamRequest]:
        start = time.monotonic()
        for n in range(total):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield _message(n + 1, [signals[n % len(signals)]], time.time())

    consumer = asyncio.create_task(consume())
    await subscribed.wait()
    started = time.monotonic()
    call = target.publish(produce())
    await asyncio.wait_for(done.wait(), timeout=seconds + 30)
    run.seconds = time.monotonic() - started
    call.cancel()
    consumer.cancel()
    return run


def _start(kind: str) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.broker", "--serve", kind], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY"):
        process.kill()
        raise RuntimeError(f"{kind} server did not start: {line!r}")
    return process, int(line.split()[1])


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def _measure(kind: str, repeats: int, seconds: float) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {
        "rate": [],
        "sat_p50": [],
        "sat_p99": [],
        "p50": [],
        "p95": [],
        "p99": [],
    }
    signals = _signals()
    for _ in range(repeats):
        process, port = _start(kind)
        try:
            target = Target(kind, port)
            burst = await _throughput(target, signals, seconds)
            results["rate"].append(burst.rate)
            results["sat_p50"].append(_percentile(burst.latencies_ms, 50))
            results["sat_p99"].append(_percentile(burst.latencies_ms, 99))
            steady = await _latency(Target(kind, port), signals, seconds, rate=1000)
            for q in (50, 95, 99):
                results[f"p{q}"].append(_percentile(steady.latencies_ms, q))
            await target.channel.close()
        finally:
            process.kill()
            process.wait()
    return results


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.broker", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--serve", choices=["broker", "relay"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve_broker() if args.serve == "broker" else _serve_relay())
        return {}
    medians: dict[str, dict[str, float]] = {}
    with console.status("measuring the broker and the bare relay ..."):
        for kind in ("broker", "relay"):
            raw = asyncio.run(_measure(kind, args.repeats, args.seconds))
            medians[kind] = {key: statistics.median(values) for key, values in raw.items()}
    b, r = medians["broker"], medians["relay"]
    table = Table(
        title=f"Broker over loopback: median of {args.repeats} runs of {args.seconds:g} s, {SIGNALS} signals"
    )
    for column in ("", "signals/s (a)", "p50 ms", "p95 ms", "p99 ms", "saturated p50 ms", "saturated p99 ms"):
        table.add_column(column, justify="right" if column else "left")
    for name, m in (("OpenSDV broker (a)", b), ("bare grpcio relay (c)", r)):
        table.add_row(
            name,
            f"{m['rate']:,.0f}",
            f"{m['p50']:.2f}",
            f"{m['p95']:.2f}",
            f"{m['p99']:.2f}",
            f"{m['sat_p50']:.1f}",
            f"{m['sat_p99']:.1f}",
        )
    table.add_row("(a)/(c)", f"{b['rate'] / r['rate']:.2f}", "", "", "", "", "")
    console.print(table)
    console.print("latency p50/p95/p99 at 1,000 signals/s (one signal per message); saturated = during (a)")
    return medians


if __name__ == "__main__":
    main(sys.argv[1:])
