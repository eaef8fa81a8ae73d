"""Measure the event indexer's backfill rate and how soon a mined block's events can be queried.

Usage (from the repository root):

    PYTHONPATH=backend .venv/bin/python bench/indexer_backfill.py

The script starts Anvil on a free 127.0.0.1 port, deploys the contracts with
scripts/deploy.py, opens a few lines and sends drawdown and repay transactions
from the deployment's operator account, which Anvil signs, packed several to a
block. It then runs the indexer from the deployment block into a fresh SQLite
file until it reaches the head, `--runs` times, and reports events per second
with the JSON-RPC calls and SQL statements of each run. Last, it starts the
indexer's background thread with the default settings and mines one block with
a drawdown every `--block-interval` seconds (with random jitter), recording the
time from the mining call's return until the history query returns the block's
events. Results go to bench/indexer_backfill.json, whose "summary" object holds
the median backfill rate and the visibility percentiles.
docs/benchmarks/indexer.md records them.
Anvil is stopped by its process id on exit.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from eth_abi import encode
from eth_utils import function_abi_to_4byte_selector
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.types import RPCEndpoint, RPCResponse

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.contracts import CREDIT_FACILITY, contract_at
from ledger_bridge.chain.deployment import Deployment, load_deployment
from ledger_bridge.core.config import Settings
from ledger_bridge.indexer.history import EventFilter, events_page, line_scope
from ledger_bridge.indexer.service import EventIndexer, create_indexer
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent

REPOSITORY = Path(__file__).resolve().parents[1]
NODE_BIN = REPOSITORY / "node_modules" / ".bin"
RESULT_FILE = REPOSITORY / "bench" / "indexer_backfill.json"
# Anvil's development account that borrows. scripts/deploy.py gives accounts 0 to 5 roles.
BORROWER_INDEX = 7
ANVIL_START_SECONDS = 30
DEPLOY_SECONDS = 300
RECEIPT_SECONDS = 30
# Gas limit of each benchmark transaction, with room above what a drawdown or repay uses.
TRANSACTION_GAS = 600_000
LINE_LIMIT_FEN = 100_000_000
RATE_BPS = 435
TERM_DAYS = 365
# Repaying half of each drawdown keeps a principal outstanding, so no revolving cycle
# completes and no line is flagged for review, which would block further drawdowns.
DRAWDOWN_FEN = 1_000
REPAYMENT_FEN = 500
# Time limit for one block's events to appear in the database while the indexer follows.
VISIBILITY_TIMEOUT_SECONDS = 15.0
DATABASE_POLL_SECONDS = 0.005
GOAL_BACKFILL_EVENTS_PER_SECOND = 10_000
GOAL_VISIBILITY_MARGIN_SECONDS = 0.5


def main() -> None:
    arguments = _parser().parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory, _anvil() as anvil_url:
        deployment = _deploy(anvil_url, Path(directory) / "deployment.json")
        w3 = create_web3(anvil_url, timeout_seconds=30)
        chain = _Chain(w3, deployment)
        line_ids = [chain.open_line() for _ in range(arguments.lines)]
        workload_started = time.monotonic()
        chain.send_workload(line_ids, arguments.transactions, arguments.per_block)
        head = w3.eth.block_number
        workload_seconds = time.monotonic() - workload_started
        print(
            f"chain: {head - deployment.first_block + 1} blocks from block "
            f"{deployment.first_block}, workload sent in {workload_seconds:.0f} s"
        )
        settings = Settings(
            environment="development",
            rpc_url=anvil_url,
            deployment_file=Path(directory) / "deployment.json",
            log_format="text",
        )
        backfills = []
        for run in range(arguments.runs):
            profile = arguments.profile if run == 0 else None
            path = Path(directory) / f"backfill-{run}.db"
            backfills.append(_time_backfill(settings, deployment, path, head, profile))
            print(
                f"backfill {run + 1}: {backfills[-1]['events']} events in "
                f"{backfills[-1]['seconds']:.3f} s, {backfills[-1]['events_per_second']:.0f} "
                "events/s"
            )
        delays = _time_visibility(
            settings,
            deployment,
            Path(directory) / "follow.db",
            chain,
            line_ids[0],
            arguments.blocks,
            arguments.block_interval,
        )
    report = _report(arguments, deployment, head, backfills, delays, time.monotonic() - started)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))
    print(f"wrote {arguments.output}; total {report['total_seconds']:.0f} s")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4, help="credit lines the workload uses")
    parser.add_argument(
        "--transactions",
        type=int,
        default=14_000,
        help="drawdown and repay transactions sent before the backfill, half of each",
    )
    parser.add_argument("--per-block", type=int, default=10, help="transactions in each block")
    parser.add_argument("--runs", type=int, default=5, help="backfills, each on a fresh database")
    parser.add_argument(
        "--blocks", type=int, default=60, help="blocks mined while the indexer follows"
    )
    parser.add_argument(
        "--block-interval",
        type=float,
        default=1.0,
        help="mean time between the mined blocks while the indexer follows, in seconds",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="write cProfile statistics of the first backfill to this file (slows that run)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULT_FILE, help=f"JSON result file (default {RESULT_FILE})"
    )
    return parser


# ---------------------------------------------------------------------------------------------
# Anvil and the deployment
# ---------------------------------------------------------------------------------------------


@contextmanager
def _anvil() -> Iterator[str]:
    """Start Anvil on a free 127.0.0.1 port, yield its URL and stop it by its process id."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [str(NODE_BIN / "anvil"), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_node(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for_node(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + ANVIL_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"anvil exited with status {process.returncode} before serving {url}")
        try:
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"anvil did not respond at {url} within {ANVIL_START_SECONDS} s")


