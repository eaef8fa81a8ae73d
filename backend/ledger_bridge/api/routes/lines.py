"""A line's live state, read from its facility contract, today or on a later day."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from ledger_bridge.api.chain_access import (
    ChainDep,
    FacilityQuery,
    LineId,
    require_line,
    resolve_facility,
)
from ledger_bridge.api.deps import require_roles
from ledger_bridge.api.fields import IsoDate
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.chain.lines import LineSnapshot
from ledger_bridge.chain.values import date_to_day, day_to_date, format_day
from ledger_bridge.core.errors import InvalidRequestError
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.money import AmountOut

router = APIRouter(prefix="/v1/lines", tags=["bank", "auditor", "regulator"])

LineReader = Annotated[Principal, Depends(require_roles(Role.BANK, Role.AUDITOR, Role.REGULATOR))]

# Reading a later day makes the contract settle month by month in one call, so the horizon
# keeps the call's gas small. Ten years covers any line's term and renewal.
MAX_DAYS_AHEAD = 3660

OnQuery = Annotated[
    IsoDate | None,
    Query(
        alias="on",
        description=(
            "Compute the balances for this day (YYYY-MM-DD, China Standard Time) instead of "
            f"today: today or up to {MAX_DAYS_AHEAD} days later. payoff_amount is then what "
            "paying off on that day would cost, if nothing else happens to the line first."
        ),
    ),
]

LINE_EXAMPLE = {
    "line_id": "7",
    "facility_address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "as_of_block": 1203,
    "as_of_day": "2027-02-10",
    "today": "2027-01-15",
    "status": "Active",
    "frozen_by_bank": False,
    "frozen_by_regulator": False,
    "review_flagged": False,
    "flags": [],
    "revolving_cycles": 2,
    "rate_bps": 435,
    "maturity_day": 20806,
    "maturity_date": "2026-12-20",
    "pool_id": 0,
    "limit": "3000000.00",
    "principal": "1200000.00",
    "interest_due": "0.00",
    "overdue_interest": "0.00",
    "accrued_interest": "3625.00",
    "available": "1800000.00",
    "payoff_amount": "1203625.00",
    "written_off_outstanding": "0.00",
    "locked": "0.00",
}


class LineOut(BaseModel):
    """A line's balances on a day, with interest accrued and settled as the contract computes it."""

    model_config = ConfigDict(json_schema_extra={"examples": [LINE_EXAMPLE]})

    line_id: str = Field(description="The line's id as a decimal string.")
    facility_address: str
    as_of_block: int = Field(description="Block at which the state was read.")
    as_of_day: date = Field(
        description="The day the balances are for: today, or the day asked for with `on`."
    )
    today: date = Field(description="The contract's current day, in China Standard Time.")
    status: str = Field(examples=["Active"])
    frozen_by_bank: bool
    frozen_by_regulator: bool
    review_flagged: bool = Field(
        description="Whether the line passed its revolving-cycle threshold and awaits review."
    )
    flags: list[str] = Field(
        description=(
            "The flags that are set, by name: frozen_by_bank, frozen_by_regulator, "
            "review_flagged. Empty for a line without flags."
        )
    )
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
    available: AmountOut = Field(
        description="What could be drawn now within the line's limit and its pool's room."
    )
    payoff_amount: AmountOut = Field(
        description=(
            "Everything owed on as_of_day, including interest accrued through the day before."
        )
    )
    written_off_outstanding: AmountOut
    locked: AmountOut = Field(description="Money of self-directed drawdowns not yet paid out.")

    @classmethod
    def from_snapshot(
        cls, facility: str, line_id: int, snapshot: LineSnapshot, today: int
    ) -> LineOut:
        """Build the response body from a state read from the contract."""
        flags = {
            "frozen_by_bank": snapshot.frozen_by_bank,
            "frozen_by_regulator": snapshot.frozen_by_regulator,
            "review_flagged": snapshot.review_flagged,
        }
        return cls(
            line_id=str(line_id),
            facility_address=facility,
            as_of_block=snapshot.block_number,
            as_of_day=day_to_date(snapshot.day),
            today=day_to_date(today),
            status=snapshot.status,
            frozen_by_bank=snapshot.frozen_by_bank,
            frozen_by_regulator=snapshot.frozen_by_regulator,
            review_flagged=snapshot.review_flagged,
            flags=[name for name, is_set in flags.items() if is_set],
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
    line_id: LineId,
    principal: LineReader,
    chain: ChainDep,
    facility: FacilityQuery = None,
    on: OnQuery = None,
) -> LineOut:
    """Return the line's state from the contract at the latest block; banks see their own lines.

    With `on`, the balances are those of that day, as the contract computes them without
    any further transaction: the payoff amount to plan a payoff, or what settles on a
    settlement day.
    """
    facility_address = resolve_facility(principal, chain, facility)
    require_line(chain, facility_address, line_id)
    today = chain.lines.today(facility_address)
    day = None if on is None else _check_day(on, today)
    snapshot = chain.lines.read(facility_address, line_id, day)
    return LineOut.from_snapshot(facility_address, line_id, snapshot, today)


def _check_day(on: date, today: int) -> int:
    day = date_to_day(on)
    if day < today:
        raise InvalidRequestError(
            "on",
            f"is {on.isoformat()}, before today ({format_day(today)} in China Standard Time), "
            "and the contract states balances only for today or later",
            "Send today or a later date, or leave 'on' out for today.",
        )
    if day > today + MAX_DAYS_AHEAD:
        raise InvalidRequestError(
            "on",
            f"is {on.isoformat()}, more than {MAX_DAYS_AHEAD} days after today "
            f"({format_day(today)})",
            f"Send a date up to {format_day(today + MAX_DAYS_AHEAD)}.",
        )
    return day


def _date_or_none(day_number: int) -> date | None:
    try:
        return day_to_date(day_number)
    except OverflowError:
        return None
