"""The regulator's reports on SQLite and PostgreSQL, on an app and chain of their own.

The JSON conditions of these queries (the payee of a payout, the error of a
refused operation) are written differently by each database, so every report
runs on both. Refused operations are stored directly, as the worker stores
them, because this app runs without a worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.core.security import Role
from ledger_bridge.storage.models import Operation, OperationState
from ledger_bridge.storage.organisations import create_organisation

from .conftest import Member
from .indexer_support import (
    PrivateChain,
    create_member,
    database_params,
    fresh_database,
    private_app,
    wait_until_indexed,
)

ALLOWED_CATEGORY = 101
BLOCKED_CATEGORY = 901


@dataclass(frozen=True)
class Scenario:
    chain: PrivateChain
    payee: str
    other_payee: str
    blocked_payee: str
    line_id: int


@dataclass(frozen=True)
class ReportApp:
    client: Any
    sessions: sessionmaker[Session]
    regulator: Member


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    chain = PrivateChain.start(tmp_path_factory.mktemp("regulator-chain"))
    try:
        payee = chain.register_payee(ALLOWED_CATEGORY)
        other_payee = chain.register_payee(ALLOWED_CATEGORY)
        blocked_payee = chain.register_payee(BLOCKED_CATEGORY)
        line_id = chain.open_line()
        chain.draw_entrusted(line_id, 30_000, payee)
        chain.draw_entrusted(line_id, 40_000, other_payee)
        drawdown_id = chain.draw_locked(line_id, 90_000)
        chain.pay_from_locked(drawdown_id, payee, 25_000)
        chain.block_category(BLOCKED_CATEGORY)
        yield Scenario(chain, payee, other_payee, blocked_payee, line_id)
    finally:
        chain.stop()


@pytest.fixture(scope="module", params=database_params())
def app(
    request: pytest.FixtureRequest, scenario: Scenario, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ReportApp]:
    for url in fresh_database(request.param, tmp_path_factory.mktemp("regulator-db")):
        with private_app(scenario.chain, url) as client:
            sessions = client.app.state.session_factory
            wait_until_indexed(sessions, scenario.chain.w3.eth.block_number)
            yield ReportApp(client, sessions, create_member(sessions, Role.REGULATOR))


def store_failed_operation(
    sessions: sessionmaker[Session], scenario: Scenario, error: str, args: dict[str, Any]
) -> uuid.UUID:
    """Store a drawdown operation that failed with `error`, as the worker stores one."""
    with sessions() as session:
        # Any organisation with a credential satisfies the operation's foreign keys.
        owner = create_organisation(
            session, name=f"owner {uuid.uuid4().hex[:8]}", kind=Role.AUDITOR, facility_address=None
        )
        operation = Operation(
            organisation_id=owner.organisation.id,
            credential_key_id=owner.credential.key_id,
            idempotency_key=f"refused-{uuid.uuid4()}",
            request_fingerprint="0" * 64,
            kind="drawdown",
            line_id=scenario.line_id,
            facility_address=scenario.chain.facility.address,
            payload={"amount": "10.00", "payee": args.get("payee"), "invoice_hash": None},
            state=OperationState.FAILED,
            revert={"error": error, "args": args, "message": f"{error}: made up for the test"},
        )
        session.add(operation)
        session.commit()
        return operation.id


def get_json(app: ReportApp, path: str, **params: Any) -> dict[str, Any]:
    response = app.client.get(path, params=params, headers=app.regulator.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_payouts_filter_by_payee(app: ReportApp, scenario: Scenario) -> None:
    page = get_json(app, "/v1/regulator/payouts", payee=scenario.payee.lower())

    assert [(item["payment"], item["amount"]) for item in page["payouts"]] == [
        ("entrusted", "300.00"),
        ("locked", "250.00"),
    ]
    assert {item["payee"] for item in page["payouts"]} == {scenario.payee}


def test_refused_payouts_select_rule_errors(app: ReportApp, scenario: Scenario) -> None:
    blocked = store_failed_operation(
        app.sessions,
        scenario,
        "FundFlowCategoryBlocked",
        {"payee": scenario.blocked_payee, "category": str(BLOCKED_CATEGORY)},
    )
    frozen = store_failed_operation(
        app.sessions,
        scenario,
        "CreditLineFrozen",
        {"lineId": str(scenario.line_id), "frozenByBank": False, "frozenByRegulator": True},
    )
    store_failed_operation(
        app.sessions,
        scenario,
        "CreditLimitExceeded",
        {"lineId": str(scenario.line_id), "available": "0", "requested": "1000"},
    )

    page = get_json(app, "/v1/regulator/refused-payouts")

    refused = {item["operation_id"]: item for item in page["refused"]}
    assert set(refused) == {str(blocked), str(frozen)}
    assert refused[str(blocked)]["category"] == BLOCKED_CATEGORY
    assert refused[str(blocked)]["payee"] == scenario.blocked_payee
    assert refused[str(frozen)]["rule"] == "CreditLineFrozen"


def test_rules_and_verification(app: ReportApp, scenario: Scenario) -> None:
    rules = get_json(app, "/v1/regulator/rules")
    report = get_json(app, "/v1/regulator/verification")

    assert [item["category"] for item in rules["blocked_categories"]] == [BLOCKED_CATEGORY]
    assert rules["registered_payees"] == 3
    assert rules["rules_version"] == 4
    assert report["compliant"] is True, report
    assert report["payouts_checked"] == 3
    assert report["facilities"][0]["total_locked"] == "650.00"
