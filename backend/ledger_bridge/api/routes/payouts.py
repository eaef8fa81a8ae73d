"""Locked balances: paying self-directed drawdowns on to registered payees, or back as repayment.

Money of a drawdown below the entrusted-payment threshold stays locked in
the facility for the borrower. It leaves only to a registered payee whose
category is not blocked and that is not frozen, checked by the contract at
each payout, or back to the line as a repayment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import ConfigDict, Field

from ledger_bridge.api.chain_access import LineId, require_own_line, resolve_facility
from ledger_bridge.api.fields import MAX_DRAWDOWN_ID, DrawdownIdValue
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import (
    WRITE_RESPONSES,
    BankWrite,
    WriteContext,
    describe_write,
    write_route_extra,
)
from ledger_bridge.chain.calls import (
    PAY_FROM_LOCKED,
    PAY_FROM_LOCKED_BATCH,
    REPAY_FROM_LOCKED,
    SET_PAYOUT_DELEGATE,
)
from ledger_bridge.chain.lines import LockedBalance
from ledger_bridge.core.errors import LedgerBridgeError, NotFoundError
from ledger_bridge.money import Address, AmountStr, Bytes32Hex

router = APIRouter(prefix="/v1", tags=["bank"])

# Each payout in a batch costs roughly the gas of a single payout, so the bound keeps a batch
# well inside a block's gas limit.
MAX_BATCH_PAYOUTS = 50

DrawdownId = Annotated[
    int,
    Path(
        ge=1,
        le=MAX_DRAWDOWN_ID,
        description="A self-directed drawdown's id, from the drawdown operation's result.",
    ),
]


class DrawdownNotFoundError(NotFoundError):
    """The facility has no drawdown with locked money under the requested id."""

    def __init__(self, facility_address: str, drawdown_id: int, field: str) -> None:
        LedgerBridgeError.__init__(
            self,
            f"Facility {facility_address} has no self-directed drawdown {drawdown_id} "
            f"(from {field}). An entrusted drawdown locks nothing. Use the drawdown_id in "
            "the result of a confirmed drawdown operation of your facility.",
        )
        self.resource = "drawdown"
        self.identifier = drawdown_id


class PayoutCreate(RequestBody):
    """A payout from one drawdown's locked balance to a registered payee."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "payee": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
                    "amount": "1200.00",
                    "invoice_hash": "0x" + "ab" * 32,
                }
            ]
        },
    )

    payee: Address = Field(description="A registered payee whose category is not blocked.")
    amount: AmountStr = Field(description="At most the drawdown's locked balance.")
    invoice_hash: Bytes32Hex = Field(
        description="keccak256 hash of the invoice or contract that the payout pays."
    )


class BatchPayout(PayoutCreate):
    """One payout of a batch, naming its drawdown."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "drawdown_id": 12,
                    "payee": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
                    "amount": "1200.00",
                    "invoice_hash": "0x" + "ab" * 32,
                }
            ]
        },
    )

    drawdown_id: DrawdownIdValue


class PayoutBatchCreate(RequestBody):
    """Payouts from locked balances, made in one transaction: all of them or none."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "payouts": [
                        {
                            "drawdown_id": 12,
                            "payee": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
                            "amount": "1200.00",
                            "invoice_hash": "0x" + "ab" * 32,
                        },
                        {
                            "drawdown_id": 12,
                            "payee": "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
                            "amount": "300.00",
                            "invoice_hash": "0x" + "cd" * 32,
                        },
                    ]
                }
            ]
        },
    )

    payouts: list[BatchPayout] = Field(min_length=1, max_length=MAX_BATCH_PAYOUTS)


class LockedRepaymentCreate(RequestBody):
    """Locked money returned to its line as a repayment."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount": "800.00"}]}
    )

    amount: AmountStr = Field(
        description="At most the drawdown's locked balance and at most what the line owes."
    )


class PayoutDelegateChange(RequestBody):
    """An account allowed, or no longer allowed, to pay out a line's locked balances."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"delegate": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955", "allowed": True}
            ]
        },
    )

    delegate: Address = Field(
        description="An account of the borrower's that may call the payout functions itself."
    )
    allowed: bool = Field(description="true to allow the account, false to revoke it.")


