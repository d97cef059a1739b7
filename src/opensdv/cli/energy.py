"""``opensdv energy``: smart charging and V2G planning for charging sites."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.live import Live
from rich.progress import Progress, TaskID
from rich.table import Table

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import component_catalog, console, settings, table

if TYPE_CHECKING:
    from opensdv.cloud.energy.battery.pack_age import AgedPack
    from opensdv.cloud.energy.ocpp.csms import Csms
    from opensdv.storage import Database

class CellChemistry(StrEnum):
    """``opensdv.model.components.Chemistry``, written out so that --help loads no catalog model
    (tests/test_cli_startup.py checks that both list the same values)."""

    NMC = "NMC"
    NCA = "NCA"
    LFP = "LFP"
    LMFP = "LMFP"
    LMO = "LMO"
    SIB = "SIB"  # sodium-ion


app = typer.Typer(
    name="energy",
    help=SUBCOMMANDS["energy"],
    no_args_is_help=True,
)


@app.command(
    name="plan",
    epilog="Examples:\n\n"
    "  opensdv energy plan ../shared/data/acn/caltech_2019-03_sessions.csv --site-cap 50\n\n"
    "  opensdv energy plan sessions.csv --site-cap 75 --v2g-share 0.5 --wear-cost 0.03 --plot site.png\n\n"
    "  opensdv energy plan sessions.csv --site depot.yaml   # circuits, grid signals\n\n"
    "Session and site formats: docs/energy.md (sessions: CSV or JSON, one row per session; ACN-Data's "
    "names accepted).",
)
def plan_(
    sessions_file: Path = typer.Argument(..., metavar="SESSIONS", help="CSV or JSON sessions"),
    site_cap: float | None = typer.Option(
        None, "--site-cap", min=0, help="site limit in kW (import and export)"
    ),
    site_file: Path | None = typer.Option(
        None, "--site", help="site file (YAML/JSON): cap, circuits (kW or A per phase), grid signals"
    ),
    slot_minutes: float = typer.Option(5.0, min=1, help="length of a slot in the session file"),
    start_hour: float = typer.Option(0.0, min=0, max=24, help="hour of day at slot 0 (for the tariff)"),
    peak_price: float = typer.Option(0.40, help="price per kWh 16:00-21:00"),
    off_peak_price: float = typer.Option(0.12, help="price per kWh otherwise"),
    demand_charge: float = typer.Option(15.0, help="per kW of the highest import"),
    wear_cost: float | None = typer.Option(
        None,
        min=0,
        help="battery wear per kWh of throughput (default: the twin's ageing model for --chemistry)",
    ),
    chemistry: CellChemistry = typer.Option(
        CellChemistry.NMC, help="the V2G packs' cell chemistry, for the wear cost"
    ),
    pack_price: float | None = typer.Option(
        None, min=0, help="pack price per kWh, for the wear cost (default: the ageing model's, USD 115)"
    ),
    v2g_share: float = typer.Option(
        0.0, min=0, max=1, help="make this share of the cars V2G-capable (what-if)"
    ),
    baselines: bool = typer.Option(True, help="also run uncontrolled, EDF, LLF and round robin"),
    plot: Path | None = typer.Option(None, help="PNG of the load curves (default: energy_plan.png)"),
) -> None:
    """Plan a site's charging: the optimal schedule (HiGHS) against the usual baselines."""
    import numpy as np

    from opensdv.cloud.energy import BASELINES, load_sessions, plan, schedule_greedy, time_of_use, with_v2g
    from opensdv.cloud.energy.planning.plots import plot_load_curves
    from opensdv.cloud.energy.planning.site_limits import SiteLimits, load_site
    from opensdv.model.components import Chemistry
    from opensdv.physics import wear_cost_per_kwh

    sessions = load_sessions(sessions_file)
    if v2g_share:
        sessions = with_v2g(sessions, v2g_share)
    slots = max(s.departure for s in sessions) + 1
    slot_h = slot_minutes / 60
    if wear_cost is None:
        priced = {} if pack_price is None else {"pack_price_per_kwh": pack_price}
        wear_cost = wear_cost_per_kwh(Chemistry(chemistry.value), **priced)
    if (site_cap is None) == (site_file is None):
        raise typer.BadParameter("give --site-cap or --site (a site file), one of them")
    if site_file is not None:
        name, limits = load_site(site_file, slots)
    else:
        name, limits = "site", SiteLimits(np.full(slots, site_cap), np.zeros(slots))
    tariff = time_of_use(
        slots,
        slot_minutes,
        start_hour=start_hour,
        peak_price=peak_price,
        off_peak_price=off_peak_price,
        demand_charge=demand_charge,
    )
    with console.status("solving ..."):
        schedules = [
            plan(
                sessions,
                slots=slots,
                slot_h=slot_h,
                site_cap_kw=limits.cap_kw,
                tariff=tariff,
                wear_cost_per_kwh=wear_cost,
                circuits=limits.circuits,
                min_import_kw=limits.min_import_kw,
            )
        ]
        if baselines:
            schedules += [
                schedule_greedy(
                    sessions,
                    b,
                    slots=slots,
                    slot_h=slot_h,
                    site_cap_kw=limits.cap_kw,
                    tariff=tariff,
                    circuits=limits.circuits,
                )
                for b in BASELINES
            ]
    shown = table(
        "schedule", "delivered %", "peak kW", "energy cost", "wear cost", "total cost", "V2G exported kWh",
        title=f"{name}: {len(sessions)} sessions, site cap {limits.cap_kw.max():g} kW"
        + (f", {len(limits.circuits)} circuits" if limits.circuits else "")
        + f", {slots} slots of {slot_minutes:g} min",
    )  # fmt: skip
    for s in schedules:
        shown.add_row(
            s.name, f"{s.delivered_share * 100:.2f}", f"{s.peak_kw:.1f}", f"{s.energy_cost:,.2f}", f"{s.wear_cost:,.2f}",
            f"{s.cost:,.2f}", f"{s.exported_kwh:,.1f}",
        )  # fmt: skip
    console.print(shown)
    console.print(
        f"optimal schedule solved in {schedules[0].solve_s:.2f} s; wear cost {wear_cost:.4f} per kWh"
    )
    target = plot or Path("energy_plan.png")
    plot_load_curves(schedules, limits.cap_kw, target, slot_minutes=slot_minutes)
    console.print(f"plot: {target}")


