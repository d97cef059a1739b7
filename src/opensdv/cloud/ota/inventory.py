"""The director's inventory: each vehicle's ECUs, their keys and what they last reported installed.

It extends the fleet's vehicle registry (same database, the storage seam) rather than copying it:
a vehicle is registered once, then enrolled for OTA with the public key of every ECU.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from securesystemslib.signer import Key, SSlibKey
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from opensdv.storage.database import Database, StorageError
from opensdv.storage.tables import EcuRow, OtaEcuRow, OtaEventRow, OtaVehicleRow, VehicleRow

__all__ = ["RECENT_NONCES", "EcuState", "InstalledReport", "Inventory", "OtaEvent", "VehicleState"]

RECENT_NONCES = 64  # per ECU: reports within the same trusted time are told apart by these


@dataclass(frozen=True)
class EcuState:
    name: str
    serial: str
    hardware_id: str
    public_key: Key | None
    is_primary: bool
    installed_filename: str | None
    installed_version: str | None
    release_counter: int
    last_nonce: str | None
    last_report_time: datetime | None = None  # the ECU's trusted time in its last accepted report
    recent_nonces: tuple[str, ...] = ()


@dataclass(frozen=True)
class VehicleState:
    """A vehicle's last reported configuration: what campaigns target and check dependencies on."""

    vin: str
    brand: str
    model: str
    definition_id: str
    market: str
    rxswin: str
    enrolled: bool
    ecus: tuple[EcuState, ...]

    def ecu(self, serial: str) -> EcuState | None:
        return next((e for e in self.ecus if e.serial == serial), None)

    @property
    def primary(self) -> EcuState | None:
        return next((e for e in self.ecus if e.is_primary), None)


@dataclass(frozen=True)
class InstalledReport:
    """What one verified ECU report says is installed."""

    serial: str
    filename: str
    sha256: str
    version: str | None
    release_counter: int
    nonce: str
    at: datetime  # when the director received it
    report_time: datetime | None = None  # the ECU's trusted time the report states


@dataclass(frozen=True)
class OtaEvent:
    vin: str
    ecu_serial: str
    at: datetime
    kind: str
    detail: str


def _ecu_state(ecu: EcuRow | Row[Any], ota: OtaEcuRow | Row[Any] | None) -> EcuState:
    """From ORM rows, or from one plain row of both tables' columns (a whole fleet's read)."""
    return EcuState(
        name=ecu.name,
        serial=ecu.serial,
        hardware_id=ecu.hardware_id,
        public_key=SSlibKey.from_dict(*_key_parts(ota.public_key)) if ota else None,
        is_primary=bool(ota and ota.is_primary),
        installed_filename=ota.installed_filename if ota else None,
        installed_version=ota.installed_version if ota else None,
        release_counter=ota.release_counter if ota else 0,
        last_nonce=ota.last_nonce if ota else None,
        last_report_time=_aware(ota.last_report_time) if ota else None,
        recent_nonces=tuple(json.loads(ota.recent_nonces or "[]")) if ota else (),
    )


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes for what was stored in UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _vehicle_state(vehicle: VehicleRow, ota_vehicle: OtaVehicleRow | None, ecus: tuple[EcuState, ...]) -> VehicleState:
    return VehicleState(
        vin=vehicle.vin,
        brand=vehicle.brand,
        model=vehicle.model,
        definition_id=vehicle.definition_id,
        market=vehicle.market,
        rxswin=ota_vehicle.rxswin if ota_vehicle else "",
        enrolled=ota_vehicle is not None,
        ecus=ecus,
    )


def _key_parts(stored: str) -> tuple[str, dict[str, object]]:
    document = json.loads(stored)
    return document.pop("keyid"), document


