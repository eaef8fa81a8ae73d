"""GET /v1/operations/{id}: an organisation reads the progress of its own operations."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.core.errors import InvalidStateTransitionError
from ledger_bridge.storage.models import Operation, OperationState, utcnow
from ledger_bridge.storage.operations import (
    request_fingerprint,
    submit_operation,
    transition_operation,
)
from ledger_bridge.storage.organisations import find_active_credential

from .conftest import Member
from .support import PAYEE, assert_problem


def store_operation(session_factory: sessionmaker[Session], member: Member, key: str) -> uuid.UUID:
    payload = {"amount": "120.50", "payee": PAYEE}
    with session_factory() as session:
        found = find_active_credential(session, member.credential.key_id)
        assert found is not None
        fingerprint = request_fingerprint("POST", "/v1/lines/3/drawdowns", payload)
        result = submit_operation(
            session, found[1], key, "drawdown", payload, fingerprint, line_id=3
        )
        return result.operation.id


def test_read_own_operation(
    client: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    operation_id = store_operation(session_factory, bank, "key-1")

    response = client.get(f"/v1/operations/{operation_id}", headers=bank.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(operation_id)
    assert body["state"] == "accepted"
    assert body["line_id"] == "3"
    assert body["request_id"] == 1
    assert body["idempotency_key"] == "key-1"
    assert body["payload"] == {"amount": "120.50", "payee": PAYEE}
    assert body["tx_hash"] is None
    assert body["revert"] is None
    assert body["created_at"].endswith(("Z", "+00:00"))


def test_read_failed_operation_shows_revert(
    client: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    operation_id = store_operation(session_factory, bank, "key-1")
    revert = {
        "error": "LedgerLimitExceeded",
        "args": {"lineId": "3", "limit": "100.00", "requested": "120.50"},
        "message": "Line 3 has 100.00 of room; the drawdown asked for 120.50.",
    }
    with session_factory() as session:
        operation = session.get_one(Operation, operation_id)
        transition_operation(operation, OperationState.SENDING)
        transition_operation(operation, OperationState.SENT)
        operation.tx_hash = "0x" + "ab" * 32
        operation.block_number = 1234
        operation.block_hash = "0x" + "cd" * 32
        operation.nonce = 5
        operation.sent_at = utcnow()
        transition_operation(operation, OperationState.FAILED)
        operation.revert = revert
        session.commit()

    body = client.get(f"/v1/operations/{operation_id}", headers=bank.headers).json()

    assert body["state"] == "failed"
    assert body["tx_hash"] == "0x" + "ab" * 32
    assert body["block_number"] == 1234
    assert body["nonce"] == 5
    assert body["revert"] == revert


def test_other_organisation_gets_404(
    client: TestClient,
    bank: Member,
    other_bank: Member,
    auditor: Member,
    session_factory: sessionmaker[Session],
) -> None:
    operation_id = store_operation(session_factory, bank, "key-1")

    for member in (other_bank, auditor):
        response = client.get(f"/v1/operations/{operation_id}", headers=member.headers)

        problem = assert_problem(response, 404)
        assert str(operation_id) in problem["detail"]


def test_unknown_operation_is_404(client: TestClient, bank: Member) -> None:
    assert_problem(client.get(f"/v1/operations/{uuid.uuid4()}", headers=bank.headers), 404)


def test_malformed_operation_id_is_422(client: TestClient, bank: Member) -> None:
    problem = assert_problem(client.get("/v1/operations/not-a-uuid", headers=bank.headers), 422)

    assert problem["errors"][0]["field"] == "path.operation_id"


def test_read_requires_credential(client: TestClient) -> None:
    assert_problem(client.get(f"/v1/operations/{uuid.uuid4()}"), 401)


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ([OperationState.SENDING, OperationState.SENT, OperationState.CONFIRMED], True),
        ([OperationState.SENDING, OperationState.ACCEPTED, OperationState.SENDING], True),
        ([OperationState.FAILED], True),
        ([OperationState.CONFIRMED], False),
        ([OperationState.SENT], False),
        ([OperationState.FAILED, OperationState.ACCEPTED], False),
    ],
    ids=["happy", "retry-send", "reject-early", "skip-to-confirmed", "skip-sending", "reopen"],
)
def test_transition_operation(path: list[OperationState], allowed: bool) -> None:
    operation = Operation(id=uuid.uuid4(), state=OperationState.ACCEPTED)

    def walk() -> None:
        for state in path:
            transition_operation(operation, state)

    if allowed:
        walk()
        assert operation.state is path[-1]
    else:
        with pytest.raises(InvalidStateTransitionError):
            walk()
