"""Energy services: smart charging and V2G planning for charging sites (more to come: OCPP CSMS,
battery second life and passport).

``load_sessions`` reads the plain session format; ``plan`` finds the optimal schedule (a min-cost
flow, or the same programme as an LP solved by HiGHS); ``schedule_greedy`` runs the usual baselines (uncontrolled, earliest deadline first, least
laxity first, round robin) for comparison.
"""

from opensdv.cloud.energy.errors import EnergyError
from opensdv.cloud.energy.planning import plan
from opensdv.cloud.energy.planning.baselines import BASELINES, schedule_greedy
from opensdv.cloud.energy.planning.optimiser import PlanError
from opensdv.cloud.energy.planning.schedule import Schedule
from opensdv.cloud.energy.planning.sessions import Session, SessionError, load_sessions, with_v2g
from opensdv.cloud.energy.planning.tariff import Tariff, time_of_use

__all__ = [
    "BASELINES",
    "EnergyError",
    "PlanError",
    "Schedule",
    "Session",
    "SessionError",
    "Tariff",
    "load_sessions",
    "plan",
    "schedule_greedy",
    "time_of_use",
    "with_v2g",
]
