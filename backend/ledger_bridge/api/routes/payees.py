"""Payees: banks register their borrowers' payees with a category, and every user reads them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from ledger_bridge.api.chain_access import ChainDep
from ledger_bridge.api.deps import require_roles
from ledger_bridge.api.fields import CATEGORY_DESCRIPTION, CategoryCode
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import WRITE_RESPONSES, BankWrite, describe_write, write_route_extra
from ledger_bridge.categories import category_name
from ledger_bridge.chain.calls import CHANGE_PAYEE_CATEGORY, REGISTER_PAYEE
from ledger_bridge.chain.runtime import ChainRuntime
from ledger_bridge.core.errors import LedgerBridgeError, NotFoundError
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.money import Address, Bytes32Hex

router = APIRouter(prefix="/v1/payees")

PayeeReader = Annotated[Principal, Depends(require_roles(Role.BANK, Role.AUDITOR, Role.REGULATOR))]
PayeePath = Annotated[
    Address,
    Path(
        description="The payee's address, in lowercase or EIP-55 checksum case.",
        examples=["0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"],
    ),
]


class PayeeNotFoundError(NotFoundError):
    """The fund-flow rules have no payee at the address."""

    def __init__(self, address: str) -> None:
        LedgerBridgeError.__init__(
            self,
            f"Payee {address} is not registered in the fund-flow rules. Check the address, "
            "or register the payee with POST /v1/payees first.",
        )
        self.resource = "payee"
        self.identifier = address


class PayeeCreate(RequestBody):
    """A payee to register, with the hash of its registration documents kept off chain."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "address": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
                    "category": 103,
                    "documents_hash": "0x" + "5e" * 32,
                }
            ]
        },
    )

    address: Address = Field(description="The payee's address, which receives payouts.")
    category: CategoryCode
    documents_hash: Bytes32Hex = Field(
        description="keccak256 hash of the payee's registration documents, kept by the bank."
    )


class CategoryChange(RequestBody):
    """A payee's new category."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"category": 102}]})

    category: CategoryCode


class PayeeOut(BaseModel):
    """A registered payee as the fund-flow rules contract stores it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "address": "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
                    "category": 103,
                    "category_name": "raw materials",
                    "category_blocked": False,
                    "status": "Active",
                    "registrar": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                    "documents_hash": "0x" + "5e" * 32,
                    "rules_version": 14,
                    "as_of_block": 1203,
                }
            ]
        }
    )

    address: str
    category: int = Field(description=CATEGORY_DESCRIPTION)
    category_name: str | None = Field(description="The code's documented name, if any.")
    category_blocked: bool = Field(description="Whether the regulator blocked the category.")
    status: str = Field(description="Active, or Frozen when the regulator froze the payee.")
    registrar: str = Field(description="The account that registered the payee.")
    documents_hash: str
    rules_version: int = Field(description="The rules version at the block read.")
    as_of_block: int
    payable: bool = Field(
        description="Whether credit money may reach the payee now: active and not blocked."
    )


@router.post(
    "",
    status_code=202,
    tags=["bank"],
    summary="Register a payee",
    description=describe_write(
        REGISTER_PAYEE,
        "Register a payee in the registry that every facility shares, so that drawdowns and "
        "locked balances may pay it. Registering an address twice fails with "
        "FundFlowPayeeAlreadyRegistered, so change its category instead. The call has no "
        "request id, so the operation's request_id is null.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(REGISTER_PAYEE),
)
def register_payee(body: PayeeCreate, write: BankWrite) -> OperationOut:
    """Accept a payee registration."""
    payload = {
        "payee": body.address,
        "category": body.category,
        "documents_hash": body.documents_hash,
    }
    return write.accept(REGISTER_PAYEE, payload, facility_address=None)


@router.post(
    "/{address}/category",
    status_code=202,
    tags=["bank"],
    summary="Change a payee's category",
    description=describe_write(
        CHANGE_PAYEE_CATEGORY,
        "Move a registered payee to another category. Later payouts are checked against it. "
        "A bank cannot move a payee out of a blocked category (FundFlowCategoryBlocked). Only "
        "the regulator can.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(CHANGE_PAYEE_CATEGORY),
)
def change_payee_category(
    address: PayeePath, body: CategoryChange, write: BankWrite
) -> OperationOut:
    """Accept a category change of a registered payee."""
    require_payee(write.chain, address)
    payload = {"payee": address, "category": body.category}
    return write.accept(CHANGE_PAYEE_CATEGORY, payload, facility_address=None)


@router.get(
    "/{address}",
    summary="Read a payee",
    tags=["bank", "auditor", "regulator"],
    responses=problem_responses(401, 403, 404, 422, 502, 503),
)
def read_payee(address: PayeePath, principal: PayeeReader, chain: ChainDep) -> PayeeOut:
    """Return the payee's category, status and registrar from the rules contract."""
    deployment = chain.require_deployment()
    record = chain.rules.payee(deployment.fund_flow_rules, address)
    if record is None:
        raise PayeeNotFoundError(address)
    return PayeeOut(
        address=record.address,
        category=record.category,
        category_name=category_name(record.category),
        category_blocked=record.category_blocked,
        status=record.status,
        registrar=record.registrar,
        documents_hash=record.documents_hash,
        rules_version=record.rules_version,
        as_of_block=record.block_number,
        payable=record.status == "Active" and not record.category_blocked,
    )


def require_payee(chain: ChainRuntime, address: str) -> None:
    """Raise PayeeNotFoundError unless the payee is registered."""
    if chain.rules.payee(chain.require_deployment().fund_flow_rules, address) is None:
        raise PayeeNotFoundError(address)
