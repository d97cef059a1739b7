"""A managed charging site run online, for real stations: the cars at its stations as OCPP and
ISO 15118 describe them, re-planned whenever one plugs in, says what it needs or leaves, when a
grid signal comes, and at every slot; the plan's current slot sent as charging profiles.

Each re-plan looks ``horizon_hours`` ahead from now (a receding horizon: the past has happened,
what it cost is in the month's peak) over the cars present. These choices make that work online:

- energy the plan could deliver now or later at the same price goes now (a small time
  preference, as ACN's adaptive scheduling does with its quick-charge term), so the capacity
  later arrivals need is still free when they come;
- the month's peak so far is the floor of the demand charge: power up to it costs nothing more,
  and no car is left short to keep the peak down (a kWh is worth more than a slot's demand charge);
- the cars the site's own history says are coming hold capacity in the plan (a forecast of
  arrivals by hour of day, valued below real cars);
- a car says what it needs through ISO 15118 (NotifyEVChargingNeeds: departure, energy, power),
  else its driver through the fleet API, else the site's defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.dispatch import ProfileDispatcher
from opensdv.cloud.energy.errors import EnergyError
from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.ocpp.csms_state import StationState, Transaction
from opensdv.cloud.energy.planning.network_planner import NetworkPlanner
from opensdv.cloud.energy.planning.optimiser import ENERGY_VALUE
from opensdv.cloud.energy.planning.schedule import Schedule
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.tariff import Tariff, time_of_use
from opensdv.cloud.energy.site_file import ManagedSite

__all__ = ["DriverNeeds", "GridSignal", "PresentCar", "PriceSignal", "SiteController"]

log = logging.getLogger("opensdv.energy.site")

TIME_PREFERENCE = 1e-4  # currency per kWh per slot later: the planner's smallest price step
FORECAST_DAYS = 14  # the site's own history the forecast of arrivals learns from
FORECAST_VALUE = 0.5  # a forecast car's kWh is worth half a real one's: real cars win every tie
FORECAST_MARGIN = 1.5  # the expected cars held with a margin: arrivals vary from day to day (bench/energy_online.py)
DAY_S = 86_400.0


@dataclass(frozen=True)
class DriverNeeds:
    """What a driver said through the fleet API: when the car leaves and how much it wants."""

    departure_s: float
    kwh: float


@dataclass(frozen=True)
class GridSignal:
    """The site may draw at most ``cap_kw`` from ``start_s`` to ``end_s`` (epoch seconds)."""

    start_s: float
    end_s: float
    cap_kw: float
    source: str = "api"


@dataclass(frozen=True)
class PriceSignal:
    """Energy costs ``price`` per kWh from ``start_s`` to ``end_s`` (a utility's price event)."""

    start_s: float
    end_s: float
    price: float
    source: str = "api"


@dataclass(frozen=True)
class PresentCar:
    """A car plugged in now, as the site plans for it."""

    transaction_id: str
    station: str
    evse_id: int
    id_token: str | None
    started_s: float
    departure_s: float
    kwh_requested: float
    kwh_delivered: float
    max_kw: float
    needs_from: Literal["iso15118", "driver", "site defaults"]

    @property
    def kwh_missing(self) -> float:
        return max(self.kwh_requested - self.kwh_delivered, 0.0)


def _epoch(timestamp: str | None) -> float | None:
    """An OCPP timestamp as epoch seconds (a time without zone is taken as UTC), None if unreadable."""
    if not timestamp:
        return None
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _positive(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) and value > 0 else None


@dataclass
class SiteController:
    """Plans and dispatches ``site`` over ``csms``'s stations. ``run`` until stopped; the fleet API
    shows it (``session_plans``, ``load_curve``, ``dispatcher.sent``)."""

    site: ManagedSite
    csms: Csms
    clock: Clock = SYSTEM_CLOCK
    time_preference: float = TIME_PREFERENCE
    forecast: bool = True
    schedule: Schedule | None = None
    cars: list[PresentCar] = field(default_factory=list)
    signals: list[GridSignal] = field(default_factory=list)
    prices: list[PriceSignal] = field(default_factory=list)
    driver_needs: dict[str, DriverNeeds] = field(default_factory=dict)  # by transaction id
    month_peak_kw: float = 0.0
    replans: int = 0
    last_solve_s: float = 0.0
    dispatcher: ProfileDispatcher = field(init=False)
    slot: int = 0  # the plan always starts now: its slot 0 is the current one

    def __post_init__(self) -> None:
        unknown = sorted({s.id for s in self.site.stations} - set(self.csms.stations))
        if unknown:
            raise EnergyError(f"site {self.site.name!r}: the CSMS does not serve stations {unknown}")
        self.dispatcher = ProfileDispatcher(self.csms)
        self._changed = asyncio.Event()
        self._shapes: dict[str, object] = {}
        self._month: tuple[int, int] | None = None
        self.csms.on_change(self._station_changed)

    # -- what the API shows (the same as ChargingSite's) ------------------------------------------
    @property
    def name(self) -> str:
        return self.site.name

    @property
    def cap_kw(self) -> float:
        return self.site.site_cap_kw

    @property
    def slot_h(self) -> float:
        return self.site.slot_minutes / 60

    def session_plans(self) -> list[dict[str, object]]:
        """Each car with what the plan gives it over the horizon and in this slot."""
        if self.schedule is None:
            return []
        delivered, power = self.schedule.delivered_kwh, self.schedule.power_kw
        return [
            {"id": car.id_token or car.transaction_id, "transaction_id": car.transaction_id, "station": car.station,
             "departure": datetime.fromtimestamp(car.departure_s, UTC).isoformat(timespec="seconds"),
             "needs_from": car.needs_from, "kwh_requested": round(car.kwh_requested, 3),
             "kwh_delivered": round(car.kwh_delivered, 3), "kwh_planned": round(float(delivered[i]), 3),
             "kw_now": round(float(power[i, 0]), 2), "v2g": False}
            for i, car in enumerate(self.cars)
        ]  # fmt: skip

    def load_curve(self) -> list[float]:
        """The plan's site power per slot for the cars present (the forecast's cars left out)."""
        if self.schedule is None:
            return []
        return [round(float(v), 2) for v in self.schedule.power_kw[: len(self.cars)].sum(axis=0)]

    # -- inputs ---------------------------------------------------------------------------------
    def set_driver_needs(self, transaction_id: str, needs: DriverNeeds) -> None:
        """The driver's departure and energy for a car whose station reports no ISO 15118 needs."""
        self.driver_needs[transaction_id] = needs
        self._changed.set()

    def add_signal(self, signal: GridSignal) -> None:
        """A grid signal (a utility's event, or an operator's): the next plan keeps under it."""
        if not (math.isfinite(signal.cap_kw) and signal.cap_kw >= 0 and signal.end_s > signal.start_s):
            raise EnergyError(f"a grid signal needs a cap >= 0 kW and an end after its start, got {signal}")
        self.signals.append(signal)
        self._changed.set()

    def add_grid_event(
        self, source: str, caps: list[tuple[float, float, float]], prices: list[tuple[float, float, float]]
    ) -> None:
        """A utility's event (OpenADR): its cap and price intervals, each (start, end, value)."""
        for start, end, cap in caps:
            self.add_signal(GridSignal(start, end, cap, source))
        for start, end, price in prices:
            if not (math.isfinite(price) and end > start):
                raise EnergyError(f"a price signal needs a finite price and an end after its start, got {price}")
            self.prices.append(PriceSignal(start, end, price, source))
        self._changed.set()

    def remove_signals(self, source: str) -> None:
        """Drop what ``source`` said (a modified or cancelled event)."""
        self.signals = [s for s in self.signals if s.source != source]
        self.prices = [p for p in self.prices if p.source != source]
        self._changed.set()

    def _station_changed(self, station_id: str) -> None:
        """Re-plan only when what the plan depends on changed (not for every meter value)."""
        state = self.csms.stations.get(station_id)
        if state is None:
            return
        shape = (
            station_id in self.csms.connected(),
            sorted(t.transaction_id for t in state.transactions.values() if t.ended is None),
            repr(sorted(state.ev_needs.items())),
        )
        if self._shapes.get(station_id) != shape:
            self._shapes[station_id] = shape
            self._changed.set()

    # -- planning -------------------------------------------------------------------------------
    def present_cars(self, now: float) -> list[PresentCar]:
        """The cars plugged in at the site's stations (open transactions), with their needs."""
        cars = []
        for record in self.site.stations:
            state = self.csms.stations[record.id]
            for transaction in state.transactions.values():
                if transaction.ended is None:
                    cars.append(self._car(record.max_kw, state, transaction, now))
        return cars

    def _car(self, station_kw: float, state: StationState, transaction: Transaction, now: float) -> PresentCar:
        started = _epoch(transaction.started) or now
        needs = state.ev_needs.get(transaction.evse_id, {})
        departure, kwh = _epoch(needs.get("departure_time")), _positive(needs.get("energy_wh"))
        source: Literal["iso15118", "driver", "site defaults"] = "iso15118"
        driver = self.driver_needs.get(transaction.transaction_id)
        if departure is None or kwh is None:
            if driver is not None:
                departure, kwh, source = driver.departure_s, driver.kwh * 1000, "driver"
            else:
                defaults = self.site.defaults
                departure = departure or started + defaults.dwell_hours * 3600
                kwh, source = kwh or defaults.kwh * 1000, "site defaults"
        car_kw = _positive(needs.get("max_power_w"))
        return PresentCar(
            transaction.transaction_id, state.station_id, transaction.evse_id, transaction.id_token, started, departure,
            kwh / 1000, max(transaction.energy_wh, 0.0) / 1000,
            min(station_kw, car_kw / 1000) if car_kw else station_kw, source,
        )  # fmt: skip

    def _tariff(self, slot_start: float, slots: int) -> Tariff:
        local = datetime.fromtimestamp(slot_start, self.site.zone)
        prices = self.site.tariff
        base = time_of_use(
            slots, self.site.slot_minutes, start_hour=local.hour + local.minute / 60, peak=prices.peak_hours,
            off_peak_price=prices.off_peak_price, peak_price=prices.peak_price,
            export_share=prices.export_share, demand_charge=prices.demand_charge,
        )  # fmt: skip
        energy, export = base.energy_price.copy(), base.export_price.copy()
        starts = slot_start + np.arange(slots) * self.site.slot_s
        for signal in self.prices:
            during = (starts + self.site.slot_s > signal.start_s) & (starts < signal.end_s)
            energy[during], export[during] = signal.price, signal.price * prices.export_share
        later = self.time_preference * np.arange(slots)
        return Tariff(energy + later, export, base.demand_charge)

    def _energy_value(self, tariff: Tariff) -> float:
        """A kWh delivered is worth more than the demand charge of the power that delivers it in
        one slot: the site never leaves a car short to keep its peak down."""
        return max(ENERGY_VALUE, 2 * tariff.demand_charge / self.slot_h + float(tariff.energy_price.max(initial=0.0)))

    def _past_cars(self, now: float) -> tuple[float, list[tuple[float, float, float, float]]]:
        """The cars that came and went in the last ``FORECAST_DAYS`` days — (arrival, stay s,
        kWh delivered, kW) — and since when the site knows, from the CSMS's stored transactions:
        a restart forgets nothing."""
        since, past = now, []
        for record in self.site.stations:
            for transaction in self.csms.stations[record.id].transactions.values():
                started, ended = _epoch(transaction.started), _epoch(transaction.ended)
                if started is None:
                    continue
                since = min(since, started)
                if ended is not None and ended > started and started > now - (FORECAST_DAYS + 1) * DAY_S:
                    past.append((started, ended - started, max(transaction.energy_wh, 0.0) / 1000, record.max_kw))
        return since, past

    def _forecast(self, slot_start: float, slots: int) -> list[Session]:
        """The cars the site expects over the horizon from its own history: the cars of the
        same kind of day (weekday or weekend) in the same hours of the last ``FORECAST_DAYS`` days,
        averaged, in half-hour and hour buckets (arrival, stay), with ``FORECAST_MARGIN``. They hold capacity in the plan,
        so a car present now is not put off into hours the coming ones will need."""
        zone, slot_s = self.site.zone, self.site.slot_s
        since, past = self._past_cars(slot_start)
        weekend = datetime.fromtimestamp(slot_start, zone).weekday() >= 5
        days = [n for n in range(1, FORECAST_DAYS + 1) if slot_start - n * DAY_S >= since
                and (datetime.fromtimestamp(slot_start - n * DAY_S, zone).weekday() >= 5) == weekend]  # fmt: skip
        half_hour, hour = max(round(1800 / slot_s), 1), max(round(3600 / slot_s), 1)
        buckets: dict[tuple[int, int], list[float]] = {}
        for n in days:
            start = slot_start - n * DAY_S
            for arrival, dwell, kwh, kw in past:
                if start + slot_s <= arrival < start + slots * slot_s:
                    key = (int((arrival - start) // slot_s) // half_hour * half_hour, max(int(dwell // 3600), 1) * hour)
                    total = buckets.setdefault(key, [0.0, 0.0])
                    total[0], total[1] = total[0] + kwh, total[1] + kw
        return [
            Session(f"forecast {a}+{d}", "(forecast)", arrival=max(a, 1), departure=min(max(a, 1) + d, slots),
                    kwh_requested=round(FORECAST_MARGIN * kwh / len(days), 3), max_kw=FORECAST_MARGIN * kw / len(days))
            for (a, d), (kwh, kw) in sorted(buckets.items()) if max(a, 1) < slots and kwh > 0
        ]  # fmt: skip

    def _caps(self, slot_start: float, slots: int) -> np.ndarray:
        cap = np.full(slots, self.site.site_cap_kw)
        starts = slot_start + np.arange(slots) * self.site.slot_s
        for signal in self.signals:
            during = (starts + self.site.slot_s > signal.start_s) & (starts < signal.end_s)
            cap[during] = np.minimum(cap[during], signal.cap_kw)
        return cap

    def _follow_month_peak(self, now: float) -> None:
        """The month's highest measured site power (the demand charge's base), from the stations."""
        local = datetime.fromtimestamp(now, self.site.zone)
        if self._month != (local.year, local.month):
            self._month, self.month_peak_kw = (local.year, local.month), 0.0
        measured = sum(
            max(t.power_w or 0.0, 0.0) / 1000
            for record in self.site.stations
            for t in self.csms.stations[record.id].transactions.values()
            if t.ended is None
        )
        self.month_peak_kw = max(self.month_peak_kw, measured)

    def plan(self) -> Schedule:
        """Plan the cars present now over the horizon; the result's slot 0 is the current slot."""
        started = time.perf_counter()
        now = self.clock.time()
        slot_s, slots = self.site.slot_s, self.site.horizon_slots
        slot_start = math.floor(now / slot_s) * slot_s
        self.signals = [s for s in self.signals if s.end_s > now]
        self.prices = [p for p in self.prices if p.end_s > now]
        self._follow_month_peak(now)
        cars = self.present_cars(now)
        present = {car.transaction_id for car in cars}
        self.driver_needs = {tid: needs for tid, needs in self.driver_needs.items() if tid in present}
        sessions = [
            Session(car.transaction_id, car.station, arrival=0,
                    departure=min(max(math.ceil((car.departure_s - slot_start) / slot_s), 1), slots),
                    kwh_requested=round(car.kwh_missing, 3), max_kw=car.max_kw)
            for car in cars
        ]  # fmt: skip
        tariff = self._tariff(slot_start, slots)
        expected = self._forecast(slot_start, slots) if self.forecast and sessions else []
        value = self._energy_value(tariff)
        values = np.array([value] * len(sessions) + [FORECAST_VALUE * value] * len(expected))
        sessions += expected
        if sessions:
            planner = NetworkPlanner(
                sessions, slots=slots, slot_h=self.slot_h, site_cap_kw=self._caps(slot_start, slots), tariff=tariff,
                circuits=self.site.circuit_limits(), peak_floor_kw=self.month_peak_kw,
                energy_value=values,
            )  # fmt: skip
            schedule = planner.solve("site plan")
        else:
            schedule = Schedule("site plan", [], np.zeros((0, slots)), self.slot_h, tariff)
        self.cars, self.schedule = cars, schedule
        self.replans += 1
        self.last_solve_s = time.perf_counter() - started
        return schedule

    async def step(self) -> dict[str, float | None]:
        """Re-plan now and send what changed; a station that reconnected gets its limit again."""
        for station_id in list(self.dispatcher.sent):
            if station_id not in self.csms.connected():
                del self.dispatcher.sent[station_id]
        self._changed.clear()
        schedule = await asyncio.to_thread(self.plan)
        sent = await self.dispatcher.dispatch(schedule, 0)
        if sent:
            limits = ", ".join(f"{sid} {'cleared' if w is None else f'{w / 1000:g} kW'}" for sid, w in sorted(sent.items()))
            log.info("site %s: %d cars; sent %s (plan %.0f ms)", self.site.name, len(self.cars), limits, self.last_solve_s * 1000)
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """Re-plan at every slot boundary and whenever a car, a driver or the grid changes
        something, until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.step()
            except EnergyError as error:  # a plan that cannot be made is logged; the site keeps its last profiles
                log.error("site %s: %s", self.site.name, error)
            slot_s = self.site.slot_s
            until_boundary = slot_s - self.clock.time() % slot_s
            waits = [asyncio.ensure_future(w) for w in (stop.wait(), self._changed.wait(), self.clock.sleep(until_boundary))]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.gather(*waits, return_exceptions=True)
