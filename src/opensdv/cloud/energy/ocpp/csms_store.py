"""The CSMS's state in the storage seam (SQLite by default, PostgreSQL by URL): a CSMS restart
loses no station and no transaction, finished or open."""

from __future__ import annotations

import json

from opensdv.cloud.energy.ocpp.csms_state import StationState, Transaction
from opensdv.storage.database import Database
from opensdv.storage.tables import CsmsStationRow, CsmsTransactionRow

__all__ = ["CsmsStore"]


class CsmsStore:
    """The CSMS's durable state (stations, transactions, local lists) in the platform database, so a restart loses nothing."""
    def __init__(self, database: Database) -> None:
        self._db = database

    def load(self) -> dict[str, StationState]:
        with self._db.session() as session:
            states = {}
            for row in session.query(CsmsStationRow).all():
                connectors = {
                    tuple(int(p) for p in k.split("/")): v for k, v in json.loads(row.connectors).items()
                }
                needs = {int(evse): need for evse, need in json.loads(row.ev_needs or "{}").items()}
                states[row.station_id] = StationState(
                    row.station_id, row.vendor, row.model, row.firmware, row.last_heartbeat,
                    connectors=connectors, ev_needs=needs,  # type: ignore[arg-type]
                )  # fmt: skip
            for tx in session.query(CsmsTransactionRow).all():
                states[tx.station_id].transactions[tx.transaction_id] = Transaction(
                    tx.transaction_id, tx.evse_id, tx.started, tx.id_token, tx.energy_wh, tx.power_w, tx.ended,
                    tx.stopped_reason, tx.meter_start_wh,
                )  # fmt: skip
            return states

    def save(self, state: StationState, transaction: Transaction | None = None) -> None:
        """Write the station (and the transaction that changed) in one transaction."""
        connectors = json.dumps(
            {f"{evse}/{connector}": s for (evse, connector), s in state.connectors.items()}
        )
        with self._db.session() as session:
            session.merge(
                CsmsStationRow(
                    station_id=state.station_id, vendor=state.vendor, model=state.model, firmware=state.firmware,
                    last_heartbeat=state.last_heartbeat, connectors=connectors,
                    ev_needs=json.dumps({str(evse): need for evse, need in state.ev_needs.items()}),
                )
            )  # fmt: skip
            if transaction is not None:
                session.flush()
                session.merge(
                    CsmsTransactionRow(
                        transaction_id=transaction.transaction_id, station_id=state.station_id,
                        evse_id=transaction.evse_id, started=transaction.started, id_token=transaction.id_token,
                        energy_wh=transaction.energy_wh, power_w=transaction.power_w, ended=transaction.ended,
                        stopped_reason=transaction.stopped_reason, meter_start_wh=transaction.meter_start_wh,
                    )
                )  # fmt: skip