@app.command(
    epilog="Examples:\n\n  opensdv energy soh nissan-leaf-40\n\n  opensdv energy soh mitsubishi-ek-x-ev --cars 200 --cycle wltc_japan --noise-soc 0.005"
)
def soh(
    ctx: typer.Context,
    vehicle: str = typer.Argument(..., help="vehicle id"),
    cars: int = typer.Option(50, min=1, max=10000, help="simulated cars with aged packs"),
    cycle: str = typer.Option("wltc_class3b", help="what each car drives (longer cycles span more SoC)"),
    noise_current: float = typer.Option(0.5, min=0, help="sensor noise, A (standard deviation)"),
    noise_voltage: float = typer.Option(0.2, min=0, help="sensor noise, V"),
    noise_soc: float = typer.Option(0.002, min=0, help="BMS state-of-charge noise, fraction"),
    modules: bool = typer.Option(False, "--modules", help="also estimate and grade each standard module"),
) -> None:
    """Estimate pack state of health from telemetry on a simulated, aged fleet and report the error."""
    from opensdv.cloud.energy.battery.grading import grade_module
    from opensdv.cloud.energy.battery.soh import evaluate_fleet, evaluate_modules

    chosen = component_catalog(ctx).vehicle(vehicle)
    result = evaluate_fleet(
        chosen,
        cars,
        cycle=cycle,
        noise_current_a=noise_current,
        noise_voltage_v=noise_voltage,
        noise_soc=noise_soc,
    )
    shown = table("quantity", "value", title=f"{chosen.title}: {cars} aged packs on {cycle}")
    shown.add_row("capacity state of health: RMSE", f"{result.soh_rmse_points:.2f} points")
    shown.add_row("resistance factor: RMSE", f"{result.resistance_rmse:.3f}")
    shown.add_row(
        "true state of health range", f"{result.true_soh.min() * 100:.0f}-{result.true_soh.max() * 100:.0f} %"
    )
    console.print(shown)
    if modules:
        evaluation = evaluate_modules(chosen, cycle=cycle, noise_soc=noise_soc, noise_current_a=noise_current)
        rules = settings(ctx).energy.grading
        per_module = table(
            "module", "true SoH %", "estimated SoH %", "true R factor", "estimated R factor", "grade",
            title=f"per module (RMSE {evaluation.soh_rmse_points:.2f} points, R {evaluation.resistance_rmse:.3f})",
        )  # fmt: skip
        for m, (true_soh, est_soh, true_r, est_r) in enumerate(
            zip(evaluation.true_soh, evaluation.estimated_soh, evaluation.true_resistance_factor,
                evaluation.estimated_resistance_factor, strict=True)
        ):  # fmt: skip
            graded = grade_module(m, float(est_soh), float(est_r), rules)
            per_module.add_row(
                str(m + 1),
                f"{true_soh * 100:.1f}",
                f"{est_soh * 100:.1f}",
                f"{true_r:.3f}",
                f"{est_r:.3f}",
                graded.grade,
            )
        console.print(per_module)


