"""The processes of a chaos run: an Anvil node that can lose recent blocks, and bridge replicas.

Setup reuses the benchmark helpers in bench/ (Anvil readiness, deployment with
scripts/deploy.py, opening lines, the bridge's environment and CLI), so the
chaos run and the benchmarks start the system the same way.

Every process starts in a new session, so it leads its own process group, and
is stopped by that group's id: SIGTERM, then SIGKILL. `ProcessSet.stop_all`
runs from a finally block and from atexit.
"""

from __future__ import annotations

import atexit
import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.core.config import Settings

REPOSITORY = Path(__file__).resolve().parents[1]
# The benchmark scripts import each other as top-level modules from bench/.
sys.path.insert(0, str(REPOSITORY / "bench"))

from bridge_throughput import (  # noqa: E402
    LEDGER_BRIDGE,
    _bridge_environment,
    _create_bank,
    _free_port,
    _wait_for_bridge,
)
from indexer_backfill import NODE_BIN, _Chain, _deploy, _wait_for_node  # noqa: E402

logger = logging.getLogger(__name__)

STOP_SECONDS = 10
# Seconds between blocks once the load starts. Interval mining keeps producing blocks after
# the last request, so the final operations reach their confirmations.
BLOCK_TIME_SECONDS = 1
RPC_TIMEOUT_SECONDS = 30


class ProcessSet:
    """Child processes, each leading its own process group, stopped by group id."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []
        atexit.register(self.stop_all)

    def start(
        self, command: list[str], env: dict[str, str], log: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            command,
            cwd=REPOSITORY,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """Send SIGKILL to the process's group and reap the process."""
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)

    def stop_all(self) -> None:
        """Stop every process still running: SIGTERM to its group, then SIGKILL."""
        for process in self._processes:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=STOP_SECONDS)
        self._processes = [process for process in self._processes if process.poll() is None]


def _signal_group(process: subprocess.Popen[bytes], signal_number: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal_number)


# ---------------------------------------------------------------------------------------------
# Anvil
# ---------------------------------------------------------------------------------------------


