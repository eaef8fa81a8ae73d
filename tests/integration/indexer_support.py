"""Private chains, databases and indexers for the indexer, audit and regulator tests.

Tests that reorganise or restart a chain run on an Anvil of their own, so
the session's chain, which the app's indexer follows, is never reorganised.
`PrivateChain` starts Anvil on a free 127.0.0.1 port, deploys the contracts
with scripts/deploy.py and drives them from Anvil's unlocked development
accounts. Each process is stopped by its own id.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hexbytes import HexBytes
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.logs import DISCARD

from ledger_bridge.app import create_app
from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.contracts import (
    CREDIT_FACILITY,
    FUND_FLOW_RULES,
    SETTLEMENT_TOKEN,
    contract_at,
)
from ledger_bridge.chain.deployment import Deployment, load_deployment
from ledger_bridge.core.config import Settings
from ledger_bridge.core.security import Role
from ledger_bridge.indexer.decoding import EventDecoder
from ledger_bridge.indexer.service import EventIndexer
from ledger_bridge.indexer.store import ChainIdentity, load_checkpoint
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent
from ledger_bridge.storage.organisations import create_organisation

from .conftest import NODE_BIN, REPOSITORY, Member, TestClient, _free_port, _wait_for_node
from .support import wait_for

POSTGRES_URL_VARIABLE = "LEDGER_TEST_POSTGRES_URL"
DEPLOY_SECONDS = 600
DAY_SECONDS = 86_400
RATE_BPS = 435
# Anvil development account 8 is a borrower that only the private chains use.
BORROWER_INDEX = 8


# ---------------------------------------------------------------------------------------------
# Databases
# ---------------------------------------------------------------------------------------------


def database_params() -> list[Any]:
    """Parameters for a fixture that yields a SQLite URL and, if configured, a PostgreSQL one."""
    return [pytest.param("sqlite", id="sqlite"), pytest.param("postgresql", id="postgresql")]


def fresh_database(kind: str, tmp_path: Path) -> Iterator[str]:
    """Yield the URL of an empty database of `kind`, migrated to the latest revision.

    PostgreSQL runs only when LEDGER_TEST_POSTGRES_URL names a server where the
    user may create databases. Otherwise the test is skipped.
    """
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'index.db'}"
        upgrade_to_head(url)
        yield url
        return
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set, so PostgreSQL tests do not run")
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        upgrade_to_head(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def session_factory_for(url: str) -> sessionmaker[Session]:
    return create_session_factory(create_db_engine(url))


# ---------------------------------------------------------------------------------------------
# Anvil processes
# ---------------------------------------------------------------------------------------------


class AnvilProcess:
    """An Anvil node on 127.0.0.1 that this test started and stops by its process id."""

    def __init__(self, *, port: int | None = None, timestamp: int | None = None) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [str(NODE_BIN / "anvil"), "--host", "127.0.0.1", "--port", str(self.port)]
        if timestamp is not None:
            # A fixed genesis timestamp gives the same genesis hash on every start.
            command += ["--timestamp", str(timestamp)]
        command.append("--silent")
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_for_node(self.url, self.process)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def deploy_contracts(anvil_url: str, path: Path) -> Deployment:
    """Deploy with scripts/deploy.py, as the session fixture does, and load the file it wrote."""
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
        pytest.fail(f"deployment failed:\n{result.stdout}\n{result.stderr}")
    return load_deployment(path)


# ---------------------------------------------------------------------------------------------
# A chain with the contracts, driven from development accounts
# ---------------------------------------------------------------------------------------------


class ChainActor:
    """Sends transactions to the deployed contracts from accounts that Anvil unlocks.

    `accounts` maps the roles operator, officer, regulator and admin to the
    accounts that hold them on chain.
    """

    def __init__(self, w3: Web3, deployment: Deployment, accounts: Mapping[str, str]) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.accounts = dict(accounts)
        self.facility = contract_at(w3, CREDIT_FACILITY, deployment.facilities[0].address)
        self.rules = contract_at(w3, FUND_FLOW_RULES, deployment.fund_flow_rules)
        self.token = contract_at(w3, SETTLEMENT_TOKEN, deployment.settlement_token)
        # Random and far above the ids of the bridge, the deployment and the session fixtures.
        first = 2**230 + uuid.uuid4().int
        self._request_ids = iter(range(first, first + 2**64))

    @property
    def borrower(self) -> str:
        return self.w3.eth.accounts[BORROWER_INDEX]

    def transact(self, function: Any, role: str) -> dict[str, Any]:
        """Send a transaction from a role's account and return its receipt."""
        tx_hash = function.transact({"from": self.accounts[role]})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        assert receipt["status"] == 1, f"transaction {HexBytes(tx_hash).to_0x_hex()} reverted"
        return dict(receipt)

    def request_id(self) -> int:
        return next(self._request_ids)

    def today(self) -> int:
        return int(self.facility.functions.today().call())

    def open_line(
        self, limit_fen: int = 10_000_000, *, term_days: int = 365, borrower: str | None = None
    ) -> int:
        """Apply for, approve and open a line, and return its id."""
        maturity = self.today() + term_days
        receipt = self.transact(
            self.facility.functions.applyForLine(
                self.request_id(),
                borrower or self.borrower,
                b"\x11" * 32,
                limit_fen,
                RATE_BPS,
                maturity,
            ),
            "operator",
        )
        line_id = self.facility.events.LineApplied().process_receipt(receipt)[0]["args"]["lineId"]
        self.transact(self.facility.functions.approveLine(self.request_id(), line_id), "officer")
        self.transact(self.facility.functions.openLine(self.request_id(), line_id), "officer")
        return int(line_id)

    def draw_locked(self, line_id: int, amount_fen: int) -> int:
        """Draw into a locked balance, and return the drawdown id."""
        receipt = self.transact(
            self.facility.functions.drawdown(
                self.request_id(), line_id, amount_fen, "0x" + "00" * 20, b"\x00" * 32
            ),
            "operator",
        )
        drawn = self.facility.events.LineDrawn().process_receipt(receipt, errors=DISCARD)
        return int(drawn[0]["args"]["drawdownId"])

    def draw_entrusted(self, line_id: int, amount_fen: int, payee: str) -> dict[str, Any]:
        return self.transact(
            self.facility.functions.drawdown(
                self.request_id(), line_id, amount_fen, payee, b"\x44" * 32
            ),
            "operator",
        )

    def pay_from_locked(self, drawdown_id: int, payee: str, amount_fen: int) -> dict[str, Any]:
        return self.transact(
            self.facility.functions.payFromLocked(
                self.request_id(), drawdown_id, payee, amount_fen, b"\x55" * 32
            ),
            "operator",
        )

    def return_locked(self, drawdown_id: int, amount_fen: int) -> dict[str, Any]:
        return self.transact(
            self.facility.functions.repayFromLocked(self.request_id(), drawdown_id, amount_fen),
            "operator",
        )

    def register_payee(self, category: int, payee: str | None = None) -> str:
        """Register a payee (a fresh address unless given) in `category`, and return it."""
        address = payee or random_address()
        self.transact(
            self.rules.functions.registerPayee(address, category, b"\x66" * 32), "operator"
        )
        return address

    def block_category(self, category: int) -> dict[str, Any]:
        return self.transact(
            self.rules.functions.blockCategory(category, b"\x77" * 32), "regulator"
        )

    def unblock_category(self, category: int) -> dict[str, Any]:
        return self.transact(self.rules.functions.unblockCategory(category), "regulator")

    def freeze_payee(self, payee: str) -> dict[str, Any]:
        return self.transact(self.rules.functions.freezePayee(payee, b"\x88" * 32), "regulator")

    def regulator_freeze_line(self, line_id: int) -> dict[str, Any]:
        return self.transact(
            self.facility.functions.regulatorFreezeLine(self.request_id(), line_id), "regulator"
        )

    def mine(self, blocks: int = 1) -> None:
        self._rpc("anvil_mine", [hex(blocks)])

    def increase_time(self, seconds: int) -> None:
        """Move the chain's clock forward and mine a block at the new time."""
        self._rpc("evm_increaseTime", [seconds])
        self.mine(1)

    def snapshot(self) -> str:
        return str(self._rpc("evm_snapshot", [])["result"])

    def revert(self, snapshot: str) -> None:
        result = self._rpc("evm_revert", [snapshot])
        assert result["result"] is True, result

    def reorg(self, depth: int) -> None:
        """Replace the last `depth` blocks with empty blocks of the same numbers (anvil_reorg)."""
        result = self._rpc("anvil_reorg", [depth, []])
        assert "error" not in result, result

    def block_hash(self, number: int) -> str:
        return HexBytes(self.w3.eth.get_block(number)["hash"]).to_0x_hex()

    def _rpc(self, method: str, params: list[Any]) -> Any:
        return self.w3.provider.make_request(method, params)  # type: ignore[arg-type]


