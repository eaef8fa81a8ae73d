"""Dependencies of the line routes: the chain runtime, the caller's facility and the line id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from ledger_bridge.chain.runtime import ChainNotStartedError, ChainRuntime
from ledger_bridge.core.errors import InvalidRequestError, LedgerBridgeError, NotFoundError
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.money import parse_address

MAX_LINE_ID = 2**64 - 1

LineId = Annotated[
    int,
    Path(ge=1, le=MAX_LINE_ID, description="The line's id in its facility (uint64, from 1)."),
]

FacilityQuery = Annotated[
    str | None,
    Query(
        alias="facility",
        description=(
            "Facility contract address. Banks may leave it out, because they see only their "
            "own facility; auditors and regulators need it when more than one is deployed."
        ),
    ),
]


class LineNotFoundError(NotFoundError):
    """The facility has no line with the requested id."""

    def __init__(self, facility_address: str, line_id: int) -> None:
        LedgerBridgeError.__init__(
            self,
            f"Facility {facility_address} has no line {line_id}. Lines are numbered from 1 in "
            "each facility; check the id, and open the line before sending requests for it.",
        )
        self.resource = "line"
        self.identifier = line_id


def get_chain(request: Request) -> ChainRuntime:
    """Return the app's chain runtime once it is connected, or raise ChainNotStartedError."""
    runtime: ChainRuntime | None = getattr(request.app.state, "chain_client", None)
    if runtime is None or not runtime.started:
        raise ChainNotStartedError()
    return runtime


ChainDep = Annotated[ChainRuntime, Depends(get_chain)]


def resolve_facility(principal: Principal, chain: ChainRuntime, requested: str | None) -> str:
    """Return the facility address the request acts on; a bank acts only on its own."""
    deployment = chain.require_deployment()
    if principal.role is Role.BANK:
        own = principal.facility_address
        if own is None or (requested is not None and requested.lower() != own.lower()):
            raise NotFoundError("facility", requested or "of this bank")
        if deployment.facility(own) is None:
            raise NotFoundError("facility", own)
        return own
    if requested is None:
        if len(deployment.facilities) == 1:
            return deployment.facilities[0].address
        raise InvalidRequestError(
            "facility",
            f"is missing, and {len(deployment.facilities)} facilities are deployed",
            "Send the facility contract address as the query parameter 'facility'.",
        )
    facility = deployment.facility(parse_address(requested))
    if facility is None:
        raise NotFoundError("facility", requested)
    return facility.address


def require_line(chain: ChainRuntime, facility_address: str, line_id: int) -> None:
    """Raise LineNotFoundError unless the facility has the line."""
    if not chain.lines.exists(facility_address, line_id):
        raise LineNotFoundError(facility_address, line_id)


def require_own_line(principal: Principal, chain: ChainRuntime, line_id: int) -> str:
    """Return the bank's facility address, or raise NotFoundError unless it has the line.

    Line ids are numbered per facility, so a bank that names another bank's
    line id either reaches a line of its own with that id or gets 404.
    """
    facility = resolve_facility(principal, chain, None)
    require_line(chain, facility, line_id)
    return facility
