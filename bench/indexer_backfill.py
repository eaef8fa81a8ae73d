"""Measure the event indexer's backfill rate and how soon a mined block's events can be queried.

Usage (from the repository root):

    PYTHONPATH=backend .venv/bin/python bench/indexer_backfill.py

The script starts Anvil on a free 127.0.0.1 port, deploys the contracts with
scripts/deploy.py, opens a few lines and sends pre-signed drawdown and repay
transactions from the deployment's operator account, packed several to a
block. It then runs the indexer from the deployment block into a fresh SQLite
file until it reaches the head, `--runs` times, and reports events per
second. Last, it starts the indexer's background thread with the default
settings and mines one block with a drawdown every `--block-interval`
seconds (with random jitter), recording the time from the mining call's
return until the block's events are in the database. Results go to
bench/indexer_backfill.json. docs/benchmarks/indexer.md records them.
Anvil is stopped by its process id on exit.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.contracts import CREDIT_FACILITY, contract_at
from ledger_bridge.chain.deployment import Deployment, load_deployment
from ledger_bridge.core.config import Settings
from ledger_bridge.indexer.service import EventIndexer, create_indexer
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent

REPOSITORY = Path(__file__).resolve().parents[1]
NODE_BIN = REPOSITORY / "node_modules" / ".bin"
RESULT_FILE = REPOSITORY / "bench" / "indexer_backfill.json"
# Anvil's public development mnemonic. scripts/deploy.py gives its accounts 0 to 5 the roles
# admin, operator, officer, second officer, regulator and treasury.
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
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
        chain.send_workload(line_ids, arguments.transactions, arguments.per_block)
        head = w3.eth.block_number
        print(
            f"chain: {head - deployment.first_block + 1} blocks from block {deployment.first_block}"
        )
        settings_fields = {
            "environment": "development",
            "rpc_url": anvil_url,
            "deployment_file": Path(directory) / "deployment.json",
            "log_format": "text",
        }
        backfills = [
            _time_backfill(settings_fields, deployment, Path(directory) / f"backfill-{run}.db")
            for run in range(arguments.runs)
        ]
        for run, result in enumerate(backfills, start=1):
            print(
                f"backfill {run}: {result['events']} events in {result['seconds']:.3f} s, "
                f"{result['events_per_second']:.0f} events/s"
            )
        delays = _time_visibility(
            settings_fields,
            deployment,
            Path(directory) / "follow.db",
            chain,
            line_ids[0],
            arguments.blocks,
            arguments.block_interval,
        )
    report = _report(arguments, deployment, head, backfills, delays, time.monotonic() - started)
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["backfill"], indent=2))
    print(json.dumps(report["visibility"], indent=2))
    print(f"wrote {arguments.output}; total {report['total_seconds']:.0f} s")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4, help="credit lines the workload uses")
    parser.add_argument(
        "--transactions",
        type=int,
        default=2_000,
        help="drawdown and repay transactions sent before the backfill, half of each",
    )
    parser.add_argument("--per-block", type=int, default=10, help="transactions in each block")
    parser.add_argument("--runs", type=int, default=3, help="backfills, each on a fresh database")
    parser.add_argument(
        "--blocks", type=int, default=50, help="blocks mined while the indexer follows"
    )
    parser.add_argument(
        "--block-interval",
        type=float,
        default=1.0,
        help="mean time between the mined blocks while the indexer follows, in seconds",
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
    """Signs transactions locally with Anvil's development keys and mines blocks on demand."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.facility: Contract = contract_at(w3, CREDIT_FACILITY, deployment.facilities[0].address)
        self.operator = _development_account(1, deployment.accounts["operator"])
        self.officer = _development_account(2, deployment.accounts["officer"])
        self._nonces = {
            account.address: w3.eth.get_transaction_count(account.address)
            for account in (self.operator, self.officer)
        }
        # Far above the request ids that scripts/deploy.py uses.
        self._request_ids = iter(range(2**220, 2**221))
        self._chain_id = w3.eth.chain_id

    def open_line(self) -> int:
        """Apply for, approve and open a line, each in its own block, and return its id."""
        maturity = self.facility.functions.today().call() + TERM_DAYS
        borrower = _development_account(7).address
        apply = self.facility.functions.applyForLine(
            next(self._request_ids), borrower, b"\x11" * 32, LINE_LIMIT_FEN, RATE_BPS, maturity
        )
        receipt = self._send_and_wait(apply, self.operator)
        line_id = int(
            self.facility.events.LineApplied().process_receipt(receipt)[0]["args"]["lineId"]
        )
        for step in (self.facility.functions.approveLine, self.facility.functions.openLine):
            self._send_and_wait(step(next(self._request_ids), line_id), self.officer)
        return line_id

    def send_workload(self, line_ids: list[int], transactions: int, per_block: int) -> None:
        """Send alternating drawdowns and repayments over the lines, `per_block` to a block.

        Automining is off while they are sent, and each group is mined with evm_mine.
        """
        signed = [self._drawdown_or_repay(index, line_ids) for index in range(transactions)]
        self._rpc("evm_setAutomine", [False])
        try:
            last_hash = None
            for start in range(0, len(signed), per_block):
                for raw in signed[start : start + per_block]:
                    last_hash = self.w3.eth.send_raw_transaction(raw)
                self._rpc("evm_mine", [])
        finally:
            self._rpc("evm_setAutomine", [True])
        if last_hash is not None:
            receipt = self.w3.eth.wait_for_transaction_receipt(last_hash, RECEIPT_SECONDS)
            if receipt["status"] != 1:
                raise SystemExit(f"workload transaction {last_hash.to_0x_hex()} reverted")

    def mine_drawdown(self, line_id: int) -> int:
        """Send a drawdown, mine its block, and return the block number once mining returns."""
        self._rpc("evm_setAutomine", [False])
        try:
            tx_hash = self.w3.eth.send_raw_transaction(self._signed_drawdown(line_id))
            self._rpc("evm_mine", [])
        finally:
            self._rpc("evm_setAutomine", [True])
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)
        if receipt["status"] != 1:
            raise SystemExit(f"drawdown {tx_hash.to_0x_hex()} reverted")
        return int(receipt["blockNumber"])

    def _drawdown_or_repay(self, index: int, line_ids: list[int]) -> bytes:
        line_id = line_ids[(index // 2) % len(line_ids)]
        if index % 2 == 0:
            return self._signed_drawdown(line_id)
        repay = self.facility.functions.repay(next(self._request_ids), line_id, REPAYMENT_FEN)
        return self._sign(repay, self.operator)

    def _signed_drawdown(self, line_id: int) -> bytes:
        # The zero payee locks the drawn funds, so the drawdown emits LineDrawn and FundsLocked.
        drawdown = self.facility.functions.drawdown(
            next(self._request_ids), line_id, DRAWDOWN_FEN, "0x" + "00" * 20, b"\x00" * 32
        )
        return self._sign(drawdown, self.operator)

    def _sign(self, function: Any, account: LocalAccount) -> bytes:
        nonce = self._nonces[account.address]
        self._nonces[account.address] = nonce + 1
        transaction = function.build_transaction(
            {
                "from": account.address,
                "nonce": nonce,
                "gas": TRANSACTION_GAS,
                "chainId": self._chain_id,
                # Fixed fees well above Anvil's base fee, so building skips fee estimation.
                "maxFeePerGas": 100 * 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        return bytes(account.sign_transaction(transaction).raw_transaction)

    def _send_and_wait(self, function: Any, account: LocalAccount) -> dict[str, Any]:
        tx_hash = self.w3.eth.send_raw_transaction(self._sign(function, account))
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, RECEIPT_SECONDS)
        if receipt["status"] != 1:
            raise SystemExit(f"setup transaction {tx_hash.to_0x_hex()} reverted")
        return dict(receipt)

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise SystemExit(f"{method} failed: {response['error']}")
        return response.get("result")


def _development_account(index: int, expected_address: str | None = None) -> LocalAccount:
    """Derive Anvil's development account `index` and check that it has the expected address."""
    Account.enable_unaudited_hdwallet_features()
    account = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    if expected_address is not None and account.address.lower() != expected_address.lower():
        raise SystemExit(
            f"development account {index} is {account.address}, but the deployment file "
            f"names {expected_address}"
        )
    return account


# ---------------------------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------------------------


def _new_database(path: Path) -> tuple[str, sessionmaker[Session]]:
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    return url, create_session_factory(create_db_engine(url))


def _time_backfill(
    settings_fields: dict[str, Any], deployment: Deployment, path: Path
) -> dict[str, float]:
    """Index from the deployment block to the head into an empty database, and time it.

    The timer covers the indexer's passes only, not the schema migration.
    """
    url, sessions = _new_database(path)
    indexer = create_indexer(Settings(**settings_fields, database_url=url), deployment, sessions)
    started = time.perf_counter()
    _catch_up(indexer)
    seconds = time.perf_counter() - started
    events = _event_count(sessions)
    return {"events": events, "seconds": seconds, "events_per_second": events / seconds}


def _catch_up(indexer: EventIndexer) -> None:
    """Run passes until two in a row cover no block, as `python -m ledger_bridge.indexer --once`."""
    idle_passes = 0
    while idle_passes < 2:
        idle_passes = idle_passes + 1 if indexer.run_once() == 0 else 0


def _time_visibility(
    settings_fields: dict[str, Any],
    deployment: Deployment,
    path: Path,
    chain: _Chain,
    line_id: int,
    blocks: int,
    block_interval: float,
) -> list[float]:
    """Return, for each mined block, the seconds until its events are in the database.

    The indexer runs its background thread with the default poll interval. It
    first catches up with the chain, which is not timed.
    """
    url, sessions = _new_database(path)
    indexer = create_indexer(Settings(**settings_fields, database_url=url), deployment, sessions)
    _catch_up(indexer)
    indexer.start()
    delays: list[float] = []
    try:
        for _ in range(blocks):
            # Jitter keeps the mining times from locking onto the indexer's polling phase.
            time.sleep(random.uniform(0.5, 1.5) * block_interval)
            block_number = chain.mine_drawdown(line_id)
            mined = time.perf_counter()
            _wait_for_block_events(sessions, block_number, indexer)
            delays.append(time.perf_counter() - mined)
    finally:
        indexer.stop()
    return delays


def _wait_for_block_events(
    sessions: sessionmaker[Session], block_number: int, indexer: EventIndexer
) -> None:
    deadline = time.perf_counter() + VISIBILITY_TIMEOUT_SECONDS
    query = (
        select(func.count()).select_from(ChainEvent).where(ChainEvent.block_number == block_number)
    )
    while time.perf_counter() < deadline:
        indexer.check_running()
        with sessions() as session:
            if session.scalar(query):
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
    backfills: list[dict[str, float]],
    delays: list[float],
    total_seconds: float,
) -> dict[str, Any]:
    rates = [run["events_per_second"] for run in backfills]
    milliseconds = sorted(delay * 1000 for delay in delays)
    defaults = Settings(environment="development", chain_enabled=False)
    p95 = _percentile(milliseconds, 95)
    visibility_goal_ms = (arguments.block_interval + GOAL_VISIBILITY_MARGIN_SECONDS) * 1000
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["PYTHONPATH=backend .venv/bin/python bench/indexer_backfill.py", *sys.argv[1:]]
        ),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu(),
            "python": platform.python_version(),
            "database": "SQLite file",
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
            "median_events_per_second": statistics.median(rates),
            "min_events_per_second": min(rates),
            "max_events_per_second": max(rates),
            "goal_events_per_second": GOAL_BACKFILL_EVENTS_PER_SECOND,
            "meets_goal": statistics.median(rates) >= GOAL_BACKFILL_EVENTS_PER_SECOND,
        },
        "visibility": {
            "blocks": len(milliseconds),
            "block_interval_seconds": arguments.block_interval,
            "p50_ms": _percentile(milliseconds, 50),
            "p95_ms": p95,
            "min_ms": milliseconds[0],
            "max_ms": milliseconds[-1],
            "goal_p95_ms": visibility_goal_ms,
            "meets_goal": p95 <= visibility_goal_ms,
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