class PrivateChain(ChainActor):
    """An Anvil of its own with the contracts deployed, driven from the deployment's accounts."""

    def __init__(self, anvil: AnvilProcess, deployment_file: Path, deployment: Deployment) -> None:
        super().__init__(
            create_web3(anvil.url, timeout_seconds=10), deployment, deployment.accounts
        )
        self.anvil = anvil
        self.deployment_file = deployment_file

    @classmethod
    def start(cls, directory: Path, *, timestamp: int | None = None) -> PrivateChain:
        anvil = AnvilProcess(timestamp=timestamp)
        try:
            path = directory / f"deployment-{anvil.port}.json"
            return cls(anvil, path, deploy_contracts(anvil.url, path))
        except BaseException:
            anvil.stop()
            raise

    @property
    def url(self) -> str:
        return self.anvil.url

    def stop(self) -> None:
        self.anvil.stop()


# ---------------------------------------------------------------------------------------------
# Indexers and comparisons with the chain
# ---------------------------------------------------------------------------------------------


def new_indexer(
    w3: Web3,
    deployment: Deployment,
    sessions: sessionmaker[Session],
    *,
    block_range: int = 7,
    confirmations: int = 1,
    max_reorg_depth: int = 64,
    token_transfers: bool = True,
) -> EventIndexer:
    return EventIndexer(
        w3=w3,
        session_factory=sessions,
        decoder=EventDecoder(w3, deployment, token_transfers=token_transfers),
        identity=ChainIdentity(deployment.chain_id, deployment.genesis_hash),
        first_block=deployment.first_block,
        block_range=block_range,
        confirmations=confirmations,
        max_reorg_depth=max_reorg_depth,
        poll_interval_seconds=0.05,
    )


