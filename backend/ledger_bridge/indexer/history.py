"""Reads of the event index for the history endpoints, with cursor pagination in chain order.

A query has a scope (a line, several lines, a contract, or one kind of
event) and a filter (event names, block range, time range, confirmed only).
Pages are ordered by block number and log index, which are unique on a chain,
and a cursor names the last position of a page. New events only ever come
after the head, so a cursor stays valid while the index grows.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, tuple_
from sqlalchemy.orm import Session

from ledger_bridge.core.errors import InvalidValueError
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.models import ChainEvent, IndexedLine

_CURSOR_TEXT = re.compile(r"(0|[1-9][0-9]{0,18}):(0|[1-9][0-9]{0,9})")
# A cursor decodes to at most 30 characters, so longer input is rejected before decoding.
_MAX_CURSOR_LENGTH = 64
# Rows read per query while an export streams.
EXPORT_CHUNK_SIZE = 1000


class InvalidCursorError(InvalidValueError):
    """A pagination cursor was not produced by this API."""

    title = "Invalid cursor"
    slug = "invalid-cursor"
    expected = "the next_cursor value of the previous page unchanged, or no cursor for page one"


@dataclass(frozen=True, slots=True)
class ChainPosition:
    """A log's position in chain order."""

    block_number: int
    log_index: int


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Conditions on events beyond their scope. Block bounds are inclusive, `to_time` exclusive."""

    event_names: Sequence[str] = ()
    from_block: int | None = None
    to_block: int | None = None
    from_time: datetime | None = None
    to_time: datetime | None = None
    confirmed_only: bool = False


@dataclass(frozen=True, slots=True)
class IndexProgress:
    """How far the index reaches: the last block read and the last block confirmed."""

    indexed_through_block: int | None
    confirmed_through_block: int | None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of events in chain order."""

    events: Sequence[ChainEvent]
    next_cursor: str | None
    # The last block whose events are all in the index, or None before the first batch.
    indexed_through_block: int | None
    confirmed_through_block: int | None = None


def encode_cursor(position: ChainPosition) -> str:
    """Return an opaque cursor that resumes after `position`."""
    text = f"{position.block_number}:{position.log_index}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> ChainPosition:
    """Return the position a cursor resumes after, or raise InvalidCursorError."""
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidCursorError(cursor, f"is longer than {_MAX_CURSOR_LENGTH} characters")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidCursorError(cursor, "is not base64url text") from error
    match = _CURSOR_TEXT.fullmatch(text)
    if match is None:
        raise InvalidCursorError(cursor, "does not name a block and log position")
    return ChainPosition(block_number=int(match[1]), log_index=int(match[2]))


def index_progress(session: Session) -> IndexProgress:
    """Return the index's checkpoint marks."""
    checkpoint = load_checkpoint(session)
    if checkpoint is None:
        return IndexProgress(None, None)
    confirmed = checkpoint.confirmed_block_number
    return IndexProgress(
        indexed_through_block=checkpoint.block_number,
        confirmed_through_block=checkpoint.block_number if confirmed is None else confirmed,
    )


def line_scope(facility_address: str, line_id: int) -> ColumnElement[bool]:
    """Select the events of one line."""
    return and_(ChainEvent.contract_address == facility_address, ChainEvent.line_id == line_id)


def lines_scope(lines: Sequence[tuple[str, int]]) -> ColumnElement[bool]:
    """Select the events of several lines, given as (facility address, line id).

    One condition per line, joined by OR, because SQLite uses the line index
    for each of those but for no part of a row-value IN list.
    """
    if not lines:
        return false()
    return or_(*(line_scope(facility, line_id) for facility, line_id in lines))


def contract_scope(contract_address: str) -> ColumnElement[bool]:
    """Select every event of one contract."""
    return ChainEvent.contract_address == contract_address


