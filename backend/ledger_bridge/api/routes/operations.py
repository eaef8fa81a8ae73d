"""Reading operations: the state of a write request on its way to the chain."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from ledger_bridge.api.deps import AnyPrincipal, SessionDep
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.api.schemas import OperationOut
from ledger_bridge.storage.operations import get_operation

router = APIRouter(prefix="/v1/operations", tags=["bank", "auditor", "regulator", "admin"])


@router.get(
    "/{operation_id}",
    summary="Read an operation of your organisation",
    responses=problem_responses(401, 404, 422),
)
def read_operation(
    operation_id: uuid.UUID, principal: AnyPrincipal, session: SessionDep
) -> OperationOut:
    """Return the operation's state, transaction hash, block and decoded revert, if any."""
    return OperationOut.from_operation(get_operation(session, principal, operation_id))
