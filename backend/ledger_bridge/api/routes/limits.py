"""Limits: one officer changes a limit within policy, or proposes it for a second officer."""

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
from ledger_bridge.chain.calls import APPROVE_LIMIT_CHANGE, CHANGE_LIMIT, PROPOSE_LIMIT_CHANGE
from ledger_bridge.money import AmountStr

router = APIRouter(prefix="/v1/lines", tags=["bank"])


class LimitChange(RequestBody):
    """A new limit for a line."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"limit": "3600000.00"}]}
    )

    limit: AmountStr = Field(
        description=(
            "The new limit. A limit below the principal outstanding blocks drawdowns until "
            "repayments bring principal under it. It never changes the debt."
        )
    )


@router.post(
    "/{line_id}/limit-changes",
    status_code=202,
    summary="Change a line's limit within one officer's authority",
    description=describe_write(
        CHANGE_LIMIT,
        "Change the limit by at most the facility's maximum (22% of the current limit by "
        "default), at most once per interval (90 days by default). A larger or earlier change "
        "fails with CreditLimitChangeTooLarge or CreditLimitChangeTooSoon, so propose it for a "
        "second officer instead.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(CHANGE_LIMIT),
)
def change_limit(line_id: LineId, body: LimitChange, write: BankWrite) -> OperationOut:
    """Accept a limit change by one officer."""
    facility = require_own_line(write.principal, write.chain, line_id)
    return write.accept(CHANGE_LIMIT, body, facility_address=facility, line_id=line_id)


@router.post(
    "/{line_id}/limit-change-proposals",
    status_code=202,
    summary="Propose a limit change for a second officer",
    description=describe_write(
        PROPOSE_LIMIT_CHANGE,
        "Propose a limit change of any size. It takes effect when a second officer approves "
        "it with `POST /v1/lines/{line_id}/limit-change-proposals/approve`. A new proposal "
        "replaces a pending one.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(PROPOSE_LIMIT_CHANGE),
)
def propose_limit_change(line_id: LineId, body: LimitChange, write: BankWrite) -> OperationOut:
    """Accept a limit change proposal."""
    facility = require_own_line(write.principal, write.chain, line_id)
    return write.accept(PROPOSE_LIMIT_CHANGE, body, facility_address=facility, line_id=line_id)


add_line_action(
    router,
    "/{line_id}/limit-change-proposals/approve",
    APPROVE_LIMIT_CHANGE,
    summary="Approve a proposed limit change as the second officer",
    description=(
        "Approve the line's pending limit change. The contract rejects an approval by the "
        "officer who proposed it (CreditSecondOfficerRequired), so the bridge signs with the "
        "second officer's key. It fails with CreditNoPendingLimitChange when none is pending."
    ),
)
