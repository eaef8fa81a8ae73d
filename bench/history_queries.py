"""Time the history queries of the event index on a table of a million made-up events.

Usage (from the repository root):

    PYTHONPATH=backend .venv/bin/python bench/history_queries.py [--database-url URL]

Without --database-url the script uses a SQLite file in a temporary folder.
A PostgreSQL URL must name an empty database the user may create tables in.
The script fills the table, runs ANALYZE, runs each query `--repeat` times
and prints a Markdown table of the median and slowest times in milliseconds.
docs/benchmarks/history-queries.md records the results.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from ledger_bridge.indexer.history import (
    ChainPosition,
    EventFilter,
    contract_scope,
    events_page,
    line_scope,
    lines_scope,
)
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent

FACILITIES = ("0x" + "f1" * 20, "0x" + "f2" * 20)
EVENTS_PER_BLOCK = 20
INSERT_CHUNK = 20_000
EVENT_NAMES = ("LineDrawn", "Repaid", "InterestSettled", "FundsLocked", "PayoutMade", "LineFrozen")
HOT_LINE = 1
GENESIS_TIME = datetime(2026, 1, 1, tzinfo=UTC)
NO_FILTER = EventFilter()


def main() -> None:
    arguments = _parser().parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = arguments.database_url or f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade_to_head(url)
        sessions = create_session_factory(create_db_engine(url))
        started = time.perf_counter()
        with sessions() as session:
            _fill(session, arguments.events, arguments.lines, arguments.hot_line_events)
        filled = time.perf_counter() - started
        with sessions() as session:
            rows = _measure(session, arguments.events, arguments.lines, arguments.repeat)
            version = _database_version(session)
    print(f"database: {version}; Python {platform.python_version()}; {_cpu()}")
    print(
        f"events: {arguments.events:,} in {arguments.lines:,} lines, hot line "
        f"{arguments.hot_line_events:,}; filled in {filled:.0f} s; {arguments.repeat} runs each"
    )
    print()
    print("| query | median ms | slowest ms | rows |")
    print("|---|---:|---:|---:|")
    for name, median, slowest, count in rows:
        print(f"| {name} | {median:.2f} | {slowest:.2f} | {count} |")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL of the database, by default a temporary SQLite file"
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in total")
    parser.add_argument("--lines", type=int, default=10_000, help="lines besides the hot line")
    parser.add_argument(
        "--hot-line-events", type=int, default=50_000, help="events of the busiest line"
    )
    parser.add_argument("--repeat", type=int, default=30, help="runs of each query")
    return parser


def _rows(events: int, lines: int, hot_line_events: int) -> Iterator[dict[str, Any]]:
    """Yield events in blocks of EVENTS_PER_BLOCK. Every `events // hot_line_events`-th is
    the hot line's, and the others go round the other lines of both facilities."""
    hot_every = max(1, events // hot_line_events)
    for number in range(events):
        block, log_index = divmod(number, EVENTS_PER_BLOCK)
        if number % hot_every == 0:
            facility, line_id = FACILITIES[0], HOT_LINE
        else:
            facility, line_id = FACILITIES[number % 2], 2 + number % lines
        yield {
            "block_number": block,
            "block_hash": f"0x{block:064x}",
            "block_timestamp": GENESIS_TIME + timedelta(seconds=2 * block),
            "transaction_hash": f"0x{number:064x}",
            "transaction_index": log_index,
            "log_index": log_index,
            "contract_address": facility,
            "contract_name": "CreditFacility",
            "event": EVENT_NAMES[number % len(EVENT_NAMES)],
            "line_id": line_id,
            "args": {"lineId": str(line_id), "amount": str(number)},
            "confirmed": True,
        }


def _fill(session: Session, events: int, lines: int, hot_line_events: int) -> None:
    chunk: list[dict[str, Any]] = []
    for row in _rows(events, lines, hot_line_events):
        chunk.append(row)
        if len(chunk) == INSERT_CHUNK:
            session.execute(insert(ChainEvent), chunk)
            chunk = []
    if chunk:
        session.execute(insert(ChainEvent), chunk)
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()


def _measure(
    session: Session, events: int, lines: int, repeat: int
) -> list[tuple[str, float, float, int]]:
    middle_block = events // EVENTS_PER_BLOCK // 2
    middle = ChainPosition(middle_block, 0)
    hot = line_scope(FACILITIES[0], HOT_LINE)
    sparse = line_scope(FACILITIES[1], 2 + lines // 2 + 1)
    filters = EventFilter(
        event_names=["LineDrawn", "Repaid"], from_block=middle_block, confirmed_only=True
    )
    borrower = lines_scope([(FACILITIES[index % 2], 2 + index * 7) for index in range(5)])

    def page(scope: Any, filters: EventFilter = NO_FILTER, after: Any = None) -> Callable[[], Any]:
        return lambda: events_page(session, scope, filters, after=after, limit=100)

    queries = [
        ("sparse line, first page", page(sparse)),
        ("hot line, first page", page(hot)),
        ("hot line, page after a cursor in the middle", page(hot, after=middle)),
        ("hot line, by event and from a block", page(hot, filters)),
        ("borrower with 5 lines, first page", page(borrower)),
        (
            "facility, page after a cursor in the middle",
            page(contract_scope(FACILITIES[1]), after=middle),
        ),
    ]
    results = []
    for name, run in queries:
        timings = []
        count = 0
        for _ in range(repeat):
            started = time.perf_counter()
            count = len(run().events)
            timings.append((time.perf_counter() - started) * 1000)
            session.rollback()
        results.append((name, statistics.median(timings), max(timings), count))
    return results


def _database_version(session: Session) -> str:
    if session.get_bind().dialect.name == "sqlite":
        return "SQLite " + str(session.execute(text("SELECT sqlite_version()")).scalar())
    return str(session.execute(text("SELECT version()")).scalar()).split(" on ")[0]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
