"""Fixtures for the integration tests: a real Anvil, the Ape deployment and the real app.

Layers, all in session scope except the factories: a local chain on a free
127.0.0.1 port, then the contracts deployed on it by scripts/deploy.py and a
second bank's facility. On top come the app with its worker and indexer on a
SQLite file, then organisations and lines. Anvil is stopped by its process id
when the session ends.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.app import create_app
from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.contracts import CREDIT_FACILITY, contract_at
from ledger_bridge.chain.deployment import Deployment, load_deployment
from ledger_bridge.core.config import Settings
from ledger_bridge.core.security import IssuedCredential, Role
from ledger_bridge.storage.organisations import create_organisation

with warnings.catch_warnings():
    # Starlette 1.x warns that its test client will move from httpx to httpx2.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

REPOSITORY = Path(__file__).resolve().parents[2]
NODE_BIN = REPOSITORY / "node_modules" / ".bin"
ANVIL_START_SECONDS = 30
DEPLOY_SECONDS = 600
# Anvil development account 6 is not one of the bridge's signers, so the fixtures can
# apply for lines with it without touching the nonces that the bridge's worker owns.
LINE_APPLICANT_INDEX = 6
BORROWER_INDEX = 7
# Request ids of the fixtures come from high above the bridge's sequence, which starts at 1.
FIXTURE_REQUEST_IDS = iter(range(2**200, 2**201))
DEFAULT_RATE_BPS = 435
LINE_TERM_DAYS = 365
# The second facility's constructor arguments, as scripts/deploy.py passes them for the first:
# settlement day, penalty markup and (entrusted threshold in fen, max limit change bps,
# limit change interval days, cycle threshold, review required).
SETTLEMENT_DAY_OF_MONTH = 21
PENALTY_MARKUP_PCT = 50
FACILITY_POLICY = (100_000_000, 2200, 90, 8, True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    """Start Anvil on a free local port and stop it, by its process id, after the session."""
    anvil = NODE_BIN / "anvil"
    if not anvil.exists():
        pytest.fail(f"{anvil} is missing; run `npm ci` in {REPOSITORY} first")
    port = _free_port()
    command = [str(anvil), "--host", "127.0.0.1", "--port", str(port), "--silent"]
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
            pytest.fail(f"anvil exited with status {process.returncode} before answering {url}")
        try:
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"anvil did not answer {url} within {ANVIL_START_SECONDS} seconds")


@pytest.fixture(scope="session")
def deployment_file(anvil_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Deploy the contracts with scripts/deploy.py and return the deployment file it wrote."""
    path = tmp_path_factory.mktemp("deployment") / "local.json"
    environment = {
        **os.environ,
        "APE_FOUNDRY_HOST": anvil_url,
        "LEDGER_DEPLOYMENT_FILE": str(path),
        "SOLCX_BINARY_PATH": str(REPOSITORY / ".solcx"),
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    ape = Path(sys.executable).parent / "ape"
    command = [str(ape), "run", "deploy", "--network", "ethereum:local:foundry"]
    result = subprocess.run(
        command,
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=DEPLOY_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"deployment failed:\n{result.stdout}\n{result.stderr}")
    return path


@pytest.fixture(scope="session")
def deployment(deployment_file: Path) -> Deployment:
    return load_deployment(deployment_file)


@pytest.fixture(scope="session")
def second_facility(w3: Web3, deployment: Deployment) -> tuple[str, int]:
    """Deploy another bank's facility from Ape's build output, and return its address and block.

    It shares the token and the fund-flow rules, and the same accounts hold its roles,
    so the bridge's signers can act on both facilities.
    """
    build = json.loads((REPOSITORY / ".build" / "__local__.json").read_text())
    artifact = build["contractTypes"][CREDIT_FACILITY]
    factory = w3.eth.contract(
        abi=artifact["abi"], bytecode=artifact["deploymentBytecode"]["bytecode"]
    )
    admin = deployment.accounts["admin"]
    constructor = factory.constructor(
        deployment.settlement_token,
        deployment.fund_flow_rules,
        admin,
        SETTLEMENT_DAY_OF_MONTH,
        PENALTY_MARKUP_PCT,
        FACILITY_POLICY,
    )
    receipt = _transact(w3, constructor, admin)
    facility = contract_at(w3, CREDIT_FACILITY, receipt["contractAddress"])
    grants = [
        ("OPERATOR_ROLE", "operator"),
        ("CREDIT_OFFICER_ROLE", "officer"),
        ("CREDIT_OFFICER_ROLE", "second_officer"),
        ("TREASURY_ROLE", "treasury"),
    ]
    for role_name, account in grants:
        role = getattr(facility.functions, role_name)().call()
        _transact(w3, facility.functions.grantRole(role, deployment.accounts[account]), admin)
    return facility.address, receipt["blockNumber"]


@pytest.fixture(scope="session")
def bridge_deployment_file(
    deployment_file: Path,
    second_facility: tuple[str, int],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The deployment file the app reads: the deployed one plus the second bank's facility."""
    document = json.loads(deployment_file.read_text())
    address, block = second_facility
    document["facilities"].append(
        {"name": "second-bank", "address": address, "deployment_block": block}
    )
    path = tmp_path_factory.mktemp("bridge-deployment") / "local.json"
    path.write_text(json.dumps(document, indent=2))
    return path


@pytest.fixture(scope="session")
def bridge_deployment(bridge_deployment_file: Path) -> Deployment:
    return load_deployment(bridge_deployment_file)


@pytest.fixture(scope="session")
def w3(anvil_url: str) -> Web3:
    return create_web3(anvil_url, timeout_seconds=10)


@pytest.fixture(scope="session")
def facility(w3: Web3, deployment: Deployment) -> Contract:
    return contract_at(w3, CREDIT_FACILITY, deployment.facilities[0].address)


@pytest.fixture(scope="session")
def line_applicant(w3: Web3, facility: Contract, deployment: Deployment) -> str:
    """A development account with the operator role that only the fixtures use."""
    applicant = w3.eth.accounts[LINE_APPLICANT_INDEX]
    role = facility.functions.OPERATOR_ROLE().call()
    _transact(w3, facility.functions.grantRole(role, applicant), deployment.accounts["admin"])
    return applicant


def _transact(w3: Web3, function: Any, sender: str) -> dict[str, Any]:
    """Send a transaction from an account that Anvil unlocks and return its receipt."""
    tx_hash = function.transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1, f"fixture transaction {tx_hash.hex()} reverted"
    return dict(receipt)


OpenLine = Callable[..., int]


@pytest.fixture(scope="session")
def open_line(
    w3: Web3, facility: Contract, deployment: Deployment, line_applicant: str
) -> OpenLine:
    """Return a factory that applies for, approves and opens a line directly on chain."""
    officer = deployment.accounts["officer"]
    borrower = w3.eth.accounts[BORROWER_INDEX]

    def open_new_line(limit_fen: int, rate_bps: int = DEFAULT_RATE_BPS) -> int:
        maturity_day = facility.functions.today().call() + LINE_TERM_DAYS
        apply = facility.functions.applyForLine(
            next(FIXTURE_REQUEST_IDS), borrower, b"\x22" * 32, limit_fen, rate_bps, maturity_day
        )
        receipt = _transact(w3, apply, line_applicant)
        line_id = facility.events.LineApplied().process_receipt(receipt)[0]["args"]["lineId"]
        _transact(w3, facility.functions.approveLine(next(FIXTURE_REQUEST_IDS), line_id), officer)
        _transact(w3, facility.functions.openLine(next(FIXTURE_REQUEST_IDS), line_id), officer)
        return line_id

    return open_new_line


@pytest.fixture(scope="session")
def settings(
    anvil_url: str, bridge_deployment_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    database = tmp_path_factory.mktemp("database") / "bridge.db"
    return Settings(
        environment="development",
        rpc_url=anvil_url,
        deployment_file=bridge_deployment_file,
        database_url=f"sqlite:///{database}",
        log_format="text",
        worker_poll_interval_ms=50,
        indexer_poll_interval_ms=50,
    )


@pytest.fixture(scope="session")
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with its worker and indexer running against Anvil."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def session_factory(client: TestClient) -> sessionmaker[Session]:
    return client.app.state.session_factory


@dataclass(frozen=True)
class Member:
    """An organisation created for the tests, with the header that authenticates as it."""

    organisation_id: uuid.UUID
    credential: IssuedCredential

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.token}"}


def _create_member(
    session_factory: sessionmaker[Session], kind: Role, facility: str | None = None
) -> Member:
    with session_factory() as session:
        created = create_organisation(
            session,
            name=f"{kind.value} {uuid.uuid4().hex[:8]}",
            kind=kind,
            facility_address=facility,
        )
    return Member(created.organisation.id, created.credential)


@pytest.fixture(scope="session")
def bank(session_factory: sessionmaker[Session], deployment: Deployment) -> Member:
    return _create_member(session_factory, Role.BANK, deployment.facilities[0].address)


@pytest.fixture(scope="session")
def other_bank(session_factory: sessionmaker[Session], second_facility: tuple[str, int]) -> Member:
    """A bank whose facility is the second one, which has no lines of its own."""
    return _create_member(session_factory, Role.BANK, second_facility[0])


@pytest.fixture(scope="session")
def admin(session_factory: sessionmaker[Session]) -> Member:
    return _create_member(session_factory, Role.ADMIN)


@pytest.fixture(scope="session")
def auditor(session_factory: sessionmaker[Session]) -> Member:
    return _create_member(session_factory, Role.AUDITOR)


@pytest.fixture(scope="session")
def regulator(session_factory: sessionmaker[Session]) -> Member:
    return _create_member(session_factory, Role.REGULATOR)
