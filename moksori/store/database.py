"""The database: engine, sessions and Alembic migrations, configured in code (no alembic.ini).

``Database(url)`` opens SQLite (the default, a file) or any SQLAlchemy URL such as
``postgresql+psycopg://user:pass@host/db``, and migrates the schema to the newest revision.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = "sqlite:///moksori.db"


def _parse_url(url: str | Path) -> URL:
    """A SQLAlchemy URL; a bare path (no ``://``) means a SQLite file."""
    text = str(url)
    if "://" not in text:
        return URL.create("sqlite", database=text)
    return make_url(text)


def _is_sqlite_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def _set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL lets the server read while the trainer writes; in-memory databases answer "memory".
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _make_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False}}
    if _is_sqlite_memory(url):
        # Every new connection to ":memory:" is a new, empty database: keep exactly one.
        kwargs["poolclass"] = StaticPool
    elif url.database and not url.database.startswith("file:"):
        _create_private(Path(url.database).expanduser())
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _set_sqlite_pragmas)
    return engine


def _create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600: it holds password and key hashes
    and session tokens' hashes); SQLite gives its -wal and -shm files the same mode. An existing
    file readable by others is left as it is, with a warning."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning("database file %s is readable by other users (mode %o); chmod 600 it", path, mode)
        return
    os.close(fd)


def alembic_config(url: str | URL) -> Config:
    """An Alembic config for the packaged migrations, pointed at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation would choke on "%" in passwords.
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    config.set_main_option("sqlalchemy.url", text.replace("%", "%%"))
    return config


class Database:
    """One database: its engine, a session factory, and migrations run on open.

    Sessions use ``expire_on_commit=False``: objects keep their loaded column values after the
    session commits and closes, so store functions can hand them back safely (detached).
    """

    def __init__(self, url: str | Path = DEFAULT_URL, *, migrate: bool = True) -> None:
        self.url = _parse_url(url)
        self.engine = _make_engine(self.url)
        self._sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        if migrate:
            self.upgrade()

    @classmethod
    def in_memory(cls) -> Database:
        """A private, migrated in-memory SQLite database (for tests)."""
        return cls("sqlite://")

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back on error."""
        with self._sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema up to ``revision`` (the newest by default)."""
        self._run_alembic(command.upgrade, revision)

    def downgrade(self, revision: str = "base") -> None:
        """Migrate the schema down to ``revision`` ("base" drops every table)."""
        self._run_alembic(command.downgrade, revision)

    def revision(self) -> str | None:
        """The schema revision the database is at, or None before the first migration."""
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def _run_alembic(self, fn: Any, revision: str) -> None:
        config = alembic_config(self.url)
        # Sharing our connection lets migrations reach an in-memory database (see env.py).
        with self.engine.begin() as connection:
            _lock_for_migration(connection)
            config.attributes["connection"] = connection
            fn(config, revision)


# Any fixed number: the PostgreSQL advisory lock that migrations hold.
_PG_MIGRATION_LOCK = 0x6D6B7372  # "mksr"


def _lock_for_migration(connection: Connection) -> None:
    """Make processes that open a new database together migrate it one after the other.

    The lock lasts until the migration's transaction ends; whoever comes second then finds
    the schema already at head and has nothing to do.
    """
    backend = connection.dialect.name
    if backend == "sqlite":
        # Takes SQLite's write lock now (waiting out the busy timeout) instead of at the
        # first CREATE TABLE; it also makes the whole migration one transaction.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif backend == "postgresql":
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")


def upgrade(url: str | Path = DEFAULT_URL) -> str | None:
    """Migrate the database at ``url`` to the newest revision; returns that revision."""
    with Database(url) as db:
        return db.revision()


def downgrade(url: str | Path, revision: str = "base") -> str | None:
    """Migrate the database at ``url`` down to ``revision``; returns the revision it is at."""
    with Database(url, migrate=False) as db:
        db.downgrade(revision)
        return db.revision()
