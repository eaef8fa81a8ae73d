"""The history queries use the composite indexes, on SQLite and PostgreSQL.

Each test fills the event table with made-up rows, runs a history query,
captures the exact SQL and parameters that SQLAlchemy sent, and requests
the database's plan of that statement. On SQLite a page of a line must
come from an index range scan in chain order, without a sort step. On
PostgreSQL it must come from an index that the planner chooses. The timings
of the same queries on a million events are in
docs/benchmarks/history-queries.md, measured by bench/history_queries.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.indexer.history import (
    ChainPosition,
    EventFilter,
    contract_scope,
    events_page,
    line_scope,
    lines_scope,
)
from ledger_bridge.indexer.verification import REPLAYED_EVENTS
from ledger_bridge.storage.models import ChainEvent

from .indexer_support import database_params, fresh_database, session_factory_for

# Two large facilities and a small one, whose share of the events makes its index selective.
FACILITIES = ["0x" + "f1" * 20, "0x" + "f2" * 20]
SMALL_FACILITY = "0x" + "f3" * 20
LINES = 200
BLOCKS = 60
# A line with an event in every block and transaction, like a line drawn and repaid all day.
HOT_LINE = 1
HOT_LINE_EVENTS_PER_BLOCK = 80
EVENT_NAMES = ["LineDrawn", "Repaid", "InterestSettled", "FundsLocked", "PayoutMade"]


def made_up_events() -> Iterator[dict[str, Any]]:
    """Rows for LINES lines in each large facility and a few in the small one, in BLOCKS blocks."""
    for block in range(BLOCKS):
        lines = [(facility, line_id) for facility in FACILITIES for line_id in range(2, LINES + 1)]
        lines += [(FACILITIES[0], HOT_LINE)] * HOT_LINE_EVENTS_PER_BLOCK
        lines += [(SMALL_FACILITY, 1)] * 3
        for log_index, (facility, line_id) in enumerate(lines):
            yield {
                "block_number": 1_000 + block,
                "block_hash": f"0x{block:064x}",
                "block_timestamp": datetime(2026, 1, 1, tzinfo=UTC),
                "transaction_hash": f"0x{block:032x}{log_index:032x}",
                "transaction_index": 0,
                "log_index": log_index,
                "contract_address": facility,
                "contract_name": "CreditFacility",
                "event": EVENT_NAMES[(block + log_index) % len(EVENT_NAMES)],
                "line_id": line_id,
                "args": {"lineId": str(line_id)},
                "confirmed": True,
            }


@pytest.fixture(scope="module", params=database_params())
def sessions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    directory: Path = tmp_path_factory.mktemp("plans")
    for url in fresh_database(request.param, directory):
        factory = session_factory_for(url)
        with factory() as session:
            session.execute(insert(ChainEvent), list(made_up_events()))
            session.commit()
            session.execute(text("ANALYZE"))
            session.commit()
        yield factory
        factory.kw["bind"].dispose()


def plan_of(sessions: sessionmaker[Session], run: Callable[[Session], Any]) -> str:
    """Run a query and return the database's plan for the SELECT it sent, as one string."""
    engine: Engine = sessions.kw["bind"]
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "chain_events" in statement:
            captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with sessions() as session:
            run(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, parameters = captured[0]
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


def assert_uses_index(plan: str, index: str, sessions: sessionmaker[Session]) -> None:
    """Check the plan of a page query.

    SQLite must walk `index` in chain order, with no sort step ("TEMP B-TREE").
    PostgreSQL picks among the indexes by its statistics: for a line with an
    event in most blocks it may walk the block number index and filter, which
    is as cheap. It must use an index and never read the whole table.
    """
    if sessions.kw["bind"].dialect.name == "sqlite":
        assert index in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    else:
        assert "Index" in plan, plan
        assert "Seq Scan" not in plan, plan


@pytest.mark.parametrize(
    "after", [None, ChainPosition(1_030, 7)], ids=["first-page", "page-after-cursor"]
)
def test_line_page_scans_line_index(
    sessions: sessionmaker[Session], after: ChainPosition | None
) -> None:
    plan = plan_of(
        sessions,
        lambda session: events_page(
            session, line_scope(FACILITIES[0], HOT_LINE), EventFilter(), after=after, limit=100
        ),
    )

    assert_uses_index(plan, "ix_chain_events_line", sessions)


def test_filtered_line_page_scans_line_index(sessions: sessionmaker[Session]) -> None:
    filters = EventFilter(
        event_names=["LineDrawn", "Repaid"],
        from_block=1_010,
        to_block=1_050,
        from_time=datetime(2025, 1, 1, tzinfo=UTC),
        confirmed_only=True,
    )

    plan = plan_of(
        sessions,
        lambda session: events_page(
            session, line_scope(FACILITIES[0], HOT_LINE), filters, after=None, limit=100
        ),
    )

    assert_uses_index(plan, "ix_chain_events_line", sessions)


def test_facility_page_scans_contract_index(sessions: sessionmaker[Session]) -> None:
    plan = plan_of(
        sessions,
        lambda session: events_page(
            session,
            contract_scope(SMALL_FACILITY),
            EventFilter(),
            after=ChainPosition(1_020, 5),
            limit=100,
        ),
    )

    assert_uses_index(plan, "ix_chain_events_contract_position", sessions)


def test_replay_of_payouts_uses_an_index(sessions: sessionmaker[Session]) -> None:
    scope = ChainEvent.event.in_(sorted(REPLAYED_EVENTS))

    plan = plan_of(
        sessions,
        lambda session: events_page(session, scope, EventFilter(), after=None, limit=1000),
    )

    assert "ix_chain_events" in plan, plan


def test_borrower_page_uses_line_index(sessions: sessionmaker[Session]) -> None:
    lines = [(FACILITIES[0], 3), (FACILITIES[1], 8)]

    plan = plan_of(
        sessions,
        lambda session: events_page(
            session, lines_scope(lines), EventFilter(), after=None, limit=100
        ),
    )

    assert "ix_chain_events_line" in plan, plan
