"""Reads of the indexed lines for a bank's portfolio views, with cursor pagination by line.

The indexed_lines table contains each line's state as its events left it.
The queries here pick the candidate lines. The routes then read each
candidate's live state from the contract, because maturity, review flags and
overdue interest can change on chain after the index last saw the line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, select, tuple_
from sqlalchemy.orm import Session

from ledger_bridge.core.errors import InvalidValueError
from ledger_bridge.indexer.lines import ACCRUING_STATUSES
from ledger_bridge.storage.models import IndexedLine

_MAX_CURSOR_LENGTH = 100


class InvalidLineCursorError(InvalidValueError):
    """A portfolio cursor was not produced by this API."""

    title = "Invalid cursor"
    slug = "invalid-cursor"
    expected = "the next_cursor value of the previous page unchanged, or no cursor for page one"


@dataclass(frozen=True, slots=True)
class LinePage:
    """A page of indexed lines and the cursor of the next page."""

    lines: Sequence[IndexedLine]
    next_cursor: str | None


def maturing_lines(
    session: Session,
    facility_address: str,
    *,
    from_day: int,
    to_day: int,
    after: str | None,
    limit: int,
) -> LinePage:
    """Return active lines maturing on a day in [from_day, to_day], soonest first."""
    query = select(IndexedLine).where(
        IndexedLine.facility_address == facility_address,
        IndexedLine.status == "Active",
        IndexedLine.maturity_day >= from_day,
        IndexedLine.maturity_day <= to_day,
    )
    # The right side of the comparison is a plain tuple, so the line id is bound as a UInt256.
    position = tuple_(IndexedLine.maturity_day, IndexedLine.line_id)
    if after is not None:
        maturity_day, line_id = _decode(after, parts=2)
        query = query.where(position > (maturity_day, line_id))
    rows = session.scalars(
        query.order_by(IndexedLine.maturity_day, IndexedLine.line_id).limit(limit + 1)
    ).all()
    return _page(rows, limit, lambda row: f"{row.maturity_day}:{row.line_id}")


def review_flagged_lines(
    session: Session, facility_address: str, *, after: str | None, limit: int
) -> LinePage:
    """Return active lines whose events left them flagged for revolving-cycle review."""
    return _lines_by_id(
        session,
        IndexedLine.facility_address == facility_address,
        IndexedLine.status == "Active",
        IndexedLine.review_flagged.is_(True),
        after=after,
        limit=limit,
    )


def interest_candidate_lines(
    session: Session, facility_address: str, *, after: str | None, limit: int
) -> LinePage:
    """Return the lines that may owe interest: accruing, and drawn since their last payoff."""
    return _lines_by_id(
        session,
        IndexedLine.facility_address == facility_address,
        IndexedLine.status.in_(sorted(ACCRUING_STATUSES)),
        IndexedLine.interest_may_be_owed.is_(True),
        after=after,
        limit=limit,
    )


def _lines_by_id(
    session: Session, *conditions: ColumnElement[bool], after: str | None, limit: int
) -> LinePage:
    query = select(IndexedLine).where(*conditions)
    if after is not None:
        (line_id,) = _decode(after, parts=1)
        query = query.where(IndexedLine.line_id > line_id)
    rows = session.scalars(query.order_by(IndexedLine.line_id).limit(limit + 1)).all()
    return _page(rows, limit, lambda row: str(row.line_id))


def _page(rows: Sequence[IndexedLine], limit: int, cursor_of: object) -> LinePage:
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = cursor_of(page[-1])  # type: ignore[operator]
    return LinePage(lines=page, next_cursor=next_cursor)


def _decode(cursor: str, *, parts: int) -> list[int]:
    """Return the integers of a cursor made of `parts` decimal numbers joined by ':'."""
    if len(cursor) > _MAX_CURSOR_LENGTH:
        raise InvalidLineCursorError(cursor, f"is longer than {_MAX_CURSOR_LENGTH} characters")
    pieces = cursor.split(":")
    if len(pieces) != parts or not all(piece.isdigit() and piece.isascii() for piece in pieces):
        raise InvalidLineCursorError(cursor, f"is not {parts} decimal number(s) joined by ':'")
    return [int(piece) for piece in pieces]