def _aged(ctx: typer.Context, vehicle: str, years: float, daily_km: float, ambient: float) -> AgedPack:
    from opensdv.cloud.energy.battery.pack_age import age_pack
    from opensdv.physics import AgeingProfile

    chosen = component_catalog(ctx).vehicle(vehicle)
    profile = AgeingProfile(daily_km=daily_km, ambient_c=ambient)
    return age_pack(chosen, years, profile, settings(ctx).energy.grading)


AGE_OPTIONS = {
    "years": typer.Option(8.0, min=0.1, max=30, help="years of use"),
    "daily_km": typer.Option(40.0, min=0, help="km driven a day"),
    "ambient": typer.Option(15.0, help="mean ambient temperature, degC"),
}


@app.command(
    epilog="Examples:\n\n  opensdv energy grade nissan-leaf-40 --years 10\n\n  OPENSDV_ENERGY__GRADING__STAY_MIN_SOH=0.85 opensdv energy grade honda-e-advance"
)
def grade(
    ctx: typer.Context,
    vehicle: str = typer.Argument(..., help="vehicle id"),
    years: float = AGE_OPTIONS["years"],
    daily_km: float = AGE_OPTIONS["daily_km"],
    ambient: float = AGE_OPTIONS["ambient"],
) -> None:
    """Grade each standard module after years of use: stay in the vehicle, second life, or recycle."""
    aged = _aged(ctx, vehicle, years, daily_km, ambient)
    chosen, grades = aged.vehicle, aged.grades
    shown = table(
        "module",
        "SoH %",
        "resistance x",
        "grade",
        "reason",
        title=f"{chosen.title}: {chosen.pack.label} after {years:g} years",
    )
    for g in grades:
        shown.add_row(str(g.position), f"{g.soh * 100:.1f}", f"{g.resistance_factor:.2f}", g.grade, g.reason)
    console.print(shown)


@app.command(
    epilog="Examples:\n\n  opensdv energy passport nissan-leaf-40 --vin JN1NSSANL0DD000001 --serial PK-0001 --out passport.json"
)
def passport(
    ctx: typer.Context,
    vehicle: str = typer.Argument(..., metavar="VEHICLE", help="vehicle id (its pack)"),
    vin: str = typer.Option(..., help="the vehicle's VIN"),
    serial: str = typer.Option(..., help="the pack's serial number (the passport's battery id)"),
    years: float = AGE_OPTIONS["years"],
    daily_km: float = AGE_OPTIONS["daily_km"],
    ambient: float = AGE_OPTIONS["ambient"],
    status: str = typer.Option("original", help="original, repurposed, reused, remanufactured or waste"),
    out: Path = typer.Option(Path("passport.json"), help="where the JSON goes"),
) -> None:
    """Write the pack's battery passport (EU 2023/1542 attributes) as JSON validated against its schema."""
    from opensdv.cloud.energy.battery.pack_age import pack_passport

    document = pack_passport(
        _aged(ctx, vehicle, years, daily_km, ambient), vin=vin, serial=serial, status=status
    )
    out.write_text(json.dumps(document, indent=2))
    console.print(
        f"{out}: passport {document['passport_id']}, SoH {document['state_of_health']['soh_percent']} %, validates against the schema"
    )


