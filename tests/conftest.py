"""Fixtures shared by the whole suite."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, why: str) -> None:
    """Skip locally when a shared resource is missing; in CI a missing resource is a failure."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI must provide this: {why}")
        pytest.skip(why)


def need_reference(module: str) -> None:
    """A reference tool of the bench extra: skipped without it locally, required in CI."""
    need(
        importlib.util.find_spec(module) is not None,
        f"{module} is in the bench extra (make bench, or pip install -e '.[bench]')",
    )


@pytest.fixture(scope="session")
def shared() -> Path:
    need(SHARED.is_dir(), f"{SHARED} (the team's shared folder) is not beside the checkout")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's opensdv.toml, OPENSDV_* variables or data directory."""
    for name in list(os.environ):
        if name.startswith("OPENSDV_") and not name.startswith("OPENSDV_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPENSDV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def own_mosquitto(port: int, directory: Path) -> AsyncIterator[str]:
    """A Mosquitto of this test's own (no persistence), to stop and start again on ``port``:
    ready when it says it is running."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    need(binary is not None, "mosquitto (make test installs it)")
    assert binary is not None
    conf = directory / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n")
    broker = await asyncio.create_subprocess_exec(binary, "-c", str(conf), stderr=asyncio.subprocess.PIPE)
    assert broker.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(10):
            while b" running" not in await broker.stderr.readline():
                pass
        drain = asyncio.create_task(_drain(broker.stderr))  # a full pipe would stall the broker
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        broker.terminate()
        await broker.wait()
        if drain is not None:
            drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
