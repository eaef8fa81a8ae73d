"""Engines, sessions and schema migrations."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.core.errors import ConfigurationError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# How long a SQLite connection waits for another writer's lock before failing.
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# Connections kept open per SQLite engine: AnyIO's default threadpool size (40), plus the worker
# and the indexer, so that request threads reuse connections instead of opening new ones.
SQLITE_POOL_SIZE = 42
# Query parameter of a SQLite URL that sets PRAGMA synchronous: "full" (default) or "normal".
SYNCHRONOUS_PARAMETER = "synchronous"
SQLITE_SYNCHRONOUS_MODES = ("full", "normal")
_WRITE_OPTION = "ledger_bridge_write"
# Key in a pooled connection's `info` that marks it as the holder of the engine's write gate.
_GATE_HELD = "ledger_bridge_write_gate"


def create_db_engine(database_url: str) -> Engine:
    """Create an engine, configured on SQLite for concurrent readers and queued writers.

    A SQLite URL may end in `?synchronous=normal`. In WAL mode that skips the fsync of
    each commit. A crash of the bridge loses nothing, but an OS crash or a power cut can
    lose the last commits, including accepted operations. The default, `full`, keeps them.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    synchronous = _sqlite_synchronous(url)
    is_file = url.database not in (None, "", ":memory:")
    pool_options = {"pool_size": SQLITE_POOL_SIZE} if is_file else {}
    engine = create_engine(
        url.difference_update_query([SYNCHRONOUS_PARAMETER]),
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
        **pool_options,
    )
    _configure_sqlite(engine, is_file=is_file, synchronous=synchronous)
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
    config.attributes["database_url"] = _without_engine_options(database_url)
    return config


def display_url(database_url: str | URL) -> str:
    """Render a database URL for logs, with the password hidden."""
    return make_url(database_url).render_as_string(hide_password=True)


def _sqlite_synchronous(url: URL) -> str:
    value = url.query.get(SYNCHRONOUS_PARAMETER, "full")
    if not isinstance(value, str) or value.lower() not in SQLITE_SYNCHRONOUS_MODES:
        raise ConfigurationError(
            "database_url",
            f"has an invalid '{SYNCHRONOUS_PARAMETER}' query parameter",
            f"Use one of {', '.join(SQLITE_SYNCHRONOUS_MODES)}, or leave it out for full.",
        )
    return value.lower()


def _without_engine_options(database_url: str) -> str:
    """Return the URL without the query parameters that only create_db_engine reads."""
    url = make_url(database_url)
    if SYNCHRONOUS_PARAMETER not in url.query:
        return database_url
    return url.difference_update_query([SYNCHRONOUS_PARAMETER]).render_as_string(
        hide_password=False
    )


def _configure_sqlite(engine: Engine, *, is_file: bool, synchronous: str) -> None:
    # Write transactions of this process queue on this lock, so only one at a time reaches
    # SQLite. SQLite's busy handler makes a blocked writer sleep and retry, with sleeps of up
    # to 100 ms, so with many writers one can wait seconds after the lock is free. A thread
    # waiting here wakes as soon as the previous writer returns its connection to the pool.
    gate = threading.Lock() if is_file else None

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
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_WRITE_OPTION):
            if gate is not None:
                _enter_write_gate(gate, connection.info)
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    if gate is not None:
        # A session returns its connection to the pool once its commit or rollback has
        # finished, so the next writer starts only after this one's commit is durable.
        @event.listens_for(engine.pool, "checkin")
        def _on_checkin(dbapi_connection: Any, connection_record: Any) -> None:
            if connection_record.info.pop(_GATE_HELD, False):
                gate.release()


def _enter_write_gate(gate: threading.Lock, connection_info: dict[str, Any]) -> None:
    """Wait for the write gate, unless this connection holds it from an earlier transaction.

    After SQLITE_BUSY_TIMEOUT_SECONDS without the gate the transaction goes on without it,
    and SQLite's own busy timeout decides, as it did before the gate existed.
    """
    if connection_info.get(_GATE_HELD):
        return
    if gate.acquire(timeout=SQLITE_BUSY_TIMEOUT_SECONDS):
        connection_info[_GATE_HELD] = True
        return
    logger.warning(
        "Waited %s s for another write transaction of this process; starting without the gate",
        SQLITE_BUSY_TIMEOUT_SECONDS,
    )
