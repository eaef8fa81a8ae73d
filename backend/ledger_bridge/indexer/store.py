"""Writes of the event index: events and their checkpoint, always in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from ledger_bridge.indexer.decoding import DecodedEvent
from ledger_bridge.storage.db import begin_write
from ledger_bridge.storage.models import ChainEvent, IndexerCheckpoint

# One indexer follows all deployed contracts, so one checkpoint row serves them all.
CHECKPOINT_NAME = "events"


def load_checkpoint(session: Session) -> IndexerCheckpoint | None:
    """Return the indexer's checkpoint, or None before its first batch."""
    return session.get(IndexerCheckpoint, CHECKPOINT_NAME)


def store_batch(
    session: Session, events: Sequence[DecodedEvent], block_number: int, block_hash: str
) -> int:
    """Store the events of a block range and move the checkpoint to its last block; commit.

    An event already stored under its transaction hash and log index is
    skipped, so a range read twice stores each event once. Returns how many
    events were new.
    """
    begin_write(session)
    known = _stored_keys(session, events)
    new_events = [
        event for event in events if (event.transaction_hash, event.log_index) not in known
    ]
    session.add_all(_to_row(event) for event in new_events)
    _move_checkpoint(session, block_number, block_hash)
    session.commit()
    return len(new_events)


def rewind(session: Session, block_number: int, block_hash: str | None) -> int:
    """Delete the events after `block_number` and move the checkpoint back to it; commit.

    Returns how many events were deleted.
    """
    begin_write(session)
    result = session.execute(delete(ChainEvent).where(ChainEvent.block_number > block_number))
    _move_checkpoint(session, block_number, block_hash)
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def stored_blocks(session: Session, below: int, down_to: int) -> list[tuple[int, str]]:
    """Return (number, hash) of blocks with stored events in [down_to, below), newest first."""
    query = (
        select(ChainEvent.block_number, ChainEvent.block_hash)
        .where(ChainEvent.block_number < below, ChainEvent.block_number >= down_to)
        .distinct()
        .order_by(ChainEvent.block_number.desc())
    )
    return [(number, block_hash) for number, block_hash in session.execute(query)]


def _stored_keys(session: Session, events: Sequence[DecodedEvent]) -> set[tuple[str, int]]:
    if not events:
        return set()
    keys = {(event.transaction_hash, event.log_index) for event in events}
    query = select(ChainEvent.transaction_hash, ChainEvent.log_index).where(
        tuple_(ChainEvent.transaction_hash, ChainEvent.log_index).in_(keys)
    )
    return {(tx_hash, log_index) for tx_hash, log_index in session.execute(query)}


def _move_checkpoint(session: Session, block_number: int, block_hash: str | None) -> None:
    checkpoint = session.get(IndexerCheckpoint, CHECKPOINT_NAME)
    if checkpoint is None:
        checkpoint = IndexerCheckpoint(name=CHECKPOINT_NAME, block_number=block_number)
        session.add(checkpoint)
    checkpoint.block_number = block_number
    checkpoint.block_hash = block_hash


def _to_row(event: DecodedEvent) -> ChainEvent:
    return ChainEvent(
        block_number=event.block_number,
        block_hash=event.block_hash,
        block_timestamp=event.block_timestamp,
        transaction_hash=event.transaction_hash,
        transaction_index=event.transaction_index,
        log_index=event.log_index,
        contract_address=event.contract_address,
        contract_name=event.contract_name,
        event=event.event,
        line_id=event.line_id,
        args=event.args,
    )
