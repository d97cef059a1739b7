"""The storage seam: one SQLAlchemy database, migrated by Alembic.

Embedded default: a SQLite file under the user's data directory. Real deployments: PostgreSQL by
URL (``postgresql+psycopg://user:pass@host/db``). Both run the same migrations and the same code;
the tests run against both. Each part keeps its own tables' code (the fleet registry is
``opensdv.cloud.fleet.registry``) and adds them with new migrations.
"""

from opensdv.storage.database import Database, StorageError

__all__ = ["Database", "StorageError"]
