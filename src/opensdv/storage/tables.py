"""Tables of the shared storage. Change them only together with a new migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
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


class OtaEcuRow(Base):
    """What the OTA director knows of one ECU: its key, role and last verified report."""

    __tablename__ = "ota_ecus"

    ecu_id: Mapped[int] = mapped_column(ForeignKey("ecus.id", ondelete="CASCADE"), primary_key=True)
    public_key: Mapped[str] = mapped_column(Text)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    installed_filename: Mapped[str | None] = mapped_column(String(256))
    installed_sha256: Mapped[str | None] = mapped_column(String(64))
    installed_version: Mapped[str | None] = mapped_column(String(32))
    release_counter: Mapped[int] = mapped_column(Integer, default=0)
    last_nonce: Mapped[str | None] = mapped_column(String(128))
    last_report_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_report_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the ECU's own trusted time
    recent_nonces: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the last RECENT_NONCES reports' nonces


class OtaVehicleRow(Base):
    """Per-vehicle OTA facts: the UN R156 software identification and the last manifest time."""

    __tablename__ = "ota_vehicles"

    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True)
    rxswin: Mapped[str] = mapped_column(String(128), default="")
    last_manifest_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OtaCampaignRow(Base):
    __tablename__ = "ota_campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    spec: Mapped[str] = mapped_column(Text, doc="the campaign as JSON (CampaignSpec)")
    state: Mapped[str] = mapped_column(String(16))
    stage: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OtaCampaignVehicleRow(Base):
    __tablename__ = "ota_campaign_vehicles"

    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("ota_campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    stage: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OtaEventRow(Base):
    """Everything vehicles reported: install results and detected attacks, for audits (UN R156)."""

    __tablename__ = "ota_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vin: Mapped[str] = mapped_column(String(17), index=True)
    ecu_serial: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class OperatorRow(Base):
    """Someone (or a service) using the fleet API: a brand's tenant, or the platform ('*')."""

    __tablename__ = "operators"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), doc="a brand, or '*' for the platform operator")
    secret_hash: Mapped[str] = mapped_column(String(256), doc="scrypt$salt$hash")
    can_command: Mapped[bool] = mapped_column(Boolean, default=False)


class CsmsStationRow(Base):
    """A charging station as the CSMS last knew it (boot data, connector states)."""

    __tablename__ = "csms_stations"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(64))
    firmware: Mapped[str | None] = mapped_column(String(64))
    last_heartbeat: Mapped[str | None] = mapped_column(String(40))
    connectors: Mapped[str] = mapped_column(Text, default="{}", doc="JSON: 'evse/connector' -> status")
    ev_needs: Mapped[str] = mapped_column(Text, default="{}", doc="JSON: EVSE -> the car's charging needs")


class StationCredentialRow(Base):
    """How a charging station proves who it is: a password (OCPP security profile 2, stored as a
    salted hash) and/or a client certificate of the fleet CA naming it (profile 3)."""

    __tablename__ = "csms_station_credentials"

    station_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    certificate: Mapped[bool] = mapped_column(Boolean, default=False)


class CsmsTransactionRow(Base):
    __tablename__ = "csms_transactions"

    transaction_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    station_id: Mapped[str] = mapped_column(
        ForeignKey("csms_stations.station_id", ondelete="CASCADE"), index=True
    )
    evse_id: Mapped[int] = mapped_column(Integer)
    started: Mapped[str] = mapped_column(String(40))
    id_token: Mapped[str | None] = mapped_column(String(64))
    energy_wh: Mapped[float] = mapped_column(Float, default=0.0)
    power_w: Mapped[float | None] = mapped_column(Float)
    ended: Mapped[str | None] = mapped_column(String(40))
    stopped_reason: Mapped[str | None] = mapped_column(String(64))
    meter_start_wh: Mapped[float | None] = mapped_column(Float)


class AuditRow(Base):
    """One operator action that changes something (a command, a campaign step): who, which tenant, what."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    operator: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="")


class DataCampaignRow(Base):
    """A data collection campaign: its newest version's document, whose it is, and its state."""

    __tablename__ = "data_campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[str] = mapped_column(Text)  # the campaign's JSON
    state: Mapped[str] = mapped_column(String(16))  # active, suspended, deleted
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CampaignSetRow(Base):
    """The revision of the signed campaign set last published for a car (it only grows)."""

    __tablename__ = "data_campaign_sets"

    vin: Mapped[str] = mapped_column(String(17), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    campaigns: Mapped[str] = mapped_column(Text)  # JSON: [[id, version, suspended], ...] of that set