def _deploy(anvil_url: str, path: Path) -> Deployment:
    """Deploy with scripts/deploy.py, as the integration tests do, and load the file it wrote."""
    environment = {
        **os.environ,
        "APE_FOUNDRY_HOST": anvil_url,
        "LEDGER_DEPLOYMENT_FILE": str(path),
        "SOLCX_BINARY_PATH": str(REPOSITORY / ".solcx"),
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    ape = Path(sys.executable).parent / "ape"
    result = subprocess.run(
        [str(ape), "run", "deploy", "--network", "ethereum:local:foundry"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=DEPLOY_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"deployment failed:\n{result.stdout}\n{result.stderr}")
    return load_deployment(path)


# ---------------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------------


class _Chain:
    """Drives the facility from Anvil's unlocked development accounts and mines blocks on demand.

    Anvil signs eth_sendTransaction for its development accounts, so the
    workload needs no signing in Python, and each block's transactions go out
    in one JSON-RPC batch request.
    """

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.facility: Contract = contract_at(w3, CREDIT_FACILITY, deployment.facilities[0].address)
        self.operator = deployment.accounts["operator"]
        self.officer = deployment.accounts["officer"]
        # Far above the request ids that scripts/deploy.py uses.
        self._request_ids = iter(range(2**220, 2**221))
        self._functions = {
            item["name"]: item
            for item in self.facility.abi
            if item["type"] == "function" and item["name"] in {"drawdown", "repay"}
        }

    def open_line(self) -> int:
        """Apply for, approve and open a line, each in its own block, and return its id."""
        maturity = self.facility.functions.today().call() + TERM_DAYS
        borrower = self.w3.eth.accounts[BORROWER_INDEX]
        apply = self.facility.functions.applyForLine(
            next(self._request_ids), borrower, b"\x11" * 32, LINE_LIMIT_FEN, RATE_BPS, maturity
        )
        receipt = self._transact(apply, self.operator)
        line_id = int(
            self.facility.events.LineApplied().process_receipt(receipt)[0]["args"]["lineId"]
        )
        for step in (self.facility.functions.approveLine, self.facility.functions.openLine):
            self._transact(step(next(self._request_ids), line_id), self.officer)
        return line_id

    def send_workload(self, line_ids: list[int], transactions: int, per_block: int) -> None:
        """Send alternating drawdowns and repayments over the lines, `per_block` to a block.

        Automining is off while they are sent, and each group is mined with evm_mine.
        """
        self._rpc("evm_setAutomine", [False])
        try:
            tx_hash = None
            for start in range(0, transactions, per_block):
                requests = [
                    self._send_request(self._drawdown_or_repay(index, line_ids))
                    for index in range(start, min(start + per_block, transactions))
                ]
                tx_hash = self._send_batch(requests)[-1]
                self._rpc("evm_mine", [])
        finally:
            self._rpc("evm_setAutomine", [True])
        if tx_hash is not None:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, RECEIPT_SECONDS)
            if receipt["status"] != 1:
                raise SystemExit(f"workload transaction {tx_hash} reverted")

    def mine_drawdown(self, line_id: int) -> int:
        """Send a drawdown, mine its block, and return the block number once mining returns."""
        self._rpc("evm_setAutomine", [False])
        try:
            method, params = self._send_request(self._drawdown(line_id))
            tx_hash = self._rpc(method, params)
            self._rpc("evm_mine", [])
        finally:
            self._rpc("evm_setAutomine", [True])
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise SystemExit(f"drawdown {tx_hash} reverted")
        return int(receipt["blockNumber"])

    def _drawdown_or_repay(self, index: int, line_ids: list[int]) -> str:
        line_id = line_ids[(index // 2) % len(line_ids)]
        if index % 2 == 0:
            return self._drawdown(line_id)
        return self._calldata("repay", [next(self._request_ids), line_id, REPAYMENT_FEN])

    def _drawdown(self, line_id: int) -> str:
        # The zero payee locks the drawn funds, so the drawdown emits LineDrawn and FundsLocked.
        arguments = [next(self._request_ids), line_id, DRAWDOWN_FEN, "0x" + "00" * 20, bytes(32)]
        return self._calldata("drawdown", arguments)

    def _calldata(self, function_name: str, arguments: list[Any]) -> str:
        # eth-abi directly: ContractFunction.build_transaction validates the whole ABI on each
        # call, which took longer than Anvil took to execute the transaction.
        definition = self._functions[function_name]
        selector = function_abi_to_4byte_selector(definition)
        encoded = encode([item["type"] for item in definition["inputs"]], arguments)
        return "0x" + (selector + encoded).hex()

    def _send_request(self, calldata: str) -> tuple[str, list[Any]]:
        transaction = {
            "from": self.operator,
            "to": self.facility.address,
            "data": calldata,
            "gas": hex(TRANSACTION_GAS),
        }
        return "eth_sendTransaction", [transaction]

    def _send_batch(self, requests: list[tuple[str, list[Any]]]) -> list[str]:
        responses = self.w3.provider.make_batch_request(requests)  # type: ignore[arg-type]
        if not isinstance(responses, list):
            raise SystemExit(f"the batch of transactions failed: {responses}")
        for response in responses:
            if "error" in response:
                raise SystemExit(f"a workload transaction was rejected: {response['error']}")
        return [str(response["result"]) for response in responses]

    def _transact(self, function: Any, sender: str) -> dict[str, Any]:
        tx_hash = function.transact({"from": sender, "gas": TRANSACTION_GAS})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, RECEIPT_SECONDS)
        if receipt["status"] != 1:
            raise SystemExit(f"setup transaction {tx_hash.to_0x_hex()} reverted")
        return dict(receipt)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise SystemExit(f"{method} failed: {response['error']}")
        return response.get("result")


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


class _CountingProvider(HTTPProvider):
    """An HTTP provider that counts JSON-RPC calls by method, and the HTTP requests."""

    def __init__(self, url: str) -> None:
        super().__init__(url, request_kwargs={"timeout": 30})
        self.calls: Counter[str] = Counter()
        self.http_requests = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        self.calls[method] += 1
        self.http_requests += 1
        return super().make_request(method, params)

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        self.calls.update(method for method, _ in batch_requests)
        self.http_requests += 1
        return super().make_batch_request(batch_requests)


def _new_database(path: Path) -> tuple[Engine, sessionmaker[Session]]:
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    engine = create_db_engine(url)
    return engine, create_session_factory(engine)


def _time_backfill(
    settings: Settings, deployment: Deployment, path: Path, head: int, profile: Path | None
) -> dict[str, Any]:
    """Index from the deployment block to the head into an empty database, and time it.

    The timer covers the indexer's passes only, not the schema migration. The
    JSON-RPC calls and SQL statements of the passes are counted too.
    """
    engine, sessions = _new_database(path)
    statements: Counter[str] = Counter()

    @event.listens_for(engine, "before_cursor_execute")
    def count_statement(*arguments: Any) -> None:
        statement = str(arguments[2]).lstrip()
        statements[statement.split(None, 1)[0].upper()] += 1

    provider = _CountingProvider(settings.rpc_url)
    indexer = create_indexer(settings, deployment, sessions, w3=Web3(provider))
    profiler = cProfile.Profile() if profile is not None else None
    started = time.perf_counter()
    cpu_started = time.process_time()
    if profiler is not None:
        profiler.enable()
    _catch_up(indexer)
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    event.remove(engine, "before_cursor_execute", count_statement)
    if profiler is not None and profile is not None:
        profiler.dump_stats(profile)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(20)
    events = _event_count(sessions)
    blocks = head - deployment.first_block + 1
    return {
        "events": events,
        "blocks": blocks,
        "seconds": seconds,
        "events_per_second": events / seconds,
        # CPU time of this process only: Anvil's work and waits for the disk are not in it,
        # nor are other programs that share the CPUs.
        "cpu_seconds": cpu_seconds,
        "events_per_cpu_second": events / cpu_seconds,
        "profiled": profiler is not None,
        "http_requests": provider.http_requests,
        "json_rpc_calls": dict(sorted(provider.calls.items())),
        "json_rpc_calls_per_block": sum(provider.calls.values()) / blocks,
        "sql_statements": dict(sorted(statements.items())),
        "sql_statements_per_event": sum(statements.values()) / events,
    }


def _catch_up(indexer: EventIndexer) -> None:
    """Run passes until two in a row cover no block, as `python -m ledger_bridge.indexer --once`."""
    idle_passes = 0
    while idle_passes < 2:
        idle_passes = idle_passes + 1 if indexer.run_once() == 0 else 0


def _time_visibility(
    settings: Settings,
    deployment: Deployment,
    path: Path,
    chain: _Chain,
    line_id: int,
    blocks: int,
    block_interval: float,
) -> list[float]:
    """Return, for each mined block, the seconds until the history query returns its events.

    The indexer runs its background thread with the default poll interval. It
    first catches up with the chain, which is not timed.
    """
    _, sessions = _new_database(path)
    indexer = create_indexer(settings, deployment, sessions)
    _catch_up(indexer)
    indexer.start()
    delays: list[float] = []
    try:
        for _ in range(blocks):
            # Jitter keeps the mining times from locking onto the indexer's polling phase.
            time.sleep(random.uniform(0.5, 1.5) * block_interval)
            block_number = chain.mine_drawdown(line_id)
            mined = time.perf_counter()
            _wait_for_block_events(sessions, chain.facility.address, line_id, block_number, indexer)
            delays.append(time.perf_counter() - mined)
    finally:
        indexer.stop()
    return delays


def _wait_for_block_events(
    sessions: sessionmaker[Session],
    facility_address: str,
    line_id: int,
    block_number: int,
    indexer: EventIndexer,
) -> None:
    """Poll the query behind GET /v1/audit/lines/{id}/events until it returns the block's events."""
    deadline = time.perf_counter() + VISIBILITY_TIMEOUT_SECONDS
    block_only = EventFilter(from_block=block_number, to_block=block_number)
    while time.perf_counter() < deadline:
        indexer.check_running()
        with sessions() as session:
            page = events_page(
                session, line_scope(facility_address, line_id), block_only, after=None, limit=10
            )
            if page.events:
                return
        time.sleep(DATABASE_POLL_SECONDS)
    raise SystemExit(
        f"the events of block {block_number} were not in the database within "
        f"{VISIBILITY_TIMEOUT_SECONDS} s"
    )


def _event_count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ChainEvent)) or 0)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _report(
    arguments: argparse.Namespace,
    deployment: Deployment,
    head: int,
    backfills: list[dict[str, Any]],
    delays: list[float],
    total_seconds: float,
) -> dict[str, Any]:
    # A profiled run is slower, so it is left out of the rates when other runs exist.
    timed = [run for run in backfills if not run["profiled"]] or backfills
    rates = [run["events_per_second"] for run in timed]
    median_rate = statistics.median(rates)
    milliseconds = sorted(delay * 1000 for delay in delays)
    defaults = Settings(environment="development", chain_enabled=False)
    visibility = {
        "p50_ms": _percentile(milliseconds, 50),
        "p95_ms": _percentile(milliseconds, 95),
        "p99_ms": _percentile(milliseconds, 99),
    }
    visibility_goal_ms = (arguments.block_interval + GOAL_VISIBILITY_MARGIN_SECONDS) * 1000
    return {
        "summary": {
            "events_per_s": median_rate,
            "visible_p50_ms": visibility["p50_ms"],
            "visible_p95_ms": visibility["p95_ms"],
            "visible_p99_ms": visibility["p99_ms"],
        },
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["PYTHONPATH=backend .venv/bin/python bench/indexer_backfill.py", *sys.argv[1:]]
        ),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu(),
            "python": platform.python_version(),
            "database": "SQLite file",
            "load_average_at_end": list(os.getloadavg()),
        },
        "indexer_settings": {
            "block_range": defaults.indexer_block_range,
            "confirmations": defaults.confirmations,
            "poll_interval_ms": defaults.indexer_poll_interval_ms,
            "token_transfers": defaults.indexer_token_transfers,
        },
        "workload": {
            "lines": arguments.lines,
            "transactions": arguments.transactions,
            "transactions_per_block": arguments.per_block,
            "first_block": deployment.first_block,
            "head_block": head,
        },
        "backfill": {
            "runs": backfills,
            "events": backfills[0]["events"],
            "median_events_per_second": median_rate,
            "min_events_per_second": min(rates),
            "max_events_per_second": max(rates),
            "median_events_per_cpu_second": statistics.median(
                run["events_per_cpu_second"] for run in timed
            ),
            # Half the distance from the slowest to the fastest run, relative to the median.
            "spread_percent": (max(rates) - min(rates)) / 2 / median_rate * 100,
            "goal_events_per_second": GOAL_BACKFILL_EVENTS_PER_SECOND,
            "meets_goal": median_rate >= GOAL_BACKFILL_EVENTS_PER_SECOND,
        },
        "visibility": {
            "blocks": len(milliseconds),
            "block_interval_seconds": arguments.block_interval,
            **visibility,
            "min_ms": milliseconds[0],
            "max_ms": milliseconds[-1],
            "goal_p95_ms": visibility_goal_ms,
            "meets_goal": visibility["p95_ms"] <= visibility_goal_ms,
        },
        "total_seconds": total_seconds,
    }


def _percentile(sorted_values: list[float], percent: float) -> float:
    """Return the nearest-rank percentile of values sorted in ascending order."""
    rank = max(1, math.ceil(percent / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


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
