"""Every allowed pack / e-axle choice for a vehicle: the point of shared standard components."""

from __future__ import annotations

from opensdv.model.components import Pack
from opensdv.model.vehicles import Catalog, PackSpec, Vehicle

__all__ = ["allowed_combinations"]


def allowed_combinations(vehicle: Vehicle, catalog: Catalog) -> list[Vehicle]:
    """The vehicle with each standard module (as many in series as fit best) and each e-axle of the
    same position, keeping the combinations that pass every compatibility rule. The curb mass changes
    by the difference in module and e-axle mass; the BMS keeps its share of the pack as usable."""
    results: list[Vehicle] = []
    positions = sorted(a.position for a in vehicle.eaxles)
    axle_sets = (
        [[a] for a in catalog.eaxles.values() if [a.position] == positions]
        if len(positions) == 1
        else [list(vehicle.eaxles)]
    )
    for module in catalog.modules.values():
        for axles in axle_sets:
            best: Vehicle | None = None
            for series in range(1, 65):
                try:
                    pack = Pack(module, series)
                except ValueError:
                    break  # above 1,000 V
                spec = PackSpec(module=module.id, modules_series=series)
                usable = vehicle.definition.usable_energy_kwh
                heavier = pack.modules_mass_kg - vehicle.pack.modules_mass_kg + sum(a.mass_kg for a in axles) - sum(
                    a.mass_kg for a in vehicle.eaxles
                )
                changes = {
                    "pack": spec,
                    "eaxles": [a.id for a in axles],
                    "curb_mass_kg": vehicle.definition.curb_mass_kg + heavier,
                    "usable_energy_kwh": None if usable is None else usable / vehicle.pack.energy_kwh * pack.energy_kwh,
                }
                candidate = Vehicle(
                    vehicle.definition.model_copy(update=changes),
                    pack,
                    tuple(axles),
                )
                if candidate.compatible:
                    best = candidate  # the largest pack that still passes every rule
            if best is not None:
                results.append(best)
    return results
