"""Settings: defaults, then ``opensdv.toml``, then ``OPENSDV_*`` environment, then CLI flags.

Everything works with no file at all. The file is ``./opensdv.toml`` unless ``--config`` or
``OPENSDV_CONFIG`` names another. Nested keys use TOML tables (``[broker] port = 55556``) or a
double underscore in the environment (``OPENSDV_BROKER__PORT=55556``).
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from opensdv.errors import OpenSDVError
from opensdv.files import FileFormatError, parse_toml, read_text
from opensdv.model._files import describe_validation_error

__all__ = [
    "BrokerSettings",
    "BusSettings",
    "CloudSettings",
    "ConfigError",
    "EnergySettings",
    "GradingSettings",
    "Settings",
    "VehicleSettings",
    "load_settings",
]

DEFAULT_CONFIG_FILE = Path("opensdv.toml")


class ConfigError(OpenSDVError):
    """The configuration file, an environment variable or a flag holds an invalid value."""


class BrokerSettings(BaseModel):
    """``opensdv broker serve``: it refuses to run without tokens (``--allow-anonymous`` for a bench),
    and without TLS on an address other machines reach (``--allow-plaintext``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=55555, ge=0, le=65535)
    state_file: Path | None = Field(default=None, description="keep last values across restarts")
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = Field(
        default=None, description="require client certificates signed by this CA"
    )
    jwt_public_keys: list[Path] = Field(
        default_factory=list, description="PEM public keys; tokens required when set"
    )
    jwt_audience: str = "kuksa.val"
    stale_after_s: float | None = Field(
        default=None, gt=0, description="a signal not updated for this long is stale"
    )
    disable_v1: bool = False
    viss_address: str | None = Field(
        default=None, description="host:port for VISS v3 over WebSocket and HTTP (TLS and tokens as the broker's)"
    )
    enable_sdv_v1: bool = Field(
        default=False, description="serve sdv.databroker.v1 (Broker, Collector): Velocitas apps and v1-era providers"
    )
    max_subscriptions: int = Field(default=1000, ge=1, description="Subscribe streams held at once, all clients together")
    max_subscriptions_per_client: int = Field(
        default=100, ge=1, description="Subscribe streams one token subject may hold (more: RESOURCE_EXHAUSTED)"
    )


class BusSettings(BaseModel):
    """The car's CAN bus for the brand adapter's feeder: any python-can interface and channel
    (``socketcan``/``can0``, ``virtual``/any name), or a log file replayed instead of a live bus."""

    model_config = ConfigDict(extra="forbid")

    interface: str = Field(default="virtual", description="python-can interface: socketcan, virtual, ...")
    channel: str = Field(default="opensdv", description="e.g. can0, vcan0; for virtual: any name")
    log_file: Path | None = Field(default=None, description="replay this candump/BLF/ASC log instead of a bus")
    simulate: bool = Field(
        default=False, description="a twin drives the brand's ECUs on the bus (virtual interface only)"
    )
    simulated_cycle: str = Field(
        default="udds", description="the twin's drive cycle when simulating: a shipped one, parked, or a CSV"
    )


class VehicleSettings(BaseModel):
    """``opensdv vehicle run``: one car's platform. Paths default to places under ``state_dir``."""

    model_config = ConfigDict(extra="forbid")

    vin: str | None = Field(default=None, pattern=r"^[A-HJ-NPR-Z0-9]{17}$")
    model: str | None = Field(default=None, description="a vehicle id of the catalog, e.g. nissan-leaf-40")
    state_dir: Path | None = Field(default=None, description="spool, OTA slots, apps, keys; default <data_dir>/vehicle")
    bus: BusSettings = Field(default_factory=BusSettings)
    mqtt_url: str | None = Field(default=None, description="the fleet link; none: the car runs unlinked")
    telemetry_period_s: float = Field(default=1.0, gt=0)
    ota_url: str | None = Field(
        default=None, pattern=r"^https://",
        description="the OTA back end (opensdv ota serve / cloud run), https:// only: the car presents its fleet identity",
    )  # fmt: skip
    ota_period_s: float = Field(default=60.0, gt=0, description="how often the primary checks for updates")
    apps: bool = Field(default=True, description="run the app sets installed on the APPS ECU")
    campaigns: list[Path] = Field(
        default_factory=list, description="data collection campaign files (YAML/JSON) the car runs, sent through the link"
    )
    app_environments_dir: Path | None = Field(
        default=None, description="where apps' own Python environments are cached (default <state_dir>/app-environments)"
    )
    apps_mqtt_address: str | None = Field(
        default=None, description="the in-car MQTT broker Velocitas apps publish to (SDV_MQTT_ADDRESS), mqtt://host:port"
    )
    simulated_faults: list[str] = Field(
        default_factory=list,
        description="ECU names whose simulated secondary fails its health check after an install (benches, demos)",
    )
    health_file: Path | None = Field(default=None, description="JSON health for a supervisor; default <state_dir>/health.json")
    health_period_s: float = Field(default=5.0, gt=0)


