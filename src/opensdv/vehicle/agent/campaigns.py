"""Data collection campaigns at the edge: evaluated in the car against its broker's updates.

Each campaign keeps a ring buffer per signal it collects (the seconds before a trigger, sampled at
most once per the signal's ``min_interval_ms``); a condition campaign evaluates its compiled
condition whenever a signal it reads changes — on every true evaluation (``always``) or when it
turns true (``rising-edge``), at most once per ``min_interval_ms`` — and then collects for
``post_trigger_s`` more; a time campaign sends what it sampled every ``period_ms``. Finished
captures go to ``emit`` as ``CampaignRecord``s (the uplink's store-and-forward spool takes them,
higher priority first). Time is the caller's: ``update(points, now)`` and ``tick(now)``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opensdv.clock import Clock
from opensdv.link.fleet import CampaignTag, Sample
from opensdv.model._files import CatalogError, read_document
from opensdv.model.campaigns import (
    Campaign,
    CompiledCampaign,
    ConditionScheme,
    SpoolLimits,
    TimeScheme,
    compile_campaign,
    parse_campaign,
)
from opensdv.model.query import previous_key
from opensdv.model.vss import VssCatalog
from opensdv.programs import cancel_and_wait
from opensdv.vehicle.agent.spool import LaneLimit
from opensdv.vehicle.broker import Broker, Datapoint, Permissions

__all__ = [
    "MAX_SAMPLES_PER_SIGNAL",
    "CampaignEngine",
    "CampaignRecord",
    "feed_campaigns",
    "load_campaign_files",
    "record_sender",
]

MAX_SAMPLES_PER_SIGNAL = 20_000  # a ring never holds more, whatever the window and the rate


@dataclass(frozen=True)
class CampaignRecord:
    """What one trigger (or one period) collected: per signal, its samples in time order."""

    campaign: str
    version: int
    priority: int
    trigger_time: float | None  # None for a time campaign
    samples: dict[str, list[tuple[float, Any]]]
    spool: SpoolLimits = field(default_factory=SpoolLimits)


@dataclass
class _Capture:
    trigger_time: float
    until: float
    samples: dict[str, list[tuple[float, Any]]]


@dataclass
class _Running:
    compiled: CompiledCampaign
    rings: dict[str, deque[tuple[float, Any]]]
    last_sample: dict[str, float] = field(default_factory=dict)
    held: bool = False  # the condition's last value (unknown counts as not holding)
    last_trigger: float | None = None
    next_period: float | None = None
    captures: list[_Capture] = field(default_factory=list)

    @property
    def campaign(self) -> Campaign:
        return self.compiled.campaign


class CampaignEngine:
    """The car's running campaigns: fed the broker's updates and the time, it emits what they collect."""

    def __init__(self, catalog: VssCatalog, emit: Callable[[CampaignRecord], None]) -> None:
        self.catalog = catalog
        self.emit = emit
        self._running: dict[str, _Running] = {}
        self._current: dict[str, Any] = {}
        self._sampling: dict[str, list[_Running]] = {}  # path -> the campaigns that collect it
        self._evaluating: dict[str, list[_Running]] = {}  # path -> the conditions that read it
        self._next_deadline = float("inf")  # the earliest capture end or period: tick() waits for it

    # ------------------------------------------------------------------------------ lifecycle

    def install(self, campaign: Campaign) -> None:
        """Start (or replace with a newer version) a campaign; ``CatalogError`` if it does not
        compile against this car's catalog (the car reports it rejected, with the reason)."""
        held = self._running.get(campaign.id)
        if held is not None and held.campaign.version >= campaign.version:
            return
        compiled = compile_campaign(campaign, self.catalog)
        self._running[campaign.id] = _Running(compiled, {s.path: deque() for s in campaign.signals})
        self._index()
        if isinstance(campaign.scheme, TimeScheme):
            self._next_deadline = float("-inf")  # its first tick sets its period

    def check(self, campaign: Campaign) -> None:
        """``CatalogError`` if the campaign would not compile against this car's catalog."""
        compile_campaign(campaign, self.catalog)

    @property
    def next_deadline(self) -> float:
        """When ``tick`` has something to do next (a capture's end, a period), at the latest."""
        return self._next_deadline

    def remove(self, campaign_id: str) -> None:
        self._running.pop(campaign_id, None)
        self._index()

    def _index(self) -> None:
        self._sampling, self._evaluating = {}, {}
        for running in self._running.values():
            for signal in running.campaign.signals:
                self._sampling.setdefault(signal.path, []).append(running)
            for path in running.compiled.condition.paths if running.compiled.condition else ():
                self._evaluating.setdefault(path, []).append(running)

    @property
    def campaigns(self) -> list[Campaign]:
        return [r.campaign for r in self._running.values()]

    @property
    def paths(self) -> list[str]:
        """Every signal the running campaigns watch: what to subscribe to."""
        return list(dict.fromkeys(p for r in self._running.values() for p in r.compiled.paths))

    def buffered_samples(self) -> int:
        """Samples held in ring buffers and open captures, all campaigns together (memory)."""
        rings = sum(len(ring) for r in self._running.values() for ring in r.rings.values())
        open_ = sum(len(s) for r in self._running.values() for c in r.captures for s in c.samples.values())
        return rings + open_

    # ------------------------------------------------------------------------------- updates

    def update(self, points: Mapping[str, Datapoint | None], now: float) -> None:
        """New values from the broker (``None``: no value yet)."""
        if now >= self._next_deadline:
            self.tick(now)  # captures whose window passed end before these samples
        touched: dict[int, _Running] = {}
        for path, point in points.items():
            if point is None:
                continue
            if path in self._current and self._current[path] != point.value:
                self._current[previous_key(path)] = self._current[path]  # for previous(path)
            self._current[path] = point.value
            for running in self._sampling.get(path, ()):
                self._sample(running, path, point, now)
            for running in self._evaluating.get(path, ()):
                touched[id(running)] = running
        for running in touched.values():
            assert isinstance(running.campaign.scheme, ConditionScheme)
            self._evaluate(running, running.campaign.scheme, now)
        if now >= self._next_deadline:
            self.tick(now)  # a capture with no window after its trigger ends now

    def _sample(self, running: _Running, path: str, point: Datapoint, now: float) -> None:
        signal = next(s for s in running.campaign.signals if s.path == path)
        last = running.last_sample.get(path)
        if last is not None and (point.timestamp - last) * 1000 < signal.min_interval_ms:
            return
        running.last_sample[path] = point.timestamp
        sample = (point.timestamp, point.value)
        for capture in running.captures:
            if point.timestamp <= capture.until:
                capture.samples[path].append(sample)
        ring = running.rings[path]
        ring.append(sample)
        scheme = running.campaign.scheme
        keep_s = scheme.pre_trigger_s if isinstance(scheme, ConditionScheme) else None
        # keeps the window, and the sample before it: the value in force when the window opens
        while len(ring) > MAX_SAMPLES_PER_SIGNAL or (keep_s is not None and len(ring) > 1 and ring[1][0] < now - keep_s):
            ring.popleft()

    def _evaluate(self, running: _Running, scheme: ConditionScheme, now: float) -> None:
        assert running.compiled.condition is not None
        holds = running.compiled.condition.holds(self._current) is True
        fire = holds and (scheme.trigger == "always" or not running.held)
        running.held = holds
        if not fire:
            return
        if running.last_trigger is not None and (now - running.last_trigger) * 1000 < scheme.min_interval_ms:
            return
        running.last_trigger = now
        before = {path: _window(ring, now - scheme.pre_trigger_s) for path, ring in running.rings.items()}
        running.captures.append(_Capture(now, now + scheme.post_trigger_s, before))
        self._next_deadline = min(self._next_deadline, now + scheme.post_trigger_s)

    def tick(self, now: float) -> None:
        """Finish the captures whose post-trigger window has passed, and send due periods."""
        deadline = float("inf")
        for running in self._running.values():
            campaign = running.campaign
            done = [c for c in running.captures if now >= c.until]
            for capture in done:
                running.captures.remove(capture)
                self.emit(CampaignRecord(campaign.id, campaign.version, campaign.priority, capture.trigger_time, capture.samples, campaign.spool))
            if isinstance(campaign.scheme, TimeScheme):
                period = campaign.scheme.period_ms / 1000
                if running.next_period is None:
                    running.next_period = now + period
                elif now >= running.next_period:
                    samples = {path: list(ring) for path, ring in running.rings.items()}
                    for ring in running.rings.values():
                        ring.clear()
                    running.next_period = max(running.next_period + period, now)
                    self.emit(CampaignRecord(campaign.id, campaign.version, campaign.priority, None, samples, campaign.spool))
                deadline = min(deadline, running.next_period)
            for capture in running.captures:
                deadline = min(deadline, capture.until)
        self._next_deadline = deadline


