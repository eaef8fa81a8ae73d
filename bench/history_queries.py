"""Time a line's history on an index of a million made-up events, SQLite and PostgreSQL.

Usage (from the repository root):

    PYTHONPATH=backend .venv/bin/python bench/history_queries.py [--postgres-url URL]

The script starts Anvil on a free 127.0.0.1 port and deploys with scripts/deploy.py, so
that the bridge has a real facility to serve. For each database (a SQLite file in a
temporary folder, and PostgreSQL when --postgres-url names a server) it fills the event
table with `--events` events of that facility, runs ANALYZE, then measures two things:

- the query alone: `events_page`, the function behind the history routes, run
  `--repeat` times on one connection;
- the API: `GET /v1/lines/{id}/history` with an auditor's credential against
  `ledger-bridge serve` (worker and indexer off, so nothing writes meanwhile), run
  `--http-repeat` times over one keep-alive connection after three unrecorded warm-up requests.

--postgres-url names a server and a database the user may connect to, such as the one CI sets
in LEDGER_TEST_POSTGRES_URL; the script creates its own database there and drops it at the end.
Results go to bench/history_queries.json, and docs/benchmarks/history-queries.md describes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

# Python puts the script's folder, bench/, on sys.path, so the sibling benchmarks import.
from bridge_throughput import _bridge, _bridge_environment, _run_cli
from indexer_backfill import REPOSITORY, _anvil, _cpu, _deploy, _percentile
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ledger_bridge.indexer.history import (
    ChainPosition,
    EventFilter,
    contract_scope,
    encode_cursor,
    events_page,
    line_scope,
    lines_scope,
)
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent

RESULT_FILE = REPOSITORY / "bench" / "history_queries.json"
# The second facility is made up; the first is replaced by the deployed facility's address.
OTHER_FACILITY = "0x" + "f2" * 20
EVENTS_PER_BLOCK = 20
INSERT_CHUNK = 20_000
EVENT_NAMES = ("LineDrawn", "Repaid", "InterestSettled", "FundsLocked", "PayoutMade", "LineFrozen")
HOT_LINE = 1
PAGE_SIZE = 100
WARM_UP_REQUESTS = 3
GENESIS_TIME = datetime(2026, 1, 1, tzinfo=UTC)
NO_FILTER = EventFilter()
GOAL_SQLITE_P95_MS = 25.0
# The benchmark sends thousands of requests with one credential in a few seconds.
BENCH_RATE_LIMIT_PER_MINUTE = "1000000"


def main() -> None:
    arguments = _parser().parse_args()
    started = time.perf_counter()
    report: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "PYTHONPATH=backend .venv/bin/python bench/history_queries.py"
        + (" --postgres-url URL" if arguments.postgres_url else ""),
        "machine": {"nproc": os.cpu_count(), "cpu": _cpu(), "python": platform.python_version()},
        "workload": {
            "events": arguments.events,
            "lines": arguments.lines,
            "hot_line_events": arguments.hot_line_events,
            "page_size": PAGE_SIZE,
            "query_repeat": arguments.repeat,
            "http_repeat": arguments.http_repeat,
            "http_warm_up": WARM_UP_REQUESTS,
        },
        "databases": {},
    }
    with tempfile.TemporaryDirectory(prefix="history-bench-") as directory:
        folder = Path(directory)
        with _anvil() as anvil_url:
            deployment_file = folder / "deployment.json"
            facility = _deploy(anvil_url, deployment_file).facilities[0].address
            databases = [("sqlite", f"sqlite:///{folder / 'history.db'}")]
            for name, url in databases + _postgres(arguments.postgres_url):
                with _database(url) as database_url:
                    print(f"{name}: filling {arguments.events:,} events", flush=True)
                    report["databases"][name] = _measure_database(
                        arguments, database_url, facility, anvil_url, deployment_file, folder
                    )
    report["summary"] = _summary(report["databases"])
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    RESULT_FILE.write_text(json.dumps(report, indent=2) + "\n")
    _print(report)
    print(f"wrote {RESULT_FILE.relative_to(REPOSITORY)}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEDGER_BENCH_POSTGRES_URL"),
        help="SQLAlchemy URL of a PostgreSQL server to measure as well "
        "(default: LEDGER_BENCH_POSTGRES_URL; none skips PostgreSQL)",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in total")
    parser.add_argument("--lines", type=int, default=10_000, help="lines besides the hot line")
    parser.add_argument(
        "--hot-line-events", type=int, default=50_000, help="events of the busiest line"
    )
    parser.add_argument("--repeat", type=int, default=100, help="runs of each query")
    parser.add_argument("--http-repeat", type=int, default=200, help="requests of each API page")
    return parser


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


def _postgres(server_url: str | None) -> list[tuple[str, str]]:
    if not server_url:
        print("postgres: skipped, no --postgres-url or LEDGER_BENCH_POSTGRES_URL", flush=True)
        return []
    return [("postgres", server_url)]


@contextmanager
def _database(url: str) -> Iterator[str]:
    """Yield `url` for SQLite; on PostgreSQL create a fresh database, yield it, then drop it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        yield url
        return
    name = f"ledger_history_bench_{uuid.uuid4().hex[:8]}"
    server = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


