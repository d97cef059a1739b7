"""The optimiser's linear programme solved as what it is: a min-cost flow (LEMON's network simplex).

Charging and discharging lose nothing in the model, so energy is a flow. It runs grid -> slot ->
car in that slot -> the same car in its next slot -> ... -> the car's departure:

- grid -> slot t: import (price per kWh, at most the site cap and the peak P), and "export not
  made" (export price; every slot first exports the full cap, so exporting x earns x x export price);
- slot t -> car in t: charging (at most its max power); car in t -> slot t: V2G discharging
  (wear cost); car in t -> car in t+1: its stored energy, within its battery window;
- grid -> departure: the energy asked for but not delivered, at ``ENERGY_VALUE`` per kWh, so
  delivering comes first, exactly as in the LP.

For a fixed P that is the LP of ``opensdv.cloud.energy.planning.optimiser``, and a network simplex solves it
several times faster than HiGHS's dual simplex (measured in ``bench/energy.py``). The demand
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

from opensdv.cloud.energy.planning.optimiser import (
    ENERGY_VALUE,
    PlanError,
    _energy_window,
    _pairs,
    site_arrays,
)
from opensdv.cloud.energy.planning.schedule import Schedule, wear_by_session
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.site_limits import Circuit
from opensdv.cloud.energy.planning.tariff import Tariff

__all__ = ["NetworkPlanner"]

WH_PER_KWH = 1000.0
COST_UNITS_PER_WH = 1e4  # per currency/kWh: 1 unit per Wh = 1e-4 currency per kWh


def _per_chain(value: float | NDArray[np.float64], sessions: int, spare: int) -> NDArray[np.float64]:
    """Each chain's value of a kWh delivered: the sessions' own, then the spare chains' (the highest)."""
    values = np.broadcast_to(np.asarray(value, dtype=np.float64), (sessions,))
    return np.append(values, np.full(spare, values.max(initial=ENERGY_VALUE)))


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
    power: NDArray[np.float64]  # kW per (session, slot)