def _window(ring: deque[tuple[float, Any]], start: float) -> list[tuple[float, Any]]:
    """The samples from ``start`` on, led by the one in force at ``start`` (a signal that has not
    changed for a while still has its value in the window)."""
    samples = list(ring)
    first = next((i for i, (ts, _) in enumerate(samples) if ts >= start), len(samples))
    return samples[max(first - 1, 0):]


class _Uplink(Protocol):
    def record_campaign(self, samples: list[Sample], tag: CampaignTag, priority: int, limit: LaneLimit) -> int | None: ...
    def event(self, kind: str, detail: str = "") -> None: ...


def load_campaign_files(paths: Iterable[Path], catalog: VssCatalog) -> list[Campaign]:
    """Campaigns from YAML or JSON files, each checked against ``catalog`` (``CatalogError`` names
    the file, the field and the position)."""
    campaigns = []
    for path in paths:
        campaign = parse_campaign(read_document(path), str(path))
        try:
            compile_campaign(campaign, catalog)
        except CatalogError as exc:
            raise CatalogError(path, f"{exc.source}: {exc.where}", exc.problem) from None
        campaigns.append(campaign)
    return campaigns


async def feed_campaigns(
    broker: Broker,
    engine: CampaignEngine,
    clock: Clock,
    changed: asyncio.Event | None = None,
    refresh: Callable[[float], None] | None = None,
    tick_s: float = 1.0,
) -> None:
    """Run ``engine`` on the broker's updates of every signal its campaigns watch, subscribing
    again whenever ``changed`` is set (campaigns came or went); between updates, ``tick`` it when a
    capture ends or a period is due, and ``refresh`` (start and expiry times) at least every ``tick_s``."""
    changed = changed or asyncio.Event()
    while True:
        changed.clear()
        paths = engine.paths
        subscription = None
        reader = None
        if paths:
            reads = Permissions.from_scope(" ".join(f"read:{path}" for path in paths), subject="campaigns")
            subscription = broker.subscribe(paths, reads, ignore_unknown=True)
            reader = asyncio.create_task(_read(subscription, engine, clock))
        try:
            while not changed.is_set():
                wait = min(tick_s, max(engine.next_deadline - clock.time(), 0.0))
                try:
                    async with clock.timeout(wait):
                        await changed.wait()
                except TimeoutError:
                    now = clock.time()
                    engine.tick(now)
                    if refresh is not None:
                        refresh(now)
        finally:
            if reader is not None:
                await cancel_and_wait([reader])
            if subscription is not None:
                subscription.close()


