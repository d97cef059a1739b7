"""The storage seam against SQLite (embedded default) and PostgreSQL (OPENSDV_TEST_POSTGRES_URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect, text

from opensdv.cloud.fleet.registry import VehicleRegistry, validate_vin
from opensdv.model import load_catalog
from opensdv.storage import Database, StorageError
from tests.conftest import need

LEAF_VIN = "SJNFAAZE1U0000001"
HONDA_VIN = "JHMZC7S30LX000002"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'nested' / 'opensdv.db'}")
    else:
        url = os.environ.get("OPENSDV_TEST_POSTGRES_URL")
        need(bool(url), "OPENSDV_TEST_POSTGRES_URL is not set (make test starts PostgreSQL when it can)")
        db = Database(str(url))
        db.downgrade("base")  # a clean schema for every test
    yield db
    db.close()


def test_migrations_create_and_remove_the_schema(database: Database) -> None:
    assert database.current_revision() is None
    database.migrate()
    assert database.current_revision() == database.head_revision() == "0009"
    assert {"vehicles", "ecus"} <= set(inspect(database.engine).get_table_names())
    database.migrate()  # idempotent
    database.downgrade("base")
    assert database.current_revision() is None
    assert "vehicles" not in inspect(database.engine).get_table_names()


def test_registry_round_trip_and_hardware_lookup(database: Database) -> None:
    database.migrate()
    registry = VehicleRegistry(database)
    catalog = load_catalog()
    leaf = registry.register(LEAF_VIN, catalog.vehicle("nissan-leaf-40"), "JP")
    registry.register(HONDA_VIN, catalog.vehicle("honda-e-advance"), "EU")
    stored = registry.get(LEAF_VIN)
    assert stored.ecus == leaf.ecus
    assert stored.registered_at == leaf.registered_at
    assert {e.name for e in stored.ecus} == {"VCM", "TCU", "OBC", "BMS", "EAXLE_FRONT", "APPS"}
    # one standard module in two brands: an OTA campaign by hardware id reaches both
    assert registry.with_hardware("KCM-BMS-8S-A1") == sorted([LEAF_VIN, HONDA_VIN])
    assert [v.vin for v in registry.vehicles(brand="Honda")] == [HONDA_VIN]


def test_duplicate_vin_is_refused_and_nothing_is_lost(database: Database) -> None:
    database.migrate()
    registry = VehicleRegistry(database)
    vehicle = load_catalog().vehicle("nissan-leaf-40")
    first = registry.register(LEAF_VIN, vehicle, "JP")
    with pytest.raises(StorageError, match=f"a vehicle with VIN {LEAF_VIN} is already registered"):
        registry.register(LEAF_VIN, vehicle, "US")
    assert registry.get(LEAF_VIN) == first
    assert len(registry.vehicles()) == 1


def test_registry_rejects_bad_input(database: Database) -> None:
    database.migrate()
    registry = VehicleRegistry(database)
    with pytest.raises(StorageError, match="is not sold in market 'US'"):
        registry.register(LEAF_VIN, load_catalog().vehicle("nissan-sakura"), "US")
    with pytest.raises(StorageError, match="no vehicle with VIN 'X' is registered"):
        registry.get("X")
    assert registry.vehicles() == []


def test_bad_urls_are_clear(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="cannot parse database URL 'not a url'"):
        Database("not a url")
    with pytest.raises(StorageError, match="cannot use database URL nosuchdb://"):
        Database("nosuchdb://x/y")
    unreachable = Database("postgresql+psycopg://user:secret@127.0.0.1:1/none")
    with pytest.raises(
        StorageError, match=r"cannot connect to postgresql\+psycopg://user:\*\*\*@127.0.0.1:1/none"
    ) as caught:
        unreachable.current_revision()
    assert "secret" not in str(caught.value)


def test_sqlite_enforces_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fk.db'}")
    db.migrate()
    with db.engine.connect() as connection:
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


@given(st.text(alphabet=VIN_ALPHABET, min_size=17, max_size=17))
def test_valid_vins_pass(vin: str) -> None:
    assert validate_vin(vin) == vin


@given(st.text(max_size=20))
def test_invalid_vins_are_refused_with_the_value(vin: str) -> None:
    valid = len(vin) == 17 and all(c in VIN_ALPHABET for c in vin)
    if valid:
        assert validate_vin(vin) == vin
    else:
        with pytest.raises(StorageError, match="is not 17 characters"):
            validate_vin(vin)
