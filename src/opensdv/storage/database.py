"""Opening a database by URL and bringing its schema to the newest migration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from opensdv.errors import OpenSDVError

__all__ = ["Database", "StorageError"]

_MIGRATIONS = Path(__file__).with_name("migrations")


class StorageError(OpenSDVError):
    """The database cannot be opened, migrated, or refused a write (the message says which)."""


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """An engine plus the Alembic configuration for this package's migrations."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StorageError(
                f"cannot parse database URL {url!r} (expected e.g. sqlite:///file.db)"
            ) from None
        self.url = parsed.render_as_string(hide_password=True)  # for messages and logs
        self.open_url = url  # for another process (a Ray worker) to open the same database
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = create_engine(parsed)
        except (NoSuchModuleError, ArgumentError, ImportError) as exc:
            raise StorageError(f"cannot use database URL {self.url}: {exc}") from None
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _enable_sqlite_foreign_keys)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        return config

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision``; safe to run at every start."""
        self._run(command.upgrade, revision)

    def downgrade(self, revision: str) -> None:
        """Step the schema back (``base`` removes every table)."""
        self._run(command.downgrade, revision)

    def _run(self, action: Any, revision: str) -> None:
        config = self._alembic_config()
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                action(config, revision)
        except OperationalError as exc:
            raise StorageError(f"cannot migrate {self.url}: {exc.orig}") from None

    def current_revision(self) -> str | None:
        try:
            with self.engine.connect() as connection:
                return MigrationContext.configure(connection).get_current_revision()
        except OperationalError as exc:
            raise StorageError(f"cannot connect to {self.url}: {exc.orig}") from None

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back (and re-raised) on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except SQLAlchemyError:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()
