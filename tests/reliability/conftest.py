"""Fixtures for the reliability tests: the bridge served by `ledger-bridge serve` on a real socket.

The chain fixtures (Anvil on a free port, the Ape deployment, the second bank's
facility) come from tests/integration/conftest.py. On top of them this file
starts the bridge as its own process, the way operators run it, with JSON logs
written to a file that the tests read back. Each server is stopped by its
process id when the session ends.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from integration import conftest as chain_fixtures
from integration.conftest import REPOSITORY, Member, _create_member, _free_port
from ledger_bridge.app import create_app
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.core.config import Settings
from ledger_bridge.core.logging import JsonFormatter
from ledger_bridge.core.security import Role
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import (
    Credential,
    Operation,
    OperationState,
    Organisation,
    SignedTransaction,
)

# The chain fixtures, shared with the integration tests, so pytest finds them by these names.
anvil_url = chain_fixtures.anvil_url
deployment_file = chain_fixtures.deployment_file
deployment = chain_fixtures.deployment
second_facility = chain_fixtures.second_facility
bridge_deployment_file = chain_fixtures.bridge_deployment_file
bridge_deployment = chain_fixtures.bridge_deployment
w3 = chain_fixtures.w3
facility = chain_fixtures.facility
line_applicant = chain_fixtures.line_applicant
open_line = chain_fixtures.open_line

SERVER_START_SECONDS = 60
SERVER_STOP_SECONDS = 15
BRIDGE_COMMAND = [sys.executable, "-m", "ledger_bridge.cli"]
# The fuzzer sends far more than a client's budget, so the fuzzed server lifts the limit.
UNLIMITED_RATE_PER_MINUTE = 1_000_000
FULL_RUN = os.environ.get("LEDGER_RELIABILITY_FULL") == "1"


@dataclass(frozen=True)
class BridgeServer:
    """A bridge process: its base URL, its database and the file its JSON logs go to."""

    url: str
    database_url: str
    log_path: Path
    environment: Mapping[str, str]

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8").splitlines()


def bridge_environment(**settings: object) -> dict[str, str]:
    """Return this process's environment with LEDGER_* settings set from keyword arguments."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
    environment["PYTHONPATH"] = str(REPOSITORY / "backend")
    environment.update({f"LEDGER_{key.upper()}": str(value) for key, value in settings.items()})
    return environment


