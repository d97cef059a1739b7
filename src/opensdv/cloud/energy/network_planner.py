"""The optimiser's linear programme solved as what it is: a min-cost flow (LEMON's network simplex).

Charging and discharging lose nothing in the model, so energy is a flow. It runs grid -> slot ->
car in that slot -> the same car in its next slot -> ... -> the car's departure:

- grid -> slot t: import (price per kWh, at most the site cap and the peak P), and "export not
  made" (export price; every slot first exports the full cap, so exporting x earns x x export price);
- slot t -> car in t: charging (at most its max power); car in t -> slot t: V2G discharging
  (wear cost); car in t -> car in t+1: its stored energy, within its battery window;
- grid -> departure: the energy asked for but not delivered, at ``ENERGY_VALUE`` per kWh, so
  delivering comes first, exactly as in the LP.

For a fixed P that is the LP of ``opensdv.cloud.energy.optimiser``, and a network simplex solves it
about ten times faster than HiGHS's dual simplex (measured in ``bench/energy.py``). The demand
charge x P is the one part that is not a flow: the cost is convex in P, so P is found by cutting
planes, each solve's node potentials giving the slope. Energies are whole Wh and costs whole
1e-4 currency units per kWh (the network simplex works in integers); that rounding is the only
difference from the LP's optimum.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pylmcf
from numpy.typing import NDArray

from opensdv.cloud.energy.optimiser import ENERGY_VALUE, PlanError, _energy_window, _pairs
from opensdv.cloud.energy.schedule import Schedule
from opensdv.cloud.energy.sessions import Session
from opensdv.cloud.energy.tariff import Tariff

__all__ = ["NetworkPlanner"]

WH_PER_KWH = 1000.0
COST_UNITS_PER_WH = 1e4  # per currency/kWh: 1 unit per Wh = 1e-4 currency per kWh


def _units(price_per_kwh: NDArray[np.float64] | float) -> NDArray[np.int64]:
    return np.asarray(np.round(np.asarray(price_per_kwh) * COST_UNITS_PER_WH), dtype=np.int64)


def _wh(kwh: NDArray[np.float64]) -> NDArray[np.int64]:
    """Whole Wh, rounded down, so a rounded bound is never looser than the real one."""
    return np.asarray(np.floor(kwh * WH_PER_KWH + 1e-9), dtype=np.int64)


@dataclass
class _Flow:
    """One solve at a given peak: the flow cost (currency), its slope in P, and the plan."""

    cost: float
    slope: float  # d(flow cost) / dP, per kW: minus what one more kW of peak would save
    power: NDArray[np.float64]  # kW per (session, remaining slot)


class _SiteNetwork:
    """The network of the remaining slots ``start`` .. ``slots``; ``solve(peak_kw)`` for any peak."""

    def __init__(self, sessions: Sequence[Session], done_kwh: NDArray[np.float64], start: int, slots: int,
                 slot_h: float, cap_kw: NDArray[np.float64], tariff: Tariff, wear: float) -> None:  # fmt: skip
        session_of, slot_of, is_first = _pairs(sessions, start, slots)
        low, high = _energy_window(sessions, done_kwh)
        present = np.unique(session_of)
        T, K, M = slots - start, len(session_of), len(present)
        self.shape, self.slot_h, self.start = (len(sessions), T), slot_h, start
        self.session_of, self.slot_of = session_of, slot_of - start
        self.cap_wh = _wh(cap_kw[start:slots] * slot_h)
        price = tariff.energy_price[start:slots]
        export = np.minimum(tariff.export_price[start:slots], price)  # as in the LP
        span = np.maximum(_wh(high - low), 0)
        initial = np.minimum(np.maximum(_wh(-low), 0), span)
        terminal_of = np.full(len(sessions), -1)
        terminal_of[present] = np.arange(M)
        grid, sink, slot0, pair0 = 0, 1, 2, 2 + T
        terminal0 = pair0 + K
        pair = pair0 + np.arange(K)
        last = np.append(session_of[1:] != session_of[:-1], True) if K else np.zeros(0, dtype=bool)
        carry_to = np.where(last, terminal0 + terminal_of[session_of], pair + 1)
        max_kw = np.array([s.max_kw for s in sessions])[session_of]
        discharging = np.flatnonzero(np.array([s.max_discharge_kw for s in sessions])[session_of] > 0)
        max_dis = np.array([s.max_discharge_kw for s in sessions])[session_of[discharging]]
        slot_node = slot0 + np.arange(T)
        supply_total = int(2 * self.cap_wh.sum() + span[present].sum()) + 1
        # arcs: import[T], export not made[T], charge[K], discharge[V2G pairs], carry[K], unmet[M], spare[1]
        tails = np.concatenate([np.full(2 * T, grid), slot0 + self.slot_of, pair[discharging], pair,
                                np.full(M, grid), [grid]])  # fmt: skip
        heads = np.concatenate([slot_node, slot_node, pair, slot0 + self.slot_of[discharging], carry_to,
                                terminal0 + np.arange(M), [sink]])  # fmt: skip
        self._capacity = np.concatenate([np.zeros(T, dtype=np.int64), self.cap_wh, _wh(max_kw * slot_h),
                                         _wh(max_dis * slot_h), span[session_of], span[present],
                                         [supply_total]]).astype(np.int64)  # fmt: skip
        costs = np.concatenate([_units(price), _units(export), np.zeros(K, dtype=np.int64),
                                np.full(len(discharging), _units(2 * wear)), np.zeros(K, dtype=np.int64),
                                np.full(M, _units(ENERGY_VALUE)), [0]]).astype(np.int64)  # fmt: skip
        supply = np.zeros(terminal0 + M, dtype=np.int64)
        supply[grid] = supply_total
        supply[slot_node] = -self.cap_wh
        supply[pair[is_first]] = initial[session_of[is_first]]
        supply[terminal0:] = -span[present]
        supply[sink] = -supply.sum()
        self._order = np.lexsort((heads, tails))  # pylmcf wants arcs sorted by (tail, head)
        position = np.empty_like(self._order)
        position[self._order] = np.arange(len(self._order))
        self._import = position[:T]
        self._charge, self._discharge = (
            position[2 * T : 2 * T + K],
            position[2 * T + K : 2 * T + K + len(discharging)],
        )
        self._discharging = discharging
        self._tails, self._heads = tails[self._order].astype(np.int64), heads[self._order].astype(np.int64)
        self._supply, self._costs = supply, costs[self._order]
        self._graphs: list[tuple[float, pylmcf.Graph]] = []  # (last peak, graph) to warm-restart from
        self.warm_within_kw = 0.1 * float(cap_kw[start:slots].max(initial=0.0))

    def _graph_near(self, peak_kw: float, capacity: NDArray[np.int64]) -> pylmcf.Graph:
        """A graph to solve at ``peak_kw``: the one last solved at a peak close by, whose basis the
        network simplex restarts from (quick for a small move, slower than a fresh start for a big
        one), else a fresh one."""
        near = [i for i, (peak, _) in enumerate(self._graphs) if abs(peak - peak_kw) <= self.warm_within_kw]
        if near:
            index = min(near, key=lambda i: abs(self._graphs[i][0] - peak_kw))
            graph = self._graphs[index][1]
            self._graphs[index] = (peak_kw, graph)
        else:
            graph = pylmcf.Graph(len(self._supply), edge_starts=self._tails, edge_ends=self._heads)
            graph.set_node_supply(self._supply)
            graph.set_edge_costs(self._costs)
            graph.set_warm_repair("dual_greedy")
            self._graphs.append((peak_kw, graph))
        graph.set_edge_capacities(capacity[self._order])
        return graph

    def solve(self, peak_kw: float) -> _Flow:
        capacity = self._capacity.copy()
        capacity[: self.shape[1]] = np.minimum(self.cap_wh, _wh(np.array(max(peak_kw, 0.0) * self.slot_h)))
        graph = self._graph_near(peak_kw, capacity)
        try:
            graph.solve()
        except RuntimeError as error:  # the network always has a feasible flow; this is a solver fault
            raise PlanError(f"the network simplex failed: {error}") from error
        flow = graph.result()
        # a binding import arc has a negative reduced cost: what one more Wh through it would save
        saving = -np.minimum(graph.reduced_costs()[self._import], 0)
        by_peak = capacity[: self.shape[1]] < self.cap_wh  # arcs the peak, not the site cap, limits
        per_kw = self.slot_h / COST_UNITS_PER_WH  # units per Wh -> currency per kW of peak
        power = np.zeros(self.shape)
        kw = flow[self._charge] / WH_PER_KWH / self.slot_h
        power[self.session_of, self.slot_of] = kw
        discharged = flow[self._discharge] / WH_PER_KWH / self.slot_h
        np.subtract.at(
            power, (self.session_of[self._discharging], self.slot_of[self._discharging]), discharged
        )
        return _Flow(
            graph.total_cost() / COST_UNITS_PER_WH / WH_PER_KWH,
            -float(saving[by_peak].sum()) * per_kw,
            power,
        )


def _cheapest_peak(solve: Callable[[float], _Flow], low: float, high: float, demand_charge: float,
                   guess: float | None = None) -> _Flow:  # fmt: skip
    """Minimise flow cost(P) + demand charge x P over [low, high], a convex piecewise-linear
    function: each solve gives a value and a slope, and the next P is where the tangents at the two
    ends of the bracket cross (Kelley's cutting planes in one dimension). With a ``guess`` (the last
    plan's peak) the bracket is grown around it in small steps instead of starting from both ends."""
    if demand_charge <= 0:
        return solve(high)

    def point(peak: float) -> tuple[float, float, _Flow]:
        flow = solve(peak)
        return peak, flow.slope + demand_charge, flow

    def value(end: tuple[float, float, _Flow]) -> float:
        return end[2].cost + demand_charge * end[0]

    if guess is None or not low <= guess <= high:
        bottom, top = point(low), point(high)
    else:
        bottom = top = point(guess)
        step = max(0.01 * guess, 1.0)
        while top[1] < 0 and top[0] < high:  # the best peak is higher: grow the bracket upwards
            bottom, top = top, point(min(top[0] + step, high))
            step *= 4
        while bottom[1] > 0 and bottom[0] > low:  # lower: grow it downwards
            top, bottom = bottom, point(max(bottom[0] - step, low))
            step *= 4
    if top[1] <= 0:
        return top[2]
    if bottom[1] >= 0:
        return bottom[2]
    for _ in range(60):
        (p0, s0, _), (p1, s1, _) = bottom, top
        crossing = (value(top) - value(bottom) + s0 * p0 - s1 * p1) / (s0 - s1)
        floor = value(bottom) + s0 * (crossing - p0)
        if min(value(bottom), value(top)) - floor <= 1e-6 or p1 - p0 <= 1e-2:
            break
        middle = point(crossing)
        if middle[1] == 0:
            return middle[2]
        bottom, top = (middle, top) if middle[1] < 0 else (bottom, middle)
    return min(bottom, top, key=value)[2]


class NetworkPlanner:
    """Model-predictive control for a site, with the same interface as ``RollingPlanner``.

    ``add_arrival(session, now)`` keeps what was planned before ``now`` (it has happened) and
    ``solve`` re-optimises only the slots left, from each car's energy so far; the peak already
    reached stays the floor of the demand charge.
    """

    def __init__(self, sessions: Sequence[Session], *, slots: int, slot_h: float, site_cap_kw: float | NDArray[np.float64],
                 tariff: Tariff, wear_cost_per_kwh: float = 0.0) -> None:  # fmt: skip
        self.sessions = list(sessions)
        self.slots, self.slot_h, self.tariff, self.wear = slots, slot_h, tariff, wear_cost_per_kwh
        cap = np.broadcast_to(np.asarray(site_cap_kw, dtype=np.float64), (slots,)).copy()
        if (cap < 0).any() or len(tariff.energy_price) < slots or len(tariff.export_price) < slots:
            raise PlanError(f"site cap must be >= 0 and the tariff must cover all {slots} slots")
        self.cap = cap
        self.now = 0
        self._power = np.zeros((len(self.sessions), slots))  # the last plan, the past included
        self._peak: float | None = None  # the last plan's peak: where the next re-plan looks first

    def solve(self, name: str = "optimal (network simplex)") -> Schedule:
        started = time.perf_counter()
        past = self._power[:, : self.now]
        network = _SiteNetwork(self.sessions, past.sum(axis=1) * self.slot_h, self.now, self.slots,
                               self.slot_h, self.cap, self.tariff, self.wear)  # fmt: skip
        reached = float(past.sum(axis=0).max(initial=0.0))
        best = _cheapest_peak(network.solve, max(reached, 0.0), float(self.cap[self.now :].max(initial=0.0)),
                              self.tariff.demand_charge, self._peak)  # fmt: skip
        self._power[:, self.now :] = best.power
        self._peak = max(float(best.power.sum(axis=0).max(initial=0.0)), reached)
        return Schedule(name, list(self.sessions), self._power.copy(), self.slot_h, self.tariff, self.wear,
                        solve_s=time.perf_counter() - started)  # fmt: skip

    def add_arrival(self, session: Session, now: int) -> None:
        """Keep the plan before ``now`` (it happened), and add ``session`` (plugged in from ``now``)."""
        if session.arrival < now:
            raise PlanError(f"session {session.id} arrives at {session.arrival}, before now ({now})")
        if now < self.now:
            raise PlanError(f"now ({now}) is before the last re-plan ({self.now})")
        self.now = now
        self.sessions.append(session)
        self._power = np.vstack([self._power, np.zeros((1, self.slots))])
