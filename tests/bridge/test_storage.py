"""Migrations, engines and column types, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect, select
from sqlalchemy.orm import Session

from ledger_bridge.core.errors import ConfigurationError
from ledger_bridge.storage.db import (
    begin_write,
    create_db_engine,
    create_session_factory,
    display_url,
    upgrade_to_head,
)
from ledger_bridge.storage.models import Base, utcnow
from ledger_bridge.storage.types import UInt256, UTCDateTime


def test_migrations_match_models(database_url: str) -> None:
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()

    assert differences == []


def test_upgrade_twice_is_harmless(database_url: str) -> None:
    upgrade_to_head(database_url)
    upgrade_to_head(database_url)
    engine = create_db_engine(database_url)

    tables = set(inspect(engine).get_table_names())
    engine.dispose()

    assert {"organisations", "credentials", "operations", "request_id_sequences"} <= tables


def _scratch_table() -> tuple[MetaData, Table]:
    metadata = MetaData()
    table = Table(
        "scratch",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("big", UInt256()),
        Column("at", UTCDateTime()),
    )
    return metadata, table


def test_uint256_round_trips_and_sorts(database_url: str) -> None:
    metadata, table = _scratch_table()
    engine = create_db_engine(database_url)
    metadata.create_all(engine)
    values = [2**256 - 1, 0, 10, 9, 2**64]
    with Session(engine) as session:
        session.execute(table.insert(), [{"id": n, "big": v} for n, v in enumerate(values)])
        session.commit()
        stored = session.scalars(select(table.c.big).order_by(table.c.big)).all()
        above = session.scalars(select(table.c.big).where(table.c.big > 9)).all()
    engine.dispose()

    assert stored == sorted(values)
    assert sorted(above) == [10, 2**64, 2**256 - 1]


@pytest.mark.parametrize("value", [-1, 2**256, True, "5"])
def test_uint256_rejects_out_of_range(database_url: str, value: object) -> None:
    metadata, table = _scratch_table()
    engine = create_db_engine(database_url)
    metadata.create_all(engine)

    with Session(engine) as session, pytest.raises(Exception, match="UInt256"):
        session.execute(table.insert(), [{"id": 1, "big": value}])
    engine.dispose()


def test_utc_datetime_returns_aware_utc(database_url: str) -> None:
    metadata, table = _scratch_table()
    engine = create_db_engine(database_url)
    metadata.create_all(engine)
    china = timezone(timedelta(hours=8))
    moment = datetime(2026, 12, 21, 8, 30, tzinfo=china)
    with Session(engine) as session:
        session.execute(table.insert(), [{"id": 1, "at": moment}])
        session.commit()
        stored = session.scalar(select(table.c.at))
    engine.dispose()

    assert stored == moment
    assert stored.tzinfo is not None
    assert stored.utcoffset() == timedelta(0)
    assert stored.hour == 0


def test_utc_datetime_rejects_naive(database_url: str) -> None:
    metadata, table = _scratch_table()
    engine = create_db_engine(database_url)
    metadata.create_all(engine)

    with Session(engine) as session, pytest.raises(Exception, match="timezone-aware"):
        session.execute(table.insert(), [{"id": 1, "at": datetime(2026, 1, 1)}])
    engine.dispose()


def test_display_url_hides_password() -> None:
    shown = display_url("postgresql+psycopg://bridge:hunter2@db.internal/ledger")

    assert "hunter2" not in shown
    assert "db.internal" in shown


def test_utc_now_is_aware() -> None:
    assert utcnow().tzinfo is UTC


@pytest.mark.parametrize(
    ("query", "expected"),
    [("", 2), ("?synchronous=full", 2), ("?synchronous=normal", 1), ("?synchronous=NORMAL", 1)],
    ids=["default", "full", "normal", "upper-case"],
)
def test_sqlite_synchronous_from_url(tmp_path: Path, query: str, expected: int) -> None:
    url = f"sqlite:///{tmp_path / 'bridge.db'}{query}"
    upgrade_to_head(url)
    engine = create_db_engine(url)

    with engine.connect() as connection:
        synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
    engine.dispose()

    assert synchronous == expected


def test_sqlite_synchronous_rejects_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="synchronous"):
        create_db_engine(f"sqlite:///{tmp_path / 'bridge.db'}?synchronous=off")


def test_concurrent_sqlite_writers_all_commit(tmp_path: Path) -> None:
    metadata, table = _scratch_table()
    engine = create_db_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    metadata.create_all(engine)
    sessions = create_session_factory(engine)
    start = threading.Barrier(8)

    def write(row_id: int) -> None:
        with sessions() as session:
            start.wait()
            begin_write(session)
            session.execute(table.insert().values(id=row_id, big=row_id))
            session.commit()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(8)))
    with sessions() as session:
        begin_write(session)
        session.execute(table.insert().values(id=8, big=8))
        session.commit()
        stored = session.scalars(select(table.c.id).order_by(table.c.id)).all()
    engine.dispose()

    assert stored == list(range(9))