@router.post(
    "/drawdowns/{drawdown_id}/payouts",
    status_code=202,
    summary="Pay a locked balance on to a registered payee",
    description=describe_write(
        PAY_FROM_LOCKED,
        "Pay part or all of a self-directed drawdown's locked balance to a registered payee. "
        "The contract checks the payee against the rules in force at its block, and a refusal "
        "fails the operation with an error that names the payee and the rule "
        "(FundFlowPayeeNotRegistered, FundFlowPayeeFrozen, FundFlowCategoryBlocked).",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(PAY_FROM_LOCKED),
)
def pay_from_locked(drawdown_id: DrawdownId, body: PayoutCreate, write: BankWrite) -> OperationOut:
    """Accept a payout from a locked balance."""
    facility, locked = _own_locked_balance(write, drawdown_id, "the path")
    payload = {"drawdown_id": drawdown_id, **body.model_dump(mode="json")}
    return write.accept(PAY_FROM_LOCKED, payload, facility_address=facility, line_id=locked.line_id)


@router.post(
    "/payout-batches",
    status_code=202,
    summary="Pay several locked balances on in one transaction",
    description=describe_write(
        PAY_FROM_LOCKED_BATCH,
        f"Make up to {MAX_BATCH_PAYOUTS} payouts from locked balances of your facility in one "
        "transaction. If any payout is refused, none is made, and the decoded error names "
        "the payee and the rule.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(PAY_FROM_LOCKED_BATCH),
)
def pay_from_locked_batch(body: PayoutBatchCreate, write: BankWrite) -> OperationOut:
    """Accept a batch of payouts after checking that every drawdown is the bank's."""
    facility = resolve_facility(write.principal, write.chain, None)
    line_ids = {
        _locked_balance(write, facility, item.drawdown_id, f"payouts[{index}]").line_id
        for index, item in enumerate(body.payouts)
    }
    line_id = line_ids.pop() if len(line_ids) == 1 else None
    return write.accept(PAY_FROM_LOCKED_BATCH, body, facility_address=facility, line_id=line_id)


@router.post(
    "/drawdowns/{drawdown_id}/repayments",
    status_code=202,
    summary="Return a locked balance to its line as a repayment",
    description=describe_write(
        REPAY_FROM_LOCKED,
        "Return part or all of a self-directed drawdown's locked balance to its line, where "
        "it repays overdue interest, then interest due, then principal.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(REPAY_FROM_LOCKED),
)
def repay_from_locked(
    drawdown_id: DrawdownId, body: LockedRepaymentCreate, write: BankWrite
) -> OperationOut:
    """Accept a repayment from a locked balance."""
    facility, locked = _own_locked_balance(write, drawdown_id, "the path")
    payload = {"drawdown_id": drawdown_id, **body.model_dump(mode="json")}
    return write.accept(
        REPAY_FROM_LOCKED, payload, facility_address=facility, line_id=locked.line_id
    )


@router.post(
    "/lines/{line_id}/payout-delegates",
    status_code=202,
    summary="Allow or revoke a payout delegate of a line",
    description=describe_write(
        SET_PAYOUT_DELEGATE,
        "Let an account of the borrower's pay the line's locked balances on to registered "
        "payees itself, under the same checks, or revoke it. A delegate can never withdraw "
        "locked money freely.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(SET_PAYOUT_DELEGATE),
)
def set_payout_delegate(
    line_id: LineId, body: PayoutDelegateChange, write: BankWrite
) -> OperationOut:
    """Accept a payout delegate change on one of the bank's lines."""
    facility = require_own_line(write.principal, write.chain, line_id)
    return write.accept(SET_PAYOUT_DELEGATE, body, facility_address=facility, line_id=line_id)


def _own_locked_balance(
    write: WriteContext, drawdown_id: int, field: str
) -> tuple[str, LockedBalance]:
    facility = resolve_facility(write.principal, write.chain, None)
    return facility, _locked_balance(write, facility, drawdown_id, field)


def _locked_balance(
    write: WriteContext, facility: str, drawdown_id: int, field: str
) -> LockedBalance:
    locked = write.chain.lines.locked_balance(facility, drawdown_id)
    if locked is None:
        raise DrawdownNotFoundError(facility, drawdown_id, field)
    return locked
