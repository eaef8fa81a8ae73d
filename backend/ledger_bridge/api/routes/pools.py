"""Shared credit pools: lines of one industrial cluster drawing on a common limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import ConfigDict, Field

from ledger_bridge.api.chain_access import LineId, require_line, resolve_facility
from ledger_bridge.api.fields import MAX_POOL_ID, LineIdValue
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import (
    WRITE_RESPONSES,
    BankWrite,
    OptionalNoFields,
    WriteContext,
    describe_write,
    write_route_extra,
)
from ledger_bridge.chain.calls import (
    ADD_POOL_MEMBER,
    CHANGE_POOL_LIMIT,
    CREATE_POOL,
    REMOVE_POOL_MEMBER,
)
from ledger_bridge.core.errors import LedgerBridgeError, NotFoundError
from ledger_bridge.money import AmountStr

router = APIRouter(prefix="/v1/pools", tags=["bank"])

PoolId = Annotated[
    int, Path(ge=1, le=MAX_POOL_ID, description="The pool's id in your facility (uint32, from 1).")
]


class PoolNotFoundError(NotFoundError):
    """The facility has no pool with the requested id."""

    def __init__(self, facility_address: str, pool_id: int) -> None:
        LedgerBridgeError.__init__(
            self,
            f"Facility {facility_address} has no pool {pool_id}. Pools are numbered from 1 in "
            "each facility, and the create-pool operation's result names the new pool's id.",
        )
        self.resource = "pool"
        self.identifier = pool_id


class PoolMemberNotFoundError(NotFoundError):
    """The line is not a member of the pool."""

    def __init__(self, pool_id: int, line_id: int, actual_pool_id: int) -> None:
        where = "no pool" if actual_pool_id == 0 else f"pool {actual_pool_id}"
        LedgerBridgeError.__init__(
            self,
            f"Line {line_id} is not a member of pool {pool_id}, because it is in {where}. "
            "Check the pool and line ids.",
        )
        self.resource = "pool member"
        self.identifier = line_id


class PoolCreate(RequestBody):
    """A new pool and its limit."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"limit": "20000000.00"}]}
    )

    limit: AmountStr = Field(
        description="The maximum principal that the member lines may owe together."
    )


class PoolLimitChange(RequestBody):
    """A pool's new limit."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"limit": "25000000.00"}]}
    )

    limit: AmountStr = Field(
        description=(
            "The new pool limit. A limit below what the members owe blocks their drawdowns "
            "until repayments bring it under. It never changes the debt."
        )
    )


class PoolMemberAdd(RequestBody):
    """A line to add to a pool."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"line_id": 7}]})

    line_id: LineIdValue = Field(description="An approved or active line of your facility.")


@router.post(
    "",
    status_code=202,
    summary="Create a shared credit pool",
    description=describe_write(
        CREATE_POOL,
        "Create a pool in your facility. Once the operation is confirmed, its "
        "`result.ids.pool_id` names the pool. Each member's drawdowns must then fit both its "
        "own limit and the pool's remaining room.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(CREATE_POOL),
)
def create_pool(body: PoolCreate, write: BankWrite) -> OperationOut:
    """Accept a new pool."""
    facility = resolve_facility(write.principal, write.chain, None)
    return write.accept(CREATE_POOL, body, facility_address=facility)


@router.post(
    "/{pool_id}/limit-changes",
    status_code=202,
    summary="Change a pool's limit",
    description=describe_write(CHANGE_POOL_LIMIT, "Set a new limit for a pool of your facility."),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(CHANGE_POOL_LIMIT),
)
def change_pool_limit(pool_id: PoolId, body: PoolLimitChange, write: BankWrite) -> OperationOut:
    """Accept a pool limit change."""
    facility = _own_pool(write, pool_id)
    payload = {"pool_id": pool_id, **body.model_dump(mode="json")}
    return write.accept(CHANGE_POOL_LIMIT, payload, facility_address=facility)


@router.post(
    "/{pool_id}/members",
    status_code=202,
    summary="Add a line to a pool",
    description=describe_write(
        ADD_POOL_MEMBER,
        "Add an approved or active line of your facility to a pool. Its principal counts "
        "against the pool from then on. A line is in one pool at most "
        "(CreditLineAlreadyInPool).",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(ADD_POOL_MEMBER),
)
def add_pool_member(pool_id: PoolId, body: PoolMemberAdd, write: BankWrite) -> OperationOut:
    """Accept a new pool member."""
    facility = _own_pool(write, pool_id)
    require_line(write.chain, facility, body.line_id)
    return write.accept(
        ADD_POOL_MEMBER,
        {"pool_id": pool_id},
        facility_address=facility,
        line_id=body.line_id,
    )


@router.post(
    "/{pool_id}/members/{line_id}/remove",
    status_code=202,
    summary="Remove a line from a pool",
    description=describe_write(
        REMOVE_POOL_MEMBER,
        "Remove a member line from its pool, so its principal stops counting against the pool.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(REMOVE_POOL_MEMBER),
)
def remove_pool_member(
    pool_id: PoolId, line_id: LineId, write: BankWrite, body: OptionalNoFields = None
) -> OperationOut:
    """Accept the removal of a pool member, after checking that the line is in that pool."""
    facility = _own_pool(write, pool_id)
    require_line(write.chain, facility, line_id)
    actual_pool_id = write.chain.lines.read(facility, line_id).pool_id
    if actual_pool_id != pool_id:
        raise PoolMemberNotFoundError(pool_id, line_id, actual_pool_id)
    return write.accept(
        REMOVE_POOL_MEMBER, {"pool_id": pool_id}, facility_address=facility, line_id=line_id
    )


def _own_pool(write: WriteContext, pool_id: int) -> str:
    """Return the bank's facility, or raise PoolNotFoundError unless it has the pool.

    NOTE: a pool exists when its limit is above zero. The bridge never sets a pool's limit to
    zero, but a pool set to zero by another client of the contract is reported as not found.
    """
    facility = resolve_facility(write.principal, write.chain, None)
    limit, _used = write.chain.lines.pool(facility, pool_id)
    if limit == 0:
        raise PoolNotFoundError(facility, pool_id)
    return facility
