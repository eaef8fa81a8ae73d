"""Applications: a bank applies for a line, and its credit officer approves, rejects or opens it."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from ledger_bridge.api.chain_access import resolve_facility
from ledger_bridge.api.fields import IsoDate, RateBps
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import (
    WRITE_RESPONSES,
    BankWrite,
    add_line_action,
    describe_write,
    write_route_extra,
)
from ledger_bridge.chain.calls import APPLY_FOR_LINE, APPROVE_LINE, OPEN_LINE, REJECT_LINE
from ledger_bridge.chain.values import date_to_day, format_day
from ledger_bridge.core.errors import InvalidRequestError
from ledger_bridge.money import Address, AmountStr, Bytes32Hex

router = APIRouter(prefix="/v1", tags=["bank"])


class ApplicationCreate(RequestBody):
    """An application for a line, with the hash of the application file kept off chain."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "borrower": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
                    "application_hash": "0x" + "3c" * 32,
                    "limit": "3000000.00",
                    "rate_bps": 435,
                    "maturity_date": "2027-12-20",
                }
            ]
        },
    )

    borrower: Address = Field(description="The borrower's pseudonymous address.")
    application_hash: Bytes32Hex = Field(
        description="keccak256 hash of the application file, which stays with the bank."
    )
    limit: AmountStr = Field(description='Credit limit, such as "3000000.00".')
    rate_bps: RateBps
    maturity_date: IsoDate = Field(description="Maturity date, which must be after today.")


@router.post(
    "/applications",
    status_code=202,
    summary="Apply for a line in your facility",
    description=describe_write(
        APPLY_FOR_LINE,
        "Accept an application. Once the operation is confirmed, its `result.ids.line_id` "
        "names the new line, which a credit officer then approves (or rejects) and opens. "
        "The maturity date is checked against the contract's calendar, so an application "
        "that could never be opened gets 422 and nothing is stored.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(APPLY_FOR_LINE),
)
def apply_for_line(body: ApplicationCreate, write: BankWrite) -> OperationOut:
    """Accept an application for a line after checking its maturity date against the chain."""
    facility = resolve_facility(write.principal, write.chain, None)
    today = write.chain.lines.today(facility)
    if date_to_day(body.maturity_date) <= today:
        raise InvalidRequestError(
            "maturity_date",
            f"is {body.maturity_date.isoformat()}, which is not after today "
            f"({format_day(today)} in China Standard Time)",
            "Send a maturity date after today.",
        )
    return write.accept(APPLY_FOR_LINE, body, facility_address=facility)


add_line_action(
    router,
    "/lines/{line_id}/approve",
    APPROVE_LINE,
    summary="Approve an application",
    description=(
        "Approve an applied line. The contract requires an officer other than the account "
        "that submitted the application, so the bridge's officer key approves what its "
        "operator key submitted."
    ),
)
add_line_action(
    router,
    "/lines/{line_id}/reject",
    REJECT_LINE,
    summary="Reject an application",
    description="Reject an applied or approved line. A rejected line can never be opened.",
)
add_line_action(
    router,
    "/lines/{line_id}/open",
    OPEN_LINE,
    summary="Open an approved line",
    description=(
        "Open an approved line for drawdowns from today. Interest accrues from the first drawdown."
    ),
)
