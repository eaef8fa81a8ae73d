"""Exactly-once intake of write requests.

A write request is stored as an operation, with its on-chain request id,
in one committed transaction before anything is sent to the chain. The
Idempotency-Key header makes a resent request return the stored operation
instead of creating a second one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger_bridge.core.errors import (
    IdempotencyKeyError,
    IdempotencyKeyReusedError,
    InvalidStateTransitionError,
    NotFoundError,
)
from ledger_bridge.core.security import Principal
from ledger_bridge.storage.db import begin_write
from ledger_bridge.storage.models import (
    OPERATION_TRANSITIONS,
    Operation,
    OperationState,
    RequestIdSequence,
)

logger = logging.getLogger(__name__)

IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# A unique violation means another transaction stored the same key or created
# the same sequence row first, and the next attempt reads what it stored.
_SUBMIT_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The stored operation, and whether this call created it or found it from an earlier call."""

    operation: Operation
    created: bool


def validate_idempotency_key(value: str | None) -> str:
    """Return the key if it has 1 to 128 characters of A-Z a-z 0-9 . _ : -, else raise."""
    if value is None or IDEMPOTENCY_KEY_PATTERN.fullmatch(value) is None:
        raise IdempotencyKeyError(value)
    return value


def request_fingerprint(method: str, path: str, body: Mapping[str, Any]) -> str:
    """Return the SHA-256 hex of the canonical JSON of a request's method, path and body.

    Pass the validated body (`model.model_dump(mode="json")`), so that requests
    that differ only in JSON whitespace, key order or amount notation such as
    "5" and "5.00" get the same fingerprint.
    """
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_operation(
    session: Session,
    principal: Principal,
    idempotency_key: str | None,
    kind: str,
    payload: Mapping[str, Any],
    fingerprint: str,
    *,
    line_id: int | None = None,
    facility_address: str | None = None,
    needs_request_id: bool = True,
) -> SubmitResult:
    """Store a write request as an operation and commit, or return the one stored for the key.

    The operation takes the next request id of `facility_address`, which
    defaults to the principal's facility. An operation without a facility gets
    no request id, and so does one with `needs_request_id` off, which is for
    calls to a contract other than a facility. A key that was used before
    with the same fingerprint returns the earlier operation, and with another
    fingerprint it raises IdempotencyKeyReusedError. Concurrent calls with
    one key store one row.
    """
    key = validate_idempotency_key(idempotency_key)
    _reject_floats(payload, "payload")
    facility = (facility_address or principal.facility_address) if needs_request_id else None
    for attempt in range(1, _SUBMIT_ATTEMPTS + 1):
        begin_write(session)
        existing = _find_by_key(session, principal.organisation_id, key)
        if existing is not None:
            session.commit()
            return _replay(existing, key, fingerprint)
        try:
            operation = _insert_operation(
                session, principal, key, kind, dict(payload), fingerprint, line_id, facility
            )
            session.commit()
        except IntegrityError:
            session.rollback()
            logger.info("Retrying operation with key %r after a concurrent insert", key)
            if attempt == _SUBMIT_ATTEMPTS:
                raise
            continue
        _log_stored(operation)
        return SubmitResult(operation=operation, created=True)
    raise AssertionError("unreachable: the loop returns or raises")


def get_operation(session: Session, principal: Principal, operation_id: uuid.UUID) -> Operation:
    """Return an operation of the principal's organisation, or raise NotFoundError.

    Operations of other organisations are reported as not found, so their ids
    reveal nothing.
    """
    operation = session.get(Operation, operation_id)
    if operation is None or operation.organisation_id != principal.organisation_id:
        raise NotFoundError("operation", operation_id)
    return operation


def count_operations_by_state(session: Session) -> dict[OperationState, int]:
    """Return how many operations are in each state, with zero for empty states."""
    rows = session.execute(select(Operation.state, func.count()).group_by(Operation.state)).all()
    counts = dict.fromkeys(OperationState, 0)
    counts.update({state: count for state, count in rows})
    return counts


def transition_operation(operation: Operation, new_state: OperationState) -> None:
    """Set an operation's state, or raise InvalidStateTransitionError if it cannot go there."""
    if new_state not in OPERATION_TRANSITIONS[operation.state]:
        raise InvalidStateTransitionError(operation.id, operation.state.value, new_state.value)
    operation.state = new_state


def allocate_request_id(session: Session, facility_address: str) -> int:
    """Take the next request id of a facility inside the session's transaction.

    The increment commits or rolls back with the operation that uses it, so
    ids have no gaps. On PostgreSQL the row lock queues concurrent callers.

    NOTE: the sequence lives in this database only. A new database pointed at a
    chain whose facility already accepted requests must have its sequence
    advanced past the highest request id used, or the contract rejects the ids.
    """
    statement = (
        update(RequestIdSequence)
        .where(RequestIdSequence.facility_address == facility_address)
        .values(next_request_id=RequestIdSequence.next_request_id + 1)
        .returning(RequestIdSequence.next_request_id)
    )
    incremented = session.scalar(statement)
    if incremented is not None:
        return incremented - 1
    session.execute(
        insert(RequestIdSequence).values(facility_address=facility_address, next_request_id=2)
    )
    return 1


def _find_by_key(session: Session, organisation_id: uuid.UUID, key: str) -> Operation | None:
    query = select(Operation).where(
        Operation.organisation_id == organisation_id, Operation.idempotency_key == key
    )
    return session.scalar(query)


def _replay(existing: Operation, key: str, fingerprint: str) -> SubmitResult:
    if existing.request_fingerprint != fingerprint:
        raise IdempotencyKeyReusedError(key, existing.id)
    logger.debug("Returning stored operation %s for key %r", existing.id, key)
    return SubmitResult(operation=existing, created=False)


def _insert_operation(
    session: Session,
    principal: Principal,
    key: str,
    kind: str,
    payload: dict[str, Any],
    fingerprint: str,
    line_id: int | None,
    facility: str | None,
) -> Operation:
    request_id = None if facility is None else allocate_request_id(session, facility)
    operation = Operation(
        organisation_id=principal.organisation_id,
        credential_key_id=principal.key_id,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        kind=kind,
        line_id=line_id,
        facility_address=facility,
        request_id=request_id,
        payload=payload,
        state=OperationState.ACCEPTED,
    )
    session.add(operation)
    session.flush()
    return operation


def _log_stored(operation: Operation) -> None:
    logger.info(
        "Accepted %s operation %s for organisation %s with request id %s",
        operation.kind,
        operation.id,
        operation.organisation_id,
        operation.request_id,
    )


def _reject_floats(value: Any, path: str) -> None:
    """Raise TypeError if a float hides anywhere in a payload, because floats lose fen."""
    if isinstance(value, float):
        raise TypeError(f"{path} is a float. Store amounts as decimal strings or ints of fen.")
    if isinstance(value, Mapping):
        for name, item in value.items():
            _reject_floats(item, f"{path}.{name}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _reject_floats(item, f"{path}[{index}]")
