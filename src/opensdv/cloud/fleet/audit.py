"""The audit log: every action an operator takes that changes a car or a campaign, with who did it
and for which tenant — in the platform database (queried at ``GET /api/v1/audit``) and as a log
line (``opensdv.audit``) for the site's log collection. Written before the API answers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.fleet.operators import PLATFORM, Operator
from opensdv.storage.database import Database
from opensdv.storage.tables import AuditRow

__all__ = ["AuditEntry", "AuditLog"]

log = logging.getLogger("opensdv.audit")


@dataclass(frozen=True)
class AuditEntry:
    at: float
    operator: str
    tenant: str
    action: str
    target: str
    detail: str


class AuditLog:
    """Records operators' actions in the ``audit`` table and the ``opensdv.audit`` log."""

    def __init__(self, database: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self._db = database
        self.clock = clock

    def record(self, who: Operator, action: str, target: str, detail: str = "") -> None:
        at = self.clock.time()
        with self._db.session() as session:
            session.add(AuditRow(
                at=datetime.fromtimestamp(at, UTC), operator=who.name, tenant=who.tenant, action=action,
                target=target, detail=detail,
            ))  # fmt: skip
        log.info("%s (%s) %s %s %s", who.name, who.tenant, action, target, detail)

    def entries(self, caller: Operator, limit: int = 100) -> list[AuditEntry]:
        """The newest first; a brand's operator sees its own tenant's entries only."""
        with self._db.session() as session:
            query = session.query(AuditRow)
            if caller.tenant != PLATFORM:
                query = query.filter(AuditRow.tenant == caller.tenant)
            rows = query.order_by(AuditRow.id.desc()).limit(limit).all()
            return [
                AuditEntry(_epoch(r.at), r.operator, r.tenant, r.action, r.target, r.detail) for r in rows
            ]


def _epoch(at: datetime) -> float:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
