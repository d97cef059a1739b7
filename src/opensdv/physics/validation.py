"""The twin against the labels buyers see: each published range and consumption, through its
regulation's own method (``physics.labels``), with the deviation and the source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from opensdv.model.vehicles import PublishedLabel, Regulation, Vehicle
from opensdv.physics.labels import epa_label, japan_wltc_label, wltp_label
from opensdv.physics.params import VehicleParams

__all__ = ["DEFAULT_TOLERANCE", "LabelCheck", "validate"]

DEFAULT_TOLERANCE = 0.05


@dataclass(frozen=True)
class LabelCheck:
    vehicle: str
    regulation: Regulation
    quantity: str  # "range km" or "Wh/km from the wall"
    twin: float
    published: float
    source: str
    implied_usable_kwh: float | None = None  # for a range: the usable energy that would match the label

    @property
    def deviation(self) -> float:
        return self.twin / self.published - 1

    def within(self, tolerance: float) -> bool:
        return abs(self.deviation) <= tolerance


def validate(vehicles: Sequence[Vehicle], labels: dict[str, list[PublishedLabel]] | None = None) -> list[LabelCheck]:
    """Every label of every vehicle (``labels`` overrides a vehicle's own), one batch per regulation."""
    overrides = labels or {}
    labelled = [v.with_labels(overrides[v.id]) if v.id in overrides else v for v in vehicles]
    checks: list[LabelCheck] = []
    for regulation in ("epa", "wltp", "japan-wltc"):
        rows = [(v, label) for v in labelled for label in v.definition.labels if label.regulation == regulation]
        if not rows:
            continue
        params = VehicleParams.from_vehicles([v for v, _ in rows], regulation)
        if regulation == "epa":
            adjustments = [np.nan if label.adjustment is None else label.adjustment for _, label in rows]
            figures = epa_label(params, np.array(adjustments))
        else:
            figures = wltp_label(params) if regulation == "wltp" else japan_wltc_label(params)
        for i, (vehicle, label) in enumerate(rows):
            twin_km = float(figures.range_km[i])
            implied = label.range_km / twin_km * float(params.usable_kwh[i])
            checks.append(
                LabelCheck(vehicle.id, regulation, "range km", twin_km, label.range_km, label.source, implied)
            )
            if label.consumption_wh_per_km is not None:
                wall = float(figures.wall_wh_per_km[i])
                checks.append(
                    LabelCheck(
                        vehicle.id, regulation, "Wh/km from the wall", wall, label.consumption_wh_per_km, label.source
                    )
                )
    order = {v.id: i for i, v in enumerate(vehicles)}
    return sorted(checks, key=lambda c: order[c.vehicle])
