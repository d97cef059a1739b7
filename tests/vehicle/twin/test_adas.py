"""The cars' own driver-assistance messages, decoded to VSS: the twin's driver sets the cruise
control on a steady stretch and takes over when braking, the brand's simulated ECUs put it in
ProPILOT / Honda SENSING frames, and the brand adapter reads it back from those bytes."""

from __future__ import annotations

import pytest

from opensdv.model.vehicles import load_catalog
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.can import Adapter, EcuSimulator, load_mapping
from opensdv.vehicle.twin import TwinRuntime
from opensdv.vehicle.twin.driver import CruiseDriver

ACTIVE = "Vehicle.ADAS.CruiseControl.IsActive"
ENABLED = "Vehicle.ADAS.CruiseControl.IsEnabled"
LANES = "Vehicle.ADAS.LaneDepartureDetection.IsEnabled"
SPEED_SET = "Vehicle.ADAS.CruiseControl.SpeedSet"


def test_the_driver_sets_the_cruise_on_a_steady_stretch_and_brakes_out_of_it() -> None:
    driver = CruiseDriver()
    for _ in range(40):  # 4 s steady at 80 km/h: not yet
        driver.step(0.1, 80.0, 0.0)
    assert not driver.active
    for _ in range(11):
        driver.step(0.1, 80.4, 0.1)
    assert driver.active and driver.set_kmh == 80.0
    assert driver.vss_values()[SPEED_SET] == 80.0
    driver.step(0.1, 79.0, -1.0)  # the driver brakes
    assert not driver.active
    driver.step(0.1, 35.0, 0.0)
    assert not driver.active  # below 40 km/h it is not set again


@pytest.mark.parametrize(("vehicle_id", "mapping"), [
    ("nissan-leaf-40", "nissan-leaf-2018"), ("honda-e-advance", "honda-e-advance-2020"),
    ("nissan-sakura", "nissan-sakura-2022"), ("mitsubishi-ek-x-ev", "mitsubishi-ek-x-ev-2022"),
])  # fmt: skip
def test_cruise_engagements_reach_vss_through_the_brands_frames(vehicle_id: str, mapping: str) -> None:
    adapter = Adapter(load_mapping(mapping), load_default_vss())
    twin = TwinRuntime(load_catalog().vehicle(vehicle_id), "hwfet")
    simulator = EcuSimulator(adapter)
    decoded: list[tuple[float, bool]] = []
    seen: dict[str, object] = {}
    first_values: dict[str, object] = {}
    dt = 0.1
    for tick in range(int(765 / dt)):  # the whole highway cycle
        twin.step(dt)
        simulator.update(twin.vss_values())
        for frame in simulator.frames_due(tick * dt):
            result = adapter.decode(frame.arbitration_id, frame.is_extended_id, bytes(frame.data))
            assert result is not None
            seen |= result.values
            if tick * dt < 1.0:
                first_values |= result.values
            if ACTIVE in result.values:
                decoded.append((tick * dt, result.values[ACTIVE]))
    assert seen[ENABLED] is True and seen[LANES] is True
    assert SPEED_SET not in first_values  # before the first set: the DBC's "none set", no value
    assert isinstance(seen[SPEED_SET], float) and seen[SPEED_SET] == pytest.approx(twin.driver.set_kmh, abs=1.0)
    states = [active for _, active in decoded]
    engaged = [t for (t, active), (_, before) in zip(decoded[1:], decoded, strict=False) if active and not before]
    released = [t for (t, active), (_, before) in zip(decoded[1:], decoded, strict=False) if before and not active]
    assert True in states and False in states
    assert engaged and released and engaged[0] < released[0]  # set on a steady stretch, then braked out of
