"""Helpers for routes that accept write requests.

A write route takes a `BankWrite` or `RegulatorWrite` dependency, which
authenticates the caller, checks the role and reads the Idempotency-Key
header before the route's body runs. The route validates its body and the
resources it names, then calls `WriteContext.accept`, which stores the request
as an operation through the idempotency service and returns 202 with
`Location: /v1/operations/{id}`. The chain worker sends it later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from ledger_bridge.api.chain_access import LineId, get_chain, require_own_line
from ledger_bridge.api.deps import (
    BankPrincipal,
    IdempotencyKey,
    RegulatorPrincipal,
    SessionDep,
)
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.api.schemas import OPERATION_EXAMPLE, OperationOut, RequestBody
from ledger_bridge.chain.calls import OPERATION_CALLS, CallTarget
from ledger_bridge.chain.contracts import CREDIT_FACILITY, FUND_FLOW_RULES
from ledger_bridge.chain.runtime import ChainRuntime
from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.core.metrics import BridgeMetrics
from ledger_bridge.core.security import Principal
from ledger_bridge.storage.models import OperationState
from ledger_bridge.storage.operations import request_fingerprint, submit_operation

REPLAYED_HEADER = "Idempotent-Replayed"

# OpenAPI description of a write route's responses: 202 with the operation, or a problem.
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": (
            "Accepted: the request is stored as an operation. Poll the Location header until "
            "its state is confirmed or failed. A resent request with the same Idempotency-Key "
            "and body gets the same operation and `Idempotent-Replayed: true`."
        ),
        "headers": {
            "Location": {
                "description": "Path of the operation, /v1/operations/{id}.",
                "schema": {"type": "string"},
            },
            REPLAYED_HEADER: {
                "description": "true when an earlier request with the same key stored it.",
                "schema": {"type": "string", "enum": ["true", "false"]},
            },
        },
        "content": {"application/json": {"example": OPERATION_EXAMPLE}},
    },
    **problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
}


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
    body: BaseModel | Mapping[str, Any],
    *,
    line_id: int | None = None,
    facility_address: str | None = None,
    needs_request_id: bool = True,
) -> OperationOut:
    """Store a validated write request, or find the one stored for its key, and describe it.

    `body` is the validated request body, or a mapping that adds the values of
    the request path to it. The route must be declared with `status_code=202`.
    A replay of an earlier request gets the same body and the header
    `Idempotent-Replayed: true`.
    """
    payload = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)
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
        needs_request_id=needs_request_id,
    )
    response.headers["Location"] = operation_location(result.operation.id)
    response.headers[REPLAYED_HEADER] = "false" if result.created else "true"
    if result.created:
        metrics: BridgeMetrics | None = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            metrics.operations.record(kind, OperationState.ACCEPTED.value)
    return OperationOut.from_operation(result.operation)


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Everything a write route needs besides its body, resolved before the route runs."""

    request: Request
    response: Response
    principal: Principal
    idempotency_key: str
    session: Session
    chain: ChainRuntime

    def accept(
        self,
        kind: str,
        payload: BaseModel | Mapping[str, Any],
        *,
        facility_address: str | None,
        line_id: int | None = None,
    ) -> OperationOut:
        """Store the operation and wake the worker.

        Pass the facility the call goes to, whose request id the operation
        takes, or None for a call to the fund-flow rules, which takes none.
        """
        operation = accept_write(
            self.request,
            self.response,
            self.session,
            self.principal,
            self.idempotency_key,
            kind,
            payload,
            line_id=line_id,
            facility_address=facility_address,
            needs_request_id=facility_address is not None,
        )
        self.chain.wake_worker()
        return operation


# These dependencies do no I/O, so they are async and run on the event loop: each sync
# dependency would cost the request a trip through the threadpool. The route that uses them
# is sync and runs the database and node work in one worker thread.
async def _bank_write(
    request: Request,
    response: Response,
    principal: BankPrincipal,
    idempotency_key: IdempotencyKey,
    session: SessionDep,
) -> WriteContext:
    chain = get_chain(request)
    return WriteContext(request, response, principal, idempotency_key, session, chain)


async def _regulator_write(
    request: Request,
    response: Response,
    principal: RegulatorPrincipal,
    idempotency_key: IdempotencyKey,
    session: SessionDep,
) -> WriteContext:
    chain = get_chain(request)
    return WriteContext(request, response, principal, idempotency_key, session, chain)


# The parameter order above is the order of the checks: credential (401), role (403),
# Idempotency-Key header (400), then the chain connection (503) in the body.
BankWrite = Annotated[WriteContext, Depends(_bank_write)]
RegulatorWrite = Annotated[WriteContext, Depends(_regulator_write)]


class NoFields(RequestBody):
    """The body of an action that takes no fields: an empty JSON object, or no body at all."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{}]})


OptionalNoFields = Annotated[NoFields | None, Body()]


def write_route_extra(kind: str) -> dict[str, Any]:
    """Return OpenAPI extensions naming the operation kind, contract function and signer."""
    call = OPERATION_CALLS[kind]
    contract = FUND_FLOW_RULES if call.target is CallTarget.RULES else CREDIT_FACILITY
    return {
        "x-operation-kind": kind,
        "x-contract-function": f"{contract}.{call.function}",
        "x-signer": call.signer.value,
    }


def describe_write(kind: str, text: str) -> str:
    """Return a write route's description: `text`, then which key signs which function."""
    call = OPERATION_CALLS[kind]
    contract = FUND_FLOW_RULES if call.target is CallTarget.RULES else CREDIT_FACILITY
    if call.signer is SignerRole.REGULATOR:
        key = "the regulator's key"
    else:
        key = f"the bank's {call.signer.value.replace('_', ' ')} key"
    return f"{text}\n\nThe worker calls `{contract}.{call.function}`, signed with {key}."


def add_line_action(
    router: APIRouter, path: str, kind: str, *, summary: str, description: str
) -> None:
    """Register `POST {path}` for an action on one of the bank's lines that takes no fields."""

    def act_on_line(
        line_id: LineId, write: BankWrite, body: OptionalNoFields = None
    ) -> OperationOut:
        facility = require_own_line(write.principal, write.chain, line_id)
        return write.accept(kind, {}, facility_address=facility, line_id=line_id)

    router.add_api_route(
        path,
        act_on_line,
        methods=["POST"],
        status_code=202,
        summary=summary,
        description=describe_write(kind, description),
        responses=WRITE_RESPONSES,
        operation_id=kind,
        openapi_extra=write_route_extra(kind),
    )
