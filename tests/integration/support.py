"""Polling and checks shared by the integration tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.api.problems import PROBLEM_MEDIA_TYPE
from ledger_bridge.storage.models import Operation

FINAL_STATES = frozenset({"confirmed", "failed"})
WAIT_SECONDS = 30.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    """Call `check` until it returns a truthy value, and return that value."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_for_final(client: Any, location: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """Poll an operation until it is confirmed or failed, and return its body."""

    def final_body() -> dict[str, Any] | None:
        response = client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return body if body["state"] in FINAL_STATES else None

    return wait_for(final_body, f"operation {location} to become final")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check that a response is an RFC 9457 problem with `status`, and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= problem.keys()
    return problem


def count_operations(session_factory: sessionmaker[Session]) -> int:
    """Return how many operations the bridge has stored."""
    with session_factory() as session:
        return session.scalar(select(func.count()).select_from(Operation)) or 0
