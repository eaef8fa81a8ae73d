"""A bank's portfolio views: lines maturing soon, lines flagged for review, lines with overdue
interest.

The event index picks the candidate lines, and each candidate's state is
then read from the contract at one block, because a line's maturity, flag
and interest can change on chain after its last indexed event. A page may
therefore hold fewer lines than `limit`; read on while `next_cursor` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ledger_bridge.api.chain_access import ChainDep, FacilityQuery, resolve_facility
from ledger_bridge.api.deps import SessionDep, require_roles
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.chain.lines import LineSnapshot
from ledger_bridge.chain.runtime import ChainRuntime
from ledger_bridge.chain.values import day_to_date
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.indexer.chain_state import FacilityReader
from ledger_bridge.indexer.portfolio import (
    LinePage,
    interest_candidate_lines,
    maturing_lines,
    review_flagged_lines,
)
from ledger_bridge.money import AmountOut
from ledger_bridge.storage.models import IndexedLine

router = APIRouter(prefix="/v1/portfolio", tags=["bank"])

PortfolioReader = Annotated[
    Principal, Depends(require_roles(Role.BANK, Role.AUDITOR, Role.REGULATOR))
]
PortfolioLimit = Annotated[int, Query(ge=1, le=500, description="Candidate lines per page.")]
PortfolioCursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]

DEFAULT_RENEWAL_WINDOW_DAYS = 15
# Ten years: a longer window is a different question than renewal planning.
MAX_RENEWAL_WINDOW_DAYS = 3650


class PortfolioLineOut(BaseModel):
    """A line's live state, read from the contract, with its borrower from the index."""

    line_id: str
    borrower: str | None
    status: str
    maturity_day: int
    maturity_date: date | None
    days_to_maturity: int
    limit: AmountOut
    principal: AmountOut
    available: AmountOut
    interest_due: AmountOut
    overdue_interest: AmountOut
    rate_bps: int
    frozen_by_bank: bool
    frozen_by_regulator: bool
    review_flagged: bool
    revolving_cycles: int

    @classmethod
    def build(cls, row: IndexedLine, snapshot: LineSnapshot) -> PortfolioLineOut:
        """Combine an indexed line and its live state into the response item."""
        return cls(
            line_id=str(row.line_id),
            borrower=row.borrower,
            status=snapshot.status,
            maturity_day=snapshot.maturity_day,
            maturity_date=_date_or_none(snapshot.maturity_day),
            days_to_maturity=snapshot.maturity_day - snapshot.day,
            limit=snapshot.limit,
            principal=snapshot.principal,
            available=snapshot.available,
            interest_due=snapshot.interest_due,
            overdue_interest=snapshot.overdue_interest,
            rate_bps=snapshot.rate_bps,
            frozen_by_bank=snapshot.frozen_by_bank,
            frozen_by_regulator=snapshot.frozen_by_regulator,
            review_flagged=snapshot.review_flagged,
            revolving_cycles=snapshot.revolving_cycles,
        )


class PortfolioPage(BaseModel):
    """A page of lines, with the block and day their live state was read at."""

    facility_address: str
    as_of_block: int
    as_of_day: date = Field(description="The contract's day at that block, China Standard Time.")
    lines: list[PortfolioLineOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page of candidates, or null on the last page."
    )


@router.get(
    "/maturing",
    summary="List active lines that mature within some days, for renewal",
    responses=problem_responses(401, 403, 404, 422, 502, 503),
)
def list_maturing_lines(
    principal: PortfolioReader,
    session: SessionDep,
    chain: ChainDep,
    within_days: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_RENEWAL_WINDOW_DAYS,
            description="Lines maturing from today to today plus this many days.",
        ),
    ] = DEFAULT_RENEWAL_WINDOW_DAYS,
    facility: FacilityQuery = None,
    cursor: PortfolioCursor = None,
    limit: PortfolioLimit = 100,
) -> PortfolioPage:
    """Return active lines whose maturity day is today or within `within_days`, soonest first."""
    facility_address = resolve_facility(principal, chain, facility)
    reader = _reader_at_head(chain, facility_address)
    today = reader.today()
    page = maturing_lines(
        session,
        facility_address,
        from_day=today,
        to_day=today + within_days,
        after=cursor,
        limit=limit,
    )
    return _live_page(
        reader,
        facility_address,
        today,
        page,
        lambda state: (
            state.status == "Active" and today <= state.maturity_day <= today + within_days
        ),
    )


@router.get(
    "/review-flagged",
    summary="List active lines flagged for revolving-cycle review",
    responses=problem_responses(401, 403, 404, 422, 502, 503),
)
def list_review_flagged_lines(
    principal: PortfolioReader,
    session: SessionDep,
    chain: ChainDep,
    facility: FacilityQuery = None,
    cursor: PortfolioCursor = None,
    limit: PortfolioLimit = 100,
) -> PortfolioPage:
    """Return active lines that passed the revolving-cycle threshold and wait for review."""
    facility_address = resolve_facility(principal, chain, facility)
    reader = _reader_at_head(chain, facility_address)
    today = reader.today()
    page = review_flagged_lines(session, facility_address, after=cursor, limit=limit)
    return _live_page(reader, facility_address, today, page, lambda state: state.review_flagged)


@router.get(
    "/interest-overdue",
    summary="List lines with overdue interest",
    responses=problem_responses(401, 403, 404, 422, 502, 503),
)
def list_interest_overdue_lines(
    principal: PortfolioReader,
    session: SessionDep,
    chain: ChainDep,
    facility: FacilityQuery = None,
    cursor: PortfolioCursor = None,
    limit: PortfolioLimit = 100,
) -> PortfolioPage:
    """Return active or defaulted lines whose overdue interest, settled to today, is above zero.

    The candidates are the lines drawn since their last payoff. Each is read
    with lineState for today, which settles interest the way a transaction would.
    """
    facility_address = resolve_facility(principal, chain, facility)
    reader = _reader_at_head(chain, facility_address)
    today = reader.today()
    page = interest_candidate_lines(session, facility_address, after=cursor, limit=limit)
    return _live_page(
        reader, facility_address, today, page, lambda state: state.overdue_interest > 0
    )


def _reader_at_head(chain: ChainRuntime, facility_address: str) -> FacilityReader:
    return FacilityReader(chain.w3, facility_address, chain.w3.eth.block_number)


def _live_page(
    reader: FacilityReader,
    facility_address: str,
    today: int,
    page: LinePage,
    keep: Callable[[LineSnapshot], bool],
) -> PortfolioPage:
    lines = []
    for row in page.lines:
        state = reader.line_state(row.line_id, today)
        if keep(state):
            lines.append(PortfolioLineOut.build(row, state))
    return PortfolioPage(
        facility_address=facility_address,
        as_of_block=reader.block_number,
        as_of_day=day_to_date(today),
        lines=lines,
        next_cursor=page.next_cursor,
    )


def _date_or_none(day_number: int) -> date | None:
    try:
        return day_to_date(day_number)
    except OverflowError:
        return None
