"""``opensdv data``: data collection campaigns through the fleet API, as an operator."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._api import ApiClient, segment
from opensdv.cli._common import console, table

app = typer.Typer(name="data", help=SUBCOMMANDS["data"], no_args_is_help=True)
campaign_app = typer.Typer(name="campaign", help="Campaigns: create, list, show, suspend, resume, delete.", no_args_is_help=True)
app.add_typer(campaign_app)

API = typer.Option("http://127.0.0.1:8000", "--api", envvar="OPENSDV_API_URL", help="the fleet API")
OPERATOR = typer.Option(..., "--operator", envvar="OPENSDV_API_OPERATOR", help="operator name (secret: OPENSDV_API_SECRET)")
CA_FILE = typer.Option(None, "--ca-file", help="CA certificate of an https:// API (default: the system's)")
EXAMPLE = "\n\nExample:\n\n  OPENSDV_API_SECRET=... opensdv data campaign {} --api https://fleet.example --operator nissan-ops"


def _client(api: str, operator: str, ca_file: Path | None) -> ApiClient:
    return ApiClient(api, operator, ca_file)


def _when(epoch: float | None) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_campaigns(campaigns: list[dict[str, object]]) -> None:
    shown = table("id", "version", "tenant", "state", "cars", "car states", "captures", "description")
    for c in campaigns:
        states = c["car_states"]
        assert isinstance(states, dict)
        summary = ", ".join(f"{n} {s}" for s, n in sorted(states.items())) or "none reported"
        shown.add_row(*(str(c[k]) for k in ("id", "version", "tenant", "state", "cars")), summary,
                      str(c["captures"]), str(c["description"]))  # fmt: skip
    console.print(shown)


@campaign_app.command(epilog=EXAMPLE.format("create cruise-disengagements.yaml"))
def create(file: Path, api: str = API, operator: str = OPERATOR, ca_file: Path | None = CA_FILE) -> None:
    """Create a campaign from its YAML or JSON file (docs/campaigns.md), or a newer version of one."""
    from opensdv.model._files import read_document

    created = _client(api, operator, ca_file).json("POST", "/api/v1/data/campaigns", read_document(file))
    console.print(f"campaign {created['id']} v{created['version']}: {created['state']}, {created['cars']} car(s)")


@campaign_app.command("list", epilog=EXAMPLE.format("list"))
def list_campaigns(api: str = API, operator: str = OPERATOR, ca_file: Path | None = CA_FILE) -> None:
    """Every campaign the operator's tenant may see, with its cars' states."""
    _print_campaigns(_client(api, operator, ca_file).json("GET", "/api/v1/data/campaigns"))


@campaign_app.command(epilog=EXAMPLE.format("show cruise-disengagements"))
def show(campaign: str, api: str = API, operator: str = OPERATOR, ca_file: Path | None = CA_FILE) -> None:
    """A campaign: each targeted car's state and what it has collected."""
    shown = _client(api, operator, ca_file).json("GET", f"/api/v1/data/campaigns/{segment(campaign)}")
    _print_campaigns([shown])
    cars = table("vin", "brand", "model", "state", "version", "reason", title="cars")
    for car in shown["vehicles"]:
        cars.add_row(car["vin"], car["brand"], car["model"], car["state"], str(car["version"] or ""), car["reason"])
    console.print(cars)
    captures = table("vin", "seq", "version", "trigger (UTC)", "samples", title="captures (newest 1,000)")
    for c in shown["capture_list"]:
        captures.add_row(c["vin"], str(c["seq"]), str(c["version"]), _when(c["trigger"]) or "period", str(c["samples"]))
    console.print(captures)


def _steer(method: str, action: str, campaign: str, api: str, operator: str, ca_file: Path | None) -> None:
    path = f"/api/v1/data/campaigns/{segment(campaign)}" + (f"/{action}" if method == "POST" else "")
    changed = _client(api, operator, ca_file).json(method, path)
    console.print(f"campaign {changed['id']}: {changed['state']}")


@campaign_app.command(epilog=EXAMPLE.format("suspend cruise-disengagements"))
def suspend(campaign: str, api: str = API, operator: str = OPERATOR, ca_file: Path | None = CA_FILE) -> None:
    """Stop collecting (the cars keep the campaign, suspended)."""
    _steer("POST", "suspend", campaign, api, operator, ca_file)


@campaign_app.command(epilog=EXAMPLE.format("resume cruise-disengagements"))
def resume(campaign: str, api: str = API, operator: str = OPERATOR, ca_file: Path | None = CA_FILE) -> None:
    """Collect again."""
    _steer("POST", "resume", campaign, api, operator, ca_file)


@campaign_app.command(epilog=EXAMPLE.format("delete cruise-disengagements"))
def delete(campaign: str, api: str = API, operator: str = OPERATOR, ca_file: Path | None = CA_FILE) -> None:
    """The cars drop it; what it collected stays, and can still be exported."""
    _steer("DELETE", "delete", campaign, api, operator, ca_file)


@app.command(epilog="Example:\n\n  opensdv data export cruise-disengagements --format parquet -o cruise.parquet --operator ops")
def export(
    campaign: str,
    format: str = typer.Option("parquet", "--format", help="parquet (the only one)"),
    output: Path = typer.Option(..., "--output", "-o", help="the file to write"),
    api: str = API,
    operator: str = OPERATOR,
    ca_file: Path | None = CA_FILE,
) -> None:
    """Everything a campaign collected: one row per sample (vin, version, trigger_ts, path, ts, num, other)."""
    if format != "parquet":
        raise typer.BadParameter(f"format {format!r}: only parquet is supported", param_hint="--format")
    from opensdv.durable import write_atomically

    data = _client(api, operator, ca_file).raw("GET", f"/api/v1/data/campaigns/{segment(campaign)}/export")
    write_atomically(output, data)
    console.print(f"{output}: {len(data):,} bytes")