class Inventory:
    def __init__(self, database: Database) -> None:
        self._db = database

    def _vehicle_row(self, session: Session, vin: str) -> VehicleRow:
        row = session.scalar(select(VehicleRow).where(VehicleRow.vin == vin))
        if row is None:
            raise StorageError(f"no vehicle with VIN {vin!r} is registered")
        return row

    def enrol(self, vin: str, keys: Mapping[str, Key], primary: str, rxswin: str = "") -> None:
        """Record each ECU's public key (by ECU name) and which ECU is the primary."""
        with self._db.session() as session:
            vehicle = self._vehicle_row(session, vin)
            by_name = {e.name: e for e in vehicle.ecus}
            unknown = sorted(set(keys) - set(by_name))
            if unknown or primary not in keys:
                raise StorageError(
                    f"vehicle {vin}: ECUs {unknown or [primary]} are not among {sorted(by_name)} "
                    "(every key needs a registered ECU, and the primary needs a key)"
                )
            for name, key in keys.items():
                ecu = by_name[name]
                stored = json.dumps({"keyid": key.keyid, **key.to_dict()})
                row = session.get(OtaEcuRow, ecu.id) or OtaEcuRow(ecu_id=ecu.id, release_counter=0)
                row.public_key, row.is_primary = stored, name == primary
                session.add(row)
            ota_vehicle = session.get(OtaVehicleRow, vehicle.id) or OtaVehicleRow(vehicle_id=vehicle.id)
            ota_vehicle.rxswin = rxswin or ota_vehicle.rxswin or ""
            session.add(ota_vehicle)

    def _ecu_rows(self, session: Session, vehicle: VehicleRow) -> list[tuple[EcuRow, OtaEcuRow | None]]:
        """Each ECU with its OTA row, in one query (not one per ECU)."""
        query = (
            select(EcuRow, OtaEcuRow)
            .outerjoin(OtaEcuRow, OtaEcuRow.ecu_id == EcuRow.id)
            .where(EcuRow.vehicle_id == vehicle.id)
            .order_by(EcuRow.name)
        )
        return [(row[0], row[1]) for row in session.execute(query)]

    def _state(self, session: Session, vehicle: VehicleRow) -> VehicleState:
        ota_vehicle = session.get(OtaVehicleRow, vehicle.id)
        ecus = tuple(_ecu_state(e, ota) for e, ota in self._ecu_rows(session, vehicle))
        return _vehicle_state(vehicle, ota_vehicle, ecus)

    def _states(self, session: Session, vehicles: list[VehicleRow]) -> list[VehicleState]:
        """Many vehicles' states in a few queries (two per thousand vehicles, not two per vehicle)."""
        ecus: dict[int, list[EcuState]] = {}
        ota_vehicles: dict[int, OtaVehicleRow] = {}
        columns = [c for c in OtaEcuRow.__table__.columns if c.name not in ("ecu_id", "installed_sha256", "last_report_at")]
        for start in range(0, len(vehicles), 1000):
            ids = [v.id for v in vehicles[start : start + 1000]]
            query = (  # plain rows, not ORM objects: a stage reads six ECUs a car, 6,000 a thousand cars
                select(EcuRow.vehicle_id, EcuRow.name, EcuRow.serial, EcuRow.hardware_id,
                       OtaEcuRow.ecu_id.label("ota_ecu_id"), *columns)
                .outerjoin(OtaEcuRow, OtaEcuRow.ecu_id == EcuRow.id)
                .where(EcuRow.vehicle_id.in_(ids))
                .order_by(EcuRow.vehicle_id, EcuRow.name)
            )
            for row in session.execute(query):
                ecus.setdefault(row.vehicle_id, []).append(_ecu_state(row, row if row.ota_ecu_id is not None else None))
            rows = session.scalars(select(OtaVehicleRow).where(OtaVehicleRow.vehicle_id.in_(ids)))
            ota_vehicles |= {row.vehicle_id: row for row in rows}
        return [_vehicle_state(v, ota_vehicles.get(v.id), tuple(ecus.get(v.id, ()))) for v in vehicles]


    def vehicle(self, vin: str) -> VehicleState:
        with self._db.session() as session:
            return self._state(session, self._vehicle_row(session, vin))

    def vins(self) -> list[str]:
        """Every registered vehicle's VIN, in order (what a fleet job splits into pieces)."""
        with self._db.session() as session:
            return list(session.scalars(select(VehicleRow.vin).order_by(VehicleRow.vin)))

    def vehicles(self, vins: Iterable[str] | None = None) -> list[VehicleState]:
        with self._db.session() as session:
            query = select(VehicleRow).order_by(VehicleRow.vin)
            if vins is None:
                return self._states(session, list(session.scalars(query)))
            wanted = list(vins)
            rows = [r for start in range(0, len(wanted), 1000)
                    for r in session.scalars(query.where(VehicleRow.vin.in_(wanted[start : start + 1000])))]  # fmt: skip
            return self._states(session, sorted(rows, key=lambda r: r.vin))

    def record_manifest(self, vin: str, reports: list[InstalledReport], events: list[OtaEvent]) -> None:
        """Store a manifest's verified reports and its events in one transaction."""
        with self._db.session() as session:
            vehicle = self._vehicle_row(session, vin)
            by_serial = {ecu.serial: ota for ecu, ota in self._ecu_rows(session, vehicle)}
            for report in reports:
                row = by_serial.get(report.serial)
                if row is None:
                    raise StorageError(f"vehicle {vin}: ECU {report.serial} is not enrolled for OTA")
                row.installed_filename, row.installed_sha256 = report.filename, report.sha256
                row.installed_version, row.release_counter = report.version, report.release_counter
                row.last_nonce, row.last_report_at = report.nonce, report.at
                if report.report_time is not None:
                    last = _aware(row.last_report_time)
                    row.last_report_time = report.report_time if last is None else max(last, report.report_time)
                row.recent_nonces = json.dumps([*json.loads(row.recent_nonces or "[]"), report.nonce][-RECENT_NONCES:])
            session.add_all(
                OtaEventRow(vin=e.vin, ecu_serial=e.ecu_serial, at=e.at, kind=e.kind, detail=e.detail)
                for e in events
            )

    def set_rxswin(self, vin: str, rxswin: str, at: datetime) -> None:
        with self._db.session() as session:
            vehicle = self._vehicle_row(session, vin)
            row = session.get(OtaVehicleRow, vehicle.id) or OtaVehicleRow(vehicle_id=vehicle.id)
            row.rxswin, row.last_manifest_at = rxswin, at
            session.add(row)

    def events(self, vin: str | None = None) -> list[OtaEvent]:
        with self._db.session() as session:
            query = select(OtaEventRow).order_by(OtaEventRow.id)
            if vin is not None:
                query = query.where(OtaEventRow.vin == vin)
            return [OtaEvent(r.vin, r.ecu_serial, r.at, r.kind, r.detail) for r in session.scalars(query)]