@app.command("passport-check", epilog="Examples:\n\n  opensdv energy passport-check passport.json")
def passport_check(
    file: Path = typer.Argument(..., metavar="FILE", help="a passport JSON file"),
) -> None:
    """Check a battery passport against the schema; every problem is listed with its path."""
    from opensdv.cloud.energy.battery.passport import PassportError, validate_passport
    from opensdv.files import FileFormatError, parse_json, read_text

    try:
        document = parse_json(read_text(file), file)
    except FileFormatError as exc:
        raise PassportError(str(exc)) from None
    if not isinstance(document, dict):
        raise PassportError(f"{file}: a passport is a JSON object, got {type(document).__name__}")
    try:
        validate_passport(document)
    except PassportError as exc:
        raise PassportError(f"{file}: {exc}") from exc
    console.print(f"{file}: passport {document['passport_id']} validates against the schema")


csms_app = typer.Typer(
    name="csms", help="The charging-station management system (OCPP 2.0.1).", no_args_is_help=True
)
station_app = typer.Typer(
    name="station", help="Which charging stations may connect, each with its own credentials.", no_args_is_help=True
)
stations_app = typer.Typer(
    name="stations", help="Simulated OCPP 2.0.1 charging stations.", no_args_is_help=True
)
site_app = typer.Typer(
    name="site", help="A managed charging site: real stations, planned online.", no_args_is_help=True
)
app.add_typer(csms_app)
app.add_typer(station_app)
app.add_typer(stations_app)
app.add_typer(site_app)


@site_app.command(
    "init",
    epilog="Examples:\n\n  opensdv energy site init --stations 8 --out depot.yaml",
)
def site_init(
    stations: int = typer.Option(..., min=1, max=999, help="stations CS-001..CS-N"),
    out: Path = typer.Option(Path("site.yaml"), help="the site file to write"),
    name: str = typer.Option("My site", help="the site's name"),
    station_kw: float = typer.Option(11.0, min=1.0, max=1000.0, help="each station's most power, kW"),
    force: bool = typer.Option(False, help="overwrite an existing file"),
) -> None:
    """Write a site file to start from: N stations, a cap, the tariff and the defaults for cars
    that do not say what they need."""
    from opensdv.cloud.energy.site_file import site_template

    if out.exists() and not force:
        raise typer.BadParameter(f"{out} exists (--force overwrites it)", param_hint="--out")
    out.write_text(site_template(stations, name, station_kw), encoding="utf-8")
    console.print(f"wrote {out}: {stations} stations; next: opensdv energy station add CS-001 ... and "
                  f"opensdv energy site serve --site {out}")  # fmt: skip


@site_app.command(
    "serve",
    epilog="Examples:\n\n  opensdv energy site init --stations 2 --out depot.yaml\n\n"
    "  opensdv energy station add CS-001 CS-002 --out stations.toml\n\n"
    "  opensdv energy site serve --site depot.yaml --host 0.0.0.0 --port 9000\n\n"
    "The same service as `opensdv cloud run --only energy` with cloud.site_file set.",
)
def site_serve(
    ctx: typer.Context,
    site: Path = typer.Option(..., "--site", help="the site file (opensdv energy site init)"),
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(9000, min=0, max=65535, help="port (wss://HOST:PORT/<station id>)"),
    identities_dir: Path | None = typer.Option(
        None, help="the CSMS's opensdv-energy identity (default: cloud.identities_dir)"
    ),
    log_format: str = typer.Option("text", help="text, or json (one object a line)"),
) -> None:
    """Run the site until SIGTERM: the CSMS for its stations (OCPP 1.6, 2.0.1, 2.1 over wss://,
    each station with its own credentials), the online planner and the charging profiles."""
    from opensdv.cloud.energy.site_file import load_managed_site
    from opensdv.cloud.process import CloudProcess
    from opensdv.programs import configure_logging, run_until_signalled

    configure_logging(log_format)
    managed = load_managed_site(site)
    s = settings(ctx)
    update: dict[str, object] = {"site_file": site, "csms_host": host, "csms_port": port}
    if identities_dir is not None:
        update["identities_dir"] = identities_dir
    process = CloudProcess(s.model_copy(update={"cloud": s.cloud.model_copy(update=update)}), frozenset({"energy"}))
    console.print(
        f"site {managed.name!r}: {len(managed.stations)} stations, cap {managed.site_cap_kw:g} kW, "
        f"on wss://{host}:{port}/<station id>"
    )
    asyncio.run(run_until_signalled(process.run))


