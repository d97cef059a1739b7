"""The guard the broker asks before it forwards any actuation, whoever the caller is.

It decides from the policy and its own view of the vehicle: the rule for the actuator, the vehicle
state its conditions read (a signal that is missing, stale or jumping implausibly counts as unknown,
and unknown means deny), the value range (clamp or reject) and a per-caller rate limit. A denial is
a ``PermissionDenied`` with the reason, so every API answers the caller with it.

Its view of the signals the policy reads comes only from sources it trusts: the brand adapter's
feeder in the vehicle process (``Permissions.vehicle_source``), which checks the bus's own
protection of its frames and cross-checks redundant signals. What any other provider publishes —
an app or a remote client with ``provide`` rights — reaches the broker's readers but never moves
the guard: a forged ``Vehicle.Speed = 0`` cannot open the doors at 50 km/h.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from opensdv.vehicle.broker import Datapoint, PermissionDenied, Permissions
from opensdv.vehicle.safety.audit import AuditRecord, AuditTrail
from opensdv.vehicle.safety.policy import Rule, SafetyPolicy

__all__ = ["ActuationGuard", "SafetyDenied"]


class SafetyDenied(PermissionDenied):
    """The safety policy refused an actuation (the message says which rule and why)."""


class ActuationGuard:
    """Checks every actuation against the safety policy and the vehicle's state, and audits each decision."""
    def __init__(
        self, policy: SafetyPolicy, clock: Callable[[], float], audit: AuditTrail | None = None
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.audit = audit or AuditTrail()
        self._previous: dict[str, Datapoint] = {}
        self._latest: dict[str, Datapoint] = {}
        # when the broker received each of them, on the guard's clock: a provider chooses its
        # timestamps, so ages and rates are judged by when values arrived as well
        self._previous_at: dict[str, float] = {}
        self._latest_at: dict[str, float] = {}
        self._recent: dict[tuple[str, str], deque[float]] = {}
        self.untrusted_updates = 0  # updates of policy signals from sources it does not believe

    def observe(self, points: Mapping[str, Datapoint], source: Permissions) -> None:
        """Every update the broker applied: keep the last two samples of the signals the policy
        checks (jump test), from trusted sources only."""
        for path, point in points.items():
            if path in self.policy.signals:
                if not source.vehicle_source:
                    self.untrusted_updates += 1
                    continue
                if path in self._latest:
                    self._previous[path] = self._latest[path]
                    self._previous_at[path] = self._latest_at[path]
                self._latest[path] = point
                self._latest_at[path] = self.clock()

    def _signal(self, path: str) -> tuple[Any, str]:
        """(value, '') if plausible, else (None, why it is unknown); from the guard's own view."""
        check = self.policy.signals[path]
        point = self._latest.get(path)
        if point is None or point.value is None:
            return None, f"{path} is unknown (no trusted source has reported it)"
        received = self._latest_at[path]
        age = self.clock() - min(point.timestamp, received)  # the older of measured and received
        if age > check.max_age_s:
            return None, f"{path} is stale ({age:.1f} s old, limit {check.max_age_s:g} s)"
        previous = self._previous.get(path)
        if check.max_rate_per_s is not None and previous is not None:
            dt = max(self._latest_at[path] - self._previous_at[path], 1e-3)  # as received, not as stamped
            rate = abs(float(point.value) - float(previous.value)) / dt
            if rate > check.max_rate_per_s:
                return None, f"{path} jumped implausibly ({rate:.0f}/s, limit {check.max_rate_per_s:g}/s)"
        return point.value, ""

    def check(self, path: str, value: Any, subject: str, current: Mapping[str, Datapoint]) -> Any:
        """The value to forward (possibly clamped), or ``SafetyDenied``; the decision is audited."""
        try:
            decided, clamped = self._decide(path, value, subject)  # from its own view, not ``current``
        except SafetyDenied as exc:
            self.audit.record(AuditRecord(self.clock(), subject, path, value, "denied", str(exc)))
            raise
        if clamped:
            self.audit.record(AuditRecord(self.clock(), subject, path, value, "clamped", f"to {decided}"))
        return decided

    def _decide(self, path: str, value: Any, subject: str) -> tuple[Any, bool]:
        rule = self.policy.rule_for(path)
        if rule is None:
            if self.policy.default == "deny":
                raise SafetyDenied(f"{path}: no safety rule allows it (policy default: deny)")
            return value, False
        if rule.deny is not None:
            raise SafetyDenied(f"{path}: {rule.deny}")
        for condition in rule.when:
            reading, unknown = self._signal(condition.signal)
            if unknown:
                raise SafetyDenied(f"{path}: needs {condition.describe()}, but {unknown}")
            if not condition.holds(reading):
                raise SafetyDenied(f"{path}: needs {condition.describe()}, it is {reading}")
        decided, clamped = self._range(rule, path, value)
        self._rate(rule, path, subject)
        return decided, clamped

    @staticmethod
    def _range(rule: Rule, path: str, value: Any) -> tuple[Any, bool]:
        limits = rule.range
        if limits is None or isinstance(value, bool) or not isinstance(value, int | float):
            return value, False
        low = limits.min if limits.min is not None else value
        high = limits.max if limits.max is not None else value
        if low <= value <= high:
            return value, False
        if limits.out_of_range == "reject":
            raise SafetyDenied(f"{path}: {value} is outside the allowed {limits.min}..{limits.max}")
        bounded = min(max(value, low), high)
        return (type(value)(bounded), True)

    def _rate(self, rule: Rule, path: str, subject: str) -> None:
        if rule.rate is None:
            return
        now = self.clock()
        recent = self._recent.setdefault((subject, path), deque())
        while recent and now - recent[0] >= 60.0:
            recent.popleft()
        if len(recent) >= rule.rate.max_per_minute:
            raise SafetyDenied(
                f"{path}: {subject or 'caller'} is over {rule.rate.max_per_minute} actuations a minute"
            )
        recent.append(now)
