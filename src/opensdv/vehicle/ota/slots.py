"""A/B slots of one ECU on disk: the new image goes to the inactive slot, the switch is one atomic
write of the slot state, and the old slot stays bootable until the new one has proved itself.

The state file is the bootloader's view. ``install`` writes the image (step ``write``), marks it
pending (``switch``); ``boot`` counts boot attempts and falls back to the old slot after
``max_boot_attempts`` (a boot loop); ``commit`` makes the pending slot the active one after a
health check, ``rollback`` drops it. Every step is safe to lose power after: the state on disk is
always either before or after it, and ``boot`` resolves whatever was left half done.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from opensdv.durable import write_atomically
from opensdv.vehicle.ota.errors import InstallError

__all__ = ["INSTALL_STEPS", "AbSlots", "PowerLossError", "SlotImage", "SlotState"]

Slot = Literal["a", "b"]
INSTALL_STEPS = ("write", "switch", "boot", "health", "commit")


class PowerLossError(Exception):
    """Raised by a test's crash hook to cut an install at one step (the process 'dies')."""


@dataclass(frozen=True)
class SlotImage:
    """What a slot holds, as the image repository described it."""

    filename: str
    length: int
    hashes: dict[str, str]
    release_counter: int = 0
    version: str = ""


@dataclass
class SlotState:
    active: Slot = "a"
    images: dict[str, SlotImage | None] = field(default_factory=lambda: {"a": None, "b": None})
    pending: Slot | None = None
    boot_attempts: int = 0
    last_result: dict[str, Any] | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> SlotState:
        raw = json.loads(data)
        images = {k: SlotImage(**v) if v else None for k, v in raw.pop("images").items()}
        return cls(images=images, **raw)


def _other(slot: Slot) -> Slot:
    return "b" if slot == "a" else "a"


class AbSlots:
    """Two slots and a state file under ``directory``; ``crash`` is called before every step."""

    def __init__(
        self,
        directory: Path,
        factory_image: tuple[SlotImage, bytes],
        max_boot_attempts: int = 3,
        crash: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self.max_boot_attempts = max_boot_attempts
        self.crash = crash or (lambda _step: None)
        self._state_file = directory / "slots.json"
        if not self._state_file.exists():
            directory.mkdir(parents=True, exist_ok=True)
            image, data = factory_image
            write_atomically(self._slot_file("a"), data)
            write_atomically(self._state_file, SlotState(images={"a": image, "b": None}).to_json())
        self.state = SlotState.from_json(self._state_file.read_bytes())

    def _slot_file(self, slot: Slot) -> Path:
        return self.directory / f"slot_{slot}.img"

    def _save(self) -> None:
        write_atomically(self._state_file, self.state.to_json())

    @property
    def active_image(self) -> SlotImage:
        image = self.state.images[self.state.active]
        if image is None:
            raise InstallError(f"{self.directory}: the active slot {self.state.active} is empty", "boot")
        return image

    def read(self, slot: Slot) -> bytes:
        return self._slot_file(slot).read_bytes()

    def install(self, image: SlotImage, data: bytes) -> None:
        """Write ``data`` to the inactive slot, then mark it pending (the atomic switch)."""
        if self.state.pending is not None:
            raise InstallError(f"{self.directory}: slot {self.state.pending} is still pending", "busy")
        target = _other(self.state.active)
        self.crash("write")
        write_atomically(self._slot_file(target), data)
        self.crash("switch")
        self.state.images[target] = image
        self.state.pending, self.state.boot_attempts = target, 0
        self._save()

    def boot(self, boots: Callable[[bytes], bool]) -> Slot:
        """Boot the pending slot if there is one (counting attempts), else the active one.

        ``boots`` says whether an image starts. After ``max_boot_attempts`` failed attempts on the
        pending slot the bootloader gives up on it and boots the old one: no boot loop survives.
        """
        self.crash("boot")
        pending = self.state.pending
        if pending is not None:
            self.state.boot_attempts += 1
            self._save()
            while not boots(self.read(pending)):
                if self.state.boot_attempts >= self.max_boot_attempts:
                    self.rollback("boot", f"slot {pending} failed to boot {self.state.boot_attempts} times")
                    break
                self.state.boot_attempts += 1
                self._save()
            else:
                return pending
        if not boots(self.read(self.state.active)):
            raise InstallError(f"{self.directory}: the active slot {self.state.active} does not boot", "boot")
        return self.state.active

    def commit(self) -> SlotImage:
        """The pending slot proved healthy: it becomes the active one."""
        pending = self.state.pending
        if pending is None:
            raise InstallError(f"{self.directory}: nothing to commit", "commit")
        self.crash("commit")
        self.state.active, self.state.pending, self.state.boot_attempts = pending, None, 0
        image = self.active_image
        self.state.last_result = {"target": image.filename, "success": True, "code": "ok", "detail": ""}
        self._save()
        return image

    def rollback(self, code: str, detail: str) -> None:
        """Forget the pending slot; the active one never stopped being the one that boots."""
        failed = self.state.images[self.state.pending] if self.state.pending else None
        self.state.pending, self.state.boot_attempts = None, 0
        self.state.last_result = {
            "target": failed.filename if failed else "",
            "success": False,
            "code": code,
            "detail": detail,
        }
        self._save()

    def record_failure(self, target: str, code: str, detail: str) -> None:
        """Remember a failure that happened before anything was written (verification, download)."""
        self.state.last_result = {"target": target, "success": False, "code": code, "detail": detail}
        self._save()

    def forget_result(self) -> None:
        if self.state.last_result is not None:
            self.state.last_result = None
            self._save()