@csms_app.command(
    "serve",
    epilog="Examples:\n\n  opensdv fleet provision-service energy --host 127.0.0.1 --out ids\n\n"
    "  opensdv energy station add CS-001 CS-002 --out stations.toml\n\n"
    "  opensdv energy csms serve --identities-dir ids --port 9000\n\n"
    "  opensdv energy stations simulate --csms wss://127.0.0.1:9000 --credentials stations.toml --ca ids/ca.pem",
)
def csms_serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(9000, min=1, max=65535, help="port (wss://HOST:PORT/<station id>)"),
    heartbeat: int = typer.Option(60, min=1, help="heartbeat interval given to booting stations, s"),
    identities_dir: Path | None = typer.Option(
        None, help="the CSMS's opensdv-energy identity (default: cloud.identities_dir)"
    ),
) -> None:
    """Run the CSMS until Ctrl-C for every station with credentials (OCPP security profiles 2 and
    3 over wss://), showing each station's connector and transaction energy. Stations and
    transactions are kept in the platform database, so a restart loses nothing."""
    from opensdv.cloud.energy.ocpp.credentials import StationCredentials, csms_tls
    from opensdv.cloud.energy.ocpp.csms import SUBPROTOCOL, Csms, CsmsError
    from opensdv.cloud.energy.ocpp.csms_store import CsmsStore

    s = settings(ctx)
    database = _database(ctx)
    credentials = StationCredentials(database)
    ids = [login.station_id for login in credentials.all()]
    if not ids:
        raise CsmsError("no station has credentials yet: opensdv energy station add <station id>")
    tls = csms_tls(identities_dir or s.cloud.identities_dir or s.data_dir / "identities")
    system = Csms(ids, heartbeat_s=heartbeat, store=CsmsStore(database), credentials=credentials)

    async def run() -> None:
        server = await system.serve(host, port, tls)
        console.print(
            f"CSMS listening on wss://{host}:{port}/<station id> ({SUBPROTOCOL}), stations {', '.join(system.stations)}"
        )
        with Live(_stations_table(system), console=console, refresh_per_second=2) as live:
            try:
                while True:
                    await asyncio.sleep(0.5)
                    live.update(_stations_table(system))
            finally:
                server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def _database(ctx: typer.Context) -> Database:
    from opensdv.storage import Database

    database = Database(settings(ctx).effective_database_url)
    database.migrate()
    return database


@station_app.command(
    "add",
    epilog="Examples:\n\n  opensdv energy station add CS-001 CS-002 --out stations.toml\n\n"
    "  opensdv energy station add CS-003 --certificate --no-password   "
    "# then: opensdv fleet provision-station CS-003 --out DIR",
)
def station_add(
    ctx: typer.Context,
    station_ids: list[str] = typer.Argument(..., help="the stations' ids (their websocket path)"),
    password: bool = typer.Option(True, help="give each a new generated password (security profile 2)"),
    certificate: bool = typer.Option(False, help="accept its fleet-CA client certificate (security profile 3)"),
    out: Path | None = typer.Option(None, help="also write the passwords to this TOML file (mode 0600)"),
) -> None:
    """Let stations connect, each with its own credentials; a new password replaces the old one.
    Passwords are shown once (the CSMS keeps only their hashes): set each as the station's
    BasicAuthPassword."""
    from opensdv.cloud.energy.ocpp.credentials import StationCredentials, StationCredentialsError
    from opensdv.durable import write_atomically

    if not password and not certificate:
        raise StationCredentialsError("a station needs a password, a certificate or both")
    credentials = StationCredentials(_database(ctx))
    passwords = {}
    for station_id in station_ids:
        if password:
            passwords[station_id] = credentials.set_password(station_id)
        credentials.allow_certificate(station_id, certificate)
    shown = Table("station", "password (shown once)", "certificate")
    for station_id in station_ids:
        shown.add_row(station_id, passwords.get(station_id, "-"), "accepted" if certificate else "-")
    console.print(shown)
    if out is not None and passwords:
        lines = "".join(f'"{sid}" = "{pw}"\n' for sid, pw in passwords.items())
        write_atomically(out, private=True, data=("# station id = password (opensdv energy station add)\n" + lines).encode())
        console.print(f"passwords written to {out}")


