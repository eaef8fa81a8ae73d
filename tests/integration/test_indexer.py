"""The event indexer against Anvil: checkpoints, exactly-once storage and reorganisations.

Each test runs its own `EventIndexer` by hand on a database of its own. A
reorganisation is made with Anvil's evm_snapshot and evm_revert: blocks
after the snapshot are dropped and new blocks with the same numbers but
other hashes replace them.
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
from ledger_bridge.indexer.decoding import EventDecoder
from ledger_bridge.indexer.service import EventIndexer
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent

from .conftest import OpenLine

LINE_EVENTS = ["LineApplied", "LineApproved", "LineOpened"]


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    upgrade_to_head(url)
    return create_session_factory(create_db_engine(url))


def new_indexer(
    w3: Web3, deployment: Deployment, sessions: sessionmaker[Session], block_range: int = 7
) -> EventIndexer:
    return EventIndexer(
        w3=w3,
        session_factory=sessions,
        decoder=EventDecoder(w3, deployment, token_transfers=True),
        first_block=deployment.first_block,
        block_range=block_range,
        lag_blocks=0,
        max_reorg_depth=64,
        poll_interval_seconds=0.05,
    )


def catch_up(indexer: EventIndexer) -> None:
    """Run passes until the indexer reports that it reached the head."""
    for _ in range(10_000):
        if indexer.run_once() == 0 and indexer.run_once() == 0:
            return
    raise AssertionError("the indexer did not catch up within 10,000 passes")


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
        checkpoint.block_number = deployment.first_block - 1
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


def test_indexer_rewinds_after_reorganisation(
    w3: Web3,
    deployment: Deployment,
    facility: Contract,
    sessions: sessionmaker[Session],
    open_line: OpenLine,
) -> None:
    indexer = new_indexer(w3, deployment, sessions)
    catch_up(indexer)
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    replaced_line = open_line(1_000_000)
    catch_up(indexer)
    replaced = stored_line_events(sessions, replaced_line)
    assert [name for name, _ in replaced] == LINE_EVENTS

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    line_id = open_line(2_000_000)
    catch_up(indexer)

    assert line_id == replaced_line
    stored = stored_line_events(sessions, line_id)
    assert stored == chain_line_events(facility, line_id)
    assert not {tx_hash for _, tx_hash in replaced} & {tx_hash for _, tx_hash in stored}
    with sessions() as session:
        applied = session.scalars(
            select(ChainEvent).where(
                ChainEvent.line_id == line_id, ChainEvent.event == "LineApplied"
            )
        ).one()
    assert applied.args["limit"] == "2000000"
