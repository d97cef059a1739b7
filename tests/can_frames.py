"""Frames as a consistent car sends them: a cross-checked signal goes with its redundant
measurement (vehicle speed with the wheel speeds), which comes first, as on a running bus."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import can

from opensdv.vehicle.can import Adapter

__all__ = ["consistent_frames"]


def consistent_frames(adapter: Adapter, values: Mapping[str, Any]) -> list[can.Message]:
    redundant = {
        path: values[checked]
        for checked, check in adapter.mapping.cross_checks.items()
        if checked in values
        for path in check.against
        if path not in values
    }
    first = adapter.encode_signals(redundant) if redundant else []
    return first + adapter.encode_signals(values)
