"""Reorganisations and confirmations, on private Anvil chains and on SQLite and PostgreSQL.

A reorganisation is made in two ways. evm_snapshot and evm_revert drop the
blocks after the snapshot, so the chain is shorter until new blocks with the
same numbers and other hashes replace them. anvil_reorg replaces the last
blocks with new empty ones at once, so the head keeps its number.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.indexer.errors import RangeChangedError, ReorgTooDeepError
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.models import ChainEvent, IndexedLine

from .indexer_support import (
    PrivateChain,
    catch_up,
    chain_log_keys,
    database_params,
    fresh_database,
    new_indexer,
    session_factory_for,
    stored_log_keys,
)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateChain]:
    private = PrivateChain.start(tmp_path_factory.mktemp("reorg-chain"))
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture(params=database_params())
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    for url in fresh_database(request.param, tmp_path):
        factory = session_factory_for(url)
        yield factory
        factory.kw["bind"].dispose()


def indexed_line(sessions: sessionmaker[Session], chain: PrivateChain, line_id: int) -> IndexedLine:
    with sessions() as session:
        line = session.get(IndexedLine, (chain.facility.address, line_id))
    assert line is not None, f"line {line_id} is not in indexed_lines"
    return line


def unconfirmed_blocks(sessions: sessionmaker[Session]) -> set[int]:
    with sessions() as session:
        query = select(ChainEvent.block_number).where(ChainEvent.confirmed.is_(False))
        return set(session.scalars(query))


def test_revert_to_snapshot_rewinds_unconfirmed_events(
    chain: PrivateChain, sessions: sessionmaker[Session]
) -> None:
    indexer = new_indexer(chain.w3, chain.deployment, sessions, confirmations=12)
    catch_up(indexer)
    snapshot_head = chain.w3.eth.block_number
    snapshot = chain.snapshot()
    replaced_line = chain.open_line(1_000_000)
    chain.draw_locked(replaced_line, 50_000)
    catch_up(indexer)
    replaced = [key for key in stored_log_keys(sessions) if key[0] > snapshot_head]
    assert len(replaced) >= 4

    chain.revert(snapshot)
    catch_up(indexer)  # the head is now below the checkpoint, above the confirmed block

    assert stored_log_keys(sessions) == chain_log_keys(
        chain.w3, chain.deployment, chain.w3.eth.block_number
    )
    line_id = chain.open_line(2_000_000)
    chain.mine(2)
    catch_up(indexer)

    assert line_id == replaced_line
    stored = stored_log_keys(sessions)
    assert stored == chain_log_keys(chain.w3, chain.deployment, chain.w3.eth.block_number)
    assert not {key[2] for key in replaced} & {key[2] for key in stored}
    line = indexed_line(sessions, chain, line_id)
    assert line.credit_limit == 2_000_000
    assert line.principal == 0
    assert line.locked == 0
    assert line.event_count == 3


def test_anvil_reorg_replaces_blocks_of_same_height(
    chain: PrivateChain, sessions: sessionmaker[Session]
) -> None:
    line_id = chain.open_line(1_000_000)
    drawdown_id = chain.draw_locked(line_id, 30_000)
    chain.return_locked(drawdown_id, 10_000)
    indexer = new_indexer(chain.w3, chain.deployment, sessions, confirmations=5)
    catch_up(indexer)
    head = chain.w3.eth.block_number
    old_hashes = {number: chain.block_hash(number) for number in (head - 1, head)}

    chain.reorg(2)  # the drawdown and the return are gone, the head keeps its number
    catch_up(indexer)

    assert chain.w3.eth.block_number == head
    assert all(chain.block_hash(number) != old_hashes[number] for number in old_hashes)
    assert stored_log_keys(sessions) == chain_log_keys(chain.w3, chain.deployment, head)
    line = indexed_line(sessions, chain, line_id)
    assert line.principal == 0
    assert line.locked == 0
    with sessions() as session:
        checkpoint = load_checkpoint(session)
    assert checkpoint is not None
    assert checkpoint.block_number == head
    assert checkpoint.block_hash == chain.block_hash(head)


def test_reorg_after_checkpoint_check_is_caught(
    chain: PrivateChain, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    line_id = chain.open_line(1_000_000)
    indexer = new_indexer(chain.w3, chain.deployment, sessions, confirmations=5)
    catch_up(indexer)
    chain.draw_locked(line_id, 30_000)
    catch_up(indexer)  # the checkpoint is the drawdown's block
    chain.mine(1)
    read_range = indexer._read_range

    # The hook only times the fault: the reorganisation lands after the pass has found its
    # checkpoint on the chain and before it reads the next range, which nothing else can force.
    def reorganise_then_read(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(indexer, "_read_range", read_range)
        chain.reorg(2)  # replaces the drawdown's block and the one after it
        return read_range(*args, **kwargs)

    monkeypatch.setattr(indexer, "_read_range", reorganise_then_read)
    with pytest.raises(RangeChangedError):
        indexer.run_once()
    catch_up(indexer)

    head = chain.w3.eth.block_number
    assert stored_log_keys(sessions) == chain_log_keys(chain.w3, chain.deployment, head)
    assert indexed_line(sessions, chain, line_id).principal == 0


def test_reorg_of_confirmed_blocks_rewinds_with_error(
    chain: PrivateChain, sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    line_id = chain.open_line(1_000_000)
    chain.draw_locked(line_id, 20_000)
    indexer = new_indexer(chain.w3, chain.deployment, sessions, confirmations=1)
    catch_up(indexer)
    assert unconfirmed_blocks(sessions) == set()

    chain.reorg(1)
    with caplog.at_level(logging.ERROR, logger="ledger_bridge.indexer.service"):
        catch_up(indexer)

    assert any("had 1 confirmations" in record.message for record in caplog.records)
    head = chain.w3.eth.block_number
    assert stored_log_keys(sessions) == chain_log_keys(chain.w3, chain.deployment, head)
    assert indexed_line(sessions, chain, line_id).principal == 0


def test_events_are_confirmed_after_enough_blocks(
    chain: PrivateChain, sessions: sessionmaker[Session]
) -> None:
    indexer = new_indexer(chain.w3, chain.deployment, sessions, confirmations=3)
    catch_up(indexer)
    line_id = chain.open_line(1_000_000)  # three blocks, one event each
    catch_up(indexer)
    head = chain.w3.eth.block_number

    # A block has one confirmation when it is the head, so head - 2 has three.
    assert unconfirmed_blocks(sessions) == {head - 1, head}
    chain.mine(1)
    catch_up(indexer)
    assert unconfirmed_blocks(sessions) == {head}
    chain.mine(1)
    catch_up(indexer)

    assert unconfirmed_blocks(sessions) == set()
    with sessions() as session:
        checkpoint = load_checkpoint(session)
        applied = session.scalars(
            select(ChainEvent).where(
                ChainEvent.line_id == line_id, ChainEvent.event == "LineApplied"
            )
        ).one()
    assert checkpoint is not None
    assert checkpoint.confirmed_block_number == head
    assert applied.confirmed is True


def test_indexer_reads_several_logs_per_block(
    chain: PrivateChain, sessions: sessionmaker[Session]
) -> None:
    # A drawdown into a locked balance emits LineDrawn and FundsLocked in one block.
    line_id = chain.open_line(1_000_000)
    chain.draw_locked(line_id, 40_000)
    indexer = new_indexer(chain.w3, chain.deployment, sessions, block_range=3)

    catch_up(indexer)

    head = chain.w3.eth.block_number
    stored = stored_log_keys(sessions)
    assert stored == chain_log_keys(chain.w3, chain.deployment, head)
    assert len({key[0] for key in stored}) < len(stored)
    line = indexed_line(sessions, chain, line_id)
    assert line.principal == 40_000
    assert line.locked == 40_000


def test_reorg_below_every_recorded_block_halts(
    chain: PrivateChain, sessions: sessionmaker[Session]
) -> None:
    chain.open_line(1_000_000)
    chain.mine(10)
    # One block per range, so every block is recorded, and only the last few are kept.
    indexer = new_indexer(chain.w3, chain.deployment, sessions, block_range=1, max_reorg_depth=4)
    catch_up(indexer)
    stored_before = stored_log_keys(sessions)

    chain.reorg(8)

    with pytest.raises(ReorgTooDeepError, match="LEDGER_INDEXER_MAX_REORG_DEPTH"):
        indexer.run_once()
    assert stored_log_keys(sessions) == stored_before
