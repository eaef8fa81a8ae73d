"""Exactly-once intake of write requests through the Idempotency-Key header."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi import APIRouter, Request, Response, status
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.api.deps import BankPrincipal, IdempotencyKey, SessionDep
from ledger_bridge.api.schemas import OperationOut, RequestBody
from ledger_bridge.api.writes import accept_write
from ledger_bridge.app import create_app
from ledger_bridge.core.config import Settings
from ledger_bridge.core.errors import IdempotencyKeyError, IdempotencyKeyReusedError
from ledger_bridge.core.security import Principal
from ledger_bridge.money import Address, AmountStr
from ledger_bridge.storage.models import Operation, OperationState
from ledger_bridge.storage.operations import (
    request_fingerprint,
    submit_operation,
    validate_idempotency_key,
)
from ledger_bridge.storage.organisations import find_active_credential

from .conftest import Member
from .support import PAYEE, assert_problem

# The drawdown route is not built yet, so this module mounts a stand-in that
# validates a body and stores it through accept_write, which calls submit_operation.
drawdown_router = APIRouter(prefix="/probe")


class DrawdownBody(RequestBody):
    amount: AmountStr
    payee: Address


@drawdown_router.post("/lines/{line_id}/drawdowns", status_code=status.HTTP_202_ACCEPTED)
def submit_drawdown(
    line_id: int,
    body: DrawdownBody,
    request: Request,
    response: Response,
    principal: BankPrincipal,
    idempotency_key: IdempotencyKey,
    session: SessionDep,
) -> OperationOut:
    return accept_write(
        request, response, session, principal, idempotency_key, "drawdown", body, line_id=line_id
    )


@pytest.fixture
def probe(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(drawdown_router)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def post_drawdown(
    probe: TestClient,
    member: Member,
    key: str | None,
    body: dict[str, object] | None = None,
    line_id: int = 7,
):
    headers = dict(member.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return probe.post(
        f"/probe/lines/{line_id}/drawdowns",
        json=body or {"amount": "2500000.00", "payee": PAYEE},
        headers=headers,
    )


def count_operations(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Operation)) or 0


def principal_of(member: Member, session_factory: sessionmaker[Session]) -> Principal:
    with session_factory() as session:
        found = find_active_credential(session, member.credential.key_id)
    assert found is not None
    return found[1]


def test_first_request_is_accepted(probe: TestClient, bank: Member) -> None:
    response = post_drawdown(probe, bank, "key-1")

    assert response.status_code == 202
    operation = response.json()
    assert response.headers["Location"] == f"/v1/operations/{operation['id']}"
    assert response.headers["Idempotent-Replayed"] == "false"
    assert operation["state"] == "accepted"
    assert operation["kind"] == "drawdown"
    assert operation["line_id"] == "7"
    assert operation["request_id"] == 1
    assert operation["facility_address"] == bank.organisation.facility_address
    assert operation["payload"] == {"amount": "2500000.00", "payee": PAYEE}


def test_same_key_same_body_returns_same_operation(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    first = post_drawdown(probe, bank, "key-1")
    second = post_drawdown(probe, bank, "key-1")

    assert second.status_code == 202
    assert second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count_operations(session_factory) == 1


def test_equivalent_body_counts_as_same(probe: TestClient, bank: Member) -> None:
    first = post_drawdown(probe, bank, "key-1", {"amount": "5", "payee": PAYEE.lower()})
    second = post_drawdown(probe, bank, "key-1", {"payee": PAYEE, "amount": "5.00"})

    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"]


@pytest.mark.parametrize(
    ("body", "line_id"),
    [({"amount": "2500000.01", "payee": PAYEE}, 7), ({"amount": "2500000.00", "payee": PAYEE}, 8)],
    ids=["other-amount", "other-line"],
)
def test_same_key_different_request_is_rejected(
    probe: TestClient,
    bank: Member,
    session_factory: sessionmaker[Session],
    body: dict[str, object],
    line_id: int,
) -> None:
    first = post_drawdown(probe, bank, "key-1")
    second = post_drawdown(probe, bank, "key-1", body, line_id=line_id)

    problem = assert_problem(second, 422)
    assert problem["type"] == "urn:ledger-bridge:problem:idempotency-key-reused"
    assert "'key-1'" in problem["detail"]
    assert first.json()["id"] in problem["detail"]
    assert count_operations(session_factory) == 1


def test_keys_are_scoped_per_organisation(
    probe: TestClient, bank: Member, other_bank: Member
) -> None:
    first = post_drawdown(probe, bank, "shared-key")
    second = post_drawdown(probe, other_bank, "shared-key")

    assert second.status_code == 202
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["facility_address"] == other_bank.organisation.facility_address


def test_request_ids_follow_per_facility(
    probe: TestClient, bank: Member, other_bank: Member
) -> None:
    bank_ids = [post_drawdown(probe, bank, f"a-{n}").json()["request_id"] for n in range(3)]
    other_ids = [post_drawdown(probe, other_bank, f"b-{n}").json()["request_id"] for n in range(2)]

    assert bank_ids == [1, 2, 3]
    assert other_ids == [1, 2]


def test_replay_does_not_take_request_id(probe: TestClient, bank: Member) -> None:
    post_drawdown(probe, bank, "key-1")
    post_drawdown(probe, bank, "key-1")

    assert post_drawdown(probe, bank, "key-2").json()["request_id"] == 2


def test_missing_key_stores_nothing(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    response = post_drawdown(probe, bank, None)

    problem = assert_problem(response, 400)
    assert "requires an Idempotency-Key header" in problem["detail"]
    assert count_operations(session_factory) == 0


@pytest.mark.parametrize(
    "key", ["", "has space", "ключ", "a" * 129, "semi;colon", "slash/key"], ids=repr
)
def test_malformed_key_stores_nothing(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session], key: str
) -> None:
    headers = {**bank.headers, "Idempotency-Key": key}
    response = probe.post(
        "/probe/lines/7/drawdowns",
        json={"amount": "1.00", "payee": PAYEE},
        headers={name: value.encode() for name, value in headers.items()},
    )

    problem = assert_problem(response, 400)
    assert "1 to 128 characters" in problem["detail"]
    assert count_operations(session_factory) == 0


def test_invalid_body_stores_nothing(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    response = post_drawdown(probe, bank, "key-1", {"amount": 100, "payee": PAYEE})

    assert_problem(response, 422)
    assert count_operations(session_factory) == 0
    assert post_drawdown(probe, bank, "key-1").status_code == 202


def test_wrong_role_stores_nothing(
    probe: TestClient, auditor: Member, session_factory: sessionmaker[Session]
) -> None:
    assert_problem(post_drawdown(probe, auditor, "key-1"), 403)
    assert count_operations(session_factory) == 0


def test_concurrent_identical_requests_store_one_row(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    barrier = threading.Barrier(10)

    def send(_: int):
        barrier.wait()
        return post_drawdown(probe, bank, "concurrent-key")

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(send, range(10)))

    assert [response.status_code for response in responses] == [202] * 10
    assert len({response.json()["id"] for response in responses}) == 1
    assert count_operations(session_factory) == 1


def test_concurrent_service_calls_store_one_row(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    principal = principal_of(bank, session_factory)
    payload = {"amount": "1.00", "payee": PAYEE}
    fingerprint = request_fingerprint("POST", "/v1/lines/1/drawdowns", payload)
    barrier = threading.Barrier(10)

    def submit(_: int) -> tuple[uuid.UUID, bool]:
        barrier.wait()
        with session_factory() as session:
            result = submit_operation(
                session, principal, "service-key", "drawdown", payload, fingerprint, line_id=1
            )
            return result.operation.id, result.created

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(submit, range(10)))

    assert len({operation_id for operation_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert count_operations(session_factory) == 1


def test_service_rejects_floats_in_payload(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    principal = principal_of(bank, session_factory)

    with session_factory() as session, pytest.raises(TypeError, match=r"payload\.items\[0\]"):
        submit_operation(session, principal, "k", "drawdown", {"items": [1.5]}, "f" * 64)
    assert count_operations(session_factory) == 0


def test_service_validates_key(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    principal = principal_of(bank, session_factory)

    with session_factory() as session, pytest.raises(IdempotencyKeyError):
        submit_operation(session, principal, None, "drawdown", {}, "f" * 64)


def test_service_reports_reused_key(
    probe: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    principal = principal_of(bank, session_factory)
    with session_factory() as session:
        submit_operation(session, principal, "k", "drawdown", {"a": "1.00"}, "a" * 64)

    with session_factory() as session, pytest.raises(IdempotencyKeyReusedError):
        submit_operation(session, principal, "k", "drawdown", {"a": "2.00"}, "b" * 64)


def test_operation_without_facility_has_no_request_id(
    probe: TestClient, regulator: Member, session_factory: sessionmaker[Session]
) -> None:
    principal = principal_of(regulator, session_factory)
    with session_factory() as session:
        result = submit_operation(session, principal, "k", "freeze_payee", {}, "c" * 64)

    assert result.operation.request_id is None
    assert result.operation.facility_address is None
    assert result.operation.state is OperationState.ACCEPTED


@pytest.mark.parametrize("key", ["a", "A-Z_0.9:x", "a" * 128, str(uuid.uuid4())])
def test_validate_idempotency_key_accepts(key: str) -> None:
    assert validate_idempotency_key(key) == key


def test_fingerprint_ignores_key_order() -> None:
    first = request_fingerprint("post", "/v1/x", {"a": "1", "b": {"c": 2, "d": 3}})
    second = request_fingerprint("POST", "/v1/x", {"b": {"d": 3, "c": 2}, "a": "1"})

    assert first == second
    assert len(first) == 64


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("PUT", "/v1/x", {"a": "1"}), ("POST", "/v1/y", {"a": "1"}), ("POST", "/v1/x", {"a": "2"})],
)
def test_fingerprint_covers_method_path_body(method: str, path: str, body: dict[str, str]) -> None:
    assert request_fingerprint(method, path, body) != request_fingerprint(
        "POST", "/v1/x", {"a": "1"}
    )
