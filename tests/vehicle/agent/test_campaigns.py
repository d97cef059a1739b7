"""Data collection campaigns at the edge: the model and its errors, trigger modes, windows before
and after a trigger, sampling limits, time campaigns, and the shipped example on a twin-driven
Leaf's real CAN frames (decoded by its brand adapter)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from opensdv.model import CatalogError
from opensdv.model.campaigns import Campaign, compile_campaign, parse_campaign
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.agent.campaigns import CampaignEngine, CampaignRecord
from opensdv.vehicle.broker import Datapoint

CATALOG = load_default_vss()
SPEED = "Vehicle.Speed"
ACTIVE = "Vehicle.ADAS.CruiseControl.IsActive"


def campaign(**changes: Any) -> Campaign:
    document: dict[str, Any] = {
        "id": "fast", "version": 1, "signals": [{"path": SPEED}],
        "scheme": {"kind": "condition", "expression": f"{SPEED} > 80", "pre_trigger_s": 2, "post_trigger_s": 1},
    }  # fmt: skip
    for key, value in changes.items():
        merge = isinstance(value, dict) and key in document and value.get("kind", "condition") == "condition"
        document[key] = document[key] | value if merge else value
    return parse_campaign(document)


def run(engine: CampaignEngine, speeds: list[float], dt: float = 0.5) -> None:
    for i, speed in enumerate(speeds):
        engine.update({SPEED: Datapoint(speed, i * dt)}, i * dt)


def test_a_rising_edge_sends_the_window_around_it_once() -> None:
    records: list[CampaignRecord] = []
    engine = CampaignEngine(CATALOG, records.append)
    engine.install(campaign())
    run(engine, [70, 75, 78, 82, 85, 90, 88, 86, 84])  # crosses 80 at t=1.5
    (record,) = records
    assert record.trigger_time == 1.5 and record.campaign == "fast"
    times = [t for t, _ in record.samples[SPEED]]
    assert times[0] >= 1.5 - 2 and times[-1] <= 1.5 + 1 + 0.5
    assert [v for _, v in record.samples[SPEED]][:4] == [70, 75, 78, 82]  # the 2 s before, from the ring


def test_always_fires_on_every_true_evaluation_within_the_minimum_interval() -> None:
    records: list[CampaignRecord] = []
    engine = CampaignEngine(CATALOG, records.append)
    scheme = {"trigger": "always", "min_interval_ms": 1000, "pre_trigger_s": 0, "post_trigger_s": 0}
    engine.install(campaign(scheme=scheme))
    run(engine, [85, 86, 87, 88, 89, 90])  # t = 0 .. 2.5, true at each
    assert [r.trigger_time for r in records] == [0.0, 1.0, 2.0]


def test_unknown_values_never_trigger_and_previous_reads_the_value_before_the_change() -> None:
    records: list[CampaignRecord] = []
    engine = CampaignEngine(CATALOG, records.append)
    expression = f"previous({ACTIVE}) == true and {ACTIVE} == false and {SPEED} > 80"
    engine.install(campaign(id="drop", signals=[{"path": SPEED}, {"path": ACTIVE}], scheme={"expression": expression, "post_trigger_s": 0}))
    engine.update({SPEED: Datapoint(90.0, 0.0), ACTIVE: None}, 0.0)
    engine.update({ACTIVE: Datapoint(False, 0.5)}, 0.5)  # never active yet: no disengagement
    engine.update({ACTIVE: Datapoint(True, 1.0)}, 1.0)
    engine.update({SPEED: Datapoint(91.0, 1.5)}, 1.5)
    assert records == []
    engine.update({ACTIVE: Datapoint(False, 2.0)}, 2.0)  # it lets go at 91 km/h
    assert [r.trigger_time for r in records] == [2.0]


def test_per_signal_sampling_and_time_campaigns() -> None:
    records: list[CampaignRecord] = []
    engine = CampaignEngine(CATALOG, records.append)
    engine.install(campaign(id="every", signals=[{"path": SPEED, "min_interval_ms": 1000}], scheme={"kind": "time", "period_ms": 2000}))
    run(engine, [10, 11, 12, 13, 14, 15, 16, 17, 18], dt=0.25)  # 0 .. 2.0 s: the period ends at 2.0
    (record,) = records
    assert record.trigger_time is None and [v for _, v in record.samples[SPEED]] == [10, 14]  # 1 per second
    engine.tick(4.0)
    assert [v for _, v in records[1].samples[SPEED]] == [18]  # the next period's


def test_a_newer_version_replaces_an_older_one_and_an_older_is_ignored() -> None:
    engine = CampaignEngine(CATALOG, lambda _: None)
    engine.install(campaign(version=2))
    engine.install(campaign(version=1, signals=[{"path": ACTIVE}]))
    assert engine.campaigns[0].version == 2 and engine.paths == [SPEED]
    engine.remove("fast")
    assert engine.campaigns == []


@pytest.mark.parametrize(
    ("changes", "field", "problem"),
    [
        ({"signals": [{"path": "Vehicle.Nope"}]}, "signals[0].path", "unknown VSS path 'Vehicle.Nope'"),
        ({"scheme": {"expression": f"{SPEED} > "}}, "scheme.expression", "at character 17"),
        ({"scheme": {"expression": f"{SPEED} + 1"}}, "scheme.expression", "unexpected '+'"),
        ({"scheme": {"expression": f"{SPEED} > 'fast'"}}, "scheme.expression", "cannot compare a number with a string"),
        ({"scheme": {"expression": SPEED}}, "scheme.expression", "must be true or false"),
    ],
)
def test_errors_name_the_campaign_the_field_and_the_position(changes: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(CatalogError) as caught:
        compile_campaign(campaign(**changes), CATALOG)
    assert f"campaign fast: {field}" in str(caught.value) and problem in str(caught.value)


def test_model_rules() -> None:
    with pytest.raises(CatalogError, match="expiry"):
        campaign(start="2026-12-02T00:00:00Z", expiry="2026-12-01T00:00:00Z")
    with pytest.raises(CatalogError, match="named twice"):
        campaign(signals=[{"path": SPEED}, {"path": SPEED}])
    with pytest.raises(CatalogError, match="priority"):
        campaign(priority=12)


@settings(max_examples=150)
@given(st.lists(st.tuples(st.sampled_from([SPEED, ACTIVE]), st.one_of(st.floats(0, 200), st.booleans(), st.none())), max_size=60))
def test_any_update_sequence_keeps_windows_and_order(updates: list[tuple[str, Any]]) -> None:
    records: list[CampaignRecord] = []
    engine = CampaignEngine(CATALOG, records.append)
    engine.install(campaign(signals=[{"path": SPEED}, {"path": ACTIVE}], scheme={"trigger": "always"}))
    for i, (path, value) in enumerate(updates):
        if path == SPEED and isinstance(value, bool):
            continue  # the broker validates types before a campaign sees a value
        if path == ACTIVE and value is not None and not isinstance(value, bool):
            continue
        engine.update({path: None if value is None else Datapoint(value, i * 0.5)}, i * 0.5)
    engine.tick(len(updates) * 0.5 + 10)
    for record in records:
        assert record.trigger_time is not None
        for samples in record.samples.values():
            times = [t for t, _ in samples]
            assert times == sorted(times) and all(t <= record.trigger_time + 1 for t in times)
            # within the window, but for the first: the value in force when the window opened
            assert all(record.trigger_time - 2 <= t for t in times[1:])


def test_a_signal_unchanged_for_longer_than_the_window_still_has_its_value_in_it() -> None:
    records: list[CampaignRecord] = []
    engine = CampaignEngine(CATALOG, records.append)
    engine.install(campaign(signals=[{"path": SPEED}, {"path": ACTIVE}], scheme={"expression": f"{SPEED} > 80"}))
    engine.update({ACTIVE: Datapoint(True, 0.0)}, 0.0)  # set once, long before
    engine.update({SPEED: Datapoint(70.0, 9.0)}, 9.0)
    engine.update({SPEED: Datapoint(90.0, 10.0)}, 10.0)
    engine.tick(12.0)
    (record,) = records
    assert record.samples[ACTIVE] == [(0.0, True)] and record.samples[SPEED] == [(9.0, 70.0), (10.0, 90.0)]


def test_the_example_campaign_on_a_leafs_real_frames() -> None:
    """The shipped "cruise-control disengagements above 80 km/h": a Leaf twin on the highway cycle,
    its frames decoded by the Leaf's adapter, the engine fed what the feeder would publish."""
    from opensdv.model.vehicles import load_catalog
    from opensdv.vehicle.can import Adapter, EcuSimulator, load_mapping
    from opensdv.vehicle.twin import TwinRuntime

    text = (resources.files("opensdv.model") / "data" / "campaigns" / "cruise-disengagements.yaml").read_text()
    example = parse_campaign(yaml.safe_load(text))
    records: list[CampaignRecord] = []
    engine = CampaignEngine(CATALOG, records.append)
    engine.install(example)
    adapter = Adapter(load_mapping("nissan-leaf-2018"), CATALOG)
    twin = TwinRuntime(load_catalog().vehicle("nissan-leaf-40"), "hwfet")
    simulator = EcuSimulator(adapter)
    disengaged_fast = []
    dt = 0.1
    for tick in range(int(765 / dt)):
        now = tick * dt
        was = twin.driver.active
        twin.step(dt)
        if was and not twin.driver.active and twin.last["speed_mps"] * 3.6 > 80:
            disengaged_fast.append(now)
        simulator.update(twin.vss_values())
        for frame in simulator.frames_due(now):
            decoded = adapter.decode(frame.arbitration_id, frame.is_extended_id, bytes(frame.data))
            assert decoded is not None
            engine.update({path: Datapoint(value, now) for path, value in decoded.values.items() if path in engine.paths}, now)
    engine.tick(765 + 10)
    assert disengaged_fast, "the highway cycle brakes out of the cruise above 80 km/h"
    assert records, "the campaign saw it"
    for record in records:
        assert any(abs(record.trigger_time - t) < 0.5 for t in disengaged_fast)  # type: ignore[operator]
        speeds = record.samples["Vehicle.Speed"]
        assert speeds[0][0] <= record.trigger_time - 9  # type: ignore[operator]  # ~10 s before
        assert speeds[-1][0] >= record.trigger_time + 4  # type: ignore[operator]  # ~5 s after
        assert any(v is True for _, v in record.samples[ACTIVE]) and record.samples[ACTIVE][-1][1] is False


