"""Values and checks shared by the bridge's tests."""

from __future__ import annotations

from typing import Any

import httpx

from ledger_bridge.api.problems import PROBLEM_MEDIA_TYPE

# Public test addresses (Anvil's default accounts 1 to 3) used as facility contracts and payees.
FACILITY_A = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
FACILITY_B = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"
PAYEE = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check that a response is an RFC 9457 problem with `status`, and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    problem = response.json()
    assert problem["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= problem.keys()
    return problem
