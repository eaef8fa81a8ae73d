"""Reads of the event index for the history endpoints, with cursor pagination in chain order."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ledger_bridge.core.errors import InvalidValueError
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.models import ChainEvent

_CURSOR_TEXT = re.compile(r"(0|[1-9][0-9]{0,18}):(0|[1-9][0-9]{0,9})")
# A cursor decodes to at most 30 characters, so longer input is rejected before decoding.
_MAX_CURSOR_LENGTH = 64


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
class HistoryPage:
    """One page of a line's events in chain order."""

    events: Sequence[ChainEvent]
    next_cursor: str | None
    # The last block whose events are all in the index, or None before the first batch.
    indexed_through_block: int | None


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
    query = select(ChainEvent).where(
        ChainEvent.contract_address == facility_address, ChainEvent.line_id == line_id
    )
    if event_names:
        query = query.where(ChainEvent.event.in_(event_names))
    if after is not None:
        query = query.where(
            or_(
                ChainEvent.block_number > after.block_number,
                and_(
                    ChainEvent.block_number == after.block_number,
                    ChainEvent.log_index > after.log_index,
                ),
            )
        )
    query = query.order_by(ChainEvent.block_number, ChainEvent.log_index).limit(limit + 1)
    rows = session.scalars(query).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = encode_cursor(ChainPosition(last.block_number, last.log_index))
    checkpoint = load_checkpoint(session)
    return HistoryPage(
        events=page,
        next_cursor=next_cursor,
        indexed_through_block=None if checkpoint is None else checkpoint.block_number,
    )