def catch_up(indexer: EventIndexer, max_passes: int = 10_000) -> None:
    """Run passes until two in a row cover no block."""
    idle = 0
    for _ in range(max_passes):
        idle = idle + 1 if indexer.run_once() == 0 else 0
        if idle == 2:
            return
    raise AssertionError(f"the indexer did not catch up within {max_passes} passes")


LogKey = tuple[int, int, str, str]


def chain_log_keys(w3: Web3, deployment: Deployment, through_block: int) -> list[LogKey]:
    """Return (block, log index, tx hash, block hash) of every log of the deployment's
    contracts up to `through_block`, read with one eth_getLogs call."""
    addresses = [
        deployment.settlement_token,
        deployment.fund_flow_rules,
        *(item.address for item in deployment.facilities),
    ]
    logs = w3.eth.get_logs(
        {"address": addresses, "fromBlock": deployment.first_block, "toBlock": through_block}
    )
    # The index keeps only Transfer of the token's events.
    transfer = HexBytes(Web3.keccak(text="Transfer(address,address,uint256)"))
    token = deployment.settlement_token.lower()
    return sorted(
        (
            log["blockNumber"],
            log["logIndex"],
            HexBytes(log["transactionHash"]).to_0x_hex(),
            HexBytes(log["blockHash"]).to_0x_hex(),
        )
        for log in logs
        if str(log["address"]).lower() != token or HexBytes(log["topics"][0]) == transfer
    )


def stored_log_keys(sessions: sessionmaker[Session]) -> list[LogKey]:
    with sessions() as session:
        rows = session.execute(
            select(
                ChainEvent.block_number,
                ChainEvent.log_index,
                ChainEvent.transaction_hash,
                ChainEvent.block_hash,
            ).order_by(ChainEvent.block_number, ChainEvent.log_index)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# A bridge app on a private chain
# ---------------------------------------------------------------------------------------------


@contextmanager
def private_app(chain: PrivateChain, database_url: str, **settings: Any) -> Iterator[TestClient]:
    """Run the app with its indexer, without a worker, against a private chain."""
    app = create_app(
        Settings(
            environment="development",
            rpc_url=chain.url,
            deployment_file=chain.deployment_file,
            database_url=database_url,
            log_format="text",
            worker_enabled=False,
            indexer_poll_interval_ms=50,
            **settings,
        )
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def create_member(
    sessions: sessionmaker[Session], kind: Role, facility: str | None = None
) -> Member:
    """Create an organisation of `kind` with a credential, and return it as a Member."""
    with sessions() as session:
        created = create_organisation(
            session,
            name=f"{kind.value} {uuid.uuid4().hex[:8]}",
            kind=kind,
            facility_address=facility,
        )
    return Member(created.organisation.id, created.credential)


def wait_until_indexed(sessions: sessionmaker[Session], block_number: int) -> None:
    """Wait until the index reaches `block_number`."""

    def reached() -> bool:
        with sessions() as session:
            checkpoint = load_checkpoint(session)
            return checkpoint is not None and checkpoint.block_number >= block_number

    wait_for(reached, f"the index to reach block {block_number}")


# Anvil development account 9 acts as credit officer and regulator in the session chain's
# tests, because the bridge's worker signs with the deployment's officer and regulator.
SHARED_ACTOR_INDEX = 9


def shared_chain_actor(w3: Web3, deployment: Deployment, operator: str) -> ChainActor:
    """Grant the roles the audit and regulator tests need on the session chain, and return an
    actor that uses them. `operator` must already hold the facility's operator role."""
    actor = w3.eth.accounts[SHARED_ACTOR_INDEX]
    admin = deployment.accounts["admin"]
    granter = ChainActor(w3, deployment, {"admin": admin})
    grants = [
        (granter.facility, "CREDIT_OFFICER_ROLE", actor),
        (granter.rules, "REGULATOR_ROLE", actor),
        (granter.rules, "REGISTRAR_ROLE", operator),
    ]
    for contract, role_name, account in grants:
        role = getattr(contract.functions, role_name)().call()
        granter.transact(contract.functions.grantRole(role, account), "admin")
    return ChainActor(
        w3, deployment, {"operator": operator, "officer": actor, "regulator": actor, "admin": admin}
    )


def random_address() -> str:
    return Web3.to_checksum_address("0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8])
