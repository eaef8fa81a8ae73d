"""A line's live state, read from its facility contract."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ledger_bridge.api.chain_access import (
    ChainDep,
    FacilityQuery,
    LineId,
    require_line,
    resolve_facility,
)
from ledger_bridge.api.deps import require_roles
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.chain.lines import LineSnapshot
from ledger_bridge.chain.values import day_to_date
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.money import AmountOut

router = APIRouter(prefix="/v1/lines", tags=["lines"])

LineReader = Annotated[Principal, Depends(require_roles(Role.BANK, Role.AUDITOR, Role.REGULATOR))]


class LineOut(BaseModel):
    """A line's balances today, with interest accrued and settled as the contract computes it."""

    line_id: str = Field(description="The line's id as a decimal string.")
    facility_address: str
    as_of_block: int = Field(description="Block at which the state was read.")
    as_of_day: date = Field(description="The contract's current day, in China Standard Time.")
    status: str = Field(examples=["Active"])
    frozen_by_bank: bool
    frozen_by_regulator: bool
    review_flagged: bool
    revolving_cycles: int
    rate_bps: int = Field(description="Annual interest rate in basis points.")
    maturity_day: int = Field(description="Maturity as a day number: days since 1970-01-01, CST.")
    maturity_date: date | None = Field(description="Maturity date; null if after 9999-12-31.")
    pool_id: int = Field(description="Shared credit pool, or 0 for none.")
    limit: AmountOut
    principal: AmountOut
    interest_due: AmountOut
    overdue_interest: AmountOut
    accrued_interest: AmountOut = Field(
        description="Interest of the running period through yesterday, rounded half-up."
    )
    available: AmountOut
    payoff_amount: AmountOut
    written_off_outstanding: AmountOut
    locked: AmountOut = Field(description="Money of self-directed drawdowns not yet paid out.")

    @classmethod
    def from_snapshot(cls, facility: str, line_id: int, snapshot: LineSnapshot) -> LineOut:
        """Build the response body from a state read from the contract."""
        return cls(
            line_id=str(line_id),
            facility_address=facility,
            as_of_block=snapshot.block_number,
            as_of_day=day_to_date(snapshot.day),
            status=snapshot.status,
            frozen_by_bank=snapshot.frozen_by_bank,
            frozen_by_regulator=snapshot.frozen_by_regulator,
            review_flagged=snapshot.review_flagged,
            revolving_cycles=snapshot.revolving_cycles,
            rate_bps=snapshot.rate_bps,
            maturity_day=snapshot.maturity_day,
            maturity_date=_date_or_none(snapshot.maturity_day),
            pool_id=snapshot.pool_id,
            limit=snapshot.limit,
            principal=snapshot.principal,
            interest_due=snapshot.interest_due,
            overdue_interest=snapshot.overdue_interest,
            accrued_interest=snapshot.accrued_interest,
            available=snapshot.available,
            payoff_amount=snapshot.payoff_amount,
            written_off_outstanding=snapshot.written_off_outstanding,
            locked=snapshot.locked,
        )


@router.get(
    "/{line_id}",
    summary="Read a line's live state",
    responses=problem_responses(401, 403, 404, 422, 502, 503),
)
def read_line(
    line_id: LineId, principal: LineReader, chain: ChainDep, facility: FacilityQuery = None
) -> LineOut:
    """Return the line's state from the contract at the latest block; banks see their own lines."""
    facility_address = resolve_facility(principal, chain, facility)
    require_line(chain, facility_address, line_id)
    snapshot = chain.lines.read(facility_address, line_id)
    return LineOut.from_snapshot(facility_address, line_id, snapshot)


def _date_or_none(day_number: int) -> date | None:
    try:
        return day_to_date(day_number)
    except OverflowError:
        return None
