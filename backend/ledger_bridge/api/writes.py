"""Helpers for routes that accept write requests.

A write route validates its body, then calls `accept_write`, which stores the
request as an operation through the idempotency service and returns 202 with
`Location: /v1/operations/{id}`. The chain worker sends it later.
"""

from __future__ import annotations

from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from ledger_bridge.api.schemas import OperationOut
from ledger_bridge.core.security import Principal
from ledger_bridge.storage.operations import request_fingerprint, submit_operation

REPLAYED_HEADER = "Idempotent-Replayed"


def operation_location(operation_id: object) -> str:
    """Return the path where an operation can be read."""
    return f"/v1/operations/{operation_id}"


def accept_write(
    request: Request,
    response: Response,
    session: Session,
    principal: Principal,
    idempotency_key: str,
    kind: str,
    body: BaseModel,
    *,
    line_id: int | None = None,
    facility_address: str | None = None,
) -> OperationOut:
    """Store a validated write request, or find the one stored for its key, and describe it.

    The route must be declared with `status_code=202`. A replay of an earlier
    request gets the same body and the header `Idempotent-Replayed: true`.
    """
    payload = body.model_dump(mode="json")
    fingerprint = request_fingerprint(request.method, request.url.path, payload)
    result = submit_operation(
        session,
        principal,
        idempotency_key,
        kind,
        payload,
        fingerprint,
        line_id=line_id,
        facility_address=facility_address,
    )
    response.headers["Location"] = operation_location(result.operation.id)
    response.headers[REPLAYED_HEADER] = "false" if result.created else "true"
    return OperationOut.from_operation(result.operation)
