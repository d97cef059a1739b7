"""The safety guard's only source of the vehicle's state is the brand adapter's feeder; here the
feeder is attacked from the bus: a speed that its redundant measurement contradicts, and
standard-component frames that were corrupted, replayed or forged (AUTOSAR E2E)."""

from __future__ import annotations

from opensdv.model.vss import load_default_vss
from opensdv.vehicle.can import Adapter, Feeder, load_mapping

SPEED = "Vehicle.Speed"
REAR = ["Vehicle.Chassis.Axle.Row2.Wheel.Left.Speed", "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed"]


def test_a_speed_the_wheels_contradict_is_not_reported() -> None:
    adapter = Adapter(load_mapping("nissan-leaf-2018"), load_default_vss())
    feeder = Feeder(adapter, clock=lambda: 0.0)

    def feed(front: float, rear: float, at: float) -> dict[str, object]:
        got: dict[str, object] = {}
        for frame in adapter.encode_signals(dict.fromkeys(REAR, rear)) + adapter.encode_signals({SPEED: front}):
            frame.timestamp = at
            got |= feeder.process(frame)
        return got

    assert feed(50.0, 50.5, at=1.0)[SPEED] == 50.0  # the rear wheels agree
    assert SPEED not in feed(0.0, 50.0, at=2.0)  # "standing still" on the front while the rear turn
    assert feeder.stats.dropped["cross-check"] == 1 and "disagrees with 50" in feeder.stats.last_drop["cross-check"]
    # without a recent redundant measurement the speed is not confirmed either
    late = adapter.encode_signals({SPEED: 30.0})[0]
    late.timestamp = 5.0
    assert SPEED not in feeder.process(late) and "not all seen" in feeder.stats.last_drop["cross-check"]