class CloudSettings(BaseModel):
    """``opensdv cloud run``: the back-end services, sharing ``database_url`` and ``mqtt_url``."""

    model_config = ConfigDict(extra="forbid")

    mqtt_url: str = Field(default="mqtts://127.0.0.1:8883", description="the fleet link's broker (TLS only)")
    identities_dir: Path | None = Field(
        default=None,
        description="ca.pem, opensdv-<role>.pem/.key, command-signer.pem/.key, revoked.json; "
        "default <data_dir>/identities (opensdv fleet provision-service / command-key write them)",
    )
    telemetry_file: Path | None = Field(default=None, description="DuckDB file; default <data_dir>/telemetry.duckdb")
    telemetry_url: str | None = Field(
        default=None,
        pattern=r"^postgres(ql)?(\+psycopg)?://",
        description="telemetry in PostgreSQL (postgresql+psycopg://...), shared by every ingest worker and API "
        "process; default: the embedded DuckDB file, which one process owns",
    )
    telemetry_retention_days: float | None = Field(
        default=None, gt=0, description="PostgreSQL: drop day partitions older than this; none: keep everything"
    )
    ray_address: str | None = Field(
        default=None,
        description="fleet jobs (campaign signing, fleet state of health): none runs them in this process; "
        "'local' starts a Ray here, 'auto' joins this machine's, ray://host:10001 a cluster",
    )
    ingest_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="run as one of N ingest workers sharing the cars' traffic (MQTT shared subscription "
        "$share/<group>/...; needs telemetry_url and a distinct ingest_id per worker)",
    )
    ingest_id: str = Field(
        default="opensdv-ingest", description="the ingest's durable MQTT session (its identity, or identity-suffix)"
    )
    confirm_s: float = Field(
        default=2.0, gt=0, description="each car hears which batches were stored this long after the first"
    )
    api_host: str = "127.0.0.1"
    api_cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed to call the API from a browser; none: no CORS"
    )
    api_port: int = Field(default=8000, ge=0, le=65535)
    api_docs: bool = Field(
        default=False, description="serve the interactive API docs at /docs (Swagger UI loads its scripts from a CDN)"
    )
    ota_dir: Path | None = Field(default=None, description="OTA repositories; default <data_dir>/ota")
    ota_host: str = "127.0.0.1"
    ota_port: int = Field(default=8081, ge=0, le=65535)
    ota_refresh_s: float = Field(default=3600.0, gt=0, description="how often expiring metadata is checked")
    passport_records_dir: Path | None = Field(
        default=None, description="the battery makers' Battery Pass records: <dir>/<module id>/<Aspect>.json"
    )
    campaign_sync_s: float = Field(
        default=60.0, gt=0, description="how often cars registered since get the data campaigns that target them"
    )
    ota_renew_before_s: float = Field(
        default=6 * 3600.0, gt=0, description="re-sign metadata that expires within this"
    )
    csms_host: str = "127.0.0.1"
    csms_port: int = Field(default=9000, ge=0, le=65535)
    stations: list[str] = Field(
        default_factory=list,
        description="charging station ids the CSMS knows; none: every station with credentials "
        "(opensdv energy station add); each connects over wss:// with its own password or certificate",
    )
    site_file: Path | None = Field(
        default=None,
        description="a managed charging site (opensdv energy site init writes one): the CSMS serves its "
        "stations, plans their cars online and sends the charging profiles",
    )
    ops_host: str = "127.0.0.1"
    ops_port: int = Field(default=9100, ge=0, le=65535, description="/healthz, /readyz, /metrics")


class GradingSettings(BaseModel):
    """Second-life grading thresholds (state of health as a fraction, resistance as x new)."""

    model_config = ConfigDict(extra="forbid")

    stay_min_soh: float = Field(default=0.80, gt=0, le=1)
    stay_max_resistance_factor: float = Field(default=1.5, ge=1)
    second_life_min_soh: float = Field(default=0.60, gt=0, le=1)
    second_life_max_resistance_factor: float = Field(default=2.0, ge=1)


class EnergySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grading: GradingSettings = Field(default_factory=GradingSettings)


class Settings(BaseSettings):
    """Every part reads its settings from here; later parts add their own sections."""

    model_config = SettingsConfigDict(env_prefix="OPENSDV_", env_nested_delimiter="__", extra="forbid")

    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path("opensdv"),
        description="where embedded databases and state files live",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file in data_dir. PostgreSQL: postgresql+psycopg://...",
    )
    vss: list[Path] = Field(
        default_factory=list, description="VSS catalog files (base first, overlays after)"
    )
    catalog: list[Path] = Field(default_factory=list, description="extra module / e-axle / vehicle files")
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    energy: EnergySettings = Field(default_factory=EnergySettings)
    vehicle: VehicleSettings = Field(default_factory=VehicleSettings)
    cloud: CloudSettings = Field(default_factory=CloudSettings)

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'opensdv.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # first wins: CLI flags (init), environment, then the TOML file
        return (
            init_settings,
            env_settings,
            InitSettingsSource(settings_cls, init_kwargs=_file_values.get() or {}),
        )


_file_values: ContextVar[dict[str, Any] | None] = ContextVar("_file_values", default=None)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        return parse_toml(read_text(path), path)
    except FileFormatError as exc:
        raise ConfigError(str(exc)) from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Resolve the settings; ``overrides`` are CLI flags (``None`` means the flag was not given)."""
    explicit = config_file or (
        Path(os.environ["OPENSDV_CONFIG"]) if os.environ.get("OPENSDV_CONFIG") else None
    )
    path = explicit or DEFAULT_CONFIG_FILE
    if explicit is not None and not path.exists():
        raise ConfigError(f"{path}: configuration file not found")
    values = _read_config_file(path) if path.exists() else {}
    token = _file_values.set(values)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        origin = f"{path} / OPENSDV_* environment / flags" if values else "OPENSDV_* environment / flags"
        raise ConfigError(f"invalid settings ({origin}): {describe_validation_error(exc)}") from None
    finally:
        _file_values.reset(token)
