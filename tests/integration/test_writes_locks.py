"""The fund-flow lock through the bridge: payees, payouts of locked money, the regulator."""

from __future__ import annotations

from typing import Any

import pytest
from web3.contract import Contract

from .conftest import Member, OpenLine
from .support import assert_problem
from .writes import confirm, events_of, fail, hash_of, new_address, read_line

LIMIT_FEN = 1_000_000


def register(client: Any, bank: Member, category: int, label: str) -> str:
    """Register a new payee through the bridge and return its address."""
    address = new_address(label)
    body = {"address": address, "category": category, "documents_hash": hash_of(label)}
    registered = confirm(client, bank, "/v1/payees", body)
    assert registered["request_id"] is None
    assert registered["facility_address"] is None
    return address


def read_payee(client: Any, member: Member, address: str) -> dict[str, Any]:
    response = client.get(f"/v1/payees/{address}", headers=member.headers)
    assert response.status_code == 200, response.text
    return response.json()


def read_rules(client: Any, member: Member) -> dict[str, Any]:
    response = client.get("/v1/rules", headers=member.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def supplier(client: Any, bank: Member) -> str:
    return register(client, bank, 103, "supplier")


@pytest.fixture
def locked_drawdown(client: Any, bank: Member, open_line: OpenLine) -> tuple[int, int]:
    """Draw 1,000.00 into a locked balance; return the line id and the drawdown id."""
    line_id = open_line(LIMIT_FEN)
    drawn = confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "1000.00"})
    return line_id, int(drawn["result"]["ids"]["drawdown_id"])


def test_registered_payee_is_readable(
    client: Any, bank: Member, auditor: Member, regulator: Member
) -> None:
    address = register(client, bank, 101, "research lab")

    for member in (bank, auditor, regulator):
        payee = read_payee(client, member, address.lower())
        assert payee["address"] == address
        assert payee["category"] == 101
        assert payee["category_name"] == "research services"
        assert payee["status"] == "Active"
        assert payee["payable"] is True


def test_payee_category_change(client: Any, bank: Member) -> None:
    address = register(client, bank, 107, "carrier")

    changed = confirm(client, bank, f"/v1/payees/{address}/category", {"category": 102})

    [event] = events_of(changed, "PayeeCategoryChanged")
    assert event["previousCategory"] == "107"
    assert read_payee(client, bank, address)["category"] == 102


def test_unregistered_payee_is_not_found(client: Any, bank: Member) -> None:
    problem = assert_problem(
        client.get(f"/v1/payees/{new_address('nobody')}", headers=bank.headers), 404
    )

    assert "POST /v1/payees" in problem["detail"]


def test_locked_balance_paid_and_returned(
    client: Any, bank: Member, supplier: str, locked_drawdown: tuple[int, int]
) -> None:
    line_id, drawdown_id = locked_drawdown
    second_supplier = register(client, bank, 108, "weaving mill")
    payout = {"payee": supplier, "amount": "300.00", "invoice_hash": hash_of("invoice 300")}

    paid = confirm(client, bank, f"/v1/drawdowns/{drawdown_id}/payouts", payout)

    [event] = events_of(paid, "PayoutMade")
    assert paid["line_id"] == str(line_id)
    assert event["payee"] == supplier
    assert event["category"] == "103"
    assert event["lockedAfter"] == "700.00"
    assert read_line(client, bank, line_id)["locked"] == "700.00"

    batch = {
        "payouts": [
            {**payout, "drawdown_id": drawdown_id, "amount": "200.00"},
            {
                "drawdown_id": drawdown_id,
                "payee": second_supplier,
                "amount": "100.00",
                "invoice_hash": hash_of("invoice 100"),
            },
        ]
    }
    paid_together = confirm(client, bank, "/v1/payout-batches", batch)

    assert len(events_of(paid_together, "PayoutMade")) == 2
    assert read_line(client, bank, line_id)["locked"] == "400.00"

    returned = confirm(
        client, bank, f"/v1/drawdowns/{drawdown_id}/repayments", {"amount": "400.00"}
    )

    assert events_of(returned, "LockedFundsReturned")[0]["lockedAfter"] == "0.00"
    line = read_line(client, bank, line_id)
    assert line["locked"] == "0.00"
    assert line["principal"] == "600.00"