@dataclass
class AnvilNode:
    """Anvil on a fixed port that can be killed and restarted from its last saved state.

    State is saved with the anvil_dumpState RPC, with the stored blocks, and
    loaded with --load-state. Blocks mined after the last save are gone after
    a restart, as when a node loses the tail of its chain.
    """

    processes: ProcessSet
    directory: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    saved_block: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.directory / "anvil-state.json"

    def start(self, *, interval_mining: bool) -> None:
        command = [
            str(NODE_BIN / "anvil"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--silent",
        ]
        if interval_mining:
            command += ["--block-time", str(BLOCK_TIME_SECONDS)]
        if self.state_file.exists():
            command += ["--load-state", str(self.state_file)]
        with (self.directory / "anvil.log").open("ab") as log:
            self.process = self.processes.start(command, dict(os.environ), log)
        _wait_for_node(self.url, self.process)

    def save_state(self) -> int:
        """Write the chain's state to the state file and return the block it ends with."""
        return self.write_state(self.dump_state())

    def dump_state(self) -> str:
        """Return the chain's state as anvil_dumpState encodes it: gzip, as 0x hex."""
        return str(self.rpc("anvil_dumpState", []))

    def write_state(self, encoded: str) -> int:
        """Write a state from dump_state to the state file and return the block it ends with."""
        state = json.loads(gzip.decompress(bytes.fromhex(encoded.removeprefix("0x"))))
        _keep_first_genesis(state)
        block = int(state["best_block_number"])
        partial = self.state_file.with_suffix(".partial")
        partial.write_text(json.dumps(state))
        partial.replace(self.state_file)
        self.saved_block = block
        return block

    def kill(self) -> None:
        if self.process is not None:
            self.processes.kill(self.process)
            self.process = None

    def restart_from_saved_state(self, *, interval_mining: bool = True) -> None:
        self.kill()
        self.start(interval_mining=interval_mining)

    def restart_from_dump(self, encoded: str) -> int:
        """Kill the node, write the dumped state, restart from it; return the state's block.

        The state is decoded and written after the kill, so the blocks lost are
        those mined between the dump and the kill only.
        """
        self.kill()
        block = self.write_state(encoded)
        self.start(interval_mining=True)
        return block

    def rpc(self, method: str, params: list[Any]) -> Any:
        response = httpx.post(
            self.url,
            json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
            timeout=RPC_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        body = response.json()
        if "error" in body:
            raise RuntimeError(f"{method} failed: {body['error']}")
        return body["result"]

    def head(self) -> int:
        return int(self.rpc("eth_blockNumber", []), 16)

    def block_transaction_count(self, number: int) -> int:
        return int(self.rpc("eth_getBlockTransactionCountByNumber", [hex(number)]), 16)


def _keep_first_genesis(state: dict[str, Any]) -> None:
    """Drop the extra block 0 entries that Anvil adds to a dump after each --load-state.

    Anvil 1.7.1 makes a new genesis block when it starts from a state file and
    dumps it next to the loaded one, and a later load may then pick the new one,
    which changes the chain's genesis hash. The oldest block 0 is the original.
    """
    blocks = state["blocks"]
    genesis = [block for block in blocks if int(block["header"]["number"], 16) == 0]
    if len(genesis) <= 1:
        return
    original = min(genesis, key=lambda block: int(block["header"]["timestamp"], 16))
    state["blocks"] = [block for block in blocks if block not in genesis or block is original]


def deploy_and_open_lines(
    node: AnvilNode, directory: Path, lines: int
) -> tuple[Deployment, Path, list[int]]:
    """Deploy the contracts with scripts/deploy.py and open `lines` lines from one account."""
    deployment_file = directory / "deployment.json"
    deployment = _deploy(node.url, deployment_file)
    chain = _Chain(create_web3(node.url, timeout_seconds=RPC_TIMEOUT_SECONDS), deployment)
    line_ids = [chain.open_line() for _ in range(lines)]
    return deployment, deployment_file, line_ids


# ---------------------------------------------------------------------------------------------
# The database
# ---------------------------------------------------------------------------------------------


@contextmanager
def bridge_database(directory: Path, server_url: str | None) -> Iterator[str]:
    """Yield the URL of an empty database: a SQLite file, or a new PostgreSQL database.

    A PostgreSQL database created here is dropped on exit.
    """
    if server_url is None:
        yield f"sqlite:///{directory / 'bridge.db'}"
        return
    name = f"ledger_chaos_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def signer_lease_available(database_url: str) -> bool:
    """Return whether this bridge can share one signer between replicas.

    The lease is detected by a setting with "lease" in its name (such as
    LEDGER_WORKER_LEASE_SECONDS) or by a table with "lease" in its name in the
    migrated database.
    """
    if any("lease" in name for name in Settings.model_fields):
        return True
    engine = create_engine(database_url)
    try:
        return any("lease" in name for name in inspect(engine).get_table_names())
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# Bridge replicas
# ---------------------------------------------------------------------------------------------


@dataclass
class BridgeReplica:
    """One `ledger-bridge serve` process on a fixed port, restarted on the same port."""

    processes: ProcessSet
    environment: dict[str, str]
    log_path: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [str(LEDGER_BRIDGE), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = self.processes.start(command, self.environment, log)
        _wait_for_bridge(self.url, self.process, self.log_path)

    def kill(self) -> None:
        if self.process is not None:
            self.processes.kill(self.process)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


def bridge_environment(
    node: AnvilNode,
    deployment_file: Path,
    database_url: str,
    *,
    confirmations: int,
    worker_enabled: bool,
) -> dict[str, str]:
    """Return the LEDGER_* environment of a replica, based on the benchmark's settings."""
    # The SQLite file named here is replaced by `database_url` below.
    environment = _bridge_environment(
        node.url, deployment_file, Path("unused.db"), synchronous="FULL"
    )
    environment.update(
        {
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_CONFIRMATIONS": str(confirmations),
            # Interval mining holds each transaction about one block, so the default of 16
            # sent and unconfirmed transactions would cap the rate at 16 per confirmation time.
            "LEDGER_WORKER_MAX_PENDING": "1024",
            "LEDGER_WORKER_ENABLED": "true" if worker_enabled else "false",
        }
    )
    return environment


def create_bank_credential(environment: dict[str, str], facility: str) -> str:
    """Migrate the database and return a bank credential for the facility."""
    return _create_bank(environment, facility)
