"""The auditor's reads: histories of a line, a borrower or a facility, their exports, and a
check of a line's index against the chain.

Histories come from the event index and never read the chain. Banks may
use these routes for their own facility only, and auditors for any facility.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from ledger_bridge.api.chain_access import (
    ChainDep,
    FacilityQuery,
    LineId,
    require_line,
    resolve_facility,
)
from ledger_bridge.api.deps import SessionDep, require_roles
from ledger_bridge.api.indexed_events import (
    EventOut,
    EventsPage,
    ExportFormatQuery,
    PageLimit,
    event_filter,
    export_response,
    page_cursor,
)
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.chain.runtime import ChainRuntime
from ledger_bridge.chain.values import AMOUNT_ARGUMENT_NAMES, day_to_date
from ledger_bridge.core.errors import NotFoundError
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.indexer.decoding import EventDecoder
from ledger_bridge.indexer.errors import IndexNotReadyError
from ledger_bridge.indexer.history import (
    ChainPosition,
    EventFilter,
    borrower_lines,
    contract_scope,
    events_page,
    index_progress,
    line_scope,
    lines_scope,
)
from ledger_bridge.indexer.line_check import COMPARED_FIELDS, LineCheck, check_line
from ledger_bridge.money import format_amount, parse_address
from ledger_bridge.storage.models import IndexedLine

router = APIRouter(prefix="/v1/audit", tags=["auditor"])

AuditReader = Annotated[Principal, Depends(require_roles(Role.BANK, Role.AUDITOR))]
Filters = Annotated[EventFilter, Depends(event_filter)]
Cursor = Annotated[ChainPosition | None, Depends(page_cursor)]
BorrowerPath = Annotated[
    str, Path(description="The borrower's address, as its lines' LineApplied events name it.")
]
FacilityPath = Annotated[str, Path(description="The facility contract's address.")]

READ_RESPONSES = problem_responses(401, 403, 404, 422)
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "The events in chain order. CSV has a header row and the arguments as a JSON "
            "object in the `args` column; NDJSON has one event object per line."
        ),
        "content": {"text/csv": {}, "application/x-ndjson": {}},
    },
    **READ_RESPONSES,
}


class LineEventsPage(EventsPage):
    """A page of a line's events."""

    facility_address: str
    line_id: str


class BorrowerLineOut(BaseModel):
    """A line of the borrower."""

    facility_address: str
    line_id: str


class BorrowerEventsPage(EventsPage):
    """A page of the events of every line of a borrower."""

    borrower: str
    lines: list[BorrowerLineOut]


class FacilityEventsPage(EventsPage):
    """A page of every event of a facility contract, with or without a line."""

    facility_address: str


class EventDifferenceOut(BaseModel):
    """An event on one side only, or stored with other values than the chain's."""

    kind: str = Field(
        description="missing-from-index, not-on-chain, or differs (see `fields`).",
        examples=["missing-from-index"],
    )
    block_number: int
    transaction_hash: str
    log_index: int
    event: str
    fields: list[str] = Field(description="For `differs`: the stored fields that differ.")


class FieldComparisonOut(BaseModel):
    """A LineState field as rebuilt from the index and as the contract returns it."""

    field: str = Field(examples=["principal"])
    index_value: Any
    chain_value: Any
    equal: bool


class LineCheckOut(BaseModel):
    """The index of one line next to the chain, up to the block the index reaches."""

    facility_address: str
    line_id: str
    consistent: bool = Field(description="Whether every event and every compared field agree.")
    through_block: int = Field(description="The events and the state were compared up to here.")
    through_block_hash: str
    as_of_day: date = Field(description="The contract's day at that block, China Standard Time.")
    chain_event_count: int = Field(description="The line's logs that eth_getLogs returned.")
    index_event_count: int
    event_differences: list[EventDifferenceOut]
    state: list[FieldComparisonOut] = Field(
        description=(
            "LineState fields that only events change, rebuilt from the indexed events and "
            "read with lineState at the same block. Interest is left out, because it "
            "settles on chain without an event."
        )
    )

    @classmethod
    def from_check(cls, check: LineCheck) -> LineCheckOut:
        """Build the response body from a finished check."""
        assert check.index_state is not None and check.chain_state is not None
        state = []
        for name, snapshot_attribute, record_attribute in COMPARED_FIELDS:
            chain_value = getattr(check.chain_state, snapshot_attribute)
            if name == "rateBps":
                index_value = check.index_state.rate_on(check.day)
            else:
                index_value = getattr(check.index_state, record_attribute)
            state.append(
                FieldComparisonOut(
                    field=name,
                    index_value=_present(name, index_value),
                    chain_value=_present(name, chain_value),
                    equal=index_value == chain_value,
                )
            )
        return cls(
            facility_address=check.facility_address,
            line_id=str(check.line_id),
            consistent=check.consistent,
            through_block=check.through_block,
            through_block_hash=check.through_block_hash,
            as_of_day=day_to_date(check.day),
            chain_event_count=check.chain_event_count,
            index_event_count=check.index_event_count,
            event_differences=[
                EventDifferenceOut(
                    kind=item.kind,
                    block_number=item.block_number,
                    transaction_hash=item.transaction_hash,
                    log_index=item.log_index,
                    event=item.event,
                    fields=list(item.fields),
                )
                for item in check.event_differences
            ],
            state=state,
        )


