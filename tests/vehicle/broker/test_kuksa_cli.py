"""The stock ``kuksa-client`` command line, driven as a user types into it, against our broker over
TLS with a JWT: setValue, getValue, setTargetValue, getTargetValue, getMetaData, subscribe and
unsubscribe, and the refusals a token's scope makes. (Mutual TLS is tested with raw gRPC in test_v2_wire.py:
kuksa-client cannot present a client certificate.)"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opensdv.vehicle.broker import TlsConfig, TokenVerifier, mint_token
from tests.vehicle.broker.conftest import RunningBroker, start_broker

ANSI = re.compile(r"\x1b\[[0-9;]*m")
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"
SCOPE = f"read provide:data:{SPEED} actuate:{TRUNK}"


def kuksa_client() -> str:
    """The CLI installed beside this interpreter (the venv's bin/ need not be on PATH)."""
    beside = Path(sys.executable).parent / "kuksa-client"
    binary = str(beside) if beside.exists() else shutil.which("kuksa-client")
    assert binary is not None, "kuksa-client is a dependency of opensdv"
    return binary


class Session:
    """kuksa-client as a process: type a line, read what it prints until a pattern shows."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [kuksa_client(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},  # what a subscription prints arrives as it is printed
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen = ""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(ANSI.sub("", line))
        self.lines.put("")  # the end

    def type(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def expect(self, pattern: str, timeout_s: float = 30.0) -> str:
        """Everything printed up to and including the line ``pattern`` matches."""
        found = ""
        while True:
            line = self.lines.get(timeout=timeout_s)
            if not line:
                raise AssertionError(f"kuksa-client ended before {pattern!r}; it printed:\n{self.seen}")
            found += line
            self.seen += line
            if re.search(pattern, line):
                return found

    def close(self) -> None:
        self.type("quit")
        self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def tls_broker(pki: Any, rsa_keys: tuple[bytes, bytes]) -> Iterator[RunningBroker]:
    handle = start_broker(
        verifier=TokenVerifier([rsa_keys[1]]), tls=TlsConfig(pki.server_cert, pki.server_key), address="localhost:0"
    )
    yield handle
    handle.stop()


def test_a_scripted_session_over_tls_with_a_token(
    tls_broker: RunningBroker, pki: Any, rsa_keys: tuple[bytes, bytes], tmp_path: Path
) -> None:
    token = tmp_path / "app.token"
    token.write_text(mint_token(rsa_keys[0], SCOPE))
    session = Session("--token_or_tokenfile", str(token), "--cacertificate", str(pki.ca_cert), f"grpcs://localhost:{tls_broker.port}")
    try:
        session.expect("Secure gRPC channel connected")
        session.type(f"setValue {SPEED} 42.5")
        session.expect("OK")
        session.type(f"getValue {SPEED}")
        assert '"value": 42.5' in session.expect(r"^}")
        session.type(f"setValue {SOC} 50")  # outside the token's scope
        refused = session.expect(r"^}")
        assert '"code": 7' in refused and f"provide:data access to {SOC} is not in the token's scope" in refused
        session.type(f"setTargetValue {TRUNK} true")
        session.expect("OK")
        session.type(f"getTargetValue {TRUNK}")
        assert '"value": true' in session.expect(r"^}")
        session.type(f"getMetaData {SPEED}")
        metadata = session.expect(r"^}")
        assert '"unit": "km/h"' in metadata and '"entry_type": "SENSOR"' in metadata
        session.type(f"subscribe {SPEED}")
        subscription = re.search(r'"subscriptionId": "([0-9a-f-]+)"', session.expect("subscriptionId"))
        assert subscription is not None
        # the CLI prints updates only on a terminal (cmd2's alerts); the broker holds the stream
        tls_broker.wait_until(lambda broker: broker.statistics().subscriptions == 1)
        session.type(f"unsubscribe {subscription.group(1)}")
        session.expect("OK")
        tls_broker.wait_until(lambda broker: broker.statistics().subscriptions == 0)
    finally:
        session.close()
    assert session.process.returncode == 0


def test_without_a_token_or_the_ca_nothing_is_read(tls_broker: RunningBroker, pki: Any) -> None:
    session = Session("--cacertificate", str(pki.ca_cert), f"grpcs://localhost:{tls_broker.port}")
    try:
        session.expect("Secure gRPC channel connected")
        session.type(f"getValue {SPEED}")
        refused = session.expect(r"^}")
        assert '"code": 16' in refused or "unauthenticated" in refused.lower()  # UNAUTHENTICATED
    finally:
        session.close()
    plain = subprocess.run(
        [kuksa_client(), f"grpc://localhost:{tls_broker.port}"],
        input=f"getValue {SPEED}\nquit\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "could not be connected" in plain.stdout and '"value"' not in plain.stdout  # plaintext: no channel
