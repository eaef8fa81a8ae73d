"""The regulator's locks: blocked categories, frozen payees and frozen lines in any facility."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path
from pydantic import ConfigDict, Field

from ledger_bridge.api.chain_access import LineId, require_line, resolve_facility
from ledger_bridge.api.fields import CATEGORY_DESCRIPTION
from ledger_bridge.api.routes.payees import PayeePath, require_payee
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import (
    WRITE_RESPONSES,
    OptionalNoFields,
    RegulatorWrite,
    WriteContext,
    describe_write,
    write_route_extra,
)
from ledger_bridge.categories import CATEGORIES, list_codes
from ledger_bridge.chain.calls import (
    BLOCK_CATEGORY,
    FREEZE_PAYEE,
    REGULATOR_FREEZE_LINE,
    REGULATOR_UNFREEZE_LINE,
    UNBLOCK_CATEGORY,
    UNFREEZE_PAYEE,
)
from ledger_bridge.core.errors import InvalidRequestError
from ledger_bridge.money import Address, Bytes32Hex

router = APIRouter(prefix="/v1/regulator", tags=["regulator"])

CategoryPath = Annotated[int, Path(description=CATEGORY_DESCRIPTION, examples=[901])]


class Decision(RequestBody):
    """The regulator's decision, by the hash of its document kept off chain."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason_hash": "0x" + "9d" * 32}]}
    )

    reason_hash: Bytes32Hex = Field(
        description="keccak256 hash of the decision document, which stays with the regulator."
    )


class LineFreeze(RequestBody):
    """The facility of the line that the regulator freezes or unfreezes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"facility": "0x5FbDB2315678afecb367f032d93F642f64180aa3"}]
        },
    )

    facility: Address | None = Field(
        None,
        description=(
            "The facility contract that holds the line. It may be left out when only one "
            "facility is deployed."
        ),
    )


@router.post(
    "/categories/{category}/block",
    status_code=202,
    summary="Block a payee category",
    description=describe_write(
        BLOCK_CATEGORY,
        "Block a category for every payout of every facility from the next block on: "
        "entrusted drawdowns and payouts from locked balances to payees of the category "
        "fail with FundFlowCategoryBlocked.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(BLOCK_CATEGORY),
)
def block_category(category: CategoryPath, body: Decision, write: RegulatorWrite) -> OperationOut:
    """Accept a category block."""
    payload = {"category": _category(category), **body.model_dump(mode="json")}
    return write.accept(BLOCK_CATEGORY, payload, facility_address=None)


@router.post(
    "/categories/{category}/unblock",
    status_code=202,
    summary="Lift a category block",
    description=describe_write(UNBLOCK_CATEGORY, "Allow payouts to the category again."),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(UNBLOCK_CATEGORY),
)
def unblock_category(
    category: CategoryPath, write: RegulatorWrite, body: OptionalNoFields = None
) -> OperationOut:
    """Accept the lifting of a category block."""
    return write.accept(UNBLOCK_CATEGORY, {"category": _category(category)}, facility_address=None)


@router.post(
    "/payees/{address}/freeze",
    status_code=202,
    summary="Freeze a payee",
    description=describe_write(
        FREEZE_PAYEE,
        "Stop every payout of credit money to one registered payee, from every facility.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(FREEZE_PAYEE),
)
def freeze_payee(address: PayeePath, body: Decision, write: RegulatorWrite) -> OperationOut:
    """Accept a payee freeze."""
    require_payee(write.chain, address)
    payload = {"payee": address, **body.model_dump(mode="json")}
    return write.accept(FREEZE_PAYEE, payload, facility_address=None)


@router.post(
    "/payees/{address}/unfreeze",
    status_code=202,
    summary="Unfreeze a payee",
    description=describe_write(UNFREEZE_PAYEE, "Allow payouts to the payee again."),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(UNFREEZE_PAYEE),
)
def unfreeze_payee(
    address: PayeePath, write: RegulatorWrite, body: OptionalNoFields = None
) -> OperationOut:
    """Accept the lifting of a payee freeze."""
    require_payee(write.chain, address)
    return write.accept(UNFREEZE_PAYEE, {"payee": address}, facility_address=None)


@router.post(
    "/lines/{line_id}/freeze",
    status_code=202,
    summary="Freeze a line (regulator)",
    description=describe_write(
        REGULATOR_FREEZE_LINE,
        "Stop drawdowns and payouts from locked balances on a line of any facility. The "
        "bank cannot lift this freeze, only the regulator can. The request id comes from the "
        "line's facility.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(REGULATOR_FREEZE_LINE),
)
def freeze_line(
    line_id: LineId, write: RegulatorWrite, body: Annotated[LineFreeze | None, Body()] = None
) -> OperationOut:
    """Accept a regulator's line freeze."""
    return _accept_line_lock(REGULATOR_FREEZE_LINE, line_id, write, body or LineFreeze())


@router.post(
    "/lines/{line_id}/unfreeze",
    status_code=202,
    summary="Unfreeze a line (regulator)",
    description=describe_write(
        REGULATOR_UNFREEZE_LINE,
        "Lift the regulator's freeze of a line. A freeze by the bank stays in place.",
    ),
    responses=WRITE_RESPONSES,
    openapi_extra=write_route_extra(REGULATOR_UNFREEZE_LINE),
)
def unfreeze_line(
    line_id: LineId, write: RegulatorWrite, body: Annotated[LineFreeze | None, Body()] = None
) -> OperationOut:
    """Accept the lifting of a regulator's line freeze."""
    return _accept_line_lock(REGULATOR_UNFREEZE_LINE, line_id, write, body or LineFreeze())


def _accept_line_lock(
    kind: str, line_id: int, write: WriteContext, body: LineFreeze
) -> OperationOut:
    facility = resolve_facility(write.principal, write.chain, body.facility)
    require_line(write.chain, facility, line_id)
    payload = {"facility": facility}
    return write.accept(kind, payload, facility_address=facility, line_id=line_id)


def _category(value: int) -> int:
    """Return a documented category code from the path, or raise a 422 naming the field."""
    if value not in CATEGORIES:
        raise InvalidRequestError(
            "category",
            f"is {value}, which is not a documented category code",
            f"Send one of: {list_codes()}.",
        )
    return value
