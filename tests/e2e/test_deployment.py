"""One cloud and two cars as a user deploys them: real processes (`opensdv cloud run`, two
`opensdv vehicle run`), identities from `opensdv fleet`, generated configs, a Mosquitto of the
test's own configured by `opensdv fleet mosquitto-config` (mutual TLS, the link's ACL). Both cars' telemetry
reaches the API; a command reaches a car through its safety guard; a data collection campaign
created through the API triggers on both cars' decoded frames and its captures are stored once, in
order, and exported; an OTA campaign installs on both; a kill -9 of one car and its restart, and a SIGTERM of the cloud and its restart, lose no
telemetry the cars recorded.

Every wait is on something the processes say: a log line, a retained status, a confirmation on
the link, an event of the API's live stream."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pyarrow.parquet as pq

from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.campaigns import CampaignStates
from opensdv.link.fleet import (
    CommandResult,
    TelemetryAck,
    VehicleStatus,
    decode,
    decode_telemetry,
    parse_topic,
    topic,
    wildcard,
)
from opensdv.link.identity import IdentityFiles
from opensdv.link.mqtt import MqttConnector
from opensdv.model.vehicles import load_catalog
from opensdv.notify import Notifier
from opensdv.vehicle.agent.spool import Spool
from tests.conftest import free_port, need_mosquitto
from tests.fleet_identities import run_mosquitto

CARS = {"JN1NSSAN0DD000001": "nissan-leaf-40", "JHMHNDAE0ED000002": "honda-e-advance"}
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
OPENSDV = [sys.executable, "-m", "opensdv"]


def _env() -> dict[str, str]:
    """The processes read their config files, not the suite's isolated data directory."""
    return {k: v for k, v in os.environ.items() if k != "OPENSDV_DATA_DIR"}


@dataclass
class Running:
    """A process of the test, with what it has printed so far (stdout and stderr together)."""

    process: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    printed: Notifier = field(default_factory=Notifier)
    ended: bool = False
    reader: asyncio.Task[None] | None = None  # held, so the task is not collected

    async def read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace"))
            self.printed.notify()
        self.ended = True
        self.printed.notify()

    async def wait_for_line(self, pattern: str, timeout_s: float = 60) -> None:
        """Until the process prints a line matching ``pattern``."""
        found = re.compile(pattern)
        async with asyncio.timeout(timeout_s):
            await self.printed.wait_until(
                lambda: self.ended or any(found.search(line) for line in self.lines)
            )
        assert any(found.search(line) for line in self.lines), f"ended before {pattern!r}:\n" + "".join(
            self.lines
        )


async def _start(*args: str) -> Running:
    process = await asyncio.create_subprocess_exec(
        *OPENSDV, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=_env()
    )
    running = Running(process)
    running.reader = asyncio.create_task(running.read())
    return running


