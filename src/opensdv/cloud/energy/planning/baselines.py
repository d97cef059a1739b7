"""The usual scheduling baselines, slot by slot under the site cap (as ACN-Sim's sorted algorithms).

- ``uncontrolled``: every car charges at its maximum from arrival until full; the site cap is
  ignored (what a site without management does; its peak shows why management exists);
- ``earliest deadline first``, ``least laxity first``: cars are served in that order, each at its
  maximum, until the cap is reached;
- ``round robin``: the cap is shared in small increments, one car at a time, in turn.

The controlled ones respect each circuit's limit as well (a car gets no more than its circuit has
left); none of them reacts to a flexibility window.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from opensdv.cloud.energy.planning.schedule import Schedule
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.site_limits import Circuit
from opensdv.cloud.energy.planning.tariff import Tariff

__all__ = ["BASELINES", "schedule_greedy"]

BASELINES = ("uncontrolled", "earliest deadline first", "least laxity first", "round robin")
_INCREMENT_KW = 0.5


def schedule_greedy(
    sessions: Sequence[Session],
    algorithm: str,
    *,
    slots: int,
    slot_h: float,
    site_cap_kw: float | NDArray[np.float64],
    tariff: Tariff,
    circuits: Sequence[Circuit] = (),
) -> Schedule:
    """``site_cap_kw``: one value or one per slot."""
    if algorithm not in BASELINES:
        raise ValueError(f"unknown baseline {algorithm!r} (known: {', '.join(BASELINES)})")
    sessions = list(sessions)
    arrival = np.array([s.arrival for s in sessions])
    departure = np.array([s.departure for s in sessions])
    max_kw = np.array([s.max_kw for s in sessions])
    remaining = np.array([s.kwh_requested for s in sessions], dtype=np.float64)
    power = np.zeros((len(sessions), slots))
    where = {station: n for n, c in enumerate(circuits) for station in c.stations}
    circuit = np.array([where.get(s.station, len(circuits)) for s in sessions])  # the last: no circuit
    limits = np.array([c.max_kw for c in circuits] + [np.inf])
    cap = np.broadcast_to(np.asarray(site_cap_kw, dtype=np.float64), (slots,))
    turn = 0
    for t in range(slots):
        present = np.flatnonzero((arrival <= t) & (t < departure) & (remaining > 1e-9))
        if present.size == 0:
            continue
        wanted = np.minimum(max_kw[present], remaining[present] / slot_h)
        if algorithm == "uncontrolled":
            given = wanted
        elif algorithm == "round robin":
            given = np.zeros_like(wanted)
            budget, left = float(cap[t]), limits.copy()
            active = list(range(len(present)))
            while budget > 1e-9 and active:
                still = []
                for j in active[turn % len(active) :] + active[: turn % len(active)]:
                    c = circuit[present[j]]
                    step = min(_INCREMENT_KW, wanted[j] - given[j], budget, left[c])
                    given[j] += step
                    budget -= step
                    left[c] -= step
                    if wanted[j] - given[j] > 1e-9 and left[c] > 1e-9:
                        still.append(j)
                    if budget <= 1e-9:
                        break
                active = sorted(still)
            turn += 1
        else:
            if algorithm == "earliest deadline first":
                key = departure[present]
            else:  # least laxity: time left minus time needed at full power
                key = (departure[present] - t) - remaining[present] / (max_kw[present] * slot_h)
            given = np.zeros_like(wanted)
            budget, left = float(cap[t]), limits.copy()
            for j in np.argsort(key, kind="stable"):
                c = circuit[present[j]]
                given[j] = min(wanted[j], budget, left[c])
                budget -= given[j]
                left[c] -= given[j]
        power[present, t] = given
        remaining[present] -= given * slot_h
    return Schedule(algorithm, sessions, power, slot_h, tariff)