@station_app.command("list")
def station_list(ctx: typer.Context) -> None:
    """The stations that may connect, and how each proves who it is."""
    from opensdv.cloud.energy.ocpp.credentials import StationCredentials

    shown = Table("station", "password", "certificate")
    for login in StationCredentials(_database(ctx)).all():
        shown.add_row(login.station_id, "set" if login.password else "-", "accepted" if login.certificate else "-")
    console.print(shown)


@station_app.command("remove")
def station_remove(ctx: typer.Context, station_id: str = typer.Argument(...)) -> None:
    """Refuse the station from its next connection on."""
    from opensdv.cloud.energy.ocpp.credentials import StationCredentials

    StationCredentials(_database(ctx)).remove(station_id)
    console.print(f"{station_id}: removed; restart the CSMS to drop a connection it holds")


def _stations_table(system: Csms) -> Table:
    shown = Table("station", "model", "connector", "transactions", "open", "energy kWh")
    for state in system.stations.values():
        shown.add_row(
            state.station_id,
            state.model or "-",
            ", ".join(state.connectors.values()) or "-",
            str(len(state.transactions)),
            str(sum(t.ended is None for t in state.transactions.values())),
            f"{sum(t.energy_wh for t in state.transactions.values()) / 1000:.2f}",
        )
    return shown


@stations_app.command(
    "simulate",
    epilog="Examples:\n\n  opensdv energy stations simulate --csms wss://127.0.0.1:9000 "
    "--credentials stations.toml --ca ids/ca.pem --hours 2",
)
def stations_simulate(
    credentials: Path = typer.Option(
        ..., help="TOML of station id = password (what `opensdv energy station add --out` writes)"
    ),
    csms: str = typer.Option("wss://127.0.0.1:9000", help="the CSMS's websocket URL"),
    ca: Path = typer.Option(..., help="the fleet CA certificate (PEM) the CSMS's certificate is checked against"),
    hours: float = typer.Option(1.0, min=0, help="simulated charging time"),
    step_minutes: float = typer.Option(15.0, min=0.1, help="meter values every ... simulated minutes"),
    max_kw: float = typer.Option(11.0, min=0.1, help="each station's charger power"),
) -> None:
    """Connect stations (OCPP security profile 2), start a transaction on each, meter simulated
    charging, then unplug."""
    from websockets.exceptions import InvalidStatus

    from opensdv.cloud.energy.ocpp.credentials import load_station_passwords
    from opensdv.cloud.energy.ocpp.csms import CsmsError
    from opensdv.cloud.energy.ocpp.stations import StationSimulator

    passwords = load_station_passwords(credentials)
    count = len(passwords)
    try:
        tls = ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise CsmsError(f"--ca {ca}: not a PEM CA certificate ({exc})") from None

    async def one(station_id: str, progress: Progress, task: TaskID) -> float:
        async with StationSimulator.connected(
            csms, station_id, passwords[station_id], tls=tls, max_power_w=max_kw * 1000
        ) as station:
            await station.plug_in(f"TOKEN-{station_id}")
            for _ in range(round(hours * 60 / step_minutes)):
                await station.charge(step_minutes * 60)
                progress.advance(task)
            await station.unplug()
            return float(station.energy_wh)

    async def run() -> list[float]:
        steps = round(hours * 60 / step_minutes)
        with Progress(console=console) as progress:
            task = progress.add_task("metering", total=steps * count)
            return await asyncio.gather(*(one(sid, progress, task) for sid in passwords))

    try:
        energies = asyncio.run(run())
    except (OSError, InvalidStatus) as exc:
        raise CsmsError(f"cannot connect the stations to {csms}: {exc}") from None
    console.print(f"{count} stations delivered {sum(energies) / 1000:.1f} kWh in {hours:g} simulated hours")
