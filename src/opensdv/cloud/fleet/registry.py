"""The vehicle registry: which physical vehicles exist, of which definition, with which ECUs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from opensdv.model.vehicles import Vehicle
from opensdv.storage.database import Database, StorageError
from opensdv.storage.tables import EcuRow, VehicleRow

__all__ = ["EcuRecord", "FleetEntry", "RegisteredVehicle", "VehicleRegistry", "validate_vin"]

_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")


def validate_vin(vin: str) -> str:
    """ISO 3779: 17 characters, digits and capital letters except I, O and Q."""
    if not isinstance(vin, str) or not _VIN.fullmatch(vin):
        raise StorageError(f"VIN {vin!r} is not 17 characters of 0-9 and A-Z without I, O, Q (ISO 3779)")
    return vin


@dataclass(frozen=True)
class EcuRecord:
    name: str
    hardware_id: str
    serial: str


@dataclass(frozen=True)
class FleetEntry:
    """A vehicle as a fleet list shows it: no ECUs (for 1,000 cars they are 6,000 more rows)."""

    vin: str
    brand: str
    model: str
    market: str


@dataclass(frozen=True)
class RegisteredVehicle:
    vin: str
    definition_id: str
    brand: str
    model: str
    model_year: int
    market: str
    registered_at: datetime
    ecus: tuple[EcuRecord, ...]


def _record(row: VehicleRow) -> RegisteredVehicle:
    return RegisteredVehicle(
        vin=row.vin,
        definition_id=row.definition_id,
        brand=row.brand,
        model=row.model,
        model_year=row.model_year,
        market=row.market,
        registered_at=row.registered_at
        if row.registered_at.tzinfo
        else row.registered_at.replace(tzinfo=UTC),
        ecus=tuple(
            sorted((EcuRecord(e.name, e.hardware_id, e.serial) for e in row.ecus), key=lambda e: e.name)
        ),
    )


class VehicleRegistry:
    """Registered vehicles and their ECUs in the platform database: what the cloud knows of each car."""
    def __init__(self, database: Database) -> None:
        self._db = database

    def register(
        self, vin: str, vehicle: Vehicle, market: str, registered_at: datetime | None = None
    ) -> RegisteredVehicle:
        """Add a vehicle built to ``vehicle``'s definition; every ECU gets a serial derived from the VIN."""
        validate_vin(vin)
        if market not in vehicle.definition.markets:
            raise StorageError(
                f"{vehicle.id} is not sold in market {market!r} (markets: {', '.join(vehicle.definition.markets)})"
            )
        d = vehicle.definition
        row = VehicleRow(
            vin=vin,
            definition_id=d.id,
            brand=d.brand,
            model=d.model,
            model_year=d.model_year,
            market=market,
            registered_at=registered_at or datetime.now(UTC),
            ecus=[
                EcuRow(name=name, hardware_id=ecu.hardware_id, serial=f"{vin}-{name}")
                for name, ecu in vehicle.ecus.items()
            ],
        )
        try:
            with self._db.session() as session:
                session.add(row)
                session.flush()
                return _record(row)
        except IntegrityError:
            raise StorageError(f"a vehicle with VIN {vin} is already registered") from None

    def get(self, vin: str) -> RegisteredVehicle:
        with self._db.session() as session:
            row = session.scalar(select(VehicleRow).where(VehicleRow.vin == vin))
            if row is None:
                raise StorageError(f"no vehicle with VIN {vin!r} is registered")
            return _record(row)

    def vehicles(self, brand: str | None = None) -> list[RegisteredVehicle]:
        with self._db.session() as session:
            # the ECUs in one more query, not one per vehicle (1,000 cars: 15 ms instead of 0.7 s)
            query = select(VehicleRow).options(selectinload(VehicleRow.ecus)).order_by(VehicleRow.vin)
            if brand is not None:
                query = query.where(VehicleRow.brand == brand)
            return [_record(row) for row in session.scalars(query)]

    def entries(self, brand: str | None = None) -> list[FleetEntry]:
        """Every vehicle (of ``brand``) for a fleet list, straight from the columns."""
        query = select(VehicleRow.vin, VehicleRow.brand, VehicleRow.model, VehicleRow.market).order_by(
            VehicleRow.vin
        )
        if brand is not None:
            query = query.where(VehicleRow.brand == brand)
        with self._db.session() as session:
            return [FleetEntry(*row) for row in session.execute(query)]

    def with_hardware(self, hardware_id: str) -> list[str]:
        """VINs of vehicles with an ECU of this hardware id: what an OTA campaign targets."""
        with self._db.session() as session:
            query = (
                select(VehicleRow.vin)
                .join(EcuRow)
                .where(EcuRow.hardware_id == hardware_id)
                .order_by(VehicleRow.vin)
            )
            return list(session.scalars(query))
