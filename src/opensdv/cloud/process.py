"""``opensdv cloud run``: the fleet cloud's services, all in one process or each in its own.

``api`` (REST API and dashboard), ``ingest`` (telemetry from the link into the store, confirmed
back to each car), ``ota`` (the Uptane back end over HTTPS for the fleet's certificates, its metadata renewed ahead of expiry)
and ``energy`` (the OCPP CSMS for the charging sites) share one database URL and one MQTT URL.
Every process serves ``/healthz``, ``/readyz`` and Prometheus ``/metrics`` on its ops port.

The embedded telemetry store is a DuckDB file, which one process owns: ``api`` and ``ingest`` then
run together. With ``telemetry_url`` (PostgreSQL) they part, and N ingest processes with one
``ingest_group`` share the cars' traffic through an MQTT shared subscription (docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import socket
import ssl
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.mtls import server_config
from opensdv.config import Settings
from opensdv.durable import write_atomically
from opensdv.errors import OpenSDVError
from opensdv.link.connection import LinkDown
from opensdv.link.identity import IdentityFiles
from opensdv.link.mqtt import MqttConnector
from opensdv.programs import cancel_and_wait
from opensdv.storage import Database

__all__ = ["SERVICES", "CloudProcess", "CloudProcessError", "token_key"]

log = logging.getLogger("opensdv.cloud")
SERVICES = ("api", "ingest", "ota", "energy")
LISTENERS = ("ota", "energy")  # their identities are TLS server certificates: they name the host


class CloudProcessError(OpenSDVError):
    """The services asked for cannot run as configured (the message says which and why)."""


def _site_id(name: str) -> str:
    """A site's id in the fleet API's paths: its name, lower case, runs of other characters as ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "site"


def token_key(data_dir: Path) -> bytes:
    """The key the API signs operators' tokens with: made once, shared by every API process."""
    path = data_dir / "keys" / "api-token.key"
    if not path.exists():
        write_atomically(path, secrets.token_bytes(32), private=True)
    return path.read_bytes()


