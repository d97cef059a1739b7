"""Who may do what: KUKSA's scope strings turned into a value every broker call must carry.

A scope is ``ACTION[:SUBACTION][:PATH]``, space-separated in the token's ``scope`` claim.
Actions: ``read``; ``actuate`` (includes read); ``provide`` (includes read and both sub-actions);
``provide:data`` and ``provide:actuation`` (each includes read); ``create``. A path names a leaf,
every leaf below a branch, or a pattern where ``*`` matches one path element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import StrEnum

from opensdv.model.vss import path_pattern
from opensdv.vehicle.broker._errors import InvalidArgument, PermissionDenied

__all__ = ["ALLOW_ALL", "Action", "Permissions", "vehicle_source"]


class Action(StrEnum):
    READ = "read"
    ACTUATE = "actuate"
    PROVIDE_DATA = "provide:data"
    PROVIDE_ACTUATION = "provide:actuation"
    CREATE = "create"


_IMPLIED: dict[str, tuple[Action, ...]] = {
    "read": (Action.READ,),
    "actuate": (Action.ACTUATE, Action.READ),
    "provide": (Action.PROVIDE_DATA, Action.PROVIDE_ACTUATION, Action.READ),
    "provide:data": (Action.PROVIDE_DATA, Action.READ),
    "provide:actuation": (Action.PROVIDE_ACTUATION, Action.READ),
    "create": (Action.CREATE, Action.READ),
}
_PATH = re.compile(r"[A-Za-z0-9_*]+(\.[A-Za-z0-9_*]+)*")


@dataclass(frozen=True)
class Permissions:
    """What one token allows. ``None`` as a pattern means every path."""

    grants: frozenset[tuple[Action, str | None]]
    subject: str = ""
    vehicle_source: bool = False
    """A source of the vehicle's state the safety guard believes (the brand adapter's feeder, in
    the vehicle process). No token can carry it: a remote provider never moves the guard's view."""
    _compiled: dict[tuple[Action, str | None], re.Pattern[str] | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _decided: dict[tuple[Action, str], bool] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_scope(cls, scope: str, subject: str = "") -> Permissions:
        """Parse a ``scope`` claim; an unknown action or a malformed path is an error, not ignored."""
        grants: set[tuple[Action, str | None]] = set()
        for item in scope.split():
            head, _, rest = item.partition(":")
            key, path = head, rest or None
            if head == "provide" and rest.split(":", 1)[0] in ("data", "actuation"):
                sub, _, path_part = rest.partition(":")
                key, path = f"provide:{sub}", path_part or None
            if key not in _IMPLIED:
                raise InvalidArgument(
                    f"unknown scope action {head!r} in {item!r} (known: read, actuate, provide, create)"
                )
            if path is not None and not _PATH.fullmatch(path):
                raise InvalidArgument(f"malformed path {path!r} in scope {item!r}")
            grants.update((action, path) for action in _IMPLIED[key])
        return cls(frozenset(grants), subject)

    def allows(self, action: Action, path: str) -> bool:
        if (action, None) in self.grants:
            return True
        decided = self._decided.get((action, path))
        if decided is None:
            decided = any(self._matches(grant, path) for grant in self.grants if grant[0] is action)
            self._decided[(action, path)] = decided
        return decided

    def _matches(self, grant: tuple[Action, str | None], path: str) -> bool:
        if grant[1] is None:
            return True
        if grant not in self._compiled:
            self._compiled[grant] = path_pattern(grant[1])
        regex = self._compiled[grant]
        return regex is not None and regex.fullmatch(path) is not None

    def require(self, action: Action, path: str) -> None:
        if not self.allows(action, path):
            who = f" ({self.subject})" if self.subject else ""
            raise PermissionDenied(f"{action} access to {path} is not in the token's scope{who}")


ALLOW_ALL = Permissions(frozenset((action, None) for action in Action), "in-process")


def vehicle_source(scope: str = "provide", subject: str = "can-feeder") -> Permissions:
    """Permissions of a source of the vehicle's state that the safety guard believes: made in the
    vehicle process for the brand adapter's feeder, never from a token."""
    return replace(Permissions.from_scope(scope, subject), vehicle_source=True)