async def _read(subscription: AsyncIterator[Mapping[str, Datapoint | None]], engine: CampaignEngine, clock: Clock) -> None:
    async for update in subscription:
        engine.update(update, clock.time())


def record_sender(uplink: _Uplink) -> Callable[[CampaignRecord], None]:
    """An ``emit`` for ``CampaignEngine``: each record one batch in the campaign's own lane of the
    uplink's store-and-forward spool (its priority, its limits while offline), tagged with the
    campaign, and an event."""

    def send(record: CampaignRecord) -> None:
        samples = [
            Sample(path=path, value=value, ts=ts) for path, series in record.samples.items() for ts, value in series
            if value is not None
        ]  # fmt: skip
        kept = True
        if samples:
            tag = CampaignTag(id=record.campaign, version=record.version, trigger=record.trigger_time)
            limit = LaneLimit(record.spool.max_records, record.spool.drop)
            kept = uplink.record_campaign(sorted(samples, key=lambda s: s.ts), tag, record.priority, limit) is not None
        when = "every period" if record.trigger_time is None else f"triggered at {record.trigger_time:.3f}"
        detail = f"{record.campaign} v{record.version} {when}: {len(samples)} samples"
        uplink.event("campaign-trigger", detail if kept else detail + " (not kept: the campaign's spool is full)")

    return send
