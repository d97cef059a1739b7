"""The optimal charging (and V2G) schedule for a site: a linear programme solved by HiGHS.

For every session i and slot t it is plugged in, three variables: charging power p, discharging
power d (V2G sessions only), and the net energy e delivered since arrival, linked by
e[t] = e[t-1] + (p - d) x slot. The site's import and export per slot and its peak are variables too.

- maximise the energy delivered first (each kWh is worth ``ENERGY_VALUE`` per kWh, more than any
  price), then minimise import cost - export revenue + demand charge x peak + wear x 2 x discharged
  energy (what is discharged must be charged again);
- e stays within what was asked for and, for V2G cars, within the battery window
  (min_soc .. 100 %) from the state of charge at arrival;
- the site's net load stays within the site cap, importing and exporting; exported energy earns at
  most the same slot's import price (otherwise buying and selling at once would pay);
- each circuit's net load (charging minus discharging of its stations) stays within its limit;
  in a flexibility window the site imports at least the minimum asked and exports nothing.

The whole model is built with numpy (no per-variable Python), so 10,000 sessions x 96 slots builds
in a fraction of a second; HiGHS does the rest. ``network_planner`` solves the same programme as a
min-cost flow several times faster; this LP stays as the reference it is checked against, and is
the place for constraints a flow cannot express.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import highspy
import numpy as np
from numpy.typing import NDArray

from opensdv.cloud.energy.errors import EnergyError
from opensdv.cloud.energy.planning.schedule import Schedule, wear_by_session
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.site_limits import Circuit
from opensdv.cloud.energy.planning.tariff import Tariff

__all__ = ["ENERGY_VALUE", "PlanError", "RollingPlanner", "site_arrays"]

ENERGY_VALUE = 10.0  # per kWh delivered: dominates any tariff, so delivering comes first


class PlanError(EnergyError):
    """The planning problem is malformed or the solver failed."""


def site_arrays(
    slots: int,
    site_cap_kw: float | NDArray[np.float64],
    min_import_kw: float | NDArray[np.float64],
    tariff: Tariff,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The site cap and the minimum import per slot, checked: what both solvers take."""
    try:
        cap = np.broadcast_to(np.asarray(site_cap_kw, dtype=np.float64), (slots,)).copy()
        minimum = np.broadcast_to(np.asarray(min_import_kw, dtype=np.float64), (slots,)).copy()
    except ValueError:
        raise PlanError(
            f"the site cap and the minimum import take one value or one per slot ({slots})"
        ) from None
    if (cap < 0).any() or len(tariff.energy_price) < slots or len(tariff.export_price) < slots:
        raise PlanError(f"site cap must be >= 0 and the tariff must cover all {slots} slots")
    if (minimum < 0).any() or (minimum > cap).any():
        raise PlanError("a minimum import must be >= 0 and within the site cap")
    return cap, minimum


