"""The fleet cloud's errors: everything its modules raise grows from ``FleetError``."""

from __future__ import annotations

from opensdv.errors import OpenSDVError

__all__ = ["FleetError"]


class FleetError(OpenSDVError):
    """Something the fleet cloud refuses (the subclass says what kind)."""
