"""Liveness, readiness with registered checks, and Prometheus metrics."""

from __future__ import annotations

import time

import anyio
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.storage.operations import submit_operation
from ledger_bridge.storage.organisations import find_active_credential

from .conftest import Member


def test_health(client: TestClient) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_with_database(client: TestClient) -> None:
    response = client.get("/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": {"status": "ok"}}}


def test_ready_reports_failed_check(client: TestClient) -> None:
    def chain_unreachable() -> None:
        raise ConnectionError("node at 127.0.0.1:8545 refused the connection")

    client.app.state.readiness.register("chain", chain_unreachable)

    response = client.get("/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["chain"] == {"status": "failed", "error": "ConnectionError"}


def test_ready_times_out_slow_check(client: TestClient) -> None:
    async def hangs() -> None:
        await anyio.sleep(60)

    client.app.state.readiness.register("worker", hangs)
    started = time.monotonic()

    response = client.get("/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["error"] == "TimeoutError"
    assert time.monotonic() - started < 30


def test_metrics_count_operations_by_state(
    client: TestClient, bank: Member, session_factory: sessionmaker[Session]
) -> None:
    with session_factory() as session:
        found = find_active_credential(session, bank.credential.key_id)
        assert found is not None
        for n in range(2):
            submit_operation(session, found[1], f"key-{n}", "drawdown", {}, f"{n}" * 64)
    client.get("/health")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'ledger_bridge_operations{state="accepted"} 2.0' in text
    assert 'ledger_bridge_operations{state="confirmed"} 0.0' in text
    assert 'ledger_bridge_http_requests_total{method="GET",route="/health",status="200"}' in text


def test_metrics_label_unmatched_routes(client: TestClient) -> None:
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")

    text = client.get("/metrics").text

    assert 'route="unmatched",status="404"' in text
    assert "/no/such/path" not in text


def test_openapi_documents_api(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert document["info"]["title"] == "Ledger bridge"
    assert "/v1/operations/{operation_id}" in document["paths"]
    assert "credential" in document["components"]["securitySchemes"]
