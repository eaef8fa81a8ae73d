"""Measure the bridge's drawdown throughput and latency against raw drawdowns sent to the same node.

Usage (from the repository root):

    PYTHONPATH=backend .venv/bin/python bench/bridge_throughput.py [--drawdowns N]

The script starts Anvil on a free 127.0.0.1 port, deploys the contracts with
scripts/deploy.py and opens one line on chain. It then starts `ledger-bridge
serve` as a subprocess on a free port with a fresh SQLite file and default
worker settings, and creates a bank credential for the facility.

Phase 1 sends `--drawdowns` self-directed drawdowns (payee null) from
`--clients` concurrent HTTP clients, each with its own Idempotency-Key. A
client sends its next drawdown as soon as the previous one was accepted, as
a core-banking system with a queue of payments would. Accept latency is the
time to the 202 response. A poller reads the oldest unfinished operations
until each is final. Confirm latency runs from sending the request to the
operation's `confirmed_at`, so the polling delay does not count. The rate is
confirmed drawdowns from the first request to the last `confirmed_at`.

Phase 2 starts after the bridge has stopped. It pre-signs the same number of
drawdowns of the same line and amount, with the operator's development key
that the bridge signs with. It sends them to the node one after another with
eth_sendRawTransaction, then waits until every receipt exists. The rate
covers the first send to the last receipt.

Results go to bench/bridge_throughput.json. docs/benchmarks/bridge.md records
them. Anvil and the bridge are stopped by their process ids on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

# Python puts the script's folder, bench/, on sys.path, so the sibling benchmark imports.
from indexer_backfill import (
    NODE_BIN,
    RECEIPT_SECONDS,
    REPOSITORY,
    _anvil,
    _cpu,
    _deploy,
    _percentile,
)
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.contracts import CREDIT_FACILITY, contract_at
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.core.config import DEVELOPMENT_MNEMONIC

RESULT_FILE = REPOSITORY / "bench" / "bridge_throughput.json"
LEDGER_BRIDGE = Path(sys.executable).parent / "ledger-bridge"
# 100,000,000.00 in fen, far above what the benchmark draws.
LINE_LIMIT_FEN = 10_000_000_000
RATE_BPS = 435
TERM_DAYS = 365
DRAWDOWN_AMOUNT = "1.00"
ZERO_ADDRESS = "0x" + "00" * 20
# Request ids of the setup and of the raw sends, far above the bridge's, which start at 1.
SETUP_FIRST_REQUEST_ID = 2**220
RAW_FIRST_REQUEST_ID = 2**230
# Anvil's development accounts that scripts/deploy.py makes operator and credit officer,
# and a borrower that has no role.
OPERATOR_INDEX = 1
OFFICER_INDEX = 2
BORROWER_INDEX = 7
TRANSACTION_GAS = 600_000
BRIDGE_START_SECONDS = 60
REQUEST_TIMEOUT_SECONDS = 30
CONFIRM_TIMEOUT_SECONDS = 120
# Pollers read at most this many of the oldest unfinished operations, then pause.
POLL_BATCH = 32
OPERATION_POLL_SECONDS = 0.05
RECEIPT_POLL_SECONDS = 0.01
GOAL_RATIO = 0.5
GOAL_ACCEPT_P95_MS = 50.0
GOAL_NONCE_ERRORS = 0


def main() -> None:
    arguments = _parser().parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as directory, _anvil() as anvil_url:
        deployment_file = Path(directory) / "deployment.json"
        deployment = _deploy(anvil_url, deployment_file)
        w3 = create_web3(anvil_url, timeout_seconds=30)
        line_id = _open_line(w3, deployment)
        print(f"setup: line {line_id} open with a limit of {LINE_LIMIT_FEN} fen")
        environment = _bridge_environment(
            anvil_url, deployment_file, Path(directory) / "bridge.db", arguments.sqlite_synchronous
        )
        token = _create_bank(environment, deployment.facilities[0].address)
        log_path = Path(directory) / "bridge.log"
        with _bridge(environment, log_path) as (api_url, bridge_pid):
            results, bridge_seconds = asyncio.run(
                _run_drawdowns(api_url, token, line_id, arguments.drawdowns, arguments.clients)
            )
            peak_rss_kib = _peak_rss_kib(bridge_pid)
        raw = _run_raw_sends(anvil_url, w3, deployment, line_id, arguments.drawdowns)
    report = _report(arguments, results, bridge_seconds, peak_rss_kib, raw)
    report["total_seconds"] = time.monotonic() - started
    arguments.output.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["bridge"], indent=2))
    print(f"wrote {arguments.output}; total {report['total_seconds']:.0f} s")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--drawdowns",
        type=int,
        default=400,
        help=(
            "drawdowns sent through the bridge, and raw drawdowns sent to the node; "
            "10000 gives the nonce-error count of the goal and takes about 15 minutes"
        ),
    )
    parser.add_argument(
        "--clients", type=int, default=16, help="concurrent HTTP clients sending drawdowns"
    )
    parser.add_argument(
        "--sqlite-synchronous",
        choices=["full", "normal"],
        default="full",
        help=(
            "PRAGMA synchronous of the bridge's SQLite file (default %(default)s); normal skips "
            "the fsync of each commit and can lose the last commits on an OS crash"
        ),
    )
    parser.add_argument(
        "--output", type=Path, default=RESULT_FILE, help=f"JSON result file (default {RESULT_FILE})"
    )
    return parser


# ---------------------------------------------------------------------------------------------
# Setup: the line and the bridge
# ---------------------------------------------------------------------------------------------


class _Signer:
    """A local signer of facility calls with one of Anvil's development keys, counting nonces."""

    def __init__(self, w3: Web3, index: int, expected_address: str) -> None:
        Account.enable_unaudited_hdwallet_features()
        self.account: LocalAccount = Account.from_mnemonic(
            DEVELOPMENT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
        )
        if self.account.address != expected_address:
            raise SystemExit(
                f"development account {index} is {self.account.address}, but the deployment "
                f"names {expected_address}; deploy with scripts/deploy.py"
            )
        self._w3 = w3
        self._nonce = w3.eth.get_transaction_count(self.account.address, "pending")
        self._chain_id = w3.eth.chain_id

    def sign(self, function: Any) -> bytes:
        transaction = function.build_transaction(
            {
                "from": self.account.address,
                "nonce": self._nonce,
                "gas": TRANSACTION_GAS,
                "chainId": self._chain_id,
                # Fixed fees well above Anvil's base fee, so building skips fee estimation.
                "maxFeePerGas": 100 * 10**9,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        self._nonce += 1
        return bytes(self.account.sign_transaction(transaction).raw_transaction)

    def send_and_wait(self, function: Any) -> dict[str, Any]:
        tx_hash = self._w3.eth.send_raw_transaction(self.sign(function))
        receipt = self._w3.eth.wait_for_transaction_receipt(tx_hash, RECEIPT_SECONDS)
        if receipt["status"] != 1:
            raise SystemExit(f"setup transaction {tx_hash.to_0x_hex()} reverted")
        return dict(receipt)


def _facility(w3: Web3, deployment: Deployment) -> Contract:
    return contract_at(w3, CREDIT_FACILITY, deployment.facilities[0].address)


def _open_line(w3: Web3, deployment: Deployment) -> int:
    """Apply for, approve and open one line with LINE_LIMIT_FEN, and return its id."""
    facility = _facility(w3, deployment)
    operator = _Signer(w3, OPERATOR_INDEX, deployment.accounts["operator"])
    officer = _Signer(w3, OFFICER_INDEX, deployment.accounts["officer"])
    request_ids = iter(range(SETUP_FIRST_REQUEST_ID, SETUP_FIRST_REQUEST_ID + 3))
    maturity = facility.functions.today().call() + TERM_DAYS
    borrower_address = Account.from_mnemonic(
        DEVELOPMENT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{BORROWER_INDEX}"
    ).address
    apply = facility.functions.applyForLine(
        next(request_ids), borrower_address, b"\x22" * 32, LINE_LIMIT_FEN, RATE_BPS, maturity
    )
    receipt = operator.send_and_wait(apply)
    line_id = int(facility.events.LineApplied().process_receipt(receipt)[0]["args"]["lineId"])
    for step in (facility.functions.approveLine, facility.functions.openLine):
        officer.send_and_wait(step(next(request_ids), line_id))
    return line_id


def _bridge_environment(
    anvil_url: str, deployment_file: Path, database: Path, synchronous: str
) -> dict[str, str]:
    return {
        **os.environ,
        "LEDGER_RPC_URL": anvil_url,
        "LEDGER_DEPLOYMENT_FILE": str(deployment_file),
        "LEDGER_DATABASE_URL": f"sqlite:///{database}?synchronous={synchronous}",
        "LEDGER_ENVIRONMENT": "development",
        # Anvil's public development keys sign, as in tools/up.sh. Never on a real network.
        "LEDGER_USE_DEVELOPMENT_KEYS": "true",
        "LEDGER_LOG_FORMAT": "text",
        # The benchmark is one client sending far more than a bank's normal rate.
        "LEDGER_RATE_LIMIT_PER_MINUTE": "1000000",
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _create_bank(environment: dict[str, str], facility: str) -> str:
    """Upgrade the fresh database, create a bank for the facility, and return its token."""
    _run_cli(environment, ["db", "upgrade"])
    output = _run_cli(
        environment,
        [
            "org",
            "create",
            "--name",
            "bench-bank",
            "--kind",
            "bank",
            "--facility",
            facility,
            "--json",
        ],
    )
    return str(json.loads(output)["token"])


def _run_cli(environment: dict[str, str], arguments: list[str]) -> str:
    result = subprocess.run(
        [str(LEDGER_BRIDGE), *arguments],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(
            f"ledger-bridge {' '.join(arguments)} failed with status {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result.stdout


@contextmanager
def _bridge(environment: dict[str, str], log_path: Path) -> Iterator[tuple[str, int]]:
    """Start `ledger-bridge serve` on a free port, yield its URL and process id, then stop it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(LEDGER_BRIDGE), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=REPOSITORY, env=environment, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_for_bridge(url, process, log_path)
            yield url, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_bridge(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + BRIDGE_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"the bridge exited with status {process.returncode} before serving {url}:\n"
                f"{log_path.read_text()[-4000:]}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(
        f"timed out after {BRIDGE_START_SECONDS} s waiting for 200 from {url}/health; "
        f"bridge log:\n{log_path.read_text()[-4000:]}"
    )


def _peak_rss_kib(pid: int) -> int:
    """Return the process's peak resident set size (VmHWM) in KiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/{pid}/status has no VmHWM line")


# ---------------------------------------------------------------------------------------------
# Phase 1: drawdowns through the bridge
# ---------------------------------------------------------------------------------------------


@dataclass
class _DrawdownResult:
    started: float  # time.time() when the request was sent
    accept_seconds: float
    final_at: float  # time.time() of the operation's confirmed_at, or of the poll that saw it fail
    state: str
    revert: dict[str, Any] | None


@dataclass
class _Pending:
    operation_id: str
    started: float
    accept_seconds: float


async def _run_drawdowns(
    api_url: str, token: str, line_id: int, count: int, clients: int
) -> tuple[list[_DrawdownResult], float]:
    """Send `count` drawdowns from `clients` concurrent clients and wait for each to be final.

    Returns the results and the seconds from the first request to the last final state.
    """
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    pending: dict[str, _Pending] = {}
    results: list[_DrawdownResult] = []
    headers = {"Authorization": f"Bearer {token}"}
    run_id = uuid.uuid4().hex[:12]
    sending_done = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            accepted = await _send_drawdown(client, line_id, f"bench-{run_id}-{index}")
            pending[accepted.operation_id] = accepted

    async def poll_loop(client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
        while not (sending_done.is_set() and not pending):
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"timed out after {CONFIRM_TIMEOUT_SECONDS} s with {len(pending)} "
                    "operations not final; is the bridge's worker running?"
                )
            oldest = sorted(pending.values(), key=lambda item: item.started)[:POLL_BATCH]
            for item in oldest:
                result = await _poll_operation(client, item)
                if result is not None:
                    pending.pop(item.operation_id, None)
                    results.append(result)
                    deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
            await asyncio.sleep(OPERATION_POLL_SECONDS)

    limits = httpx.Limits(max_connections=clients + 1)
    async with httpx.AsyncClient(
        base_url=api_url, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS, limits=limits
    ) as client:
        first = time.time()
        poller = asyncio.create_task(poll_loop(client))
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        sending_done.set()
        await poller
    last = max(result.final_at for result in results)
    return results, last - first


async def _send_drawdown(client: httpx.AsyncClient, line_id: int, key: str) -> _Pending:
    """Send one drawdown and return its operation id once it is accepted."""
    started = time.time()
    response = await client.post(
        f"/v1/lines/{line_id}/drawdowns",
        json={"amount": DRAWDOWN_AMOUNT, "payee": None},
        headers={"Idempotency-Key": key},
    )
    accepted = time.time()
    if response.status_code != 202:
        raise SystemExit(
            f"drawdown with Idempotency-Key {key} returned {response.status_code}, "
            f"expected 202: {response.text}"
        )
    return _Pending(response.json()["id"], started, accepted - started)


async def _poll_operation(client: httpx.AsyncClient, item: _Pending) -> _DrawdownResult | None:
    """Read an operation once, and return its result if it is confirmed or failed."""
    poll = await client.get(f"/v1/operations/{item.operation_id}")
    poll.raise_for_status()
    operation = poll.json()
    if operation["state"] not in ("confirmed", "failed"):
        return None
    confirmed_at = operation["confirmed_at"]
    final_at = datetime.fromisoformat(confirmed_at).timestamp() if confirmed_at else time.time()
    return _DrawdownResult(
        started=item.started,
        accept_seconds=item.accept_seconds,
        final_at=final_at,
        state=operation["state"],
        revert=operation["revert"],
    )


def _is_nonce_error(result: _DrawdownResult) -> bool:
    if result.state != "failed" or result.revert is None:
        return False
    return "nonce" in json.dumps(result.revert).lower()


# ---------------------------------------------------------------------------------------------
# Phase 2: the same drawdowns, pre-signed and sent straight to the node
# ---------------------------------------------------------------------------------------------


def _run_raw_sends(
    anvil_url: str, w3: Web3, deployment: Deployment, line_id: int, count: int
) -> dict[str, float]:
    """Pre-sign `count` drawdowns on the line, send them one by one and wait for all receipts.

    They are signed with the operator's key, as the bridge signs, with request ids far
    above the bridge's. The timer starts at the first send, after signing, and stops when
    every receipt exists.
    """
    facility = _facility(w3, deployment)
    operator = _Signer(w3, OPERATOR_INDEX, deployment.accounts["operator"])
    request_ids = iter(range(RAW_FIRST_REQUEST_ID, RAW_FIRST_REQUEST_ID + count))
    amount_fen = int(Decimal(DRAWDOWN_AMOUNT) * 100)
    signed = [
        "0x"
        + operator.sign(
            facility.functions.drawdown(
                next(request_ids), line_id, amount_fen, ZERO_ADDRESS, bytes(32)
            )
        ).hex()
        for _ in range(count)
    ]
    with httpx.Client(base_url=anvil_url, timeout=RECEIPT_SECONDS) as client:
        started = time.perf_counter()
        hashes = [_rpc(client, "eth_sendRawTransaction", [raw]) for raw in signed]
        sent = time.perf_counter()
        for tx_hash in hashes:
            _wait_for_receipt(client, tx_hash)
        finished = time.perf_counter()
    seconds = finished - started
    return {
        "transactions": count,
        "send_seconds": sent - started,
        "seconds": seconds,
        "per_second": count / seconds,
    }


def _wait_for_receipt(client: httpx.Client, tx_hash: str) -> None:
    deadline = time.perf_counter() + RECEIPT_SECONDS
    while time.perf_counter() < deadline:
        receipt = _rpc(client, "eth_getTransactionReceipt", [tx_hash])
        if receipt is not None:
            if int(receipt["status"], 16) != 1:
                raise SystemExit(f"raw drawdown {tx_hash} reverted")
            return
        time.sleep(RECEIPT_POLL_SECONDS)
    raise SystemExit(f"timed out after {RECEIPT_SECONDS} s waiting for the receipt of {tx_hash}")


def _rpc(client: httpx.Client, method: str, params: list[Any]) -> Any:
    response = client.post("", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise SystemExit(f"{method} failed: {body['error']}")
    return body["result"]


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _report(
    arguments: argparse.Namespace,
    results: list[_DrawdownResult],
    bridge_seconds: float,
    peak_rss_kib: int,
    raw: dict[str, float],
) -> dict[str, Any]:
    accept_ms = sorted(result.accept_seconds * 1000 for result in results)
    confirmed = [result for result in results if result.state == "confirmed"]
    confirm_ms = sorted((result.final_at - result.started) * 1000 for result in confirmed)
    confirmed_per_s = len(confirmed) / bridge_seconds
    ratio = confirmed_per_s / raw["per_second"]
    accept_p95 = _percentile(accept_ms, 95)
    nonce_errors = sum(1 for result in results if _is_nonce_error(result))
    failures = [result.revert for result in results if result.state == "failed"]
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(
            ["PYTHONPATH=backend .venv/bin/python bench/bridge_throughput.py", *sys.argv[1:]]
        ),
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": _cpu(),
            "python": platform.python_version(),
            "database": f"SQLite file, synchronous={arguments.sqlite_synchronous}",
        },
        "workload": {
            "drawdowns": arguments.drawdowns,
            "clients": arguments.clients,
            "amount": DRAWDOWN_AMOUNT,
            "payee": None,
            "line_limit_fen": LINE_LIMIT_FEN,
            "bridge_settings": (
                "defaults (development environment, Anvil development keys), rate limit raised"
            ),
            "client_mode": "each client sends its next drawdown once the previous is accepted",
            "raw_sends": "pre-signed drawdowns of the same line and amount, operator key",
        },
        "bridge": {
            "confirmed": len(confirmed),
            "failed_operations": len(failures),
            "nonce_errors": nonce_errors,
            "seconds": bridge_seconds,
            "confirmed_per_s": confirmed_per_s,
            "raw_send_per_s": raw["per_second"],
            "ratio": ratio,
            "accept_p50_ms": _percentile(accept_ms, 50),
            "accept_p95_ms": accept_p95,
            "accept_p99_ms": _percentile(accept_ms, 99),
            "confirm_p50_ms": _percentile(confirm_ms, 50) if confirm_ms else None,
            "confirm_p95_ms": _percentile(confirm_ms, 95) if confirm_ms else None,
            "confirm_p99_ms": _percentile(confirm_ms, 99) if confirm_ms else None,
            "peak_rss_mb": peak_rss_kib / 1024,
        },
        "raw_sends": raw,
        "failure_samples": failures[:5],
        "goals": {
            "ratio": {"goal": f">= {GOAL_RATIO}", "met": ratio >= GOAL_RATIO},
            "accept_p95_ms": {
                "goal": f"<= {GOAL_ACCEPT_P95_MS}",
                "met": accept_p95 <= GOAL_ACCEPT_P95_MS,
            },
            "nonce_errors": {
                "goal": f"== {GOAL_NONCE_ERRORS}",
                "met": nonce_errors == GOAL_NONCE_ERRORS,
            },
        },
    }


if __name__ == "__main__":
    main()
