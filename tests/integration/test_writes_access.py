"""Every write route rejects callers without the right with 401, 403 or 404, storing nothing.

The table below lists each write route with the role that may use it and a
valid body. `test_table_covers_every_write_route` compares it with the
app's routes, so a new write route fails the suite until it is added here.
The second bank's facility has no lines, drawdowns or pools, so every id of
the first bank's that it names must get 404. No rejected request may store
an operation, organisation or credential, or send a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.core.security import Role
from ledger_bridge.storage.models import Credential, Operation, Organisation

from .conftest import FIXTURE_REQUEST_IDS, Member, OpenLine, _transact
from .support import assert_problem
from .writes import confirm, hash_of, new_address, signer_nonces, submit

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INVOICE = "0x" + "ab" * 32
REASON = "0x" + "9d" * 32


@dataclass(frozen=True)
class WriteRoute:
    """A write route, who may use it, and a body that passes validation."""

    path: str
    role: Role
    body: dict[str, Any] | None = None
    # Whether the path or body names an id of the bank's own facility, so that another
    # bank's credential must get 404.
    scoped: bool = False
    method: str = "POST"


BANK, REGULATOR, ADMIN = Role.BANK, Role.REGULATOR, Role.ADMIN

WRITE_ROUTES = [
    WriteRoute(
        "/v1/applications",
        BANK,
        {
            "borrower": "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
            "application_hash": INVOICE,
            "limit": "1000.00",
            "rate_bps": 435,
            "maturity_date": "2099-12-31",
        },
    ),
    WriteRoute("/v1/lines/{line_id}/approve", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/reject", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/open", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/drawdowns", BANK, {"amount": "1.00"}, scoped=True),
    WriteRoute("/v1/lines/{line_id}/repayments", BANK, {"amount": "1.00"}, scoped=True),
    WriteRoute("/v1/lines/{line_id}/interest-repayments", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/payoff", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/limit-changes", BANK, {"limit": "2.00"}, scoped=True),
    WriteRoute("/v1/lines/{line_id}/limit-change-proposals", BANK, {"limit": "2.00"}, scoped=True),
    WriteRoute("/v1/lines/{line_id}/limit-change-proposals/approve", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/renewals", BANK, {"maturity_date": "2099-12-31"}, scoped=True),
    WriteRoute("/v1/lines/{line_id}/freeze", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/unfreeze", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/review-flag/clear", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/default", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/write-off", BANK, scoped=True),
    WriteRoute("/v1/lines/{line_id}/recoveries", BANK, {"amount": "1.00"}, scoped=True),
    WriteRoute("/v1/lines/{line_id}/close", BANK, scoped=True),
    WriteRoute(
        "/v1/lines/{line_id}/payout-delegates",
        BANK,
        {"delegate": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955", "allowed": True},
        scoped=True,
    ),
    WriteRoute(
        "/v1/drawdowns/{drawdown_id}/payouts",
        BANK,
        {"payee": "{address}", "amount": "1.00", "invoice_hash": INVOICE},
        scoped=True,
    ),
    WriteRoute(
        "/v1/payout-batches",
        BANK,
        {
            "payouts": [
                {
                    "drawdown_id": "{drawdown_id}",
                    "payee": "{address}",
                    "amount": "1.00",
                    "invoice_hash": INVOICE,
                }
            ]
        },
        scoped=True,
    ),
    WriteRoute("/v1/drawdowns/{drawdown_id}/repayments", BANK, {"amount": "1.00"}, scoped=True),
    WriteRoute("/v1/pools", BANK, {"limit": "1.00"}),
    WriteRoute("/v1/pools/{pool_id}/limit-changes", BANK, {"limit": "1.00"}, scoped=True),
    WriteRoute("/v1/pools/{pool_id}/members", BANK, {"line_id": "{line_id}"}, scoped=True),
    WriteRoute("/v1/pools/{pool_id}/members/{line_id}/remove", BANK, scoped=True),
    WriteRoute("/v1/liquidity/fundings", BANK, {"amount": "1.00"}),
    WriteRoute(
        "/v1/liquidity/withdrawals",
        BANK,
        {"to": "0x976EA74026E726554dB657fA54763abd0C3a0aa9", "amount": "1.00"},
    ),
    WriteRoute(
        "/v1/payees", BANK, {"address": "{address}", "category": 103, "documents_hash": INVOICE}
    ),
    WriteRoute("/v1/payees/{address}/category", BANK, {"category": 102}),
    WriteRoute("/v1/regulator/categories/{category}/block", REGULATOR, {"reason_hash": REASON}),
    WriteRoute("/v1/regulator/categories/{category}/unblock", REGULATOR),
    WriteRoute("/v1/regulator/payees/{address}/freeze", REGULATOR, {"reason_hash": REASON}),
    WriteRoute("/v1/regulator/payees/{address}/unfreeze", REGULATOR),
    WriteRoute("/v1/regulator/lines/{line_id}/freeze", REGULATOR, {"facility": "{facility}"}),
    WriteRoute("/v1/regulator/lines/{line_id}/unfreeze", REGULATOR, {"facility": "{facility}"}),
    WriteRoute("/v1/organisations", ADMIN, {"name": "Never stored", "kind": "auditor"}),
    WriteRoute("/v1/organisations/{organisation_id}/credentials", ADMIN),
    WriteRoute("/v1/credentials/{key_id}/rotate", ADMIN),
    WriteRoute("/v1/credentials/{key_id}/revoke", ADMIN),
]

# Credentials of roles other than the route's, each of which must get 403.
WRONG_ROLES = {
    BANK: ("auditor", "regulator", "admin"),
    REGULATOR: ("bank", "auditor", "admin"),
    ADMIN: ("bank", "auditor", "regulator"),
}


def access_cases() -> list[Any]:
    cases = []
    for route in WRITE_ROUTES:
        cases.append(pytest.param(route, None, 401, id=f"{route.path}-no-credential"))
        for caller in WRONG_ROLES[route.role]:
            cases.append(pytest.param(route, caller, 403, id=f"{route.path}-{caller}"))
        if route.scoped:
            cases.append(pytest.param(route, "other_bank", 404, id=f"{route.path}-other-bank"))
    return cases


@pytest.fixture(scope="module")
def targets(
    client: Any,
    bank: Member,
    other_bank: Member,
    auditor: Member,
    regulator: Member,
    admin: Member,
    open_line: OpenLine,
    w3: Web3,
    facility: Contract,
    line_applicant: str,
) -> dict[str, str]:
    """Ids that exist in the first bank's facility, to fill the paths and bodies with.

    It requests every member fixture, so that their organisations exist before any test
    counts the stored rows.
    """
    line_id = open_line(1_000_000)
    drawdown = facility.functions.drawdown(
        next(FIXTURE_REQUEST_IDS), line_id, 100, "0x" + "00" * 20, bytes(32)
    )
    receipt = _transact(w3, drawdown, line_applicant)
    drawdown_id = facility.events.FundsLocked().process_receipt(receipt)[0]["args"]["drawdownId"]
    pool = confirm(client, bank, "/v1/pools", {"limit": "100.00"})
    payee = new_address("access payee")
    payee_body = {"address": payee, "category": 103, "documents_hash": hash_of("access payee")}
    confirm(client, bank, "/v1/payees", payee_body)
    return {
        "line_id": str(line_id),
        "drawdown_id": str(drawdown_id),
        "pool_id": pool["result"]["ids"]["pool_id"],
        "address": payee,
        "category": "901",
        "facility": facility.address,
        "organisation_id": str(admin.organisation_id),
        "key_id": admin.credential.key_id,
    }


def fill(value: Any, targets: dict[str, str]) -> Any:
    """Replace "{name}" placeholders in a path or body; ids in bodies become integers."""
    if isinstance(value, dict):
        return {key: fill(item, targets) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, targets) for item in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        filled = targets[value[1:-1]]
        return int(filled) if filled.isdigit() else filled
    if isinstance(value, str):
        return value.format(**targets)
    return value


def stored_rows(session_factory: sessionmaker[Session]) -> tuple[int, int, int]:
    """Count what a write could store: operations, organisations and credentials."""
    with session_factory() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Operation, Organisation, Credential)
        )


def test_table_covers_every_write_route(client: Any) -> None:
    # iter_route_contexts walks included routers, as FastAPI's OpenAPI generator does.
    declared = {
        (method, context.path)
        for context in iter_route_contexts(client.app.routes)
        for method in (context.methods or set()) & WRITE_METHODS
    }
    tabled = {(route.method, route.path) for route in WRITE_ROUTES}

    assert declared - tabled == set(), "write routes missing from WRITE_ROUTES"
    assert tabled - declared == set(), "WRITE_ROUTES lists routes the app does not have"


@pytest.mark.parametrize(("route", "caller", "status"), access_cases())
def test_write_route_rejects_caller(
    route: WriteRoute,
    caller: str | None,
    status: int,
    request: pytest.FixtureRequest,
    client: Any,
    targets: dict[str, str],
    session_factory: sessionmaker[Session],
    w3: Web3,
    bridge_deployment: Deployment,
    second_facility: tuple[str, int],
) -> None:
    path = fill(route.path, targets)
    body = fill(route.body, targets)
    rows_before = stored_rows(session_factory)
    nonces_before = signer_nonces(w3, bridge_deployment)
    block_before = w3.eth.block_number

    if caller is None:
        headers = {"Idempotency-Key": "access-test", "Content-Type": "application/json"}
        response = client.request(route.method, path, json=body, headers=headers)
    else:
        member: Member = request.getfixturevalue(caller)
        response = submit(client, member, path, body, key="access-test")

    problem = assert_problem(response, status)
    if status == 404:
        # The second bank's facility was resolved and has no such id.
        assert second_facility[0] in problem["detail"]
    assert stored_rows(session_factory) == rows_before
    assert signer_nonces(w3, bridge_deployment) == nonces_before
    assert w3.eth.block_number == block_before
