"""Writes of the event index: events, indexed lines and the checkpoint, always in one transaction.

Every write first checks that the checkpoint is still where the indexer
read it. A second indexer on the same database, or a rewind in between,
makes the write fail with CheckpointMovedError instead of storing a range twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from sqlalchemy import Table, delete, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from ledger_bridge.chain.contracts import CREDIT_FACILITY
from ledger_bridge.indexer.decoding import DecodedEvent
from ledger_bridge.indexer.lines import LINE_RECORD_FIELDS, LineRecord, apply_line_event, cst_day
from ledger_bridge.storage.db import begin_write
from ledger_bridge.storage.models import ChainEvent, IndexedBlock, IndexedLine, IndexerCheckpoint

# One indexer follows all deployed contracts, so one checkpoint row serves them all.
CHECKPOINT_NAME = "events"

# Values in one IN list. Line keys take two bound parameters each, so a chunk stays below
# SQLite's default limit of 999 bound parameters before version 3.32 (32,766 since).
IN_LIST_CHUNK = 400

LineKey = tuple[str, int]
T = TypeVar("T")

# Inserts into the tables rather than the mapped classes run as plain executemany calls,
# without the ORM's bookkeeping per row.
_EVENTS = cast(Table, ChainEvent.__table__)
_BLOCK_HASHES = cast(Table, IndexedBlock.__table__)


class CheckpointMovedError(RuntimeError):
    """The checkpoint changed since the indexer read it, so the pass starts again."""

    def __init__(self, expected: int | None, found: int | None) -> None:
        super().__init__(
            f"The index checkpoint moved from block {expected} to {found} during the pass, "
            "because another indexer shares the database or the index was reset. "
            "The pass starts again from the new checkpoint."
        )


@dataclass(frozen=True, slots=True)
class ChainIdentity:
    """The chain an index belongs to."""

    chain_id: int
    genesis_hash: str


@dataclass(frozen=True, slots=True)
class BlockMark:
    """A block number and its hash."""

    number: int
    block_hash: str | None


@dataclass(frozen=True, slots=True)
class Batch:
    """The result of reading one block range, ready to be stored."""

    events: Sequence[DecodedEvent]
    # The last block read, which becomes the checkpoint.
    tip: BlockMark
    # The last block with enough confirmations, at most tip.number.
    confirmed_through: int
    # Hashes of blocks read in this range, kept to find the fork point of a reorganisation.
    block_hashes: Mapping[int, str]


def load_checkpoint(session: Session) -> IndexerCheckpoint | None:
    """Return the indexer's checkpoint, or None before its first batch."""
    return session.get(IndexerCheckpoint, CHECKPOINT_NAME)


def store_batch(
    session: Session,
    batch: Batch,
    *,
    expected_tip: BlockMark | None,
    identity: ChainIdentity,
    keep_hashes_from: int,
) -> int:
    """Store a batch, mark confirmed events, move the checkpoint to its tip and commit.

    An event already stored under its transaction hash and log index is
    skipped, so a range read twice stores each event once. Block hashes
    below `keep_hashes_from` are deleted. Returns how many events were new.
    """
    begin_write(session)
    checkpoint = _locked_checkpoint(session, expected_tip)
    previous_confirmed = _confirmed_mark(checkpoint)
    new_events = _unstored(session, batch.events)
    if new_events:
        # One executemany for the whole range: ORM objects cost more than the rest of a pass.
        session.execute(
            insert(_EVENTS), [_row(event, batch.confirmed_through) for event in new_events]
        )
    _apply_to_lines(session, new_events)
    _mark_confirmed(session, previous_confirmed, batch.confirmed_through)
    _record_hashes(session, batch.block_hashes, keep_hashes_from)
    checkpoint = checkpoint or _new_checkpoint(session, identity)
    checkpoint.block_number = batch.tip.number
    checkpoint.block_hash = batch.tip.block_hash
    checkpoint.confirmed_block_number = (
        batch.confirmed_through
        if previous_confirmed is None
        else max(previous_confirmed, batch.confirmed_through)
    )
    session.commit()
    return len(new_events)