def borrower_lines(
    session: Session, borrower: str, facility_address: str | None = None
) -> list[tuple[str, int]]:
    """Return (facility, line id) of the borrower's lines, from their LineApplied events."""
    query = select(IndexedLine.facility_address, IndexedLine.line_id).where(
        IndexedLine.borrower == borrower
    )
    if facility_address is not None:
        query = query.where(IndexedLine.facility_address == facility_address)
    query = query.order_by(IndexedLine.facility_address, IndexedLine.line_id)
    return [(facility, line_id) for facility, line_id in session.execute(query)]


def events_page(
    session: Session,
    scope: ColumnElement[bool],
    event_filter: EventFilter,
    *,
    after: ChainPosition | None,
    limit: int,
) -> HistoryPage:
    """Return up to `limit` events in scope after `after`, ordered by block and log index."""
    rows = session.scalars(_events_query(scope, event_filter, after).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(ChainPosition(last.block_number, last.log_index))
    progress = index_progress(session)
    return HistoryPage(
        events=page,
        next_cursor=next_cursor,
        indexed_through_block=progress.indexed_through_block,
        confirmed_through_block=progress.confirmed_through_block,
    )


def iterate_events(
    session: Session,
    scope: ColumnElement[bool],
    event_filter: EventFilter,
    *,
    through_block: int | None,
    chunk_size: int = EXPORT_CHUNK_SIZE,
) -> Iterator[ChainEvent]:
    """Yield every event in scope up to `through_block`, reading `chunk_size` rows per query.

    Each chunk is its own keyset query, so an export holds no long cursor open
    and ends at the block where it began even while the indexer adds more.
    """
    if through_block is not None:
        upper = through_block
        if event_filter.to_block is not None:
            upper = min(upper, event_filter.to_block)
        event_filter = EventFilter(
            event_names=event_filter.event_names,
            from_block=event_filter.from_block,
            to_block=upper,
            from_time=event_filter.from_time,
            to_time=event_filter.to_time,
            confirmed_only=event_filter.confirmed_only,
        )
    after: ChainPosition | None = None
    while True:
        rows = session.scalars(_events_query(scope, event_filter, after).limit(chunk_size)).all()
        yield from rows
        if len(rows) < chunk_size:
            return
        after = ChainPosition(rows[-1].block_number, rows[-1].log_index)
        # Release the chunk's rows, so a long export does not keep them all in memory.
        session.expunge_all()


def line_history(
    session: Session,
    facility_address: str,
    line_id: int,
    *,
    after: ChainPosition | None,
    limit: int,
    event_names: Sequence[str] = (),
) -> HistoryPage:
    """Return up to `limit` events of a line after `after`, ordered by block and log index."""
    return events_page(
        session,
        line_scope(facility_address, line_id),
        EventFilter(event_names=event_names),
        after=after,
        limit=limit,
    )


def _events_query(
    scope: ColumnElement[bool], event_filter: EventFilter, after: ChainPosition | None
) -> Select[tuple[ChainEvent]]:
    query = select(ChainEvent).where(scope)
    if event_filter.event_names:
        query = query.where(ChainEvent.event.in_(list(event_filter.event_names)))
    if event_filter.from_block is not None:
        query = query.where(ChainEvent.block_number >= event_filter.from_block)
    if event_filter.to_block is not None:
        query = query.where(ChainEvent.block_number <= event_filter.to_block)
    if event_filter.from_time is not None:
        query = query.where(ChainEvent.block_timestamp >= event_filter.from_time)
    if event_filter.to_time is not None:
        query = query.where(ChainEvent.block_timestamp < event_filter.to_time)
    if event_filter.confirmed_only:
        query = query.where(ChainEvent.confirmed.is_(True))
    if after is not None:
        # A row value comparison, which SQLite and PostgreSQL both resolve with an index seek.
        # The right side is a plain tuple, so each value is bound with its column's type.
        position = tuple_(ChainEvent.block_number, ChainEvent.log_index)
        query = query.where(position > (after.block_number, after.log_index))
    return query.order_by(ChainEvent.block_number, ChainEvent.log_index)
