"""Query parameters, response items and exports shared by the routes that read the event index."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.api.schemas import EVENT_ARGS_DESCRIPTION, present_event_args
from ledger_bridge.chain.contracts import CREDIT_FACILITY, event_abis
from ledger_bridge.core.errors import InvalidRequestError
from ledger_bridge.indexer.history import (
    ChainPosition,
    EventFilter,
    decode_cursor,
    index_progress,
    iterate_events,
)
from ledger_bridge.storage.models import ChainEvent

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# Block numbers are stored as signed 64-bit integers.
MAX_BLOCK_NUMBER = 2**63 - 1


class EventOut(BaseModel):
    """One indexed event, with where to find it on chain."""

    block_number: int
    block_hash: str
    block_timestamp: datetime
    transaction_hash: str
    transaction_index: int
    log_index: int
    contract_address: str
    event: str = Field(examples=["LineDrawn"])
    line_id: str | None = Field(description="The event's line id as a decimal string, if any.")
    confirmed: bool = Field(
        description=(
            "Whether the block had the configured number of confirmations when the indexer "
            "last checked. Unconfirmed events may still disappear in a reorganisation."
        )
    )
    args: dict[str, Any] = Field(description=EVENT_ARGS_DESCRIPTION)

    @classmethod
    def from_row(cls, row: ChainEvent) -> EventOut:
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
            line_id=None if row.line_id is None else str(row.line_id),
            confirmed=row.confirmed,
            args=present_event_args(row.args),
        )


class IndexMarks(BaseModel):
    """How far the index reaches."""

    indexed_through_block: int | None = Field(
        description="The last block whose events are all indexed. Later events are not shown yet."
    )
    confirmed_through_block: int | None = Field(
        description="The last block whose events are marked confirmed."
    )


class EventsPage(IndexMarks):
    """A page of events in chain order: by block number, then log index."""

    events: list[EventOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to read the next page, or null on the last page."
    )


class ExportFormat(StrEnum):
    """Formats of an export."""

    CSV = "csv"
    NDJSON = "ndjson"


CSV_COLUMNS = (
    "block_number",
    "block_hash",
    "block_timestamp",
    "transaction_hash",
    "transaction_index",
    "log_index",
    "contract_address",
    "event",
    "line_id",
    "confirmed",
    "args",
)
MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.NDJSON: "application/x-ndjson",
}


def event_filter(
    event: Annotated[
        list[str] | None,
        Query(description="Only events with these names. Repeat the parameter to pass several."),
    ] = None,
    from_block: Annotated[
        int | None, Query(ge=0, le=MAX_BLOCK_NUMBER, description="First block, inclusive.")
    ] = None,
    to_block: Annotated[
        int | None, Query(ge=0, le=MAX_BLOCK_NUMBER, description="Last block, inclusive.")
    ] = None,
    from_time: Annotated[
        datetime | None,
        Query(description="Earliest block time, inclusive, as ISO 8601 with a UTC offset."),
    ] = None,
    to_time: Annotated[
        datetime | None,
        Query(description="Block time to stop before, as ISO 8601 with a UTC offset."),
    ] = None,
    confirmed_only: Annotated[
        bool, Query(description="Leave out events that are not confirmed yet.")
    ] = False,
) -> EventFilter:
    """Validate the filter parameters of an event query."""
    names = check_event_names(event or [])
    if from_block is not None and to_block is not None and from_block > to_block:
        raise InvalidRequestError(
            "from_block",
            f"is {from_block}, after to_block {to_block}",
            "Send a from_block at or below to_block.",
        )
    for name, moment in (("from_time", from_time), ("to_time", to_time)):
        if moment is not None and moment.utcoffset() is None:
            raise InvalidRequestError(
                name,
                f"is {moment.isoformat()}, which has no UTC offset",
                "Add the offset, such as 2026-12-05T08:00:00+08:00 or 2026-12-05T00:00:00Z.",
            )
    if from_time is not None and to_time is not None and from_time >= to_time:
        raise InvalidRequestError(
            "from_time",
            f"is {from_time.isoformat()}, not before to_time {to_time.isoformat()}",
            "Send a from_time before to_time.",
        )
    return EventFilter(
        event_names=names,
        from_block=from_block,
        to_block=to_block,
        from_time=from_time,
        to_time=to_time,
        confirmed_only=confirmed_only,
    )


def page_cursor(
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page, unchanged.")
    ] = None,
) -> ChainPosition | None:
    """Decode the cursor parameter, or raise InvalidCursorError for one this API did not issue."""
    return None if cursor is None else decode_cursor(cursor)


PageLimit = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description="Events per page, at most 500.")
]


def check_event_names(names: list[str]) -> list[str]:
    """Return the names unchanged, or raise InvalidRequestError for a name no facility emits."""
    known = event_abis(CREDIT_FACILITY)
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise InvalidRequestError(
            "event",
            f"names unknown events {', '.join(repr(name) for name in unknown)}",
            f"Use names of the facility's events, such as {', '.join(sorted(known)[:4])}.",
        )
    return names


def export_response(
    request: Request,
    scope: ColumnElement[bool],
    filters: EventFilter,
    export_format: ExportFormat,
    filename: str,
) -> StreamingResponse:
    """Stream every event in scope, up to the block the index had reached when the export began.

    The request is validated before the first byte is sent, because a
    failure after that can only cut the stream short.
    """
    session_factory: sessionmaker[Session] = request.app.state.session_factory
    encode = _csv_line if export_format is ExportFormat.CSV else _ndjson_line

    def lines() -> Iterator[str]:
        with session_factory() as session:
            through = index_progress(session).indexed_through_block
            if export_format is ExportFormat.CSV:
                yield _csv_row(CSV_COLUMNS)
            if through is None:
                return
            for row in iterate_events(session, scope, filters, through_block=through):
                yield encode(EventOut.from_row(row))

    return StreamingResponse(
        lines(),
        media_type=MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}.{export_format}"'},
    )


def _ndjson_line(item: EventOut) -> str:
    return item.model_dump_json() + "\n"


def _csv_line(item: EventOut) -> str:
    values = item.model_dump(mode="json")
    values["args"] = json.dumps(values["args"], sort_keys=True, separators=(",", ":"))
    values["confirmed"] = "true" if item.confirmed else "false"
    return _csv_row(["" if values[name] is None else values[name] for name in CSV_COLUMNS])


def _csv_row(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


ExportFormatQuery = Annotated[
    ExportFormat, Query(alias="format", description="csv or ndjson (one JSON object per line).")
]