def run_cli(environment: Mapping[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run `ledger-bridge` with `arguments` and return its exit status and output."""
    return subprocess.run(
        [*BRIDGE_COMMAND, *arguments],
        env=dict(environment),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@contextmanager
def serve_bridge(directory: Path, **settings: object) -> Iterator[BridgeServer]:
    """Run `ledger-bridge serve` on a free port with a fresh SQLite database, until the exit."""
    port = _free_port()
    database_url = f"sqlite:///{directory / 'bridge.db'}"
    environment = bridge_environment(
        database_url=database_url, log_format="json", log_level="INFO", **settings
    )
    upgrade_to_head(database_url)
    log_path = directory / "bridge.log"
    command = [*BRIDGE_COMMAND, "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, env=environment, stdout=log, stderr=subprocess.STDOUT, cwd=REPOSITORY
        )
    server = BridgeServer(f"http://127.0.0.1:{port}", database_url, log_path, environment)
    try:
        _wait_until_ready(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SERVER_STOP_SECONDS)


def _wait_until_ready(server: BridgeServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = server.log_path.read_text(encoding="utf-8")
            pytest.fail(f"the bridge exited with status {process.returncode}:\n{log}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the bridge at {server.url} was not ready within {SERVER_START_SECONDS} s")


@contextmanager
def serve_app_in_thread(directory: Path, settings: Settings) -> Iterator[BridgeServer]:
    """Serve `create_app(settings)` with uvicorn in a thread, with JSON logs to a file.

    Starting in this process skips the seconds that a new interpreter spends on imports,
    for the tests that need a server with other settings but no chain.
    """
    upgrade_to_head(settings.database_url)
    log_path = directory / "bridge.log"
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="limited-bridge", daemon=True)
    thread.start()
    environment = bridge_environment(database_url=settings.database_url, chain_enabled="false")
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not server.started:
            assert thread.is_alive(), "the bridge thread stopped while starting"
            assert time.monotonic() < deadline, "the bridge thread did not start"
            time.sleep(0.05)
        yield BridgeServer(f"http://127.0.0.1:{port}", settings.database_url, log_path, environment)
    finally:
        server.should_exit = True
        thread.join(timeout=SERVER_STOP_SECONDS)
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


@pytest.fixture(scope="session")
def bridge(
    anvil_url: str, bridge_deployment_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BridgeServer]:
    """The bridge with its worker and indexer on Anvil, with the rate limit lifted."""
    with serve_bridge(
        tmp_path_factory.mktemp("bridge"),
        rpc_url=anvil_url,
        deployment_file=bridge_deployment_file,
        worker_poll_interval_ms=50,
        indexer_poll_interval_ms=50,
        rate_limit_per_minute=UNLIMITED_RATE_PER_MINUTE,
    ) as server:
        yield server


@pytest.fixture(scope="session")
def http(bridge: BridgeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bridge.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def session_factory(bridge: BridgeServer) -> Iterator[sessionmaker[Session]]:
    """Sessions on the bridge's database, to create organisations and count stored rows."""
    engine = create_db_engine(bridge.database_url)
    yield create_session_factory(engine)
    engine.dispose()


# The members come from the integration fixtures, on this folder's session_factory; the second
# auditor, regulator and admin exist only here.
bank = chain_fixtures.bank
other_bank = chain_fixtures.other_bank
auditor = chain_fixtures.auditor
regulator = chain_fixtures.regulator
admin = chain_fixtures.admin


@pytest.fixture(scope="session")
def other_auditor(session_factory: sessionmaker[Session]) -> Member:
    return _create_member(session_factory, Role.AUDITOR)


@pytest.fixture(scope="session")
def other_regulator(session_factory: sessionmaker[Session]) -> Member:
    return _create_member(session_factory, Role.REGULATOR)


@pytest.fixture(scope="session")
def other_admin(session_factory: sessionmaker[Session]) -> Member:
    return _create_member(session_factory, Role.ADMIN)


@dataclass(frozen=True)
class Footprint:
    """What a request could leave behind: stored rows per table and the signers' nonces."""

    rows: tuple[int, ...]
    nonces: tuple[int, ...]


STORED_TABLES = (Operation, SignedTransaction, Organisation, Credential)
QUIET_SECONDS = 60
UNFINISHED_STATES = (OperationState.ACCEPTED, OperationState.SENDING, OperationState.SENT)


class FootprintReader:
    """Reads a Footprint in one SQL query and one JSON-RPC batch, so it can run per request."""

    def __init__(
        self, session_factory: sessionmaker[Session], anvil_url: str, deployment: Deployment
    ) -> None:
        self._session_factory = session_factory
        self._rpc = httpx.Client(timeout=10)
        self._anvil_url = anvil_url
        self._signers = [deployment.accounts[role.value] for role in SignerRole]
        self._count_rows = select(
            *(select(func.count()).select_from(table).scalar_subquery() for table in STORED_TABLES)
        )

    def read(self) -> Footprint:
        with self._session_factory() as session:
            rows = tuple(session.execute(self._count_rows).one())
        batch = [
            {
                "jsonrpc": "2.0",
                "id": index,
                "method": "eth_getTransactionCount",
                "params": [address, "pending"],
            }
            for index, address in enumerate(self._signers)
        ]
        answers = sorted(self._rpc.post(self._anvil_url, json=batch).json(), key=lambda a: a["id"])
        return Footprint(rows, tuple(int(answer["result"], 16) for answer in answers))


def wait_until_quiet(session_factory: sessionmaker[Session]) -> None:
    """Wait until the worker has finished every accepted operation, so nonces hold still."""
    deadline = time.monotonic() + QUIET_SECONDS
    while True:
        with session_factory() as session:
            busy = session.scalar(
                select(Operation.id).where(Operation.state.in_(UNFINISHED_STATES)).limit(1)
            )
        if busy is None:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"operation {busy} did not finish within {QUIET_SECONDS} s")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def footprints(
    session_factory: sessionmaker[Session], anvil_url: str, bridge_deployment: Deployment
) -> FootprintReader:
    return FootprintReader(session_factory, anvil_url, bridge_deployment)


def write_report(name: str, report: Mapping[str, Any]) -> None:
    """Write `<LEDGER_RELIABILITY_REPORT_DIR>/<name>.json` when that variable is set."""
    directory = os.environ.get("LEDGER_RELIABILITY_REPORT_DIR")
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    (Path(directory) / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")


_security_results: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count the security checks and their failures for security.json."""
    if "test_security.py" not in report.nodeid:
        return
    if report.when == "call":
        _security_results["checks"] += 1
    if report.failed:
        _security_results["failures"] += 1


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _security_results:
        write_report(
            "security",
            {"checks": _security_results["checks"], "failures": _security_results["failures"]},
        )