def _measure_database(
    arguments: argparse.Namespace,
    url: str,
    facility: str,
    anvil_url: str,
    deployment_file: Path,
    folder: Path,
) -> dict[str, Any]:
    upgrade_to_head(url)
    engine = create_db_engine(url)
    sessions = create_session_factory(engine)
    started = time.perf_counter()
    with sessions() as session:
        _fill(session, facility, arguments.events, arguments.lines, arguments.hot_line_events)
        fill_seconds = time.perf_counter() - started
        version = _database_version(session)
        queries = _time_queries(session, facility, arguments)
    engine.dispose()
    http = _time_api(url, facility, anvil_url, deployment_file, folder, arguments)
    return {
        "version": version,
        "fill_seconds": round(fill_seconds, 1),
        "queries": queries,
        "api": http,
    }


def _rows(facility: str, events: int, lines: int, hot_line_events: int) -> Iterator[dict[str, Any]]:
    """Yield events in blocks of EVENTS_PER_BLOCK. Every `events // hot_line_events`-th is
    the hot line's, and the others go round the other lines of both facilities: with an
    even number of lines, even line ids belong to `facility` and odd ones to the other."""
    hot_every = max(1, events // hot_line_events)
    for number in range(events):
        block, log_index = divmod(number, EVENTS_PER_BLOCK)
        if number % hot_every == 0:
            contract, line_id = facility, HOT_LINE
        else:
            contract = (facility, OTHER_FACILITY)[number % 2]
            line_id = 2 + number % lines
        yield {
            "block_number": block,
            "block_hash": f"0x{block:064x}",
            "block_timestamp": GENESIS_TIME + timedelta(seconds=2 * block),
            "transaction_hash": f"0x{number:064x}",
            "transaction_index": log_index,
            "log_index": log_index,
            "contract_address": contract,
            "contract_name": "CreditFacility",
            "event": EVENT_NAMES[number % len(EVENT_NAMES)],
            "line_id": line_id,
            "args": {"lineId": str(line_id), "amount": str(number)},
            "confirmed": True,
        }


def _fill(session: Session, facility: str, events: int, lines: int, hot_line_events: int) -> None:
    chunk: list[dict[str, Any]] = []
    for row in _rows(facility, events, lines, hot_line_events):
        chunk.append(row)
        if len(chunk) == INSERT_CHUNK:
            session.execute(insert(ChainEvent), chunk)
            chunk = []
    if chunk:
        session.execute(insert(ChainEvent), chunk)
    session.commit()
    session.execute(text("ANALYZE"))
    session.commit()


def _sparse_line(lines: int) -> int:
    """Return a line of the deployed facility near the middle of the id range (see _rows): an
    even id whose events are not all taken by the hot line."""
    return 4 + 2 * (lines // 4)


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def _time_queries(
    session: Session, facility: str, arguments: argparse.Namespace
) -> dict[str, dict[str, float]]:
    middle = ChainPosition(arguments.events // EVENTS_PER_BLOCK // 2, 0)
    hot = line_scope(facility, HOT_LINE)
    sparse = line_scope(facility, _sparse_line(arguments.lines))
    filters = EventFilter(
        event_names=["LineDrawn", "Repaid"], from_block=middle.block_number, confirmed_only=True
    )
    borrower = lines_scope([(facility, 4 + index * 14) for index in range(5)])

    def page(scope: Any, filters: EventFilter = NO_FILTER, after: Any = None) -> Callable[[], int]:
        return lambda: len(
            events_page(session, scope, filters, after=after, limit=PAGE_SIZE).events
        )

    queries = {
        "sparse line, first page": page(sparse),
        "hot line, first page": page(hot),
        "hot line, page after a cursor in the middle": page(hot, after=middle),
        "hot line, by event and from a block": page(hot, filters),
        "borrower with 5 lines, first page": page(borrower),
        "facility, page after a cursor in the middle": page(
            contract_scope(OTHER_FACILITY), after=middle
        ),
    }
    results = {}
    for name, run in queries.items():
        timings = []
        rows = 0
        for _ in range(arguments.repeat):
            started = time.perf_counter()
            rows = run()
            timings.append((time.perf_counter() - started) * 1000)
            session.rollback()
        results[name] = {**_spread(timings), "rows": rows}
    return results


def _time_api(
    database_url: str,
    facility: str,
    anvil_url: str,
    deployment_file: Path,
    folder: Path,
    arguments: argparse.Namespace,
) -> dict[str, dict[str, float]]:
    environment = {
        **_bridge_environment(anvil_url, deployment_file, folder / "unused.db", "full"),
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_WORKER_ENABLED": "false",
        "LEDGER_INDEXER_ENABLED": "false",
        "LEDGER_RATE_LIMIT_PER_MINUTE": BENCH_RATE_LIMIT_PER_MINUTE,
    }
    name = f"bench-auditor-{uuid.uuid4().hex[:6]}"
    created = _run_cli(
        environment, ["org", "create", "--name", name, "--kind", "auditor", "--json"]
    )
    headers = {"Authorization": f"Bearer {json.loads(created)['token']}"}
    middle = encode_cursor(ChainPosition(arguments.events // EVENTS_PER_BLOCK // 2, 0))
    history = f"/v1/lines/{{line}}/history?facility={facility}&limit={PAGE_SIZE}"
    pages = {
        "sparse line, first page": history.format(line=_sparse_line(arguments.lines)),
        "hot line, first page": history.format(line=HOT_LINE),
        "hot line, page after a cursor in the middle": history.format(line=HOT_LINE)
        + f"&cursor={middle}",
        "hot line, LineDrawn and Repaid only": history.format(line=HOT_LINE)
        + "&event=LineDrawn&event=Repaid",
    }
    results = {}
    with (
        _bridge(environment, folder / "bridge.log") as (url, _pid),
        httpx.Client(base_url=url, headers=headers, timeout=30) as client,
    ):
        for page, path in pages.items():
            timings = []
            rows = 0
            for attempt in range(WARM_UP_REQUESTS + arguments.http_repeat):
                started = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                rows = len(response.json().get("events", [])) if response.is_success else 0
                if response.status_code != 200 or rows == 0:
                    raise SystemExit(
                        f"GET {path} returned {response.status_code} with {rows} events, "
                        f"expected 200 with events: {response.text[:500]}"
                    )
                if attempt >= WARM_UP_REQUESTS:
                    timings.append(elapsed)
            results[page] = {**_spread(timings), "rows": rows}
    return results


def _spread(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50_ms": round(_percentile(ordered, 50), 2),
        "p95_ms": round(_percentile(ordered, 95), 2),
        "p99_ms": round(_percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2),
    }


def _summary(databases: dict[str, Any]) -> dict[str, float]:
    """Return the slowest p95 over the API's line pages per database, which the goal is about."""
    return {
        f"{name}_p95_ms": max(page["p95_ms"] for page in measured["api"].values())
        for name, measured in databases.items()
    }


def _database_version(session: Session) -> str:
    if session.get_bind().dialect.name == "sqlite":
        return "SQLite " + str(session.execute(text("SELECT sqlite_version()")).scalar())
    return str(session.execute(text("SELECT version()")).scalar()).split(" on ")[0]


def _print(report: dict[str, Any]) -> None:
    for measured in report["databases"].values():
        print(f"\n{measured['version']}, filled in {measured['fill_seconds']} s")
        for part in ("queries", "api"):
            print(f"\n| {part} | p50 ms | p95 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|")
            for page, spread in measured[part].items():
                print(
                    f"| {page} | {spread['p50_ms']} | {spread['p95_ms']} | {spread['p99_ms']} "
                    f"| {spread['max_ms']} |"
                )
    print(f"\nsummary: {report['summary']} (goal on SQLite: p95 at most {GOAL_SQLITE_P95_MS} ms)")


if __name__ == "__main__":
    main()