def rewind(session: Session, fork: BlockMark, *, expected_tip: BlockMark) -> int:
    """Delete everything indexed after `fork`, rebuild the lines it touched, move the
    checkpoint back to `fork` and commit. Returns how many events were deleted.
    """
    begin_write(session)
    checkpoint = _locked_checkpoint(session, expected_tip)
    assert checkpoint is not None  # _locked_checkpoint checked it against expected_tip
    touched = _lines_with_events_after(session, fork.number)
    result = session.execute(delete(ChainEvent).where(ChainEvent.block_number > fork.number))
    session.execute(delete(IndexedBlock).where(IndexedBlock.block_number > fork.number))
    _rebuild_lines(session, touched)
    checkpoint.block_number = fork.number
    checkpoint.block_hash = fork.block_hash
    confirmed = _confirmed_mark(checkpoint)
    if confirmed is not None and confirmed > fork.number:
        checkpoint.confirmed_block_number = fork.number
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def reset_index(session: Session) -> int:
    """Delete every indexed event, line, block hash and the checkpoint, and commit.

    Returns how many events were deleted. The indexer reads them again from
    the deployment block on its next pass.
    """
    begin_write(session)
    result = session.execute(delete(ChainEvent))
    session.execute(delete(IndexedLine))
    session.execute(delete(IndexedBlock))
    session.execute(delete(IndexerCheckpoint))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def recorded_blocks(session: Session, below: int, down_to: int) -> list[BlockMark]:
    """Return the recorded blocks in [down_to, below), newest first."""
    query = (
        select(IndexedBlock.block_number, IndexedBlock.block_hash)
        .where(IndexedBlock.block_number < below, IndexedBlock.block_number >= down_to)
        .order_by(IndexedBlock.block_number.desc())
    )
    return [BlockMark(number, block_hash) for number, block_hash in session.execute(query)]


def line_record(row: IndexedLine) -> LineRecord:
    """Return the state stored in an indexed line row."""
    return LineRecord(**{name: getattr(row, name) for name in LINE_RECORD_FIELDS})


def _locked_checkpoint(
    session: Session, expected_tip: BlockMark | None
) -> IndexerCheckpoint | None:
    query = select(IndexerCheckpoint).where(IndexerCheckpoint.name == CHECKPOINT_NAME)
    checkpoint = session.scalars(query.with_for_update()).one_or_none()
    found = (
        None if checkpoint is None else BlockMark(checkpoint.block_number, checkpoint.block_hash)
    )
    if found != expected_tip:
        raise CheckpointMovedError(
            None if expected_tip is None else expected_tip.number,
            None if found is None else found.number,
        )
    return checkpoint


def _confirmed_mark(checkpoint: IndexerCheckpoint | None) -> int | None:
    if checkpoint is None:
        return None
    if checkpoint.confirmed_block_number is None:
        return checkpoint.block_number
    return checkpoint.confirmed_block_number


def _new_checkpoint(session: Session, identity: ChainIdentity) -> IndexerCheckpoint:
    checkpoint = IndexerCheckpoint(
        name=CHECKPOINT_NAME,
        block_number=0,
        chain_id=identity.chain_id,
        genesis_hash=identity.genesis_hash,
    )
    session.add(checkpoint)
    return checkpoint


def _unstored(session: Session, events: Sequence[DecodedEvent]) -> list[DecodedEvent]:
    """Return the events not stored yet.

    A stored copy of a log can only be in the log's own block. A log moves to
    another block only through a reorganisation, and the indexer deletes what
    it stored after the fork point before it reads those blocks again. So one
    range scan of the block number index finds every copy. A lookup by key
    would need two bound parameters per event.
    """
    if not events:
        return []
    query = select(ChainEvent.transaction_hash, ChainEvent.log_index).where(
        ChainEvent.block_number.between(
            min(event.block_number for event in events),
            max(event.block_number for event in events),
        )
    )
    known = {(tx_hash, log_index) for tx_hash, log_index in session.execute(query)}
    if not known:
        return list(events)
    return [event for event in events if (event.transaction_hash, event.log_index) not in known]


def _mark_confirmed(session: Session, previous: int | None, through: int) -> None:
    query = update(ChainEvent).where(
        ChainEvent.confirmed.is_(False), ChainEvent.block_number <= through
    )
    if previous is not None:
        # Events at or below the previous mark are confirmed already. The bound keeps the
        # update on the block number index instead of the whole table.
        query = query.where(ChainEvent.block_number > previous)
    session.execute(query.values(confirmed=True).execution_options(synchronize_session=False))