@router.get(
    "/lines/{line_id}/events",
    summary="Read a line's history",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def read_line_events(
    line_id: LineId,
    principal: AuditReader,
    session: SessionDep,
    chain: ChainDep,
    filters: Filters,
    after: Cursor,
    facility: FacilityQuery = None,
    limit: PageLimit = 100,
) -> LineEventsPage:
    """Return the line's indexed events, filtered, in chain order."""
    facility_address = resolve_facility(principal, chain, facility)
    _require_indexed_or_existing_line(session, chain, facility_address, line_id)
    page = events_page(
        session, line_scope(facility_address, line_id), filters, after=after, limit=limit
    )
    return LineEventsPage(
        facility_address=facility_address,
        line_id=str(line_id),
        **_page_fields(page),
    )


@router.get(
    "/lines/{line_id}/events/export",
    summary="Export a line's history as CSV or NDJSON",
    response_class=StreamingResponse,
    responses=problem_responses(401, 403, 404, 422, 503) | EXPORT_RESPONSES,
)
def export_line_events(
    request: Request,
    line_id: LineId,
    principal: AuditReader,
    session: SessionDep,
    chain: ChainDep,
    filters: Filters,
    export_format: ExportFormatQuery,
    facility: FacilityQuery = None,
) -> StreamingResponse:
    """Stream the line's indexed events, filtered, in chain order."""
    facility_address = resolve_facility(principal, chain, facility)
    _require_indexed_or_existing_line(session, chain, facility_address, line_id)
    scope = line_scope(facility_address, line_id)
    return export_response(
        request, scope, filters, export_format, f"line-{facility_address}-{line_id}"
    )


@router.get(
    "/borrowers/{borrower}/events",
    summary="Read the history of every line of a borrower",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def read_borrower_events(
    borrower: BorrowerPath,
    principal: AuditReader,
    session: SessionDep,
    chain: ChainDep,
    filters: Filters,
    after: Cursor,
    facility: FacilityQuery = None,
    limit: PageLimit = 100,
) -> BorrowerEventsPage:
    """Return the events of the borrower's lines, found by their LineApplied events."""
    address, lines = _borrower_lines(session, chain, principal, borrower, facility)
    page = events_page(session, lines_scope(lines), filters, after=after, limit=limit)
    return BorrowerEventsPage(
        borrower=address,
        lines=[BorrowerLineOut(facility_address=item[0], line_id=str(item[1])) for item in lines],
        **_page_fields(page),
    )


@router.get(
    "/borrowers/{borrower}/events/export",
    summary="Export the history of every line of a borrower as CSV or NDJSON",
    response_class=StreamingResponse,
    responses=problem_responses(401, 403, 404, 422, 503) | EXPORT_RESPONSES,
)
def export_borrower_events(
    request: Request,
    borrower: BorrowerPath,
    principal: AuditReader,
    session: SessionDep,
    chain: ChainDep,
    filters: Filters,
    export_format: ExportFormatQuery,
    facility: FacilityQuery = None,
) -> StreamingResponse:
    """Stream the events of the borrower's lines, filtered, in chain order."""
    address, lines = _borrower_lines(session, chain, principal, borrower, facility)
    return export_response(
        request, lines_scope(lines), filters, export_format, f"borrower-{address}"
    )


@router.get(
    "/facilities/{facility_address}/events",
    summary="Read every event of a facility",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def read_facility_events(
    facility_address: FacilityPath,
    principal: AuditReader,
    session: SessionDep,
    chain: ChainDep,
    filters: Filters,
    after: Cursor,
    limit: PageLimit = 100,
) -> FacilityEventsPage:
    """Return the facility's indexed events, with or without a line, in chain order."""
    address = _visible_facility(principal, chain, facility_address)
    page = events_page(session, contract_scope(address), filters, after=after, limit=limit)
    return FacilityEventsPage(facility_address=address, **_page_fields(page))


@router.get(
    "/facilities/{facility_address}/events/export",
    summary="Export every event of a facility as CSV or NDJSON",
    response_class=StreamingResponse,
    responses=problem_responses(401, 403, 404, 422, 503) | EXPORT_RESPONSES,
)
def export_facility_events(
    request: Request,
    facility_address: FacilityPath,
    principal: AuditReader,
    chain: ChainDep,
    filters: Filters,
    export_format: ExportFormatQuery,
) -> StreamingResponse:
    """Stream the facility's indexed events, filtered, in chain order."""
    address = _visible_facility(principal, chain, facility_address)
    return export_response(
        request, contract_scope(address), filters, export_format, f"facility-{address}"
    )


@router.get(
    "/lines/{line_id}/check",
    summary="Check a line's index against the chain",
    responses=problem_responses(401, 403, 404, 422, 502, 503),
)
def check_line_against_chain(
    request: Request,
    line_id: LineId,
    principal: AuditReader,
    session: SessionDep,
    chain: ChainDep,
    facility: FacilityQuery = None,
) -> LineCheckOut:
    """Read the line's logs with eth_getLogs and its state with lineState, and compare both with
    the index, up to the last block the index reaches. This route reads the chain and may take
    seconds for a facility with a long history.
    """
    facility_address = resolve_facility(principal, chain, facility)
    require_line(chain, facility_address, line_id)
    through_block = index_progress(session).indexed_through_block
    if through_block is None:
        raise IndexNotReadyError()
    deployment = chain.require_deployment()
    facility_deployment = deployment.facility(facility_address)
    assert facility_deployment is not None  # resolve_facility returned a deployed facility
    settings = request.app.state.settings
    check = check_line(
        session,
        chain.w3,
        EventDecoder(chain.w3, deployment, token_transfers=False),
        facility_address,
        line_id,
        from_block=facility_deployment.deployment_block,
        through_block=through_block,
        max_block_range=settings.indexer_block_range,
    )
    return LineCheckOut.from_check(check)


def _require_indexed_or_existing_line(
    session: Session, chain: ChainRuntime, facility_address: str, line_id: int
) -> None:
    """Raise LineNotFoundError unless the index or the chain has the line.

    The chain is asked only for a line the index has not seen, which is new or does not exist.
    """
    if session.get(IndexedLine, (facility_address, line_id)) is None:
        require_line(chain, facility_address, line_id)


def _borrower_lines(
    session: Session,
    chain: ChainRuntime,
    principal: Principal,
    borrower: str,
    facility: str | None,
) -> tuple[str, list[tuple[str, int]]]:
    address = parse_address(borrower)
    only_facility = None
    if principal.role is Role.BANK or facility is not None:
        only_facility = resolve_facility(principal, chain, facility)
    return address, borrower_lines(session, address, only_facility)


def _visible_facility(principal: Principal, chain: ChainRuntime, requested: str) -> str:
    address = parse_address(requested)
    deployed = chain.require_deployment().facility(address)
    if deployed is None:
        raise NotFoundError("facility", requested)
    if principal.role is Role.BANK and (
        principal.facility_address is None
        or principal.facility_address.lower() != deployed.address.lower()
    ):
        raise NotFoundError("facility", requested)
    return deployed.address


def _page_fields(page: Any) -> dict[str, Any]:
    return {
        "indexed_through_block": page.indexed_through_block,
        "confirmed_through_block": page.confirmed_through_block,
        "events": [EventOut.from_row(row) for row in page.events],
        "next_cursor": page.next_cursor,
    }


def _present(name: str, value: Any) -> Any:
    if name in AMOUNT_ARGUMENT_NAMES or name in {"locked", "writtenOffOutstanding"}:
        return format_amount(int(value))
    return value
