"""Renewals: a credit officer extends a line's maturity, optionally with a new limit and rate."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from ledger_bridge.api.chain_access import LineId, require_own_line
from ledger_bridge.api.fields import IsoDate, RateBps
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import WRITE_RESPONSES, BankWrite, describe_write, write_route_extra
from ledger_bridge.chain.calls import RENEW_LINE
from ledger_bridge.chain.values import date_to_day, format_day
from ledger_bridge.core.errors import InvalidRequestError
from ledger_bridge.money import AmountStr

router = APIRouter(prefix="/v1/lines", tags=["bank"])


class RenewalCreate(RequestBody):
    """A renewal: a later maturity, and optionally a new limit and a new rate from a given day."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"maturity_date": "2028-12-20"},
                {
                    "maturity_date": "2028-12-20",
                    "limit": "3300000.00",
                    "rate_bps": 395,
                    "rate_effective_date": "2027-12-21",
                },
            ]
        },
    )

    maturity_date: IsoDate = Field(description="The new maturity, after the current one.")
    limit: AmountStr | None = Field(
        None,
        description=(
            "A new limit, or null to keep the current one. A change follows the same policy as "
            "`POST /v1/lines/{line_id}/limit-changes`."
        ),
    )
    rate_bps: RateBps | None = Field(
        None, description="A new rate, or null to keep the current one."
    )
    # validate_default makes the check below run when the field is left out, too.
    rate_effective_date: IsoDate | None = Field(
        None,
        validate_default=True,
        description=(
            "First day of the new rate, today or later, and required with rate_bps. Days before it "
            "keep the old rate."
        ),
    )

    @field_validator("rate_effective_date")
    @classmethod
    def _check_rate_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        rate_set = info.data.get("rate_bps") is not None
        if rate_set and value is None:
            raise ValueError(
                "This field is required when rate_bps is set, because a new rate applies from "
                "a stated day. Send the first day of the new rate as YYYY-MM-DD."
            )
        if not rate_set and value is not None and "rate_bps" in info.data:
            raise ValueError(
                "This field applies only to a new rate. Set rate_bps, or leave this field out."
            )
        return value


@router.post(
    "/{line_id}/renewals",
    status_code=202,
    summary="Renew a line before maturity",
    description=describe_write(
        RENEW_LINE,
        "Renew an active line that has not passed maturity, without repaying principal "
        "first. The dates are checked against the line's current maturity and the "
        "contract's calendar before anything is stored.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(RENEW_LINE),
)
def renew_line(line_id: LineId, body: RenewalCreate, write: BankWrite) -> OperationOut:
    """Accept a renewal after checking its dates against today and the current maturity."""
    facility = require_own_line(write.principal, write.chain, line_id)
    snapshot = write.chain.lines.read(facility, line_id)
    if date_to_day(body.maturity_date) <= snapshot.maturity_day:
        raise _date_error(
            "maturity_date", body.maturity_date, "the current maturity", snapshot.maturity_day
        )
    effective = body.rate_effective_date
    if effective is not None and date_to_day(effective) < snapshot.day:
        raise InvalidRequestError(
            "rate_effective_date",
            f"is {effective.isoformat()}, which is before today "
            f"({format_day(snapshot.day)} in China Standard Time)",
            "Send today or a later day.",
        )
    return write.accept(RENEW_LINE, body, facility_address=facility, line_id=line_id)


def _date_error(field: str, value: date, what: str, day: int) -> InvalidRequestError:
    return InvalidRequestError(
        field,
        f"is {value.isoformat()}, which is not after {what} ({format_day(day)})",
        f"Send a date after {format_day(day)}.",
    )
