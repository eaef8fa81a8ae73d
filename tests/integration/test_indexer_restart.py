"""Crashes and restarts: a killed indexer process, a reset node and a node of another chain.

The crash test runs `python -m ledger_bridge.indexer` as a subprocess and
kills it with SIGKILL again and again during a backfill, at random moments.
After a final run the index must hold exactly the logs that eth_getLogs
returns, each once, and every indexed line must match its events.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hexbytes import HexBytes
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.deployment import Deployment, FacilityDeployment
from ledger_bridge.indexer.errors import ChainIdentityError, NodeBehindIndexError
from ledger_bridge.indexer.line_check import fold_line
from ledger_bridge.indexer.store import line_record, load_checkpoint
from ledger_bridge.storage.models import ChainEvent, IndexedLine

from .conftest import REPOSITORY
from .indexer_support import (
    AnvilProcess,
    PrivateChain,
    catch_up,
    chain_log_keys,
    database_params,
    fresh_database,
    new_indexer,
    session_factory_for,
    stored_log_keys,
)
from .support import wait_for

KILLS = 8
LINES = 12
RUN_SECONDS = 120
# Any fixed genesis timestamp works, because the same one gives the same genesis block.
GENESIS_TIMESTAMP = 1_800_000_000
DUMMY_ADDRESS = "0x00000000000000000000000000000000000000A1"


@pytest.fixture(params=database_params())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_database(request.param, tmp_path)


def indexer_command(*options: str) -> list[str]:
    return [sys.executable, "-m", "ledger_bridge.indexer", *options]


def indexer_environment(chain_url: str, deployment_file: Path, database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY / "backend"),
        "LEDGER_ENVIRONMENT": "development",
        "LEDGER_RPC_URL": chain_url,
        "LEDGER_DEPLOYMENT_FILE": str(deployment_file),
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_INDEXER_BLOCK_RANGE": "2",
        "LEDGER_INDEXER_POLL_INTERVAL_MS": "10",
        "LEDGER_INDEXER_TOKEN_TRANSFERS": "true",
        "LEDGER_CONFIRMATIONS": "1",
        "LEDGER_LOG_LEVEL": "WARNING",
    }


def checkpoint_block(sessions: sessionmaker[Session]) -> int | None:
    with sessions() as session:
        checkpoint = load_checkpoint(session)
        return None if checkpoint is None else checkpoint.block_number


def busy_chain(directory: Path) -> PrivateChain:
    """A private chain with many blocks of events: lines opened, drawn, paid out and repaid."""
    chain = PrivateChain.start(directory)
    payee = chain.register_payee(101)
    for index in range(LINES):
        line_id = chain.open_line(5_000_000 + index)
        drawdown_id = chain.draw_locked(line_id, 100_000)
        chain.pay_from_locked(drawdown_id, payee, 40_000)
        chain.return_locked(drawdown_id, 60_000)
        chain.draw_entrusted(line_id, 25_000, payee)
    return chain


def test_killed_indexer_leaves_nothing_missing_or_doubled(
    tmp_path: Path, database_url: str
) -> None:
    chain = busy_chain(tmp_path)
    try:
        head = chain.w3.eth.block_number
        environment = indexer_environment(chain.url, chain.deployment_file, database_url)
        sessions = session_factory_for(database_url)
        rng = random.Random(20261205)
        kills = 0
        deadline = time.monotonic() + RUN_SECONDS
        while kills < KILLS and (checkpoint_block(sessions) or 0) < head:
            assert time.monotonic() < deadline, "the indexer made no progress between kills"
            before = checkpoint_block(sessions)
            process = subprocess.Popen(indexer_command(), env=environment)
            try:
                # Wait for the first commit of this run, then kill at a random moment after it.
                while checkpoint_block(sessions) == before and process.poll() is None:
                    time.sleep(0.005)
                time.sleep(rng.uniform(0, 0.15))
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
            kills += 1

        assert kills >= 3, f"the backfill ended after {kills} kills"
        finished = subprocess.run(indexer_command("--once"), env=environment, timeout=RUN_SECONDS)
        assert finished.returncode == 0

        assert stored_log_keys(sessions) == chain_log_keys(chain.w3, chain.deployment, head)
        with sessions() as session:
            rows = session.scalars(select(IndexedLine)).all()
            assert len(rows) == LINES
            for row in rows:
                events = session.scalars(
                    select(ChainEvent)
                    .where(
                        ChainEvent.contract_address == row.facility_address,
                        ChainEvent.line_id == row.line_id,
                    )
                    .order_by(ChainEvent.block_number, ChainEvent.log_index)
                ).all()
                assert line_record(row) == fold_line(row.facility_address, row.line_id, events)
                assert row.principal == 125_000 - 60_000
                assert row.locked == 0
            duplicates = session.execute(
                select(ChainEvent.transaction_hash, ChainEvent.log_index)
                .group_by(ChainEvent.transaction_hash, ChainEvent.log_index)
                .having(func.count() > 1)
            ).all()
        assert duplicates == []
    finally:
        chain.stop()


def bare_deployment(url: str, first_block: int = 1) -> Deployment:
    """A deployment without contracts, for tests that only need the indexer to follow blocks."""
    w3 = create_web3(url, timeout_seconds=10)
    return Deployment(
        chain_id=w3.eth.chain_id,
        genesis_hash=HexBytes(w3.eth.get_block(0)["hash"]).to_0x_hex(),
        deployment_block=first_block,
        settlement_token=DUMMY_ADDRESS,  # type: ignore[arg-type]
        fund_flow_rules=DUMMY_ADDRESS,  # type: ignore[arg-type]
        facilities=(FacilityDeployment("empty", DUMMY_ADDRESS, first_block),),  # type: ignore[arg-type]
        accounts={},
    )


def write_deployment_file(path: Path, deployment: Deployment) -> Path:
    document = {
        "chain_id": deployment.chain_id,
        "genesis_hash": deployment.genesis_hash,
        "deployment_block": deployment.deployment_block,
        "contracts": {"SettlementToken": DUMMY_ADDRESS, "FundFlowRules": DUMMY_ADDRESS},
        "facilities": [{"name": "empty", "address": DUMMY_ADDRESS, "deployment_block": 1}],
        "accounts": {},
    }
    path.write_text(json.dumps(document))
    return path


def mine(url: str, blocks: int) -> None:
    create_web3(url, timeout_seconds=10).provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]


@pytest.mark.parametrize("blocks_after_restart", [0, 30], ids=["head-below", "head-above"])
def test_node_restarted_with_new_genesis_halts(
    tmp_path: Path, database_url: str, blocks_after_restart: int
) -> None:
    node = AnvilProcess()
    mine(node.url, 10)
    deployment = bare_deployment(node.url)
    sessions = session_factory_for(database_url)
    indexer = new_indexer(create_web3(node.url, 10), deployment, sessions)
    catch_up(indexer)
    node.stop()
    # Anvil stamps its genesis block with the start time, so a new start has a new genesis.
    time.sleep(1.1)
    node = AnvilProcess(port=node.port)
    try:
        mine(node.url, blocks_after_restart)

        with pytest.raises(ChainIdentityError, match="genesis block hash"):
            indexer.run_once()
        restarted = new_indexer(create_web3(node.url, 10), deployment, sessions)
        restarted.start()
        wait_for(lambda: restarted.halted, "the restarted indexer to halt")
        restarted.stop()
    finally:
        node.stop()
    assert isinstance(restarted.halted, ChainIdentityError)
    with pytest.raises(ChainIdentityError):
        restarted.check_running()
    assert checkpoint_block(sessions) == 10


def test_node_restarted_with_same_genesis_halts_then_resets(
    tmp_path: Path, database_url: str
) -> None:
    node = AnvilProcess(timestamp=GENESIS_TIMESTAMP)
    mine(node.url, 10)
    deployment = bare_deployment(node.url)
    deployment_file = write_deployment_file(tmp_path / "deployment.json", deployment)
    sessions = session_factory_for(database_url)
    catch_up(new_indexer(create_web3(node.url, 10), deployment, sessions))
    node.stop()
    node = AnvilProcess(port=node.port, timestamp=GENESIS_TIMESTAMP)
    try:
        mine(node.url, 3)
        assert bare_deployment(node.url).genesis_hash == deployment.genesis_hash

        with pytest.raises(NodeBehindIndexError, match="below block 10"):
            new_indexer(create_web3(node.url, 10), deployment, sessions).run_once()
        environment = indexer_environment(node.url, deployment_file, database_url)
        halted = subprocess.run(
            indexer_command("--once"), env=environment, capture_output=True, text=True, timeout=60
        )
        reset = subprocess.run(
            indexer_command("--once", "--reset"), env=environment, timeout=60, check=False
        )
    finally:
        node.stop()
    assert halted.returncode == 1
    assert "below block 10" in halted.stderr
    assert "--reset" in halted.stderr
    assert reset.returncode == 0
    assert checkpoint_block(sessions) == 3


def test_node_of_another_chain_halts(tmp_path: Path, database_url: str) -> None:
    node = AnvilProcess()
    try:
        mine(node.url, 2)
        deployment = bare_deployment(node.url)
        other_chain = Deployment(
            chain_id=deployment.chain_id + 1,
            genesis_hash=deployment.genesis_hash,
            deployment_block=1,
            settlement_token=deployment.settlement_token,
            fund_flow_rules=deployment.fund_flow_rules,
            facilities=deployment.facilities,
            accounts={},
        )
        indexer = new_indexer(
            create_web3(node.url, 10), other_chain, session_factory_for(database_url)
        )

        with pytest.raises(ChainIdentityError, match="chain id"):
            indexer.run_once()
    finally:
        node.stop()


def test_two_indexers_share_one_database(tmp_path: Path, database_url: str) -> None:
    chain = PrivateChain.start(tmp_path)
    try:
        payee = chain.register_payee(101)
        for _ in range(4):
            line_id = chain.open_line()
            chain.pay_from_locked(chain.draw_locked(line_id, 9_000), payee, 4_000)
        head = chain.w3.eth.block_number
        sessions = session_factory_for(database_url)
        indexers = [
            new_indexer(create_web3(chain.url, 10), chain.deployment, sessions, block_range=2)
            for _ in range(2)
        ]
        for indexer in indexers:
            indexer.start()
        try:
            wait_for(lambda: (checkpoint_block(sessions) or 0) >= head, "the index to reach head")
        finally:
            for indexer in indexers:
                indexer.stop()

        assert stored_log_keys(sessions) == chain_log_keys(chain.w3, chain.deployment, head)
        assert all(indexer.halted is None for indexer in indexers)
    finally:
        chain.stop()