def _listener(host: str, port: int) -> socket.socket:
    """A bound socket handed to uvicorn, so the address is known before it serves (port 0: any)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CloudProcessError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


@dataclass
class CloudProcess:
    settings: Settings
    only: frozenset[str] = frozenset(SERVICES)
    clock: Clock = SYSTEM_CLOCK
    ready: dict[str, bool] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # service -> URL it serves on
    started: asyncio.Event = field(default_factory=asyncio.Event)  # every service is serving
    sites: dict[str, Any] = field(default_factory=dict)  # charging sites the API shows, by id
    _parts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.only) - set(SERVICES))
        if unknown or not self.only:
            raise CloudProcessError(f"--only: {', '.join(unknown) or 'nothing'}; the services are {', '.join(SERVICES)}")
        cloud = self.settings.cloud
        if len({"api", "ingest"} & self.only) == 1 and cloud.telemetry_url is None:
            raise CloudProcessError(
                "api and ingest share the embedded DuckDB telemetry file, which one process owns: "
                "run them in one process (--only api,ingest), or give both cloud.telemetry_url (PostgreSQL)"
            )
        if cloud.ingest_group is not None and cloud.telemetry_url is None:
            raise CloudProcessError("cloud.ingest_group: workers of a group share one store; set cloud.telemetry_url")
        self.ready = dict.fromkeys(sorted(self.only), False)
        self.data_campaigns: Any = None  # the API's DataCampaigns, once it runs

    # ------------------------------------------------------------------------------ services

    @property
    def identities_dir(self) -> Path:
        return self.settings.cloud.identities_dir or self.settings.data_dir / "identities"

    def _identity(self, role: str) -> IdentityFiles:
        """A service's identity on the link, or an error saying how to provision it."""
        files = IdentityFiles.under(self.identities_dir, f"opensdv-{role}")
        if missing := files.missing():
            raise CloudProcessError(
                f"{role}: {missing[0]} is missing; provision the service first "
                f"(opensdv fleet provision-service {role}{' --host <its host name>' if role in LISTENERS else ''} "
                f"--out {self.identities_dir})"
            )
        return files

    def database(self) -> Database:
        """The platform database (migrated on first use), shared by every service of the process."""
        if "database" not in self._parts:
            self._parts["database"] = Database(self.settings.effective_database_url)
            self._parts["database"].migrate()
        found: Database = self._parts["database"]
        return found

    @property
    def ingest(self) -> Any:
        """The telemetry ingest (``None`` until it has started); its ``store`` is the telemetry store."""
        return self._parts.get("ingest")

    @property
    def csms(self) -> Any:
        """The energy service's CSMS (``None`` until it has started)."""
        return self._parts.get("csms")

    def ota_backend(self) -> Any:
        """The OTA back end over the configured directory and database (made on first use)."""
        from opensdv.cloud.ota.backend import OtaBackend

        if "ota_backend" not in self._parts:
            from opensdv.cloud.jobs.runner import runner_for

            runner = runner_for(self.settings.cloud.ray_address) if self.settings.cloud.ray_address else None
            backend = OtaBackend(
                self.settings.cloud.ota_dir or self.settings.data_dir / "ota", self.database(), runner=runner
            )
            if not backend.initialised:
                log.info("OTA: new repositories in %s", backend.path)
                backend.initialise()
            self._parts["ota_backend"] = backend
        return self._parts["ota_backend"]

    async def _serve_http(
        self, name: str, app: Any, host: str, port: int, stack: AsyncExitStack, tls: ssl.SSLContext | None = None
    ) -> asyncio.Task[None]:
        sock = _listener(host, port)
        stack.callback(sock.close)
        server = uvicorn.Server(server_config(app, tls))
        bound = sock.getsockname()
        self.addresses[name] = f"{'https' if tls else 'http'}://{bound[0]}:{bound[1]}"
        task = asyncio.create_task(server.serve(sockets=[sock]))

        async def shutdown() -> None:
            server.should_exit = True  # a clean stop: requests in flight are answered
            await asyncio.wait_for(asyncio.shield(task), 10)

        stack.push_async_callback(shutdown)
        return task

    def _telemetry(self, stack: AsyncExitStack) -> Any:
        """The telemetry store: PostgreSQL when configured (shared), else the DuckDB file (owned)."""
        from opensdv.cloud.telemetry.store import open_telemetry_store

        if "telemetry" not in self._parts:
            cloud = self.settings.cloud
            location = cloud.telemetry_url or cloud.telemetry_file or self.settings.data_dir / "telemetry.duckdb"
            store = self._parts["telemetry"] = open_telemetry_store(location, cloud.telemetry_retention_days)
            stack.callback(store.close)
        return self._parts["telemetry"]

    async def _start_ingest(self, stack: AsyncExitStack, tasks: list[asyncio.Task[Any]]) -> None:
        from opensdv.cloud.fleet.identities import RevokedSubjects
        from opensdv.cloud.telemetry.ingest import Ingest

        cloud = self.settings.cloud
        store = self._telemetry(stack)
        revoked = RevokedSubjects(self.identities_dir / "revoked.json", clock=self.clock)
        link = MqttConnector(cloud.mqtt_url, self._identity("ingest"))
        ingest = Ingest(
            link, store, cloud.ingest_id, clock=self.clock, revoked=revoked.current, share_group=cloud.ingest_group
        )
        self._parts["ingest"] = ingest
        tasks.append(asyncio.create_task(ingest.run(confirm_s=cloud.confirm_s)))

        async def subscribed() -> None:
            await ingest.subscribed.wait()
            self.ready["ingest"] = True

        tasks.append(asyncio.create_task(subscribed()))
        if cloud.telemetry_retention_days is not None:
            tasks.append(asyncio.create_task(self._drop_expired_every(store, 3600.0)))

    async def _drop_expired_every(self, store: Any, period_s: float) -> None:
        while True:
            dropped = await asyncio.to_thread(store.drop_expired)
            if dropped:
                log.info("telemetry: retention dropped %s", ", ".join(dropped))
            await self.clock.sleep(period_s)

    async def _start_api(self, stack: AsyncExitStack, tasks: list[asyncio.Task[Any]]) -> None:
        from opensdv.cloud.fleet.api import FleetCloud, create_api
        from opensdv.cloud.fleet.commands import CampaignSetPublisher, CommandSender
        from opensdv.cloud.fleet.data_campaigns import DataCampaigns
        from opensdv.cloud.fleet.operators import Operators
        from opensdv.cloud.fleet.registry import VehicleRegistry
        from opensdv.link.signing import CommandSigner
        from opensdv.model.vss import load_default_vss

        cloud = self.settings.cloud
        identities = self.identities_dir
        signer = CommandSigner(identities / "command-signer.key", identities / "command-signer.pem", clock=self.clock)
        connector = MqttConnector(cloud.mqtt_url, self._identity("api"))
        send_command = CommandSender(connector, signer)
        database = self.database()
        registry = VehicleRegistry(database)
        data_campaigns = DataCampaigns(
            database, registry, signer, CampaignSetPublisher(connector), load_default_vss(), clock=self.clock
        )
        ota = self.ota_backend() if "ota" in self.only else None  # campaigns in the API with OTA only
        fleet = FleetCloud(
            registry, self._telemetry(stack), Operators(database, token_key(self.settings.data_dir)),
            send_command, ota, data_campaigns, cloud.passport_records_dir, sites=self.sites, clock=self.clock,
        )  # fmt: skip
        self.data_campaigns = data_campaigns
        tasks.append(asyncio.create_task(self._sync_campaigns_every(data_campaigns, cloud.campaign_sync_s)))
        await self._serve_http("api", create_api(fleet, cloud.api_cors_origins, cloud.api_docs), cloud.api_host, cloud.api_port, stack)
        self.ready["api"] = True

    async def _sync_campaigns_every(self, campaigns: Any, period_s: float) -> None:
        """Every stored campaign set again at start (a broker may have lost its retained messages),
        then new sets for the cars registered since, every ``period_s``."""
        republish = True
        while True:
            try:
                sent = await campaigns.sync(republish=republish)
                republish = False
                if sent:
                    log.info("data campaigns: %d car(s) sent their campaign set", sent)
            except (LinkDown, OpenSDVError) as exc:
                log.warning("data campaigns: sets not published (next try in %.0f s): %s", period_s, exc)
            await self.clock.sleep(period_s)

    async def _start_ota(self, stack: AsyncExitStack, tasks: list[asyncio.Task[Any]]) -> None:
        from opensdv.cloud.fleet.identities import RevokedSubjects
        from opensdv.cloud.ota.server import create_app

        backend = self.ota_backend()
        cloud = self.settings.cloud
        crl = self.identities_dir / "crl.pem"
        tls = self._identity("ota").server_context(crl if crl.is_file() else None)
        revoked = RevokedSubjects(self.identities_dir / "revoked.json", clock=self.clock)
        app = create_app(backend, revoked.current)
        await self._serve_http("ota", app, cloud.ota_host, cloud.ota_port, stack, tls)
        tasks.append(asyncio.create_task(self._renew_every(backend, cloud.ota_refresh_s, cloud.ota_renew_before_s)))
        self.ready["ota"] = True

    async def _renew_every(self, backend: Any, period_s: float, before_s: float) -> None:
        while True:
            renewed = await asyncio.to_thread(backend.renew_metadata, timedelta(seconds=before_s))
            for repository, roles in renewed.items():
                log.info("OTA: renewed %s of %s", ", ".join(roles), repository)
            self._parts["ota_renewals"] = self._parts.get("ota_renewals", 0) + len(renewed)
            await self.clock.sleep(period_s)

    async def _start_energy(self, stack: AsyncExitStack, tasks: list[asyncio.Task[Any]]) -> None:
        from opensdv.cloud.energy.ocpp.credentials import StationCredentials, csms_tls
        from opensdv.cloud.energy.ocpp.csms import Csms, listening_url
        from opensdv.cloud.energy.ocpp.csms_store import CsmsStore
        from opensdv.cloud.energy.site_controller import SiteController
        from opensdv.cloud.energy.site_file import load_managed_site

        cloud = self.settings.cloud
        credentials = StationCredentials(self.database())
        stations = cloud.stations or [login.station_id for login in credentials.all()]
        if missing := sorted(set(stations) - {login.station_id for login in credentials.all()}):
            log.warning("energy: no credentials for %s (opensdv energy station add ...): refused", ", ".join(missing))
        site = load_managed_site(cloud.site_file) if cloud.site_file is not None else None
        if site is not None:
            stations = sorted(set(stations) | {s.id for s in site.stations})
        csms = Csms(stations, store=CsmsStore(self.database()), clock=self.clock, credentials=credentials)
        server = await csms.serve(cloud.csms_host, cloud.csms_port, csms_tls(self.identities_dir))
        self._parts["csms"] = csms
        if site is not None:
            controller = SiteController(site, csms, clock=self.clock)
            self.sites[_site_id(site.name)] = controller
            tasks.append(asyncio.create_task(controller.run(asyncio.Event()), name=f"site {site.name}"))
            if site.openadr is not None:
                from opensdv.cloud.energy.openadr import SiteVen

                ven = await SiteVen(site.openadr, controller).run()
                stack.push_async_callback(ven.stop)
            log.info("energy: managed site %r, %d stations, cap %g kW", site.name, len(site.stations), site.site_cap_kw)

        async def close() -> None:
            server.close()
            await server.wait_closed()

        stack.push_async_callback(close)
        self.addresses["energy"] = listening_url(server, "wss")
        self.ready["energy"] = True

    # ------------------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        """Start the services, serve until ``stop`` is set, then stop them in reverse order."""
        tasks: list[asyncio.Task[Any]] = []
        async with AsyncExitStack() as stack:
            try:
                if "ingest" in self.only:
                    await self._start_ingest(stack, tasks)
                if "api" in self.only:
                    await self._start_api(stack, tasks)
                if "ota" in self.only:
                    await self._start_ota(stack, tasks)
                if "energy" in self.only:
                    await self._start_energy(stack, tasks)
                cloud = self.settings.cloud
                await self._serve_http("ops", ops_app(self), cloud.ops_host, cloud.ops_port, stack)
                log.info("cloud: %s", ", ".join(f"{k} {v}" for k, v in self.addresses.items()))
                self.started.set()
                await stop.wait()
            finally:
                for task in reversed(tasks):  # the ingest writes what it received before it stops
                    await cancel_and_wait([task])

    def metrics(self) -> Iterable[Any]:
        """Prometheus metric families read from each service at scrape time (no hot-path counting)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        up = GaugeMetricFamily("opensdv_service_ready", "1 when the service is ready", labels=["service"])
        for name, ready in self.ready.items():
            up.add_metric([name], 1.0 if ready else 0.0)
        yield up
        ingest = self._parts.get("ingest")
        if ingest is not None:
            stats = ingest.statistics()
            yield CounterMetricFamily("opensdv_ingest_batches_stored", "telemetry batches written", value=stats.stored)
            yield CounterMetricFamily(
                "opensdv_ingest_duplicates", "batches already stored (QoS 1 repeats, resends)", value=stats.duplicates
            )
            dropped = CounterMetricFamily("opensdv_ingest_dropped", "messages refused", labels=["reason"])
            for reason in ("topic", "payload", "revoked", "store"):
                dropped.add_metric([reason], stats.dropped.get(reason, 0))
            yield dropped
            yield GaugeMetricFamily("opensdv_ingest_waiting", "messages received, not yet written", value=stats.waiting)
            yield GaugeMetricFamily(
                "opensdv_ingest_lag_seconds", "in the last write: the oldest batch's newest sample to its row", value=stats.lag_s
            )
        backend = self._parts.get("ota_backend")
        if backend is not None and "ota" in self.only:
            states = GaugeMetricFamily("opensdv_ota_campaigns", "campaigns by state", labels=["state"])
            counts: dict[str, int] = {}
            for progress in backend.campaigns.all():
                counts[progress.state] = counts.get(progress.state, 0) + 1
            for state, count in sorted(counts.items()):
                states.add_metric([state], count)
            yield states
            yield CounterMetricFamily(
                "opensdv_ota_metadata_renewals", "repositories re-signed ahead of expiry",
                value=self._parts.get("ota_renewals", 0),
            )  # fmt: skip
        if self.sites:
            solve = GaugeMetricFamily("opensdv_site_plan_solve_seconds", "the last plan's solve time", labels=["site"])
            for site_id, site in sorted(self.sites.items()):
                if site.schedule is not None:
                    solve.add_metric([site_id], site.schedule.solve_s)
            yield solve
        csms = self._parts.get("csms")
        if csms is not None:
            yield GaugeMetricFamily(
                "opensdv_csms_stations_connected", "charging stations connected now", value=len(csms.connected())
            )


def ops_app(process: CloudProcess) -> Any:
    """``/healthz`` (the process answers), ``/readyz`` (every service is ready) and ``/metrics``."""
    from fastapi import FastAPI, Response
    from fastapi.responses import JSONResponse
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()

    class _Collector:
        def collect(self) -> Iterable[Any]:
            return process.metrics()

    registry.register(_Collector())
    app = FastAPI(title="OpenSDV cloud operations", docs_url=None, redoc_url=None, openapi_url=None)

    # (the handlers return responses themselves: this module's annotations are strings FastAPI
    # would resolve in the module, where the names imported here do not exist)
    def healthz():  # type: ignore[no-untyped-def]
        return JSONResponse({"status": "ok", "services": sorted(process.ready)})

    def readyz():  # type: ignore[no-untyped-def]
        ready = all(process.ready.values())
        body = {"ready": ready, "services": process.ready, "addresses": process.addresses}
        return JSONResponse(body, status_code=200 if ready else 503)

    def metrics():  # type: ignore[no-untyped-def]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/readyz", readyz, methods=["GET"])
    app.add_api_route("/metrics", metrics, methods=["GET"])

    return app
