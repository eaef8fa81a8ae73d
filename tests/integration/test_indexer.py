"""The event indexer against the session's Anvil: checkpoints and exactly-once storage.

Each test runs its own `EventIndexer` by hand on a database of its own.
Reorganisations, restarts and node limits are tested on private chains in
the test_indexer_*.py modules, so this chain is never reorganised or reset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent, IndexedLine

from .conftest import OpenLine
from .indexer_support import catch_up, new_indexer

LINE_EVENTS = ["LineApplied", "LineApproved", "LineOpened"]


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    upgrade_to_head(url)
    return create_session_factory(create_db_engine(url))


def stored_line_events(sessions: sessionmaker[Session], line_id: int) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.scalars(
            select(ChainEvent)
            .where(ChainEvent.line_id == line_id)
            .order_by(ChainEvent.block_number, ChainEvent.log_index)
        ).all()
    return [(row.event, row.transaction_hash) for row in rows]


def chain_line_events(facility: Contract, line_id: int) -> list[tuple[str, str]]:
    events = []
    for name in LINE_EVENTS:
        for log in getattr(facility.events, name)().get_logs(
            from_block=0, argument_filters={"lineId": line_id}
        ):
            position = (log["blockNumber"], log["logIndex"])
            events.append((position, name, HexBytes(log["transactionHash"]).to_0x_hex()))
    return [(name, tx_hash) for _, name, tx_hash in sorted(events)]


def test_indexer_stores_events_once(
    w3: Web3,
    deployment: Deployment,
    facility: Contract,
    sessions: sessionmaker[Session],
    open_line: OpenLine,
) -> None:
    line_id = open_line(1_000_000)
    indexer = new_indexer(w3, deployment, sessions)

    catch_up(indexer)
    first_pass = stored_line_events(sessions, line_id)
    with sessions() as session:
        checkpoint = load_checkpoint(session)
        assert checkpoint is not None
        # Move the checkpoint back to a block that is still on the chain, so every range
        # is read again without a reorganisation.
        checkpoint.block_number = deployment.first_block - 1
        checkpoint.block_hash = HexBytes(
            w3.eth.get_block(deployment.first_block - 1)["hash"]
        ).to_0x_hex()
        session.commit()
    catch_up(indexer)

    assert first_pass == chain_line_events(facility, line_id)
    assert stored_line_events(sessions, line_id) == first_pass
    with sessions() as session:
        checkpoint = load_checkpoint(session)
    assert checkpoint is not None
    assert checkpoint.block_number == w3.eth.block_number
    assert (
        checkpoint.block_hash == HexBytes(w3.eth.get_block(w3.eth.block_number)["hash"]).to_0x_hex()
    )


def test_indexer_stores_exact_arguments(
    w3: Web3, deployment: Deployment, sessions: sessionmaker[Session], open_line: OpenLine
) -> None:
    line_id = open_line(1_234_567)
    indexer = new_indexer(w3, deployment, sessions, block_range=1000)

    catch_up(indexer)

    with sessions() as session:
        applied = session.scalars(
            select(ChainEvent).where(
                ChainEvent.line_id == line_id, ChainEvent.event == "LineApplied"
            )
        ).one()
    assert applied.contract_name == "CreditFacility"
    assert applied.contract_address == deployment.facilities[0].address
    assert applied.args["lineId"] == str(line_id)
    assert applied.args["limit"] == "1234567"
    assert applied.args["applicationHash"] == "0x" + "22" * 32
    assert applied.block_timestamp.tzinfo is not None
    assert applied.confirmed is True


def test_indexer_keeps_line_state(
    w3: Web3, deployment: Deployment, sessions: sessionmaker[Session], open_line: OpenLine
) -> None:
    line_id = open_line(3_000_000)
    indexer = new_indexer(w3, deployment, sessions, block_range=1000)

    catch_up(indexer)

    with sessions() as session:
        line = session.get(IndexedLine, (deployment.facilities[0].address, line_id))
    assert line is not None
    assert line.status == "Active"
    assert line.credit_limit == 3_000_000
    assert line.principal == 0
    assert line.event_count == 3