async def test_the_car_feeds_its_campaigns_from_the_broker_and_sends_what_they_collect(tmp_path: Any) -> None:
    """In the vehicle process: campaign files checked at start, the engine on a broker subscription,
    each capture out through the uplink (its samples as telemetry, a campaign-trigger event)."""
    import asyncio

    from opensdv.clock import FakeClock
    from opensdv.vehicle.agent.campaigns import feed_campaigns, load_campaign_files, record_sender
    from opensdv.vehicle.broker import ALLOW_ALL, Broker

    class Uplink:
        def __init__(self) -> None:
            self.samples: list[Any] = []
            self.events: list[tuple[str, str]] = []
            self.tags: list[Any] = []
            self.sent = asyncio.Event()

        def record_campaign(self, samples: list[Any], tag: Any, priority: int, limit: Any) -> int:
            self.samples += samples
            self.tags.append((tag, priority, limit))
            return len(self.samples)

        def event(self, kind: str, detail: str = "") -> None:
            self.events.append((kind, detail))
            self.sent.set()

    file = tmp_path / "fast.yaml"
    file.write_text(yaml.safe_dump(campaign(scheme={"post_trigger_s": 0}).model_dump(mode="json", exclude_none=True)))
    (loaded,) = load_campaign_files([file], CATALOG)
    clock = FakeClock(1000.0)
    broker = Broker(CATALOG, clock=clock.time)
    uplink = Uplink()
    engine = CampaignEngine(CATALOG, record_sender(uplink))
    engine.install(loaded)
    feed = asyncio.create_task(feed_campaigns(broker, engine, clock))
    await broker.changed.wait_until(lambda: broker.statistics().subscriptions == 1)
    broker.publish({SPEED: 70.0}, ALLOW_ALL)
    broker.publish({SPEED: 90.0}, ALLOW_ALL)
    await asyncio.wait_for(uplink.sent.wait(), 10)
    feed.cancel()
    await asyncio.gather(feed, return_exceptions=True)
    assert [(s.path, s.value) for s in uplink.samples] == [(SPEED, 70.0), (SPEED, 90.0)]
    ((tag, priority, limit),) = uplink.tags  # in the campaign's own lane of the spool, tagged
    assert (tag.id, tag.version, tag.trigger, priority) == ("fast", 1, 1000.0, 5)
    assert (limit.max_batches, limit.drop) == (1000, "oldest")
    (kind, detail), = uplink.events
    assert kind == "campaign-trigger" and detail.startswith("fast v1 triggered at 1000.000: 2 samples")
    assert broker.statistics().subscriptions == 0

    bad = tmp_path / "bad.yaml"
    bad.write_text(file.read_text().replace(SPEED, "Vehicle.Nope"))
    with pytest.raises(CatalogError) as caught:
        load_campaign_files([bad], CATALOG)
    assert str(bad) in str(caught.value) and "campaign fast: signals[0].path" in str(caught.value)
