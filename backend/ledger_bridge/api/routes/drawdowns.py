"""Drawdowns: a bank draws on one of its lines, through an operation the worker sends."""

from __future__ import annotations

from typing import Self

from fastapi import APIRouter
from pydantic import ConfigDict, Field, model_validator

from ledger_bridge.api.chain_access import LineId, require_own_line
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import WRITE_RESPONSES, BankWrite, describe_write, write_route_extra
from ledger_bridge.chain.calls import DRAWDOWN
from ledger_bridge.money import Address, AmountStr, Bytes32Hex

router = APIRouter(prefix="/v1/lines", tags=["bank"])


class DrawdownCreate(RequestBody):
    """A drawdown: to a registered payee (entrusted payment) or locked for the borrower."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"amount": "2500.00", "payee": None, "invoice_hash": None},
                {
                    "amount": "2500000.00",
                    "payee": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
                    "invoice_hash": "0x" + "ab" * 32,
                },
            ]
        },
    )

    amount: AmountStr = Field(description='Amount to draw, such as "2500000.00".')
    payee: Address | None = Field(
        None,
        description=(
            "Registered payee for an entrusted payment, or null to lock the money for the "
            "borrower. Drawdowns at or above the facility's entrusted-payment threshold "
            "need a payee."
        ),
    )
    invoice_hash: Bytes32Hex | None = Field(
        None,
        description="keccak256 hash of the invoice or contract that an entrusted payment pays.",
    )

    @model_validator(mode="after")
    def _check_invoice_hash(self) -> Self:
        if self.payee is not None and self.invoice_hash is None:
            raise ValueError(
                "invoice_hash is required when payee is set, because an entrusted payment "
                "must name the invoice it pays; send its keccak256 hash"
            )
        if self.payee is None and self.invoice_hash is not None:
            raise ValueError(
                "invoice_hash applies only to an entrusted payment; set payee or leave "
                "invoice_hash out"
            )
        return self


@router.post(
    "/{line_id}/drawdowns",
    status_code=202,
    summary="Draw on a line of your facility",
    description=describe_write(
        DRAWDOWN,
        "Accept a drawdown as an operation; poll the Location header until it is final. "
        "The line must exist in your facility, or nothing is stored. Whether the line may "
        "be drawn (status, limit, pool, freezes, overdue interest, review flag) is checked "
        "by the contract when the worker estimates the transaction, and a refusal makes the "
        "operation failed with the decoded error. Once confirmed, `result.ids.drawdown_id` "
        "names the drawdown, whose locked balance a self-directed drawdown pays out from.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(DRAWDOWN),
)
def create_drawdown(line_id: LineId, body: DrawdownCreate, write: BankWrite) -> OperationOut:
    """Accept a drawdown on one of the bank's lines."""
    facility = require_own_line(write.principal, write.chain, line_id)
    return write.accept(DRAWDOWN, body, facility_address=facility, line_id=line_id)