def test_payout_delegate_is_allowed(client: Any, bank: Member, open_line: OpenLine) -> None:
    line_id = open_line(LIMIT_FEN)
    delegate = new_address("borrower wallet")

    allowed = confirm(
        client,
        bank,
        f"/v1/lines/{line_id}/payout-delegates",
        {"delegate": delegate, "allowed": True},
    )

    [event] = events_of(allowed, "PayoutDelegateSet")
    assert event["delegate"] == delegate
    assert event["allowed"] is True


def test_blocked_category_stops_payouts(
    client: Any,
    bank: Member,
    regulator: Member,
    auditor: Member,
    locked_drawdown: tuple[int, int],
) -> None:
    _, drawdown_id = locked_drawdown
    broker = register(client, bank, 902, "securities broker")
    payout = {"payee": broker, "amount": "50.00", "invoice_hash": hash_of("broker invoice")}
    reason = {"reason_hash": hash_of("notice on securities trading")}

    blocked = confirm(client, regulator, "/v1/regulator/categories/902/block", reason)

    assert blocked["request_id"] is None
    rules = read_rules(client, auditor)
    assert 902 in [item["code"] for item in rules["blocked_categories"]]
    assert rules["rules_version"] >= int(events_of(blocked, "CategoryBlocked")[0]["rulesVersion"])
    assert read_payee(client, bank, broker)["payable"] is False
    refused = fail(
        client, bank, f"/v1/drawdowns/{drawdown_id}/payouts", payout, "FundFlowCategoryBlocked"
    )
    assert refused["revert"]["args"] == {"payee": broker, "category": "902"}
    assert broker in refused["revert"]["message"]

    confirm(client, regulator, "/v1/regulator/categories/902/unblock")

    assert 902 not in [item["code"] for item in read_rules(client, bank)["blocked_categories"]]
    confirm(client, bank, f"/v1/drawdowns/{drawdown_id}/payouts", payout)


def test_frozen_payee_receives_nothing(
    client: Any, bank: Member, regulator: Member, locked_drawdown: tuple[int, int]
) -> None:
    _, drawdown_id = locked_drawdown
    payee = register(client, bank, 104, "payroll agent")
    payout = {"payee": payee, "amount": "80.00", "invoice_hash": hash_of("payroll sheet")}

    confirm(
        client,
        regulator,
        f"/v1/regulator/payees/{payee}/freeze",
        {"reason_hash": hash_of("freeze order")},
    )

    assert read_payee(client, regulator, payee)["status"] == "Frozen"
    fail(client, bank, f"/v1/drawdowns/{drawdown_id}/payouts", payout, "FundFlowPayeeFrozen")

    confirm(client, regulator, f"/v1/regulator/payees/{payee}/unfreeze")

    assert read_payee(client, regulator, payee)["status"] == "Active"
    confirm(client, bank, f"/v1/drawdowns/{drawdown_id}/payouts", payout)


def test_regulator_freeze_outlasts_bank_unfreeze(
    client: Any, bank: Member, regulator: Member, open_line: OpenLine, facility: Contract
) -> None:
    line_id = open_line(LIMIT_FEN)
    target = {"facility": facility.address}

    frozen = confirm(client, regulator, f"/v1/regulator/lines/{line_id}/freeze", target)

    assert frozen["facility_address"] == facility.address
    assert events_of(frozen, "LineFrozen")[0]["byRegulator"] is True
    assert read_line(client, bank, line_id)["flags"] == ["frozen_by_regulator"]
    fail(client, bank, f"/v1/lines/{line_id}/unfreeze", None, "CreditFreezeUnchanged")
    fail(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "5.00"}, "CreditLineFrozen")

    confirm(client, regulator, f"/v1/regulator/lines/{line_id}/unfreeze", target)

    assert read_line(client, bank, line_id)["flags"] == []


def test_rules_list_documented_categories(client: Any, regulator: Member) -> None:
    rules = read_rules(client, regulator)

    documented = {item["code"]: item for item in rules["categories"]}
    assert {101, 102, 103, 104, 105, 106, 107, 108, 901, 902, 903, 904} <= documented.keys()
    assert documented[901]["name"] == "crypto-asset exchange"
    assert documented[901]["speculative"] is True
    assert documented[104]["speculative"] is False
