"""Repayments: a bank repays part of a line, its interest, or everything it owes."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from ledger_bridge.api.chain_access import LineId, require_own_line
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import (
    WRITE_RESPONSES,
    BankWrite,
    add_line_action,
    describe_write,
    write_route_extra,
)
from ledger_bridge.chain.calls import PAYOFF, REPAY, REPAY_INTEREST
from ledger_bridge.money import AmountStr

router = APIRouter(prefix="/v1/lines", tags=["bank"])


class RepaymentCreate(RequestBody):
    """A repayment of part of what a line owes."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount": "1000.00"}]}
    )

    amount: AmountStr = Field(
        description=(
            "Amount repaid, taken from the bank's operator account. It pays overdue interest "
            "first, then interest due, then principal. More than the line owes today fails "
            "with CreditRepaymentExceedsOwed, which names the amount owed."
        )
    )


@router.post(
    "/{line_id}/repayments",
    status_code=202,
    summary="Repay part of a line",
    description=describe_write(
        REPAY,
        "Accept a repayment of a line in your facility. The settlement tokens come from the "
        "bank's operator account, which must hold and have approved them for the facility.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(REPAY),
)
def repay(line_id: LineId, body: RepaymentCreate, write: BankWrite) -> OperationOut:
    """Accept a repayment of one of the bank's lines."""
    facility = require_own_line(write.principal, write.chain, line_id)
    return write.accept(REPAY, body, facility_address=facility, line_id=line_id)


add_line_action(
    router,
    "/{line_id}/interest-repayments",
    REPAY_INTEREST,
    summary="Repay a line's overdue interest and interest due",
    description=(
        "Repay exactly the line's overdue interest and interest due as the contract computes "
        "them when the transaction runs. The operation's result shows the amount in the "
        "Repaid event. Fails with CreditNothingOwed when no interest is due."
    ),
)
add_line_action(
    router,
    "/{line_id}/payoff",
    PAYOFF,
    summary="Pay off a line",
    description=(
        "Pay everything the line owes on the day the transaction runs: overdue interest, "
        "interest due, principal and the interest accrued in the running period through the "
        "day before, rounded half-up to the fen. Principal and interest end at exactly zero. "
        "Read the amount ahead with `GET /v1/lines/{line_id}?on=YYYY-MM-DD`."
    ),
)