def _record_hashes(session: Session, hashes: Mapping[int, str], keep_from: int) -> None:
    if hashes:
        for numbers in _chunks(sorted(hashes)):
            session.execute(delete(IndexedBlock).where(IndexedBlock.block_number.in_(numbers)))
        session.execute(
            insert(_BLOCK_HASHES),
            [
                {"block_number": number, "block_hash": block_hash}
                for number, block_hash in hashes.items()
            ],
        )
    # The newest hash below the window stays, as the fork point search's last resort.
    newest_below = (
        select(func.max(IndexedBlock.block_number))
        .where(IndexedBlock.block_number < keep_from)
        .scalar_subquery()
    )
    session.execute(delete(IndexedBlock).where(IndexedBlock.block_number < newest_below))


def _apply_to_lines(session: Session, events: Iterable[DecodedEvent]) -> None:
    line_events = [event for event in events if _is_line_event(event)]
    if not line_events:
        return
    keys = sorted({(event.contract_address, event.line_id) for event in line_events})
    rows = {
        (row.facility_address, row.line_id): row
        for chunk in _chunks(keys)
        for row in session.scalars(
            select(IndexedLine).where(
                tuple_(IndexedLine.facility_address, IndexedLine.line_id).in_(chunk)
            )
        )
    }
    records = {key: line_record(row) for key, row in rows.items()}
    for event in sorted(line_events, key=lambda item: (item.block_number, item.log_index)):
        key = (event.contract_address, event.line_id)
        record = records.setdefault(key, LineRecord(facility_address=key[0], line_id=key[1]))
        apply_line_event(
            record,
            event.event,
            event.args,
            day=cst_day(event.block_timestamp),
            block_number=event.block_number,
            log_index=event.log_index,
        )
    for key, record in records.items():
        row = rows.get(key)
        if row is None:
            session.add(IndexedLine(**_record_values(record)))
        else:
            for name, value in _record_values(record).items():
                setattr(row, name, value)


def _is_line_event(event: DecodedEvent) -> bool:
    return event.contract_name == CREDIT_FACILITY and event.line_id is not None


def _lines_with_events_after(session: Session, block_number: int) -> set[LineKey]:
    query = (
        select(ChainEvent.contract_address, ChainEvent.line_id)
        .where(
            ChainEvent.block_number > block_number,
            ChainEvent.contract_name == CREDIT_FACILITY,
            ChainEvent.line_id.is_not(None),
        )
        .distinct()
    )
    return {(facility, line_id) for facility, line_id in session.execute(query)}


def _rebuild_lines(session: Session, keys: set[LineKey]) -> None:
    """Fold each line's remaining events into a fresh row, or delete the row if none remain."""
    for facility, line_id in sorted(keys):
        session.execute(
            delete(IndexedLine).where(
                IndexedLine.facility_address == facility, IndexedLine.line_id == line_id
            )
        )
        record = LineRecord(facility_address=facility, line_id=line_id)
        query = (
            select(ChainEvent)
            .where(ChainEvent.contract_address == facility, ChainEvent.line_id == line_id)
            .order_by(ChainEvent.block_number, ChainEvent.log_index)
        )
        for row in session.scalars(query):
            apply_line_event(
                record,
                row.event,
                row.args,
                day=cst_day(row.block_timestamp),
                block_number=row.block_number,
                log_index=row.log_index,
            )
        if record.event_count:
            session.add(IndexedLine(**_record_values(record)))


def _record_values(record: LineRecord) -> dict[str, object]:
    return {name: getattr(record, name) for name in LINE_RECORD_FIELDS}


def _row(event: DecodedEvent, confirmed_through: int) -> dict[str, object]:
    return {
        "block_number": event.block_number,
        "block_hash": event.block_hash,
        "block_timestamp": event.block_timestamp,
        "transaction_hash": event.transaction_hash,
        "transaction_index": event.transaction_index,
        "log_index": event.log_index,
        "contract_address": event.contract_address,
        "contract_name": event.contract_name,
        "event": event.event,
        "line_id": event.line_id,
        "args": event.args,
        "confirmed": event.block_number <= confirmed_through,
    }


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    """Split the values of an IN list, so a long range stays below SQLite's limit of bound
    parameters per statement."""
    for start in range(0, len(items), IN_LIST_CHUNK):
        yield items[start : start + IN_LIST_CHUNK]
