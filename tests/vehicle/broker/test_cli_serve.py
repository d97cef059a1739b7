"""``opensdv broker serve`` as a process: flags, tokens, TLS, state file, clean shutdown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kuksa_client.grpc import Datapoint, VSSClient, VSSClientError
from typer.testing import CliRunner

from opensdv.cli import app

SPEED = "Vehicle.Speed"


@contextmanager
def serving(*args: str, banner: list[str] | None = None) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``opensdv broker serve`` as a process, once it says where it listens (that line appended
    to ``banner`` when one is given)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    anonymous = [] if "--jwt-public-key" in args else ["--allow-anonymous"]
    command = [sys.executable, "-m", "opensdv", "broker", "serve", "--address", "127.0.0.1:0", *anonymous, *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            line = process.stdout.readline()  # blocks until the server says where it listens
            match = re.search(r"on 127\.0\.0\.1:(\d+)", line)
            assert match, f"no address in {line!r}; stderr: {process.stderr.read()}"
            if banner is not None:
                banner.append(line)
            yield process, int(match.group(1))
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            process.wait(timeout=20)


def test_serve_keeps_state_across_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with serving("--state", str(state)) as (process, port):
        with VSSClient("127.0.0.1", port) as client:
            client.set_current_values({SPEED: Datapoint(88.0)})
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    assert state.exists()
    with serving("--state", str(state)) as (_, port), VSSClient("127.0.0.1", port) as client:
        assert client.get_current_values([SPEED])[SPEED].value == 88.0


def test_serve_with_keys_and_tokens_from_the_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(app, ["broker", "keygen", "--out", str(tmp_path), "--algorithm", "ES256"]).exit_code
        == 0
    )
    minted = runner.invoke(
        app,
        ["broker", "token", "--key", str(tmp_path / "jwt.key"), "--scope", "read provide:data:Vehicle.Speed"],
    )
    assert minted.exit_code == 0, minted.output
    token = minted.output.strip()
    with serving("--jwt-public-key", str(tmp_path / "jwt.pub")) as (_, port):
        with VSSClient("127.0.0.1", port, token=token) as client:
            client.set_current_values({SPEED: Datapoint(5.0)})
            assert client.get_current_values([SPEED])[SPEED].value == 5.0
        with VSSClient("127.0.0.1", port) as anonymous, pytest.raises(VSSClientError):
            anonymous.get_current_values([SPEED])


def test_serve_with_tls_certificates_from_the_cli(tmp_path: Path) -> None:
    assert CliRunner().invoke(app, ["broker", "certs", "--out", str(tmp_path)]).exit_code == 0
    with (
        serving("--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key")) as (
            _,
            port,
        ),
        VSSClient("localhost", port, root_certificates=tmp_path / "ca.pem") as client,
    ):
        client.set_current_values({SPEED: Datapoint(1.0)})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tls-cert", "x.pem"], "TLS needs both a certificate and a key (--tls-cert and --tls-key"),
        (["--jwt-public-key", "missing.pub"], "missing.pub: cannot read JWT public key"),
        (["--vss", "nope.json"], "nope.json: file not found"),
        (["--address", "nonsense"], "--address must be host:port"),
    ],
)
def test_serve_refuses_bad_flags_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opensdv", "broker", "serve", "--allow-anonymous", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "refusing to serve every signal to anyone: give --jwt-public-key"),
        (["--allow-anonymous", "--address", "0.0.0.0:0"], "refusing plaintext on 0.0.0.0"),
    ],
)
def test_serve_is_not_open_to_anyone_by_default(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "opensdv", "broker", "serve", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_serve_with_viss_and_sdv_v1() -> None:
    """``--viss`` and ``--enable-sdv-v1`` serve the same values as kuksa.val."""
    import json

    import grpc
    from websockets.sync.client import connect

    from opensdv.vehicle.broker.grpc.sdv_v1 import broker_pb2 as sdv_api
    from opensdv.vehicle.broker.grpc.sdv_v1 import broker_pb2_grpc as sdv_grpc

    banner: list[str] = []
    with serving("--viss", "127.0.0.1:0", "--enable-sdv-v1", banner=banner) as (_, port):
        (line,) = banner
        assert "sdv.databroker.v1" in line
        viss = re.search(r"VISS v3 on (ws://127\.0\.0\.1:\d+)", line)
        assert viss, line
        with VSSClient("127.0.0.1", port) as client:
            client.set_current_values({SPEED: Datapoint(61.0)})
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = sdv_grpc.BrokerStub(channel).GetDatapoints(sdv_api.GetDatapointsRequest(datapoints=[SPEED]))
            assert reply.datapoints[SPEED].float_value == 61.0
        with connect(viss.group(1), subprotocols=["VISSv3"]) as ws:  # type: ignore[list-item]
            ws.send(json.dumps({"action": "get", "path": SPEED, "requestId": "1"}))
            assert json.loads(ws.recv(timeout=10))["data"]["dp"]["value"] == "61"
