"""An operator's managed site from the command line: `opensdv energy site init`, credentials for
the stations, `opensdv energy site serve`; a charger written without OpenSDV connects over wss://
with its own password, reports a car and its ISO 15118 needs, and gets its charging profile."""

from __future__ import annotations

import asyncio
import signal
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path

from opensdv.cloud.energy.ocpp.credentials import load_station_passwords
from tests.cloud.energy.independent_station import independent_station
from tests.conftest import free_port
from tests.e2e.test_deployment import _run, _start, _stop


async def test_an_operator_runs_a_site_for_a_charger_of_its_own(tmp_path: Path) -> None:
    ca = ["--ca-dir", str(tmp_path / "fleet-ca")]
    config = tmp_path / "cloud.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[cloud]\nops_port = {free_port()}\n')
    site, passwords, port = tmp_path / "depot.yaml", tmp_path / "stations.toml", free_port()
    await _run("fleet", "ca", "init", *ca)
    await _run("fleet", "provision-service", "energy", "--host", "127.0.0.1", "--out", str(tmp_path / "data" / "identities"), *ca)
    await _run("energy", "site", "init", "--stations", "2", "--out", str(site), "--name", "Depot North")
    await _run("--config", str(config), "energy", "station", "add", "CS-001", "CS-002", "--out", str(passwords))

    serving = await _start("--config", str(config), "energy", "site", "serve", "--site", str(site), "--port", str(port))
    try:
        await serving.wait_for_line(r"cloud: .*energy wss://")
        trust = ssl.create_default_context(cafile=str(tmp_path / "fleet-ca" / "ca.pem"))
        password = load_station_passwords(passwords)["CS-001"]
        async with independent_station(f"wss://127.0.0.1:{port}", "CS-001", password, trust) as wallbox:
            await wallbox.transaction("Started", "tx-1", register_wh=0, token="04A1B2C3")
            departure = datetime.fromtimestamp(time.time() + 2 * 3600, UTC).isoformat(timespec="seconds")
            await wallbox.charging_needs(departure=departure, energy_wh=10_000)
            async with asyncio.timeout(60):
                while not wallbox.limits_w or not wallbox.limits_w[-1]:  # an empty plan's clear, or 0 W, first
                    await wallbox.next_limit()
            await serving.wait_for_line(r"site Depot North: 1 cars; sent CS-001 \d")  # the station answered
    finally:
        code = await _stop(serving, signal.SIGTERM)
    assert code == 0, "".join(serving.lines)
