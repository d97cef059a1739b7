"""Tables of the shared storage. Change them only together with a new migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class VehicleRow(Base):
    """A physical vehicle known to the platform (fleet registry, OTA inventory)."""

    __tablename__ = "vehicles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), unique=True)
    definition_id: Mapped[str] = mapped_column(String(64))
    brand: Mapped[str] = mapped_column(String(64), index=True)
    model: Mapped[str] = mapped_column(String(128))
    model_year: Mapped[int] = mapped_column(Integer)
    market: Mapped[str] = mapped_column(String(2))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ecus: Mapped[list[EcuRow]] = relationship(
        back_populates="vehicle", cascade="all, delete-orphan", order_by="EcuRow.name"
    )


class EcuRow(Base):
    __tablename__ = "ecus"
    __table_args__ = (UniqueConstraint("vehicle_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    hardware_id: Mapped[str] = mapped_column(String(128), index=True)
    serial: Mapped[str] = mapped_column(String(128))
    vehicle: Mapped[VehicleRow] = relationship(back_populates="ecus")