class _SiteNetwork:
    """The whole day's network of a site, kept from solve to solve so that the network simplex can
    restart from its last basis.

    Every session is a chain of one node per slot it is plugged in. ``spare`` full-day chains wait,
    with no capacity, for cars that arrive later: ``activate`` gives one of them the newcomer's
    limits, so a re-plan changes capacities and supplies only and warm-restarts. ``freeze`` turns
    the flows before ``now`` (what happened) into fixed supplies.

    A circuit (stations behind one breaker) is a hub per slot between the slot and its stations'
    chains, tied to the slot by two arcs of the circuit's limit: charging through one, discharging
    through the other, so the circuit's net power stays within its limit either way. A minimum
    import (a flexibility window) is a lower bound on the slot's import arc, with no export then.

    With ``groups`` > 1 the other chains are dealt round-robin into groups, each with its own hub
    per slot tied to the slot by free arcs both ways: the same programme. A cold solve first gives
    every group an equal share of each slot (independent, small networks: quick), then opens the
    ties and restarts from there. Every slot node of one large site otherwise holds thousands of
    chains, and each pivot that moves such a subtree pays for all of it: a 10,000-car day solves
    about 2.5x faster this way (``bench/energy.py``).
    """

    def __init__(self, sessions: Sequence[Session], slots: int, slot_h: float, cap_kw: NDArray[np.float64],
                 tariff: Tariff, wear: float, spare: int, groups: int = 1, circuits: Sequence[Circuit] = (),
                 min_import_kw: NDArray[np.float64] | None = None,
                 energy_value: float | NDArray[np.float64] = ENERGY_VALUE) -> None:  # fmt: skip
        session_of, slot_of, is_first = _pairs(sessions, 0, slots)
        session_of = np.concatenate([session_of, np.repeat(np.arange(spare) + len(sessions), slots)])
        slot_of = np.concatenate([slot_of, np.tile(np.arange(slots), spare)])
        is_first = np.concatenate([is_first, np.tile(np.arange(slots) == 0, spare)])
        T, K, M = slots, len(session_of), len(sessions) + spare
        C, G = len(circuits), groups if groups > 1 else 0
        H = (C + G) * T  # hubs: one per (circuit, slot), then one per (group, slot)
        self.slots, self.slot_h, self.sessions, self.groups = slots, slot_h, list(sessions), groups
        self.circuit_of_station = {station: n for n, c in enumerate(circuits) for station in c.stations}
        circuit_of = np.array([self.circuit_of_station.get(s.station, -1) for s in sessions] + [-1] * spare)
        self.session_of, self.slot_of = session_of, slot_of
        # chain c (a session, or a spare) is the pairs chain_start[c] .. chain_start[c + 1]
        self.chain_start = np.searchsorted(session_of, np.arange(M + 1))
        self.cap_wh = _wh(cap_kw * slot_h)
        price = tariff.energy_price[:T]
        export = np.minimum(tariff.export_price[:T], price)  # as in the LP
        self.grid, self.sink, slot0, hub0 = 0, 1, 2, 2 + T
        self.group_hubs = hub0 + C * T + np.arange(G * T)
        self.pair0 = hub0 + H
        self.terminal0 = self.pair0 + K
        pair = self.pair0 + np.arange(K)
        last = np.append(session_of[1:] != session_of[:-1], True)
        carry_to = np.where(last, self.terminal0 + session_of, pair + 1)
        self.slot_nodes = slot_node = slot0 + np.arange(T)
        hub_slot = np.tile(np.arange(T), C + G)
        hub = hub0 + np.arange(H)
        # the node a pair charges from and discharges to: its circuit's hub in its slot, else its
        # group's hub there, else the slot's node
        circuit = circuit_of[session_of]
        free = hub0 + C * T + (session_of % groups) * T + slot_of if G else slot0 + slot_of
        self.hub_of_pair = np.where(circuit >= 0, hub0 + circuit * T + slot_of, free)
        # arcs: import[T], export not made[T], to hub[H], from hub[H], charge[K], discharge[K],
        # carry[K], unmet[M], spare grid[1]
        tails = np.concatenate([np.full(2 * T, self.grid), slot0 + hub_slot, hub, self.hub_of_pair, pair, pair,
                                np.full(M, self.grid), [self.grid]])  # fmt: skip
        heads = np.concatenate([slot_node, slot_node, hub, slot0 + hub_slot, pair, self.hub_of_pair, carry_to,
                                self.terminal0 + np.arange(M), [self.sink]])  # fmt: skip
        ties = 2 * T + np.arange(2 * H)  # to every hub, then from every hub
        self.group_ties = np.concatenate([ties[C * T : H], ties[H + C * T :]])  # down, then up
        self.charge, self.discharge, self.carry = (2 * T + 2 * H + np.arange(K) + i * K for i in range(3))
        self.unmet = 2 * T + 2 * H + 3 * K + np.arange(M)
        self.wear = wear  # spare chains' (a newcomer with its own waits for a network built anew)
        wear_of_chain = np.append(wear_by_session(list(sessions), wear), np.full(spare, wear))
        costs = np.concatenate([_units(price), _units(export), np.zeros(2 * H + K, dtype=np.int64),
                                _units(2 * wear_of_chain[session_of]), np.zeros(K, dtype=np.int64),
                                _units(_per_chain(energy_value, len(sessions), spare)), [0]]).astype(np.int64)  # fmt: skip
        self.capacity = np.zeros(len(tails), dtype=np.int64)
        self.capacity[T : 2 * T] = self.cap_wh
        circuit_wh = np.tile(_wh(np.array([c.max_kw for c in circuits]) * slot_h)[:, None], T).ravel()
        self.capacity[ties[: C * T]] = self.capacity[ties[H : H + C * T]] = circuit_wh
        # a flexibility window: at least this much import in the slot, and no export
        minimum_wh = _wh(np.zeros(T) if min_import_kw is None else min_import_kw[:T] * slot_h)
        self.minimum = np.zeros(len(tails), dtype=np.int64)
        self.minimum[:T] = minimum_wh
        self.minimum[T : 2 * T] = np.where(minimum_wh > 0, self.cap_wh, 0)
        self.supply = np.zeros(self.terminal0 + M, dtype=np.int64)
        self.supply[slot_node] = -self.cap_wh
        self.fixed = np.zeros(K, dtype=np.int64)  # net Wh already charged per pair (frozen past)
        self.spare = list(range(len(sessions), M))
        self.version = 0  # bumped by every change of supplies or capacities
        low, high = _energy_window(sessions, np.zeros(len(sessions)))
        span = np.maximum(_wh(high - low), 0)
        real = np.flatnonzero(session_of < len(sessions))
        owner = session_of[real]
        self.capacity[self.charge[real]] = _wh(np.array([s.max_kw for s in sessions])[owner] * slot_h)
        self.capacity[self.discharge[real]] = _wh(
            np.array([s.max_discharge_kw for s in sessions])[owner] * slot_h
        )
        self.capacity[self.carry[real]] = span[owner]
        self.capacity[self.unmet[: len(sessions)]] = span
        first = real[is_first[real]]
        self.supply[self.pair0 + first] = np.minimum(np.maximum(_wh(-low), 0), span)[session_of[first]]
        self.supply[self.terminal0 : self.terminal0 + len(sessions)] = -span
        self._balance()
        self._order = np.lexsort((heads, tails))  # pylmcf wants arcs sorted by (tail, head)
        self._position = np.empty_like(self._order)
        self._position[self._order] = np.arange(len(self._order))
        self._tails, self._heads = tails[self._order].astype(np.int64), heads[self._order].astype(np.int64)
        self._costs = costs[self._order]
        self._graphs: list[tuple[float, int, pylmcf.Graph]] = []  # (last peak, version, graph)
        self.warm_within_kw = 0.1 * float(cap_kw.max(initial=0.0))

    def _balance(self) -> None:
        """The grid can send what every arc from it could take; what it does not send goes to the sink."""
        total = int(2 * self.cap_wh.sum() + self.capacity[self.unmet].sum()) + 1
        self.capacity[-1] = total
        self.capacity[self.group_ties] = total  # open: no flow can be larger
        self.supply[self.grid] = total
        self.supply[self.sink] = 0
        self.supply[self.sink] = -self.supply.sum()
        self.version += 1

    def activate(self, session: Session) -> bool:
        """Put a newcomer on a spare chain; False when none is left (the caller builds anew)."""
        own_wear = session.wear_cost_per_kwh not in (None, self.wear)
        if not self.spare or session.station in self.circuit_of_station or own_wear:
            return False  # no spare chain waits behind a circuit, or costs its wear
        chain = self.spare.pop(0)
        self.sessions.append(session)
        low, high = _energy_window([session], np.zeros(1))
        span = max(int(_wh(high - low)[0]), 0)
        pairs = np.arange(self.chain_start[chain], self.chain_start[chain + 1])  # the whole day
        plugged = pairs[(self.slot_of[pairs] >= session.arrival) & (self.slot_of[pairs] < session.departure)]
        self.capacity[self.charge[plugged]] = _wh(np.array(session.max_kw * self.slot_h))
        self.capacity[self.discharge[plugged]] = _wh(np.array(session.max_discharge_kw * self.slot_h))
        self.capacity[self.carry[pairs[self.slot_of[pairs] >= session.arrival]]] = span
        self.capacity[self.unmet[chain]] = span
        if len(plugged):
            self.supply[self.pair0 + plugged[0]] = min(max(int(_wh(-low)[0]), 0), span)
        self.supply[self.terminal0 + chain] = -span
        self._balance()
        return True

    def close(self, index: int, from_slot: int) -> None:
        """Session ``index`` left at ``from_slot``: it charges and discharges no more."""
        pairs = np.arange(self.chain_start[index], self.chain_start[index + 1])
        later = pairs[self.slot_of[pairs] >= from_slot]
        self.capacity[self.charge[later]] = self.capacity[self.discharge[later]] = 0
        self.version += 1

    def set_site(self, cap_kw: NDArray[np.float64], min_import_kw: NDArray[np.float64]) -> None:
        """New site limits (a grid signal): the cap's "export not made" arcs and the slots' demand
        follow it, and the minimum import its lower bounds."""
        T = self.slots
        cap_wh = _wh(cap_kw * self.slot_h)
        self.supply[self.slot_nodes] -= cap_wh - self.cap_wh
        self.cap_wh = cap_wh
        self.capacity[T : 2 * T] = cap_wh
        minimum_wh = _wh(min_import_kw[:T] * self.slot_h)
        had_minimum = self.minimum.any()
        self.minimum[:T] = minimum_wh
        self.minimum[T : 2 * T] = np.where(minimum_wh > 0, cap_wh, 0)
        if had_minimum or self.minimum.any():  # (only then: lower bounds cost the solver time)
            for _, _, graph in self._graphs:
                graph.set_edge_minimums(self.minimum[self._order])
        self._balance()

    def freeze(self, now: int, power_kw: NDArray[np.float64]) -> None:
        """Fix what happened before ``now`` (``power_kw`` per session and slot): each past pair's net
        energy moves from its arcs into the supplies of its slot and car nodes."""
        pairs = np.flatnonzero((self.slot_of < now) & (self.session_of < len(self.sessions)))
        net = np.round(power_kw[self.session_of[pairs], self.slot_of[pairs]] * self.slot_h * WH_PER_KWH)
        change = net.astype(np.int64) - self.fixed[pairs]
        self.fixed[pairs] += change
        self.capacity[self.charge[pairs]] = 0
        self.capacity[self.discharge[pairs]] = 0
        np.add.at(self.supply, self.hub_of_pair[pairs], -change)
        np.add.at(self.supply, self.pair0 + pairs, change)
        self.version += 1

    def _graph_near(self, peak_kw: float) -> tuple[pylmcf.Graph, bool]:
        """A graph to solve at ``peak_kw`` and whether it is new: the one last solved at a peak close
        by, whose basis the network simplex restarts from (quick for a small move, slower than a
        fresh start for a big one), else a fresh one."""
        near = [
            i for i, (peak, _, _) in enumerate(self._graphs) if abs(peak - peak_kw) <= self.warm_within_kw
        ]
        if near:
            index = min(near, key=lambda i: abs(self._graphs[i][0] - peak_kw))
            graph = self._graphs[index][2]
            if self._graphs[index][1] != self.version:
                graph.set_node_supply(self.supply)
            self._graphs[index] = (peak_kw, self.version, graph)
            return graph, False
        graph = pylmcf.Graph(len(self.supply), edge_starts=self._tails, edge_ends=self._heads)
        graph.set_node_supply(self.supply)
        graph.set_edge_costs(self._costs)
        if self.minimum.any():  # (only then: lower bounds cost the solver time)
            graph.set_edge_minimums(self.minimum[self._order])
        graph.set_warm_repair("dual_greedy")
        self._graphs.append((peak_kw, self.version, graph))
        return graph, True

    def _run(self, graph: pylmcf.Graph, capacity: NDArray[np.int64]) -> None:
        graph.set_edge_capacities(capacity[self._order])
        try:
            graph.solve()
        except RuntimeError as error:
            if "INFEASIBLE" in str(error):  # only a minimum import can make it so
                raise PlanError(
                    "no schedule meets the site's limits: the cars plugged in cannot take the minimum "
                    "import a flexibility window asks for"
                ) from None
            raise PlanError(f"the network simplex failed: {error}") from error

    def solve(self, peak_kw: float) -> _Flow:
        T, H = self.slots, len(self.group_ties) // 2
        capacity = self.capacity.copy()
        capacity[:T] = np.minimum(self.cap_wh, _wh(np.array(max(peak_kw, 0.0) * self.slot_h)))
        graph, fresh = self._graph_near(peak_kw)
        if fresh and H:  # every group on its share of each slot first: a start close to the optimum
            frozen = self.supply[self.group_hubs]  # (and what its frozen past must move)
            down, up = np.maximum(-frozen, 0), np.maximum(frozen, 0)
            shared = capacity.copy()
            shared[self.group_ties[:H]] = np.tile(capacity[:T] // self.groups, self.groups) + down
            shared[self.group_ties[H:]] = np.tile(self.cap_wh // self.groups, self.groups) + up
            if self.minimum.any():  # a minimum import may not fit the shares: it comes with the ties
                graph.set_edge_minimums(np.zeros_like(self.minimum))
            self._run(graph, shared)
            if self.minimum.any():
                graph.set_edge_minimums(self.minimum[self._order])
        self._run(graph, capacity)
        flow = graph.result()[self._position]
        # a binding import arc has a negative reduced cost: what one more Wh through it would save
        saving = -np.minimum(graph.reduced_costs()[self._position[:T]], 0)
        by_peak = capacity[:T] < self.cap_wh  # arcs the peak, not the site cap, limits
        per_kw = self.slot_h / COST_UNITS_PER_WH  # units per Wh -> currency per kW of peak
        net_wh = flow[self.charge] - flow[self.discharge] + self.fixed
        power = np.zeros((len(self.sessions), T))
        real = self.session_of < len(self.sessions)
        power[self.session_of[real], self.slot_of[real]] = net_wh[real] / WH_PER_KWH / self.slot_h
        return _Flow(
            graph.total_cost() / COST_UNITS_PER_WH / WH_PER_KWH,
            -float(saving[by_peak].sum()) * per_kw,
            power,
        )


def _cheapest_peak(solve: Callable[[float], _Flow], low: float, high: float, demand_charge: float,
                   guess: tuple[float, float] | None, resolution: float) -> _Flow:  # fmt: skip
    """Minimise flow cost(P) + demand charge x P over [low, high], a convex piecewise-linear
    function: each solve gives a value and a slope, and the next P is where the tangents at the two
    ends of the bracket cross (Kelley's cutting planes in one dimension). With a ``guess`` (a peak
    and how far off it may be) the bracket is grown around it in steps of that size, doubling,
    instead of starting from both ends: a small move warm-restarts quickly, a large one does not.
    Peaks closer than ``resolution`` kW are the same to the solver."""
    if demand_charge <= 0:
        return solve(high)

    def point(peak: float) -> tuple[float, float, _Flow]:
        flow = solve(peak)
        return peak, flow.slope + demand_charge, flow

    def value(end: tuple[float, float, _Flow]) -> float:
        return end[2].cost + demand_charge * end[0]

    if guess is None or not low <= guess[0] <= high:
        bottom, top = point(low), point(high)
    else:
        bottom = top = point(guess[0])
        step = max(guess[1], 1.0)
        while top[1] < 0 and top[0] < high:  # the best peak is higher: grow the bracket upwards
            bottom, top = top, point(min(top[0] + step, high))
            step *= 2
        while bottom[1] > 0 and bottom[0] > low:  # lower: grow it downwards
            top, bottom = bottom, point(max(bottom[0] - step, low))
            step *= 2
    if top[1] <= 0:
        return top[2]
    if bottom[1] >= 0:
        return bottom[2]
    for _ in range(60):
        (p0, s0, _), (p1, s1, _) = bottom, top
        crossing = (value(top) - value(bottom) + s0 * p0 - s1 * p1) / (s0 - s1)
        floor = value(bottom) + s0 * (crossing - p0)
        if min(value(bottom), value(top)) - floor <= 1e-6 or min(crossing - p0, p1 - crossing) <= resolution:
            break  # the cutting planes meet, or the next peak is one already solved
        middle = point(crossing)
        if middle[1] == 0:
            return middle[2]
        bottom, top = (middle, top) if middle[1] < 0 else (bottom, middle)
    return min(bottom, top, key=value)[2]


class NetworkPlanner:
    """Model-predictive control for a site, with the same interface as ``RollingPlanner``.

    ``add_arrival(session, now)`` keeps what was planned before ``now`` (it has happened), puts the
    newcomer on a spare chain of the kept network and re-optimises the rest; the network simplex
    restarts from its last basis and the search for the peak from the last plan's peak.
    """

    SPARE_CHAINS = 8  # arrivals a network takes before it is built anew
    GROUP_PAIRS = 25_000  # (session, slot) pairs per group in a large network (see _SiteNetwork)
    GROUP_CHAINS = 250.0  # fewest chains a slot's hub keeps in each group (fewer: no groups)
    SAMPLE_SESSIONS = 1_000  # sessions in one sample that a first plan guesses its peak from
    SAMPLES = 4

    def __init__(self, sessions: Sequence[Session], *, slots: int, slot_h: float, site_cap_kw: float | NDArray[np.float64],
                 tariff: Tariff, wear_cost_per_kwh: float = 0.0, circuits: Sequence[Circuit] = (),
                 min_import_kw: float | NDArray[np.float64] = 0.0, peak_floor_kw: float = 0.0,
                 energy_value: float | NDArray[np.float64] = ENERGY_VALUE) -> None:  # fmt: skip
        """``peak_floor_kw``: the demand charge's peak reached already (this month, before the
        horizon): power up to it costs no more demand charge. ``energy_value``: what a kWh
        delivered is worth, one value or one per session (per kWh; the default dominates any
        tariff, not a high demand charge)."""
        self.slots, self.slot_h, self.tariff, self.wear = slots, slot_h, tariff, wear_cost_per_kwh
        self.peak_floor_kw, self.energy_value = peak_floor_kw, energy_value
        self.cap, self.min_import = site_arrays(slots, site_cap_kw, min_import_kw, tariff)
        self.circuits = tuple(circuits)
        self.now = 0
        self._network = self._build(list(sessions))
        self._power = np.zeros((len(sessions), slots))  # the last plan, the past included
        self._peak: tuple[float, float] | None = None  # where the next plan looks first, and how far
        self._left: dict[int, int] = {}  # sessions that left early: index -> slot

    @property
    def sessions(self) -> list[Session]:
        return self._network.sessions

    def _build(self, sessions: list[Session]) -> _SiteNetwork:
        pairs = sum(min(s.departure, self.slots) - s.arrival for s in sessions if s.arrival < self.slots)
        # groups pay where every slot holds many chains (a busy day), not over a long, quiet horizon
        groups = max(1, min(pairs // self.GROUP_PAIRS, int(pairs / self.slots / self.GROUP_CHAINS)))
        return _SiteNetwork(sessions, self.slots, self.slot_h, self.cap, self.tariff, self.wear, self.SPARE_CHAINS,
                            groups, self.circuits, self.min_import, self.energy_value)  # fmt: skip

    def _sampled_peak(self) -> tuple[float, float] | None:
        """Where a first plan of many sessions looks for its peak, and how far off that may be:
        the best peaks of a few disjoint samples of every k-th session, each under 1/k of the site
        cap, scaled up; their mean and its standard error. A sample solves in a fraction of a
        second, and a close start saves the search one or two solves of the whole site, each far
        slower than the samples together."""
        k = len(self.sessions) // self.SAMPLE_SESSIONS
        if k < 2 or self.circuits or self.min_import.any():  # circuits and windows do not scale down
            return None
        peaks = []
        for offset in range(min(k, self.SAMPLES)):
            sample = self.sessions[offset::k]
            scale = len(self.sessions) / len(sample)
            planner = NetworkPlanner(sample, slots=self.slots, slot_h=self.slot_h, site_cap_kw=self.cap / scale,
                                     tariff=self.tariff, wear_cost_per_kwh=self.wear)  # fmt: skip
            peaks.append(scale * planner.solve().peak_kw)
        return float(np.mean(peaks)), float(np.std(peaks) / np.sqrt(len(peaks)))

    def solve(self, name: str = "optimal (network simplex)") -> Schedule:
        started = time.perf_counter()
        reached = max(float(self._power[:, : self.now].sum(axis=0).max(initial=0.0)), self.peak_floor_kw)
        if self._peak is None and self.tariff.demand_charge > 0:
            self._peak = self._sampled_peak()
        low = max(reached, float(self.min_import.max(initial=0.0)), 0.0)
        best = _cheapest_peak(self._network.solve, low, float(self.cap.max(initial=0.0)),
                              self.tariff.demand_charge, self._peak, 1 / (WH_PER_KWH * self.slot_h))  # fmt: skip
        self._power = best.power
        peak = max(float(best.power.sum(axis=0).max(initial=0.0)), reached)
        self._peak = (peak, 0.01 * peak)
        return Schedule(name, list(self.sessions), self._power.copy(), self.slot_h, self.tariff, self.wear,
                        solve_s=time.perf_counter() - started)  # fmt: skip

    def _advance(self, now: int) -> None:
        if not self.now <= now <= self.slots:
            raise PlanError(f"now ({now}) must be between the last re-plan ({self.now}) and the last slot")
        self.now = now

    def add_arrival(self, session: Session, now: int) -> None:
        """Keep the plan before ``now`` (it happened), and add ``session`` (plugged in from ``now``)."""
        if session.arrival < now:
            raise PlanError(f"session {session.id} arrives at {session.arrival}, before now ({now})")
        self._advance(now)
        self._power = np.vstack([self._power, np.zeros((1, self.slots))])
        if not self._network.activate(session):
            self._network = self._build([*self.sessions, session])
            for index, slot in self._left.items():
                self._network.close(index, slot)
        self._network.freeze(now, self._power)

    def depart(self, session_id: str, now: int) -> None:
        """The car of ``session_id`` left at ``now`` (earlier than it said): keep the past, plan
        the others without it."""
        index = next((i for i, s in enumerate(self.sessions) if s.id == session_id), None)
        if index is None:
            raise PlanError(f"no session {session_id!r} at this site")
        self._advance(now)
        self._left[index] = now
        self._network.close(index, now)
        self._network.freeze(now, self._power)

    def set_limits(self, now: int, site_cap_kw: float | NDArray[np.float64],
                   min_import_kw: float | NDArray[np.float64] = 0.0) -> None:  # fmt: skip
        """A grid signal from ``now`` on: the site cap and minimum import for the slots left (one
        value or one per slot of the day; the past keeps its own)."""
        self._advance(now)
        cap, minimum = site_arrays(self.slots, site_cap_kw, min_import_kw, self.tariff)
        future = np.arange(self.slots) >= now
        self.cap = np.where(future, cap, self.cap)
        self.min_import = np.where(future, minimum, self.min_import)
        self._network.set_site(self.cap, self.min_import)
        self._network.freeze(now, self._power)
        self._peak = None  # a different site: search for its peak afresh
