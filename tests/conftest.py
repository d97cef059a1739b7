"""Fixtures shared by the whole suite."""

from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import pytest
from hypothesis import settings

from tests.fleet_identities import Fleet, mosquitto_binary

pytest_plugins = ["tests.hang_report"]

# Hypothesis's per-example deadline is a timing assertion: on a loaded 2-core machine it fails tests
# whose logic is right (performance is measured in bench/, never asserted here).
settings.register_profile("opensdv", deadline=None)
settings.load_profile("opensdv")

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


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    """The session's fleet CA and identities (see tests/fleet_identities.py)."""
    return Fleet(tmp_path_factory.mktemp("fleet"))


def need_mosquitto() -> None:
    need(mosquitto_binary() is not None, "mosquitto (make test installs it)")
