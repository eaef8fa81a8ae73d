"""The end of a line: default, write-off, recoveries and closure."""

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
from ledger_bridge.chain.calls import CLOSE_LINE, DECLARE_DEFAULT, RECOVER, WRITE_OFF
from ledger_bridge.money import AmountStr

router = APIRouter(prefix="/v1/lines", tags=["bank"])


class RecoveryCreate(RequestBody):
    """Money recovered on a written-off line."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount": "5000.00"}]}
    )

    amount: AmountStr = Field(
        description=(
            "Amount recovered, taken from the bank's operator account: at most the "
            "written-off amount still outstanding."
        )
    )


add_line_action(
    router,
    "/{line_id}/default",
    DECLARE_DEFAULT,
    summary="Declare a line in default",
    description=(
        "Move an active line to defaulted. Drawdowns stop, but repayments continue and interest "
        "keeps accruing at the rates that apply."
    ),
)
add_line_action(
    router,
    "/{line_id}/write-off",
    WRITE_OFF,
    summary="Write off a defaulted line",
    description=(
        "Write off a defaulted line: what it owes moves to the written-off amount and the "
        "line never becomes usable again. Fails with FundFlowLockedBalanceRemaining while "
        "money is still locked for the borrower, so return it as a repayment first."
    ),
)


@router.post(
    "/{line_id}/recoveries",
    status_code=202,
    summary="Record a recovery on a written-off line",
    description=describe_write(
        RECOVER,
        "Record money recovered on a written-off line, which lowers the written-off amount "
        "outstanding. More than that amount fails with CreditRepaymentExceedsOwed.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(RECOVER),
)
def recover(line_id: LineId, body: RecoveryCreate, write: BankWrite) -> OperationOut:
    """Accept a recovery on one of the bank's written-off lines."""
    facility = require_own_line(write.principal, write.chain, line_id)
    return write.accept(RECOVER, body, facility_address=facility, line_id=line_id)


add_line_action(
    router,
    "/{line_id}/close",
    CLOSE_LINE,
    summary="Close a line",
    description=(
        "Close an active or defaulted line that owes nothing, or a written-off line. A closed "
        "line never becomes usable again. Fails with CreditBalanceOutstanding, naming the "
        "amount, while the line owes money."
    ),
)
