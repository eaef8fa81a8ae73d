"""Liquidity: the bank's treasury funds its facility and withdraws free liquidity."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import ConfigDict, Field

from ledger_bridge.api.chain_access import resolve_facility
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import WRITE_RESPONSES, BankWrite, describe_write, write_route_extra
from ledger_bridge.chain.calls import FUND_LIQUIDITY, WITHDRAW_LIQUIDITY
from ledger_bridge.money import Address, AmountStr

router = APIRouter(prefix="/v1/liquidity", tags=["bank"])


class FundingCreate(RequestBody):
    """Settlement tokens the treasury moves into the facility."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"amount": "50000000.00"}]}
    )

    amount: AmountStr = Field(
        description=(
            "Amount taken from the bank's treasury account, which must hold it and have "
            "approved the facility to take it."
        )
    )


class WithdrawalCreate(RequestBody):
    """Free liquidity the treasury takes out of the facility."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"to": "0x976EA74026E726554dB657fA54763abd0C3a0aa9", "amount": "1000000.00"}
            ]
        },
    )

    to: Address = Field(description="The account that receives the tokens.")
    amount: AmountStr = Field(
        description=(
            "Amount withdrawn: at most the free liquidity, which excludes locked balances "
            "(CreditInsufficientLiquidity names it)."
        )
    )


@router.post(
    "/fundings",
    status_code=202,
    summary="Fund your facility",
    description=describe_write(FUND_LIQUIDITY, "Move settlement tokens into your facility."),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(FUND_LIQUIDITY),
)
def fund_liquidity(body: FundingCreate, write: BankWrite) -> OperationOut:
    """Accept a funding of the bank's facility."""
    facility = resolve_facility(write.principal, write.chain, None)
    return write.accept(FUND_LIQUIDITY, body, facility_address=facility)


@router.post(
    "/withdrawals",
    status_code=202,
    summary="Withdraw free liquidity from your facility",
    description=describe_write(
        WITHDRAW_LIQUIDITY,
        "Move free settlement tokens out of your facility. Money locked for borrowers stays.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(WITHDRAW_LIQUIDITY),
)
def withdraw_liquidity(body: WithdrawalCreate, write: BankWrite) -> OperationOut:
    """Accept a withdrawal from the bank's facility."""
    facility = resolve_facility(write.principal, write.chain, None)
    return write.accept(WITHDRAW_LIQUIDITY, body, facility_address=facility)
