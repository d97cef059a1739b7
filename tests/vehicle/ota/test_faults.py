"""Faults during install: power loss at every step, a boot loop, a failed health check."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensdv.cloud.ota.director import Assignment
from opensdv.vehicle.ota.slots import INSTALL_STEPS, PowerLossError
from tests.ota_world import installed, make_world

IMAGE = "eaxle/inverter-2.4.0.bin"


def _crash_at(step: str) -> object:
    def crash(current: str) -> None:
        if current == step:
            raise PowerLossError(step)

    return crash


@pytest.mark.parametrize("step", INSTALL_STEPS)
def test_power_loss_at_any_install_step_ends_on_a_working_slot(tmp_path: Path, step: str) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    world.add_image(IMAGE, "2.4.0", 24)
    target, _ = world.backend.images.image(IMAGE)
    world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_FRONT", "KDS-INV-110-400-B", target)])
    dying = world.open(vin, crash=_crash_at(step))

    with pytest.raises(PowerLossError):
        dying.update()

    restarted = world.open(vin)  # a new process: everything it knows comes from disk
    restarted.resume()
    running = installed(restarted, "EAXLE_FRONT")
    assert running in (IMAGE, "factory/KDS-INV-110-400-B-1.0.0.bin")
    restarted.send_manifest()
    assert world.backend.inventory.vehicle(vin).ecu(f"{vin}-EAXLE_FRONT").installed_filename == running  # type: ignore[union-attr]
    # whatever the step, the next cycle finishes the job
    assert restarted.update().status in ("installed", "up-to-date")
    assert installed(restarted, "EAXLE_FRONT") == IMAGE


def test_boot_loop_rolls_back_after_three_attempts_and_the_director_is_told(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("honda-e-advance", 1)
    world.add_image(IMAGE, "2.4.0", 24)
    target, _ = world.backend.images.image(IMAGE)
    attempts: list[int] = []

    def boots(image: bytes) -> bool:
        attempts.append(len(image))
        return image != world.backend.read(
            f"image/targets/eaxle/{target.hashes['sha256']}.inverter-2.4.0.bin"
        )

    primary = world.open(vin, behaviour={"EAXLE_REAR": (boots, lambda _i: True)})
    world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_REAR", "KDS-INV-113-400-R", target)])

    outcome = primary.update()
    primary.send_manifest()

    assert outcome.results == {f"{vin}-EAXLE_REAR": "boot"}
    assert len(attempts) == 3 + 1  # three tries of the new slot, then the old one boots
    assert installed(primary, "EAXLE_REAR").startswith("factory/")
    events = world.backend.inventory.events(vin)
    assert events[-1].kind == "install-failed" and "failed to boot 3 times" in events[-1].detail


def test_failed_health_check_rolls_back(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("mitsubishi-ek-x-ev", 1)
    world.add_image(IMAGE, "2.4.0", 24)
    target, _ = world.backend.images.image(IMAGE)
    primary = world.open(vin, behaviour={"EAXLE_FRONT": (lambda _i: True, lambda _i: False)})
    world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_FRONT", "HMW-INV-047-400-K", target)])

    outcome = primary.update()

    assert outcome.status == "failed" and outcome.results == {f"{vin}-EAXLE_FRONT": "health-check"}
    assert installed(primary, "EAXLE_FRONT").startswith("factory/")