def _circuit_entries(
    circuit_of_pair: NDArray[np.int64], slot_of: NDArray[np.int64], slots: int, row0: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Matrix entries (row, local column, value) putting pairs' p (+1) and d (-1) columns, whose
    local columns are 0..k-1 and k..2k-1, into the row of their circuit and slot."""
    k = len(slot_of)
    on = np.flatnonzero(circuit_of_pair >= 0)
    rows = row0 + circuit_of_pair[on] * slots + slot_of[on]
    return (
        np.concatenate([rows, rows]),
        np.concatenate([on, k + on]),
        np.concatenate([np.ones(len(on)), -np.ones(len(on))]),
    )


def _pairs(
    sessions: Sequence[Session], start: int, slots: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """(session index, slot, is-first-slot) for every slot each session is plugged in from ``start``."""
    first = np.array([max(s.arrival, start) for s in sessions], dtype=np.int64)
    last = np.array([min(s.departure, slots) for s in sessions], dtype=np.int64)
    length = np.maximum(last - first, 0)
    total = int(length.sum())
    session_of = np.repeat(np.arange(len(sessions)), length)
    offsets = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    slot_of = first[session_of] + (np.arange(total) - offsets[session_of])
    is_first = np.zeros(total, dtype=bool)
    is_first[offsets[length > 0]] = True
    return session_of, slot_of, is_first


def _energy_window(
    sessions: Sequence[Session], done: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bounds of the net energy since arrival: what is still asked for, and the V2G battery window."""
    remaining = np.maximum(np.array([s.kwh_requested for s in sessions]) - done, 0.0)
    low = np.zeros(len(sessions))
    high = remaining.copy()
    for i, s in enumerate(sessions):
        if s.v2g:
            capacity, soc = s.capacity_kwh or 0.0, s.arrival_soc or 0.0  # both set for V2G (Session checks)
            energy_now = soc * capacity + done[i]
            low[i] = min(0.0, s.min_soc * capacity - energy_now)
            high[i] = min(remaining[i], capacity - energy_now)
    return low, high


def _session_columns(
    sessions: Sequence[Session],
    session_of: NDArray[np.int64],
    is_first: NDArray[np.bool_],
    slot_of: NDArray[np.int64],
    low: NDArray[np.float64],
    high: NDArray[np.float64],
    slot_h: float,
    wear: float,
    dynamics_row0: int,
    balance_row0: int,
) -> tuple[NDArray[Any], ...]:
    """Costs, bounds and matrix entries (row, local column, value) of the p, d, e columns of some
    (session, slot) pairs, whose dynamics rows start at ``dynamics_row0``."""
    k = len(session_of)
    max_kw = np.array([s.max_kw for s in sessions])[session_of]
    max_dis = np.array([s.max_discharge_kw for s in sessions])[session_of]
    wear_of_pair = wear_by_session(list(sessions), wear)[session_of]
    cost = np.concatenate(
        [
            np.full(k, -ENERGY_VALUE * slot_h),
            ENERGY_VALUE * slot_h + 2 * wear_of_pair * slot_h,
            np.zeros(k),
        ]
    )
    lower = np.concatenate([np.zeros(2 * k), low[session_of]])
    upper = np.concatenate([max_kw, max_dis, high[session_of]])
    pairs = np.arange(k)
    prev = np.flatnonzero(~is_first)
    rows = np.concatenate([dynamics_row0 + pairs, dynamics_row0 + pairs, dynamics_row0 + pairs, dynamics_row0 + prev,
                           balance_row0 + slot_of, balance_row0 + slot_of])  # fmt: skip
    cols = np.concatenate([pairs, k + pairs, 2 * k + pairs, 2 * k + prev - 1, pairs, k + pairs])
    vals = np.concatenate(
        [np.full(k, -slot_h), np.full(k, slot_h), np.ones(k), -np.ones(len(prev)), np.ones(k), -np.ones(k)]
    )
    return cost, lower, upper, rows, cols, vals


def _csc(
    n_cols: int, rows: NDArray[Any], cols: NDArray[Any], vals: NDArray[Any]
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    order = np.lexsort((rows, cols))
    start = np.concatenate([[0], np.cumsum(np.bincount(cols, minlength=n_cols))]).astype(np.int32)
    return start, rows[order].astype(np.int32), vals[order]


class RollingPlanner:
    """Model-predictive control for a site: one HiGHS model kept from plan to plan.

    ``add_arrival(session, now)`` freezes everything before ``now`` at what was planned (it has
    happened), adds the new car's variables and re-optimises the rest; HiGHS starts from the last
    optimal basis, so a re-plan costs a fraction of a full solve.
    """

    def __init__(self, sessions: Sequence[Session], *, slots: int, slot_h: float, site_cap_kw: float | NDArray[np.float64],
                 tariff: Tariff, wear_cost_per_kwh: float = 0.0, circuits: Sequence[Circuit] = (),
                 min_import_kw: float | NDArray[np.float64] = 0.0) -> None:  # fmt: skip
        self.sessions = list(sessions)
        self.slots, self.slot_h, self.tariff, self.wear = slots, slot_h, tariff, wear_cost_per_kwh
        cap, minimum = site_arrays(slots, site_cap_kw, min_import_kw, tariff)
        self.cap = cap
        self._circuit_of_station = {station: n for n, c in enumerate(circuits) for station in c.stations}
        self._now = 0  # the last re-plan's slot
        session_of, slot_of, is_first = _pairs(self.sessions, 0, slots)
        low, high = _energy_window(self.sessions, np.zeros(len(self.sessions)))
        K, T = len(session_of), slots
        cost, lower, upper, rows, cols, vals = _session_columns(
            self.sessions, session_of, is_first, slot_of, low, high, slot_h, wear_cost_per_kwh, 0, K
        )
        # site columns after the pairs': import[T], export[T], peak;
        # rows: dynamics[K], balance[T], peak[T], circuits[C x T]
        price = tariff.energy_price[:T]
        # a site cannot import and export at once; an LP could, if export paid more than import cost,
        # so export is valued at most at the import price of the same slot (feed-in premiums excluded)
        export_price = np.minimum(tariff.export_price[:T], price)
        base = self._site_col0 = 3 * K
        t = np.arange(T)
        cost = np.concatenate([cost, price * slot_h, -export_price * slot_h, [tariff.demand_charge]])
        lower = np.concatenate([lower, minimum, np.zeros(T + 1)])
        upper = np.concatenate([upper, cap, np.where(minimum > 0, 0.0, cap), [highspy.kHighsInf]])
        self._circuit_row0 = K + 2 * T
        c_rows, c_cols, c_vals = _circuit_entries(
            self._circuits_of(session_of), slot_of, T, self._circuit_row0
        )
        rows = np.concatenate([rows, K + t, K + t, K + T + t, K + T + t, c_rows])
        cols = np.concatenate([cols, base + t, base + T + t, base + t, np.full(T, base + 2 * T), c_cols])
        vals = np.concatenate([vals, -np.ones(T), np.ones(T), np.ones(T), -np.ones(T), c_vals])
        limit = np.repeat([c.max_kw for c in circuits], T)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(cost), K + 2 * T + len(limit)
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
        lp.row_lower_ = np.concatenate([np.zeros(K + T), np.full(T, -highspy.kHighsInf), -limit])
        lp.row_upper_ = np.concatenate([np.zeros(K + 2 * T), limit])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        starts, indices, values = _csc(len(cost), rows, cols, vals)
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = starts, indices, values
        self._solver = highspy.Highs()  # type: ignore[no-untyped-call]
        self._solver.setOptionValue("output_flag", False)
        self._solver.setOptionValue("threads", 1)
        self._solver.passModel(lp)
        self._balance_row0 = K
        # where each pair's p and d columns are: (session, slot, p column, d column)
        self._session_of, self._slot_of = session_of, slot_of
        self._p_col, self._d_col = np.arange(K), K + np.arange(K)

    def _circuits_of(
        self, session_of: NDArray[np.int64], sessions: Sequence[Session] | None = None
    ) -> NDArray[np.int64]:
        chosen = self.sessions if sessions is None else sessions
        by_session = np.array([self._circuit_of_station.get(s.station, -1) for s in chosen], dtype=np.int64)
        return by_session[session_of]

    def solve(self, name: str = "optimal (HiGHS)") -> Schedule:
        started = time.perf_counter()
        self._solver.run()
        status = self._solver.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            raise PlanError(
                "no schedule meets the site's limits: the cars plugged in cannot take the minimum "
                "import a flexibility window asks for"
            )
        if status != highspy.HighsModelStatus.kOptimal:
            raise PlanError(f"HiGHS could not solve the schedule: {self._solver.modelStatusToString(status)}")
        solution = np.asarray(self._solver.getSolution().col_value)
        power = np.zeros((len(self.sessions), self.slots))
        power[self._session_of, self._slot_of] = solution[self._p_col] - solution[self._d_col]
        power[np.abs(power) < 1e-9] = 0.0
        self._last = solution
        return Schedule(
            name,
            self.sessions,
            power,
            self.slot_h,
            self.tariff,
            self.wear,
            solve_s=time.perf_counter() - started,
        )

    def _freeze(self, now: int) -> None:
        if not self._now <= now <= self.slots:
            raise PlanError(f"now ({now}) must be between the last re-plan and the last slot")
        self._now = now
        past = np.flatnonzero(self._slot_of < now)
        if past.size and hasattr(self, "_last"):
            frozen = np.concatenate([self._p_col[past], self._d_col[past]]).astype(np.int32)
            values = self._last[frozen]
            self._solver.changeColsBounds(len(frozen), frozen, values, values)

    def depart(self, session_id: str, now: int) -> None:
        """The car of ``session_id`` left at ``now``: keep the past, nothing for it from now on."""
        index = next((i for i, s in enumerate(self.sessions) if s.id == session_id), None)
        if index is None:
            raise PlanError(f"no session {session_id!r} at this site")
        self._freeze(now)
        later = np.flatnonzero((self._session_of == index) & (self._slot_of >= now))
        columns = np.concatenate([self._p_col[later], self._d_col[later]]).astype(np.int32)
        self._solver.changeColsBounds(len(columns), columns, np.zeros(len(columns)), np.zeros(len(columns)))

    def set_limits(self, now: int, site_cap_kw: float | NDArray[np.float64],
                   min_import_kw: float | NDArray[np.float64] = 0.0) -> None:  # fmt: skip
        """A grid signal from ``now`` on: the cap and minimum import of the slots left."""
        self._freeze(now)
        cap, minimum = site_arrays(self.slots, site_cap_kw, min_import_kw, self.tariff)
        t = np.arange(now, self.slots)
        imports, exports = (self._site_col0 + t).astype(np.int32), (self._site_col0 + self.slots + t).astype(np.int32)
        self._solver.changeColsBounds(len(t), imports, minimum[t], cap[t])
        self._solver.changeColsBounds(len(t), exports, np.zeros(len(t)), np.where(minimum[t] > 0, 0.0, cap[t]))
        self.cap[t] = cap[t]

    def add_arrival(self, session: Session, now: int) -> None:
        """Freeze the past at the last plan, and add ``session`` (plugged in from ``now``)."""
        if session.arrival < now:
            raise PlanError(f"session {session.id} arrives at {session.arrival}, before now ({now})")
        self._freeze(now)
        index = len(self.sessions)
        self.sessions.append(session)
        session_of, slot_of, is_first = _pairs([session], now, self.slots)
        low, high = _energy_window([session], np.zeros(1))
        row0 = self._solver.getNumRow()
        col0 = self._solver.getNumCol()
        k = len(session_of)
        cost, lower, upper, rows, cols, vals = _session_columns(
            [session],
            session_of,
            is_first,
            slot_of,
            low,
            high,
            self.slot_h,
            self.wear,
            row0,
            self._balance_row0,
        )
        self._solver.addRows(
            k,
            np.zeros(k),
            np.zeros(k),
            0,
            np.array([], dtype=np.int32),
            np.array([], dtype=np.int32),
            np.array([]),
        )
        c_rows, c_cols, c_vals = _circuit_entries(
            self._circuits_of(np.zeros(k, dtype=np.int64), [session]), slot_of, self.slots, self._circuit_row0
        )
        rows, cols, vals = (
            np.concatenate([rows, c_rows]),
            np.concatenate([cols, c_cols]),
            np.concatenate([vals, c_vals]),
        )
        start, indices, values = _csc(3 * k, rows, cols, vals)
        self._solver.addCols(3 * k, cost, lower, upper, len(indices), start[:-1], indices, values)
        self._session_of = np.concatenate([self._session_of, np.full(k, index)])
        self._slot_of = np.concatenate([self._slot_of, slot_of])
        self._p_col = np.concatenate([self._p_col, col0 + np.arange(k)])
        self._d_col = np.concatenate([self._d_col, col0 + k + np.arange(k)])
