"""The regulator's reports on the session's app: rules in force, payouts, refusals, verification.

The module registers payees in category codes of its own, pays some of
them, then blocks one category, freezes a payee and a line, and sends the
bridge drawdown requests that those locks reject. At the end it lifts the
category block, so other tests on this chain see the rules they expect.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from ledger_bridge.chain.deployment import Deployment

from .conftest import Member
from .indexer_support import ChainActor, shared_chain_actor, wait_until_indexed
from .support import assert_problem, wait_for_final

INVOICE_HASH = "0x" + "4d" * 32


@dataclass(frozen=True)
class Regulated:
    allowed_category: int
    blocked_category: int
    payee: str
    blocked_payee: str
    frozen_payee: str
    line_id: int
    frozen_line_id: int
    block_number: int  # the block of the CategoryBlocked event
    refused: dict[str, dict[str, Any]]  # operation bodies by the error that rejected them


@pytest.fixture(scope="module")
def actor(w3: Web3, deployment: Deployment, line_applicant: str) -> ChainActor:
    return shared_chain_actor(w3, deployment, line_applicant)


def request_drawdown(client: Any, bank: Member, line_id: int, payee: str) -> dict[str, Any]:
    headers = {**bank.headers, "Idempotency-Key": f"regulator-{uuid.uuid4()}"}
    body = {"amount": "10.00", "payee": payee, "invoice_hash": INVOICE_HASH}
    response = client.post(f"/v1/lines/{line_id}/drawdowns", json=body, headers=headers)
    assert response.status_code == 202, response.text
    return wait_for_final(client, response.headers["Location"], bank.headers)


@pytest.fixture(scope="module")
def regulated(
    actor: ChainActor,
    client: Any,
    bank: Member,
    w3: Web3,
    session_factory: sessionmaker[Session],
) -> Iterator[Regulated]:
    # Codes far from the documented ones, so no other test's payees are affected.
    allowed, blocked = random.sample(range(70_000, 80_000), 2)

    payee = actor.register_payee(allowed)
    blocked_payee = actor.register_payee(blocked)
    frozen_payee = actor.register_payee(allowed)
    line_id = actor.open_line(10_000_000)
    actor.draw_entrusted(line_id, 12_345, payee)
    drawdown_id = actor.draw_locked(line_id, 50_000)
    actor.pay_from_locked(drawdown_id, payee, 20_000)

    receipt = actor.block_category(blocked)
    actor.freeze_payee(frozen_payee)
    frozen_line_id = actor.open_line(1_000_000)
    actor.regulator_freeze_line(frozen_line_id)

    refused = {
        "FundFlowCategoryBlocked": request_drawdown(client, bank, line_id, blocked_payee),
        "FundFlowPayeeFrozen": request_drawdown(client, bank, line_id, frozen_payee),
        "CreditLineFrozen": request_drawdown(client, bank, frozen_line_id, payee),
    }
    wait_until_indexed(session_factory, w3.eth.block_number)
    try:
        yield Regulated(
            allowed_category=allowed,
            blocked_category=blocked,
            payee=payee,
            blocked_payee=blocked_payee,
            frozen_payee=frozen_payee,
            line_id=line_id,
            frozen_line_id=frozen_line_id,
            block_number=receipt["blockNumber"],
            refused=refused,
        )
    finally:
        actor.unblock_category(blocked)


def get_json(client: Any, member: Member, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=member.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_rules_in_force_come_from_events(
    client: Any, regulator: Member, regulated: Regulated, actor: ChainActor
) -> None:
    rules = get_json(client, regulator, "/v1/regulator/rules")

    blocked = {item["category"]: item for item in rules["blocked_categories"]}
    assert blocked[regulated.blocked_category]["since"]["block_number"] == regulated.block_number
    frozen_payees = {item["payee"]: item for item in rules["frozen_payees"]}
    assert frozen_payees[regulated.frozen_payee]["category"] == regulated.allowed_category
    assert frozen_payees[regulated.frozen_payee]["reason_hash"] == "0x" + "88" * 32
    frozen_lines = {
        (item["facility_address"], item["line_id"]): item for item in rules["frozen_lines"]
    }
    frozen_line = frozen_lines[(actor.facility.address, str(regulated.frozen_line_id))]
    assert frozen_line["by_regulator"] is True
    assert frozen_line["by_bank"] is False
    assert len(rules["facility_policies"]) == 2
    assert {item["entrusted_threshold"] for item in rules["facility_policies"]} == {"1000000.00"}
    on_chain = actor.rules.functions.rulesVersion().call(block_identifier=rules["as_of_block"])
    assert rules["rules_version"] == on_chain
    assert rules["registered_payees"] >= 3


def test_rules_before_a_block_leave_out_later_changes(
    client: Any, auditor: Member, regulated: Regulated, actor: ChainActor
) -> None:
    before = regulated.block_number - 1

    rules = get_json(client, auditor, "/v1/regulator/rules", block=before)

    assert rules["as_of_block"] == before
    assert regulated.blocked_category not in {
        item["category"] for item in rules["blocked_categories"]
    }
    assert rules["rules_version"] == actor.rules.functions.rulesVersion().call(
        block_identifier=before
    )


def test_payouts_name_the_rules_version_they_passed(
    client: Any, regulator: Member, regulated: Regulated, actor: ChainActor
) -> None:
    page = get_json(client, regulator, "/v1/regulator/payouts", payee=regulated.payee)

    payouts = page["payouts"]
    assert [(item["payment"], item["amount"], item["locked_after"]) for item in payouts] == [
        ("entrusted", "123.45", "0.00"),
        ("locked", "200.00", "300.00"),
    ]
    for item in payouts:
        assert item["payee"] == regulated.payee
        assert item["category"] == regulated.allowed_category
        assert item["line_id"] == str(regulated.line_id)
        assert item["facility_address"] == actor.facility.address
        assert item["confirmed"] is True
        version = actor.rules.functions.rulesVersion().call(block_identifier=item["block_number"])
        assert item["rules_version"] == version


def test_payouts_paginate_and_filter_by_facility(
    client: Any, regulator: Member, regulated: Regulated, actor: ChainActor
) -> None:
    first = get_json(
        client, regulator, "/v1/regulator/payouts", facility=actor.facility.address, limit=1
    )
    second = get_json(
        client,
        regulator,
        "/v1/regulator/payouts",
        facility=actor.facility.address,
        limit=1,
        cursor=first["next_cursor"],
    )

    assert len(first["payouts"]) == 1
    assert len(second["payouts"]) == 1
    assert (first["payouts"][0]["block_number"], first["payouts"][0]["log_index"]) < (
        second["payouts"][0]["block_number"],
        second["payouts"][0]["log_index"],
    )


def test_refused_payouts_name_payee_category_and_rule(
    client: Any, regulator: Member, regulated: Regulated
) -> None:
    refused: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = get_json(client, regulator, "/v1/regulator/refused-payouts", **params)
        refused.extend(page["refused"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    by_operation = {item["operation_id"]: item for item in refused}
    for rule, operation in regulated.refused.items():
        assert operation["state"] == "failed", operation
        item = by_operation[operation["id"]]
        assert item["rule"] == rule
        assert item["message"].startswith(rule)
        assert item["kind"] == "drawdown"
    blocked = by_operation[regulated.refused["FundFlowCategoryBlocked"]["id"]]
    assert blocked["payee"] == regulated.blocked_payee
    assert blocked["category"] == regulated.blocked_category
    frozen = by_operation[regulated.refused["CreditLineFrozen"]["id"]]
    assert frozen["line_id"] == str(regulated.frozen_line_id)
    assert frozen["payee"] == regulated.payee
    assert frozen["category"] is None


def test_verification_report_is_compliant(
    client: Any, regulator: Member, regulated: Regulated, actor: ChainActor, w3: Web3
) -> None:
    report = get_json(client, regulator, "/v1/regulator/verification")

    assert report["compliant"] is True, report
    assert report["violations"] == []
    assert report["payouts_checked"] >= 2
    assert report["locks_checked"] >= 1
    assert len(report["facilities"]) == 2
    for facility in report["facilities"]:
        assert facility["locked_reconciled"] is True
        assert facility["token_balance_reconciled"] is True
        assert facility["replayed_total_locked"] == facility["total_locked"]
    first = report["facilities"][0]
    block = report["as_of_block"]
    total_locked = actor.facility.functions.totalLocked().call(block_identifier=block)
    balance = actor.token.functions.balanceOf(actor.facility.address).call(block_identifier=block)
    assert first["total_locked"] == f"{total_locked // 100}.{total_locked % 100:02d}"
    assert first["token_balance"] == f"{balance // 100}.{balance % 100:02d}"
    assert report["as_of_block_hash"] == actor.block_hash(block)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/regulator/rules",
        "/v1/regulator/payouts",
        "/v1/regulator/refused-payouts",
        "/v1/regulator/verification",
    ],
)
def test_bank_cannot_read_regulator_reports(client: Any, bank: Member, path: str) -> None:
    response = client.get(path, headers=bank.headers)

    assert_problem(response, 403)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        pytest.param("/v1/regulator/rules", {"block": 10**12}, id="block-not-indexed"),
        pytest.param("/v1/regulator/payouts", {"payee": "0x12"}, id="malformed-payee"),
        pytest.param("/v1/regulator/payouts", {"event": "Nope"}, id="unknown-event"),
        pytest.param("/v1/regulator/refused-payouts", {"cursor": "%%%"}, id="foreign-cursor"),
    ],
)
def test_invalid_report_query_is_rejected(
    client: Any, regulator: Member, path: str, params: dict[str, Any]
) -> None:
    response = client.get(path, params=params, headers=regulator.headers)

    assert_problem(response, 422)
