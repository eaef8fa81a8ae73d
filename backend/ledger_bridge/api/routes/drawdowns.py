"""Drawdowns: a bank draws on one of its lines, through an operation the worker sends."""

from __future__ import annotations

from typing import Self

from fastapi import APIRouter, Request, Response
from pydantic import Field, model_validator

from ledger_bridge.api.chain_access import ChainDep, LineId, require_line, resolve_facility
from ledger_bridge.api.deps import BankPrincipal, IdempotencyKey, SessionDep
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import accept_write
from ledger_bridge.chain.calls import DRAWDOWN
from ledger_bridge.money import Address, AmountStr, Bytes32Hex

router = APIRouter(prefix="/v1/lines", tags=["lines"])


class DrawdownCreate(RequestBody):
    """A drawdown: to a registered payee (entrusted payment) or locked for the borrower."""

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
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
)
def create_drawdown(
    line_id: LineId,
    body: DrawdownCreate,
    request: Request,
    response: Response,
    principal: BankPrincipal,
    idempotency_key: IdempotencyKey,
    session: SessionDep,
    chain: ChainDep,
) -> OperationOut:
    """Accept a drawdown as an operation; poll the Location header until it is final.

    The line must exist in your facility, or nothing is stored. Whether the
    line may be drawn (status, limit, freezes, overdue interest) is checked
    by the contract when the worker estimates the transaction, and a refusal
    makes the operation failed with the decoded error.
    """
    facility = resolve_facility(principal, chain, None)
    require_line(chain, facility, line_id)
    operation = accept_write(
        request,
        response,
        session,
        principal,
        idempotency_key,
        DRAWDOWN,
        body,
        line_id=line_id,
        facility_address=facility,
    )
    chain.wake_worker()
    return operation
