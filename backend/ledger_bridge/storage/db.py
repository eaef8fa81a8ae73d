"""Engines, sessions and schema migrations."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long a SQLite connection waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_SECONDS = 30
_WRITE_OPTION = "ledger_bridge_write"


def create_db_engine(database_url: str) -> Engine:
    """Create an engine, configured on SQLite for concurrent readers and queued writers."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )
    _configure_sqlite(engine, is_file=url.database not in (None, "", ":memory:"))
    return engine


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def begin_write(session: Session) -> None:
    """Start the session's transaction as a write transaction.

    On SQLite this emits BEGIN IMMEDIATE, so a concurrent writer waits for the
    lock instead of failing with "database is locked" when its read
    transaction tries to upgrade. Other backends start a normal transaction.
    A read-only transaction that is already open is rolled back first.
    """
    if session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("begin_write needs a session without pending changes; commit first")
        session.rollback()
    session.connection(execution_options={_WRITE_OPTION: True})


def upgrade_to_head(database_url: str) -> None:
    """Apply every Alembic migration that the database has not had yet."""
    logger.info("Upgrading database schema at %s", display_url(database_url))
    command.upgrade(alembic_config(database_url), "head")


def alembic_config(database_url: str) -> Config:
    """Build the Alembic configuration for the bridge's migrations."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Passed as an attribute because set_main_option would treat '%' in a password as
    # interpolation syntax.
    config.attributes["database_url"] = database_url
    return config


def display_url(database_url: str | URL) -> str:
    """Render a database URL for logs, with the password hidden."""
    return make_url(database_url).render_as_string(hide_password=True)


def _configure_sqlite(engine: Engine, *, is_file: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Take transaction control from the sqlite3 module, which would otherwise
        # skip BEGIN for SELECT statements, so that the "begin" listener below emits it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if is_file:
            # Write-ahead logging lets readers proceed while one writer commits.
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")
