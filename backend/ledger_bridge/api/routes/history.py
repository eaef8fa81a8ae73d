"""A line's history: its events from the index, in chain order, with their on-chain positions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ledger_bridge.api.chain_access import (
    ChainDep,
    FacilityQuery,
    LineId,
    require_line,
    resolve_facility,
)
from ledger_bridge.api.deps import SessionDep, require_roles
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.api.schemas import EVENT_ARGS_DESCRIPTION, present_event_args
from ledger_bridge.chain.contracts import CREDIT_FACILITY, event_abis
from ledger_bridge.core.errors import InvalidRequestError
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.indexer.history import decode_cursor, line_history
from ledger_bridge.storage.models import ChainEvent

router = APIRouter(prefix="/v1/lines", tags=["bank", "auditor"])

HistoryReader = Annotated[Principal, Depends(require_roles(Role.BANK, Role.AUDITOR))]

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500


class HistoryEventOut(BaseModel):
    """One event of a line, with where to find it on chain."""

    block_number: int
    block_hash: str
    block_timestamp: datetime
    transaction_hash: str
    transaction_index: int
    log_index: int
    contract_address: str
    event: str = Field(examples=["LineDrawn"])
    args: dict[str, Any] = Field(description=EVENT_ARGS_DESCRIPTION)

    @classmethod
    def from_row(cls, row: ChainEvent) -> HistoryEventOut:
        """Build the response item from a stored event."""
        return cls(
            block_number=row.block_number,
            block_hash=row.block_hash,
            block_timestamp=row.block_timestamp,
            transaction_hash=row.transaction_hash,
            transaction_index=row.transaction_index,
            log_index=row.log_index,
            contract_address=row.contract_address,
            event=row.event,
            args=present_event_args(row.args),
        )


class LineHistoryOut(BaseModel):
    """A page of a line's events in chain order."""

    line_id: str
    facility_address: str
    indexed_through_block: int | None = Field(
        description="The last block whose events are all indexed; later events are not shown yet."
    )
    events: list[HistoryEventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to read the next page; null on the last page."
    )


@router.get(
    "/{line_id}/history",
    summary="Read a line's history from the event index",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def read_line_history(
    line_id: LineId,
    principal: HistoryReader,
    session: SessionDep,
    chain: ChainDep,
    facility: FacilityQuery = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    event: Annotated[
        list[str] | None, Query(description="Only these events; repeat to pass several.")
    ] = None,
) -> LineHistoryOut:
    """Return the line's indexed events ordered by block number and log index."""
    facility_address = resolve_facility(principal, chain, facility)
    event_names = _check_event_names(event or [])
    after = None if cursor is None else decode_cursor(cursor)
    page = line_history(
        session, facility_address, line_id, after=after, limit=limit, event_names=event_names
    )
    if not page.events and after is None:
        # Only an empty first page asks the chain, to tell an unknown line from an unindexed one.
        require_line(chain, facility_address, line_id)
    return LineHistoryOut(
        line_id=str(line_id),
        facility_address=facility_address,
        indexed_through_block=page.indexed_through_block,
        events=[HistoryEventOut.from_row(row) for row in page.events],
        next_cursor=page.next_cursor,
    )


def _check_event_names(names: list[str]) -> list[str]:
    known = event_abis(CREDIT_FACILITY)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise InvalidRequestError(
            "event",
            f"names unknown events {', '.join(repr(name) for name in unknown)}",
            f"Use names of the facility's events, such as {', '.join(sorted(known)[:4])}.",
        )
    return names
