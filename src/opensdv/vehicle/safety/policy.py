"""The safety policy: which actuators may be actuated, in which vehicle states, with which values.

One YAML file per platform, shared by every brand on it (the actuators are VSS paths, so a rule
written once holds for a Nissan, a Honda and a Mitsubishi). Rules are matched in order, first match
wins, so specific paths go before general ones; an actuator no rule matches follows ``default``.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opensdv.model._files import CatalogError, describe_validation_error, read_document

__all__ = [
    "Condition",
    "RateLimit",
    "Rule",
    "SafetyPolicy",
    "SignalCheck",
    "ValueRange",
    "load_policy",
    "shipped_policy_file",
]


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Policy):
    """A vehicle state the actuation needs, read from a signal (e.g. speed below 3 km/h)."""

    signal: str
    below: float | None = None
    above: float | None = None
    equals: bool | float | str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        if sum(v is not None for v in (self.below, self.above, self.equals)) != 1:
            raise ValueError(f"condition on {self.signal}: give exactly one of below, above, equals")
        return self

    def holds(self, value: object) -> bool:
        if self.equals is not None:
            return value == self.equals
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return value < self.below if self.below is not None else value > self.above  # type: ignore[operator]

    def describe(self) -> str:
        if self.equals is not None:
            return f"{self.signal} = {self.equals}"
        return f"{self.signal} {'<' if self.below is not None else '>'} {self.below if self.below is not None else self.above}"


class ValueRange(_Policy):
    min: float | None = None
    max: float | None = None
    out_of_range: Literal["clamp", "reject"] = "reject"


class RateLimit(_Policy):
    """At most ``max_per_minute`` actuations of one actuator by one caller."""

    max_per_minute: int = Field(gt=0)


class Rule(_Policy):
    paths: list[str] = Field(min_length=1, description="VSS paths, '*' matches one or more segments")
    deny: str | None = Field(default=None, description="never allowed, for this reason")
    when: list[Condition] = []
    range: ValueRange | None = None
    rate: RateLimit | None = None

    def matches(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.paths)


class SignalCheck(_Policy):
    """Plausibility of a signal rules read: too old or jumping too fast means unknown."""

    max_age_s: float = Field(gt=0)
    max_rate_per_s: float | None = Field(default=None, gt=0, description="largest credible change per second")


class SafetyPolicy(_Policy):
    default: Literal["allow", "deny"] = "deny"
    signals: dict[str, SignalCheck] = {}
    actuators: list[Rule] = []

    @model_validator(mode="after")
    def _read_signals_are_checked(self) -> SafetyPolicy:
        unchecked = sorted({c.signal for r in self.actuators for c in r.when} - set(self.signals))
        if unchecked:
            raise ValueError(f"rules read {unchecked}: give each a plausibility check under 'signals'")
        return self

    def rule_for(self, path: str) -> Rule | None:
        return next((rule for rule in self.actuators if rule.matches(path)), None)


def shipped_policy_file() -> Path:
    """The platform safety policy OpenSDV ships."""
    return Path(__file__).with_name("data") / "policy.yaml"


def load_policy(path: Path | None = None) -> SafetyPolicy:
    """Read and check a policy file (the shipped one by default); errors name the file and field."""
    file = path or shipped_policy_file()
    try:
        return SafetyPolicy.model_validate(read_document(file))
    except ValidationError as exc:
        raise CatalogError(file, "", describe_validation_error(exc)) from None
