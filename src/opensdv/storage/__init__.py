"""The storage seam: one SQLAlchemy database, migrated by Alembic.

Embedded default: a SQLite file under the user's data directory. Real deployments: PostgreSQL by
URL (``postgresql+psycopg://user:pass@host/db``). Both run the same migrations and the same code;
the tests run against both. Later parts add their tables with new migrations.
"""

from opensdv.storage.database import Database, StorageError
from opensdv.storage.registry import EcuRecord, RegisteredVehicle, VehicleRegistry, validate_vin

__all__ = ["Database", "EcuRecord", "RegisteredVehicle", "StorageError", "VehicleRegistry", "validate_vin"]