async def _run(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *OPENSDV, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=_env()
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    return out.decode()


async def _stop(running: Running, sig: int = signal.SIGTERM) -> int:
    running.process.send_signal(sig)
    code = await asyncio.wait_for(running.process.wait(), 30)
    await running.printed.wait_until(lambda: running.ended)
    return code


@asynccontextmanager
async def _messages(url: str, who: tuple[str, IdentityFiles], *patterns: str) -> AsyncIterator[AsyncIterator[Any]]:
    """Messages on ``patterns``, read as the identity ``who`` (name, files) may read them."""
    name, identity = who
    async with MqttConnector(url, identity).connect(f"{name}-e2e-{os.getpid()}-{id(patterns)}") as connection:
        for pattern in patterns:
            await connection.subscribe(pattern)
        yield connection.messages()


async def _until(messages: AsyncIterator[Any], done: Callable[[Any], bool], timeout_s: float = 90) -> None:
    async with asyncio.timeout(timeout_s):
        async for message in messages:
            if done(message):
                return


def _http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    with urlopen(Request(url, data=body, method=method, headers=headers or {}), timeout=30) as response:
        return json.loads(response.read() or b"null")


async def _signals_arrive(api: str, token: str, vin: str) -> dict[str, Any]:
    """The API's live stream for ``vin`` until it carries the car's speed and state of charge."""

    def read() -> dict[str, Any]:
        issued = _http("POST", f"{api}/api/v1/vehicles/{vin}/live-ticket", None, {"Authorization": f"Bearer {token}"})
        with urlopen(
            f"{api}/api/v1/vehicles/{vin}/live?{urlencode({'ticket': issued['ticket'], 'period_s': 0.2})}", timeout=60
        ) as stream:
            for raw in stream:
                line = raw.decode()
                if line.startswith("data: "):
                    signals = json.loads(line[6:])
                    if (
                        "Vehicle.Speed" in signals
                        and "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current" in signals
                    ):
                        return dict(signals)
        raise AssertionError("the live stream ended")

    return await asyncio.wait_for(asyncio.to_thread(read), 90)


def _cloud_config(directory: Path, mqtt_url: str) -> tuple[Path, dict[str, int]]:
    ports = {name: free_port() for name in ("api", "ota", "csms", "ops")}
    config = directory / "cloud.toml"
    config.write_text(
        f'data_dir = "{directory / "cloud-data"}"\n[cloud]\nmqtt_url = "{mqtt_url}"\nconfirm_s = 0.5\n'
        + "".join(f"{name}_port = {port}\n" for name, port in ports.items())
    )
    return config, ports


async def _provision(tmp_path: Path, port: int) -> Path:
    """The fleet's identities as an operator makes them; the Mosquitto configuration."""
    ca = ["--ca-dir", str(tmp_path / "fleet-ca")]
    identities = tmp_path / "cloud-data" / "identities"
    await _run("fleet", "ca", "init", *ca)
    await asyncio.gather(
        _run("fleet", "provision-service", "broker", "--host", "127.0.0.1", "--out", str(tmp_path / "broker"), *ca),
        _run("fleet", "provision-service", "ingest", "--out", str(identities), *ca),
        _run("fleet", "provision-service", "api", "--out", str(identities), *ca),
        _run("fleet", "provision-service", "ota", "--host", "127.0.0.1", "--out", str(identities), *ca),
        *(_run("fleet", "provision", vin, "--vehicle-dir", str(tmp_path / vin), *ca) for vin in CARS),
    )
    await _run("fleet", "command-key", "--out", str(identities), *ca)
    await _run("fleet", "mosquitto-config", "--identity-dir", str(tmp_path / "broker"), "--out", str(tmp_path / "broker"),
               "--port", str(port), "--bind", "127.0.0.1", *(["--run-as", "me"] if os.geteuid() == 0 else []))  # fmt: skip
    return tmp_path / "broker" / "mosquitto.conf"


async def test_one_cloud_and_two_cars_deployed_as_processes(tmp_path: Path) -> None:
    need_mosquitto()
    port = free_port()
    mqtt_url = f"mqtts://127.0.0.1:{port}"
    ingest = ("opensdv-ingest", IdentityFiles.under(tmp_path / "cloud-data" / "identities", "opensdv-ingest"))
    async with run_mosquitto(await _provision(tmp_path, port)):
        cloud_config, ports = _cloud_config(tmp_path, mqtt_url)
        api, ota = f"http://127.0.0.1:{ports['api']}", f"https://127.0.0.1:{ports['ota']}"
        cloud = await _start("cloud", "run", "--config", str(cloud_config), "--only", "api,ingest,ota")
        cars: dict[str, Running] = {}
        try:
            await cloud.wait_for_line(r"cloud: api http")
            secret = re.search(
                r"secret \(shown once\): (\S+)",
                await _run("cloud", "operator", "add", "ops", "--tenant", "*", "--can-command", "--generate",
                           "--config", str(cloud_config)),
            )  # fmt: skip
            assert secret is not None
            ota_dir = tmp_path / "cloud-data" / "ota"
            configs = {vin: tmp_path / f"{vin}.toml" for vin in CARS}

            async def provision_and_start(vin: str, model: str) -> None:
                await _run(
                    "vehicle", "init", vin, "--model", model, "--dir", str(tmp_path / vin), "-o", str(configs[vin]),
                    "--bus", f"virtual:{vin}", "--simulate", "--cycle", "parked", "--broker-address", "127.0.0.1:0",
                    "--mqtt-url", mqtt_url, "--ota-url", ota,
                )  # fmt: skip
                text = configs[vin].read_text().replace("telemetry_period_s = 1.0", "telemetry_period_s = 0.5")
                configs[vin].write_text(text.replace("ota_period_s = 60.0", "ota_period_s = 1.0"))
                await _run("--config", str(cloud_config), "ota", "enrol", vin, "--model", model,
                           "--vehicle-dir", str(tmp_path / vin), "--dir", str(ota_dir))  # fmt: skip
                cars[vin] = await _start("vehicle", "run", "--config", str(configs[vin]))

            await asyncio.gather(*(provision_and_start(vin, model) for vin, model in CARS.items()))
            for running in cars.values():
                await running.wait_for_line(r"broker on 127\.0\.0\.1:\d+")

            # telemetry of both cars reaches the API
            form = urlencode({"grant_type": "password", "username": "ops", "password": secret[1]}).encode()
            token = (await asyncio.to_thread(_http, "POST", f"{api}/api/v1/token", form,
                                             {"Content-Type": "application/x-www-form-urlencoded"}))["access_token"]  # fmt: skip
            for vin in CARS:
                signals = await _signals_arrive(api, token, vin)
                assert signals["Vehicle.Speed"]["value"] == 0.0  # parked
            fleet = await asyncio.to_thread(
                _http, "GET", f"{api}/api/v1/fleet", None, {"Authorization": f"Bearer {token}"}
            )
            assert {car["vin"] for car in fleet if car["online"]} == set(CARS)
            ops = f"http://127.0.0.1:{ports['ops']}"
            ready = await asyncio.to_thread(_http, "GET", f"{ops}/readyz")
            assert ready["ready"] and set(ready["services"]) == {"api", "ingest", "ota"}
            metrics = await asyncio.to_thread(lambda: urlopen(f"{ops}/metrics", timeout=30).read().decode())
            stored = re.search(r"^opensdv_ingest_batches_stored_total (\S+)$", metrics, re.M)
            assert stored is not None and float(stored[1]) > 0 and "opensdv_ota_campaigns" in metrics

            # a command reaches the Leaf through its broker and safety guard; a refused one says why
            leaf = next(iter(CARS))
            async with _messages(mqtt_url, ingest, topic(leaf, "command-results")) as results:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                for path, value in ((LIMIT, 80), ("Vehicle.Speed", 0)):
                    body = json.dumps({"path": path, "value": value}).encode()
                    await asyncio.to_thread(
                        _http, "POST", f"{api}/api/v1/vehicles/{leaf}/commands", body, headers
                    )
                outcomes: list[CommandResult] = []

                def two_results(message: Any) -> bool:
                    outcomes.append(decode(CommandResult, message.payload, "test"))
                    return len(outcomes) == 2

                await _until(results, two_results)
            assert outcomes[0].accepted, outcomes[0]
            assert not outcomes[1].accepted and "actuator" in outcomes[1].reason, outcomes[1]

            await _a_data_campaign_reaches_both_cars(api, token, secret[1], mqtt_url, tmp_path, ingest)

            # an OTA campaign for every inverter of both cars installs on both
            catalog = load_catalog()
            hardware = sorted({
                ecu.hardware_id for model in CARS.values() for name, ecu in catalog.vehicle(model).ecus.items()
                if name.startswith("EAXLE_")
            })  # fmt: skip
            image = tmp_path / "inverter.bin"
            image.write_bytes(os.urandom(64 * 1024))
            common = ["--config", str(cloud_config)]
            await _run(*common, "ota", "add-image", str(image), "--name", "eaxle/inverter-2.4.0.bin", "--version",
                       "2.4.0", "--release-counter", "24", *(f"--hardware={h}" for h in hardware), "--dir", str(ota_dir))  # fmt: skip
            spec = tmp_path / "campaign.yaml"
            spec.write_text(
                "id: inverters-24\nimage: eaxle/inverter-2.4.0.bin\nstages: [100]\nmode: forced\n"
            )
            async with _messages(mqtt_url, ingest, wildcard("status")) as statuses:
                await _run(*common, "ota", "campaign", "create", str(spec), "--dir", str(ota_dir))
                updated: set[str] = set()

                def both_updated(message: Any) -> bool:
                    status = decode(VehicleStatus, message.payload, "test")
                    if status.software and all(
                        v == "2.4.0" for k, v in status.software.items() if k.startswith("EAXLE_")
                    ):
                        updated.add(status.vin)
                    return updated == set(CARS)

                await _until(statuses, both_updated, timeout_s=120)

            # kill -9 of the Honda, telemetry it recorded meanwhile is not lost after its restart
            honda = list(CARS)[1]
            await _stop(cars[honda], signal.SIGKILL)
            recorded = _recorded(tmp_path / honda)
            cars[honda] = await _start("vehicle", "run", "--config", str(configs[honda]))
            await _confirmed_up_to(mqtt_url, tmp_path, honda, recorded + 2)  # the backlog and new batches

            # SIGTERM of the cloud: the cars go on recording; after the restart nothing is missing
            assert await _stop(cloud) == 0
            marks = {vin: _recorded(tmp_path / vin) + 3 for vin in CARS}
            cloud = await _start("cloud", "run", "--config", str(cloud_config), "--only", "api,ingest,ota")
            await cloud.wait_for_line(r"cloud: api http")
            for vin, mark in marks.items():
                await _confirmed_up_to(mqtt_url, tmp_path, vin, mark)
        finally:
            for running in cars.values():
                if running.process.returncode is None:
                    await _stop(running)
            if cloud.process.returncode is None:
                assert await _stop(cloud) == 0, "".join(cloud.lines)

    store = TelemetryStore(tmp_path / "cloud-data" / "telemetry.duckdb")
    try:
        for vin in CARS:
            spool = Spool(tmp_path / vin / "spool.db")
            waiting = {seq for seq, _ in spool.next_batches(1_000_000)}
            stored = set(store.sequences(vin))
            assert stored | waiting == set(range(spool.next_seq)), (
                vin
            )  # every recorded batch: stored or still spooled
            assert max(stored) >= marks[vin]  # past what each car recorded while the cloud was down
            spool.close()
    finally:
        store.close()


async def _a_data_campaign_reaches_both_cars(
    api: str, token: str, secret: str, mqtt_url: str, tmp_path: Path, ingest: tuple[str, IdentityFiles]
) -> None:
    """A campaign created through the API reaches both brands' cars, triggers on what their
    feeders decode from the CAN bus, and its capture is stored once per car, in order, and exported."""
    campaign = {
        "id": "soc-seen", "version": 1, "signals": [{"path": SOC}, {"path": "Vehicle.Speed"}],
        "scheme": {"kind": "condition", "expression": f"{SOC} > 0", "pre_trigger_s": 2, "post_trigger_s": 1},
        "targets": {"brands": ["Nissan", "Honda"]},
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    active: set[str] = set()
    captured: dict[str, int] = {}

    def both_captured(message: Any) -> bool:
        vin, kind = parse_topic(message.topic)
        if kind == "campaign-states":
            states = decode(CampaignStates, message.payload, "test").campaigns
            if any(s.id == "soc-seen" and s.state == "active" for s in states):
                active.add(vin)
        else:
            for batch in decode_telemetry(message.payload, "test"):
                if batch.campaign is not None and batch.campaign.id == "soc-seen":
                    assert vin not in captured, "a parked car's state of charge rises above 0 once"
                    captured[vin] = batch.seq
        return active == set(CARS) and set(captured) == set(CARS)

    async with _messages(mqtt_url, ingest, wildcard("campaign-states"), wildcard("telemetry")) as link:
        body = json.dumps(campaign).encode()
        created = await asyncio.to_thread(_http, "POST", f"{api}/api/v1/data/campaigns", body, headers)
        assert created["cars"] == 2
        await _until(link, both_captured)
    for vin, seq in captured.items():
        await _confirmed_up_to(mqtt_url, tmp_path, vin, seq)  # stored
    shown = await asyncio.to_thread(_http, "GET", f"{api}/api/v1/data/campaigns/soc-seen", None, headers)
    assert {(c["vin"], c["state"]) for c in shown["vehicles"]} == {(vin, "active") for vin in CARS}
    assert sorted((c["vin"], c["seq"]) for c in shown["capture_list"]) == sorted(captured.items())
    target = tmp_path / "soc-seen.parquet"
    env = _env() | {"OPENSDV_API_SECRET": secret}
    process = await asyncio.create_subprocess_exec(
        *OPENSDV, "data", "export", "soc-seen", "-o", str(target), "--api", api, "--operator", "ops", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert process.returncode == 0, out.decode()
    rows = pq.read_table(target).to_pylist()
    assert {row["vin"] for row in rows} == set(CARS) and all(row["version"] == 1 for row in rows)
    for vin in CARS:
        stamps = [(row["path"], row["ts"]) for row in rows if row["vin"] == vin]
        assert stamps and len(set(stamps)) == len(stamps)  # once
        assert [ts for _, ts in stamps] == sorted(ts for _, ts in stamps)  # in order
        assert any(path == SOC for path, _ in stamps)


def _recorded(state_dir: Path) -> int:
    """The highest sequence number the car has recorded (its spool, read while it is stopped or running)."""
    spool = Spool(state_dir / "spool.db")
    try:
        return spool.next_seq - 1
    finally:
        spool.close()


async def _confirmed_up_to(mqtt_url: str, tmp_path: Path, vin: str, seq: int) -> None:
    """Until the cloud confirms to ``vin`` a batch at or past ``seq`` (heard as the car: only it may)."""
    car = (vin, IdentityFiles.under(tmp_path / vin / "link", "vehicle"))
    async with _messages(mqtt_url, car, topic(vin, "telemetry-acks")) as acks:
        await _until(
            acks, lambda m: max(last for _, last in decode(TelemetryAck, m.payload, "test").stored) >= seq
        )
