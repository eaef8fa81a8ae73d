"""Chaos run: load the bridge, break it, and check that no write was lost or repeated.

Usage (from the repository root, with PYTHONPATH=backend):

    python -m reliability.chaos --operations 300 --deadline 85 --backlog 16 --sqlite
    python -m reliability.chaos --operations 10000 --kills 3 --anvil-restarts 2 \
        --reorgs 2 --deadline 690
    python -m reliability.chaos --replicas 3 --database-url postgresql+psycopg://...

Setup starts Anvil on a free 127.0.0.1 port, deploys with scripts/deploy.py,
opens `--lines` lines, migrates a fresh database (SQLite, or a new PostgreSQL
database on the server named by --database-url or LEDGER_TEST_POSTGRES_URL),
creates a bank credential and starts `ledger-bridge serve` replicas. The
node then restarts with one block a second, so blocks keep coming after the
last request and the bridge counts confirmations against a moving head.

The load sends drawdowns, repayments, invalid amounts and same-key resends
with another amount from `--clients` concurrent clients, retrying connection
errors and 5xx with the same Idempotency-Key. Meanwhile the seeded fault
schedule kills bridge processes with SIGKILL, restarts Anvil from a state
saved a moment earlier (the blocks in between are lost), and replaces the
last blocks with anvil_reorg. Afterwards the run waits for every operation
to be final and reconciles clients, database and chain (see reconcile.py).

The summary goes to stdout. With LEDGER_RELIABILITY_REPORT_DIR set, the
counts go to <dir>/chaos.json, or <dir>/replicas.json with --replicas > 1.
The exit status is 1 if anything was lost or duplicated, on any 5xx outside
a fault, a nonce error, an index mismatch or an unfinished operation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text

from ledger_bridge.chain.client import create_web3
from ledger_bridge.storage.db import create_db_engine, create_session_factory

from .faults import FaultInjector, plan_faults
from .load import Backlog, LoadRun, plan_requests
from .reconcile import index_mismatches, reconcile, wait_until_final
from .stack import (
    AnvilNode,
    BridgeReplica,
    ProcessSet,
    bridge_database,
    bridge_environment,
    create_bank_credential,
    deploy_and_open_lines,
    signer_lease_available,
)

REPORT_DIR_VARIABLE = "LEDGER_RELIABILITY_REPORT_DIR"
POSTGRES_URL_VARIABLE = "LEDGER_TEST_POSTGRES_URL"
# More than the blocks a node restart loses (one a second for at most about two seconds)
# and the reorg depth, so no fault can remove the block of a confirmed operation.
DEFAULT_CONFIRMATIONS = 4
LEASE_SECONDS = 6
# Time kept after the load for the last operations to become final and for reconciling.
DRAIN_SHARE = 0.25
MIN_DRAIN_SECONDS = 30
# Part of the drain time kept for the indexer to reach the head and for reading the logs.
INDEX_RESERVE_SECONDS = 15
FAILING_KEYS = (
    "lost",
    "duplicated",
    "server_errors",
    "nonce_errors",
    "index_mismatches",
    "unfinished",
    "rejected_stored",
)


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    seed = arguments.seed if arguments.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed}", flush=True)
    started = time.monotonic()
    processes = ProcessSet()
    # SIGTERM ends the run through the finally blocks, which stop every process it started.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        report, samples = _run(arguments, seed, processes, started)
    finally:
        processes.stop_all()
    report["seconds"] = round(time.monotonic() - started)
    print(_summary_line(report), flush=True)
    for sample in samples:
        print(f"  {sample}")
    _write_report(report, arguments.replicas)
    return 1 if any(report[key] for key in FAILING_KEYS) else 0


def _exit_on_signal(signal_number: int, frame: object) -> None:
    raise SystemExit(128 + signal_number)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reliability.chaos",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--operations", type=int, default=300, help="requests the clients send")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument(
        "--lines", type=int, default=4, help="credit lines the requests spread over"
    )
    parser.add_argument("--seed", type=int, help="seed of the request mix and the fault schedule")
    parser.add_argument("--kills", type=int, default=1, help="SIGKILLs of a bridge process")
    parser.add_argument(
        "--anvil-restarts", type=int, default=1, help="Anvil restarts from a saved state"
    )
    parser.add_argument("--reorgs", type=int, default=1, help="reorgs of the last 2 blocks")
    parser.add_argument(
        "--replicas", type=int, default=1, help="bridge processes sharing one database"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(POSTGRES_URL_VARIABLE),
        help=(
            "PostgreSQL server URL (SQLAlchemy form) on which to create the run's database; "
            f"defaults to {POSTGRES_URL_VARIABLE}, and SQLite is used when neither is set"
        ),
    )
    parser.add_argument(
        "--sqlite", action="store_true", help=f"use SQLite even when {POSTGRES_URL_VARIABLE} is set"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=700,
        help=(
            "seconds for the whole run from start to report; the load stops early so that "
            "draining and reconciling fit"
        ),
    )
    parser.add_argument(
        "--confirmations",
        type=int,
        default=DEFAULT_CONFIRMATIONS,
        help=(
            "LEDGER_CONFIRMATIONS of the bridge; below 3 a node restart or a reorg can remove "
            "the block of an operation already confirmed"
        ),
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=100,
        help="unfinished operations at most before clients wait to send more",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="directory that keeps the logs, Anvil's state and the SQLite file; without it a "
        "temporary directory is used and removed at the end",
    )
    return parser


def _run(
    arguments: argparse.Namespace, seed: int, processes: ProcessSet, started: float
) -> tuple[dict[str, Any], list[str]]:
    rng = random.Random(seed)
    server_url = None if arguments.sqlite else arguments.database_url
    if arguments.replicas > 1 and server_url is None:
        raise SystemExit(
            "--replicas needs PostgreSQL: pass --database-url or set " + POSTGRES_URL_VARIABLE
        )
    with (
        _work_directory(arguments.work_dir) as directory,
        bridge_database(directory, server_url) as database_url,
    ):
        node = AnvilNode(processes, directory)
        # Automining during setup: deployment and line opening need no block interval.
        node.start(interval_mining=False)
        deployment, deployment_file, line_ids = deploy_and_open_lines(
            node, directory, arguments.lines
        )
        node.save_state()
        node.restart_from_saved_state(interval_mining=True)
        print(f"setup: {len(line_ids)} lines open, {time.monotonic() - started:.0f} s", flush=True)

        environment = bridge_environment(
            node,
            deployment_file,
            database_url,
            confirmations=arguments.confirmations,
            worker_enabled=True,
        )
        token = create_bank_credential(environment, deployment.facilities[0].address)
        lease = signer_lease_available(database_url)
        print(f"signer lease {'found' if lease else 'not found'}", flush=True)
        replicas = _start_replicas(processes, directory, environment, arguments.replicas, lease)

        engine = create_db_engine(database_url)
        sessions = create_session_factory(engine)
        try:
            return _load_and_reconcile(
                arguments,
                rng,
                seed,
                started,
                node,
                replicas,
                lease,
                sessions,
                deployment,
                line_ids,
                token,
            )
        finally:
            engine.dispose()
            processes.stop_all()


@contextmanager
def _work_directory(kept: Path | None) -> Iterator[Path]:
    """Yield `kept`, created if needed, or a temporary directory removed on exit."""
    if kept is not None:
        kept.mkdir(parents=True, exist_ok=True)
        yield kept
        return
    with tempfile.TemporaryDirectory(prefix="chaos-") as name:
        yield Path(name)


def _start_replicas(
    processes: ProcessSet,
    directory: Path,
    environment: dict[str, str],
    count: int,
    lease: bool,
) -> list[BridgeReplica]:
    replicas = []
    for number in range(count):
        # NOTE: without a signer lease only replica 0 runs the worker, because two workers
        # with one signer would race for its nonces. The others serve HTTP on the same database.
        worker = lease or number == 0
        replica_environment = {
            **environment,
            "LEDGER_WORKER_ENABLED": "true" if worker else "false",
        }
        if lease:
            # A short lease lets another replica, or the restarted one, take the signer soon after
            # its holder dies.
            replica_environment.update(
                {
                    "LEDGER_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
                    "LEDGER_WORKER_LEASE_RENEWAL_SECONDS": str(LEASE_SECONDS / 3),
                }
            )
        replica = BridgeReplica(processes, replica_environment, directory / f"bridge-{number}.log")
        replica.start()
        replicas.append(replica)
    return replicas


def _load_and_reconcile(
    arguments: argparse.Namespace,
    rng: random.Random,
    seed: int,
    started: float,
    node: AnvilNode,
    replicas: list[BridgeReplica],
    lease: bool,
    sessions: Any,
    deployment: Any,
    line_ids: list[int],
    token: str,
) -> tuple[dict[str, Any], list[str]]:
    end = started + arguments.deadline
    remaining = end - time.monotonic()
    load_deadline = end - max(remaining * DRAIN_SHARE, MIN_DRAIN_SECONDS)
    load_started = time.monotonic()
    records = plan_requests(arguments.operations, line_ids, rng, uuid.uuid4().hex[:8])
    faults: FaultInjector

    def progress() -> float:
        by_count = load.sent / max(arguments.operations, 1)
        by_time = (time.monotonic() - load_started) / max(load_deadline - load_started, 1)
        return max(by_count, by_time)

    load = LoadRun(
        records=records,
        replica_urls=lambda: [replica.url for replica in replicas],
        token=token,
        clients=arguments.clients,
        backlog=Backlog(sessions, arguments.backlog),
        in_fault=lambda: faults.log.in_fault(),
        deadline=load_deadline,
    )
    faults = FaultInjector(
        plan=plan_faults(rng, arguments.kills, arguments.anvil_restarts, arguments.reorgs),
        rng=rng,
        node=node,
        replicas=replicas,
        choose_victim=_victim_chooser(replicas, lease, sessions, deployment.accounts["operator"]),
        progress=progress,
        requests_in_flight=lambda: load.in_flight,
        confirmations=arguments.confirmations,
    )
    asyncio.run(_load_with_faults(load, faults))
    load_seconds = time.monotonic() - load_started
    print(
        f"load: {load.sent} requests in {load_seconds:.0f} s "
        f"({load.sent / max(load_seconds, 1):.1f}/s)",
        flush=True,
    )

    left = wait_until_final(sessions, max(end - time.monotonic() - INDEX_RESERVE_SECONDS, 5))
    if left:
        print(f"warning: {left} operations are not final at the deadline", flush=True)
    w3 = create_web3(node.url, timeout_seconds=30)
    result = reconcile(load.records, sessions, w3, deployment)
    samples = list(result.samples) + load.counters.server_error_samples
    result.index_mismatches = index_mismatches(
        w3, deployment, sessions, samples, timeout_seconds=max(end - time.monotonic(), 5)
    )
    report = {
        "operations": load.sent,
        "accepted": result.accepted,
        "rejected": result.rejected,
        "unknown": result.unknown,
        "confirmed": result.confirmed,
        "failed": result.failed,
        "unfinished": result.unfinished,
        "lost": result.lost,
        "duplicated": result.duplicated,
        "rejected_stored": result.rejected_stored,
        "server_errors": load.counters.server_errors,
        "unavailable_responses": load.counters.unavailable_responses,
        "nonce_errors": load.counters.nonce_errors + result.nonce_errors,
        "connection_errors": load.counters.connection_errors,
        "bridge_kills": faults.log.bridge_kills,
        "anvil_restarts": faults.log.anvil_restarts,
        "reorgs": faults.log.reorgs,
        "lost_blocks": sum(faults.log.lost_blocks),
        "reorged_transactions": sum(faults.log.reorged_transactions),
        "index_mismatches": result.index_mismatches,
        "replicas": len(replicas),
        "signer_lease": int(lease),
        "seed": seed,
        "load_seconds": round(load_seconds),
    }
    return report, samples


async def _load_with_faults(load: LoadRun, faults: FaultInjector) -> None:
    done = asyncio.Event()
    injector = asyncio.create_task(faults.run(done))
    try:
        await load.run()
    except BaseException:
        injector.cancel()
        raise
    finally:
        done.set()
    await injector


def _victim_chooser(
    replicas: list[BridgeReplica], lease: bool, sessions: Any, operator: str
) -> Callable[[], BridgeReplica]:
    """Return a function that picks the replica to kill: the one sending for the operator.

    The operator signs every drawdown and repayment, so its lease holder is the
    replica whose death the other replicas must take over.
    """

    def choose() -> BridgeReplica:
        if not lease:
            return replicas[0]
        by_pid = {replica.process.pid: replica for replica in replicas if replica.process}
        rows = _lease_rows(sessions)
        operator_rows = [row for row in rows if operator.lower() in " ".join(row).lower()]
        for row in operator_rows + rows:
            for value in row:
                for match in re.findall(r"\d+", value):
                    if int(match) in by_pid:
                        return by_pid[int(match)]
        # NOTE: the lease table's columns are not known here. When no value in it names a
        # replica's process id, the run kills replica 0, which may not hold the lease.
        return replicas[0]

    return choose


def _lease_rows(sessions: Any) -> list[list[str]]:
    """Return every row, as text values, of the tables whose name contains "lease"."""
    rows = []
    with sessions() as session:
        for table in inspect(session.get_bind()).get_table_names():
            if "lease" in table:
                for row in session.execute(text(f'SELECT * FROM "{table}"')):
                    rows.append([str(value) for value in row])
    return rows


def _summary_line(report: dict[str, Any]) -> str:
    keys = (
        "operations",
        "accepted",
        "rejected",
        "confirmed",
        "failed",
        "lost",
        "duplicated",
        "server_errors",
        "nonce_errors",
        "connection_errors",
        "bridge_kills",
        "anvil_restarts",
        "reorgs",
        "index_mismatches",
        "unfinished",
        "unknown",
        "unavailable_responses",
        "seconds",
    )
    return "chaos: " + " ".join(f"{key}={report[key]}" for key in keys)


def _write_report(report: dict[str, Any], replicas: int) -> None:
    directory = os.environ.get(REPORT_DIR_VARIABLE)
    if not directory:
        return
    path = Path(directory) / ("replicas.json" if replicas > 1 else "chaos.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
