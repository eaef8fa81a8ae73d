"""Invalid writes get a problem naming the field and the fix, and nothing is stored or sent."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.deployment import Deployment

from .conftest import Member, OpenLine
from .support import assert_problem, count_operations
from .writes import confirm, fail, hash_of, new_address, read_line, signer_nonces, submit

HASH = "0x" + "ab" * 32
BORROWER = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
APPLICATION = {
    "borrower": BORROWER,
    "application_hash": HASH,
    "limit": "1000.00",
    "rate_bps": 435,
    "maturity_date": "2099-12-31",
}
PAYOUT = {"drawdown_id": 1, "payee": BORROWER, "amount": "1.00", "invoice_hash": HASH}


def changed(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**base, **fields}


# (path, body, status, field named in the problem, words the message must contain)
INVALID_REQUESTS = [
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, maturity_date="2099/12/31"),
        422,
        "body.maturity_date",
        "YYYY-MM-DD",
        id="date-with-slashes",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, maturity_date=4102358400),
        422,
        "body.maturity_date",
        "JSON string",
        id="date-as-number",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, maturity_date="2099-02-30"),
        422,
        "body.maturity_date",
        "not a day of the calendar",
        id="date-not-in-calendar",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, maturity_date="2001-01-01"),
        422,
        "maturity_date",
        "after today",
        id="maturity-in-past",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, rate_bps=0),
        422,
        "body.rate_bps",
        "1 to 10000",
        id="rate-zero",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, rate_bps=10_001),
        422,
        "body.rate_bps",
        "1 to 10000",
        id="rate-too-high",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, rate_bps="435"),
        422,
        "body.rate_bps",
        "JSON integer",
        id="rate-as-string",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, rate_bps=4.35),
        422,
        "body.rate_bps",
        "JSON integer",
        id="rate-as-fraction",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, limit=1000.5),
        422,
        "body.limit",
        "JSON number",
        id="limit-as-number",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, application_hash="0x1234"),
        422,
        "body.application_hash",
        "64",
        id="short-hash",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, borrower="0x90f79bf6eb2c4f870365e785982e1f101e93B906"),
        422,
        "body.borrower",
        "checksum",
        id="bad-checksum",
    ),
    pytest.param(
        "/v1/applications",
        changed(APPLICATION, currency="CNY"),
        422,
        "body.currency",
        "not allowed",
        id="unknown-field",
    ),
    pytest.param(
        "/v1/lines/{line_id}/renewals",
        {"maturity_date": "2099-12-31", "rate_bps": 400},
        422,
        "body.rate_effective_date",
        "required when rate_bps is set",
        id="rate-without-effective-date",
    ),
    pytest.param(
        "/v1/lines/{line_id}/renewals",
        {"maturity_date": "2099-12-31", "rate_bps": 400, "rate_effective_date": "2001-01-01"},
        422,
        "rate_effective_date",
        "before today",
        id="rate-effective-in-past",
    ),
    pytest.param(
        "/v1/lines/{line_id}/renewals",
        {"maturity_date": "2001-01-01"},
        422,
        "maturity_date",
        "current maturity",
        id="renewal-maturity-earlier",
    ),
    pytest.param(
        "/v1/lines/{line_id}/approve",
        {"note": "approved by phone"},
        422,
        "body.note",
        "not allowed",
        id="action-with-field",
    ),
    pytest.param(
        "/v1/payees",
        {"address": BORROWER, "category": 999, "documents_hash": HASH},
        422,
        "body.category",
        "101, 102",
        id="undocumented-category",
    ),
    pytest.param(
        "/v1/payees",
        {"address": BORROWER, "category": "103", "documents_hash": HASH},
        422,
        "body.category",
        "JSON integer",
        id="category-as-string",
    ),
    pytest.param(
        "/v1/payees",
        {"address": BORROWER, "category": 103, "documents_hash": "0x" + "00" * 32},
        422,
        "body.documents_hash",
        "all zeros",
        id="zero-hash",
    ),
    pytest.param(
        "/v1/payees/0x1234/category",
        {"category": 102},
        422,
        "path.address",
        "40",
        id="short-address-in-path",
    ),
    pytest.param(
        "/v1/payout-batches",
        {"payouts": []},
        422,
        "body.payouts",
        "at least 1",
        id="empty-batch",
    ),
    pytest.param(
        "/v1/payout-batches",
        {"payouts": [PAYOUT] * 51},
        422,
        "body.payouts",
        "at most 50",
        id="batch-too-long",
    ),
    pytest.param(
        "/v1/payout-batches",
        {"payouts": [changed(PAYOUT, drawdown_id=0)]},
        422,
        "body.payouts[0].drawdown_id",
        "1 to",
        id="drawdown-id-zero",
    ),
    pytest.param(
        "/v1/pools/1/members",
        {"line_id": "7"},
        422,
        "body.line_id",
        "JSON integer",
        id="line-id-as-string",
    ),
    pytest.param(
        "/v1/lines/{line_id}/limit-changes",
        {"limit": "-5.00"},
        422,
        "body.limit",
        "negative",
        id="negative-limit",
    ),
]


@pytest.fixture(scope="module")
def line_id(open_line: OpenLine) -> int:
    return open_line(100_000)


@pytest.mark.parametrize(("path", "body", "status", "field", "words"), INVALID_REQUESTS)
def test_invalid_write_stores_nothing(
    path: str,
    body: dict[str, Any],
    status: int,
    field: str,
    words: str,
    client: Any,
    bank: Member,
    line_id: int,
    session_factory: sessionmaker[Session],
    w3: Web3,
    bridge_deployment: Deployment,
) -> None:
    stored_before = count_operations(session_factory)
    nonces_before = signer_nonces(w3, bridge_deployment)

    response = submit(client, bank, path.format(line_id=line_id), body)

    problem = assert_problem(response, status)
    named = [item["field"] for item in problem.get("errors", [])]
    assert field in named or f"Field {field} " in problem["detail"], problem
    assert words in str(problem), problem
    assert count_operations(session_factory) == stored_before
    assert signer_nonces(w3, bridge_deployment) == nonces_before


@pytest.mark.parametrize(
    ("category", "status"),
    [pytest.param("999", 422, id="undocumented"), pytest.param("crypto", 422, id="not-a-number")],
)
def test_regulator_rejects_bad_category_in_path(
    client: Any,
    regulator: Member,
    session_factory: sessionmaker[Session],
    category: str,
    status: int,
) -> None:
    stored_before = count_operations(session_factory)

    response = submit(
        client,
        regulator,
        f"/v1/regulator/categories/{category}/block",
        {"reason_hash": hash_of("reason")},
    )

    problem = assert_problem(response, status)
    assert "category" in str(problem)
    assert count_operations(session_factory) == stored_before


def test_key_reused_with_other_body_is_rejected(
    client: Any, bank: Member, line_id: int, session_factory: sessionmaker[Session]
) -> None:
    path = f"/v1/lines/{line_id}/repayments"
    first = submit(client, bank, path, {"amount": "1.00"}, key="reused-key-validation")
    assert first.status_code == 202, first.text
    stored = count_operations(session_factory)

    second = submit(client, bank, path, {"amount": "2.00"}, key="reused-key-validation")

    problem = assert_problem(second, 422)
    assert first.json()["id"] in problem["detail"]
    assert count_operations(session_factory) == stored


@pytest.mark.parametrize(
    ("on", "words"),
    [
        pytest.param("2001-01-01", "before today", id="past-day"),
        pytest.param("2031-13-01", "not a day of the calendar", id="no-such-month"),
        pytest.param("1700000000", "YYYY-MM-DD", id="unix-time"),
        pytest.param("2999-01-01", "days after today", id="beyond-horizon"),
    ],
)
def test_line_read_rejects_bad_day(
    client: Any, bank: Member, line_id: int, on: str, words: str
) -> None:
    response = client.get(f"/v1/lines/{line_id}", params={"on": on}, headers=bank.headers)

    problem = assert_problem(response, 422)
    assert "on" in str(problem.get("errors", "")) or "Field on " in problem["detail"]
    assert words in str(problem)


def test_reader_names_facility_of_line(
    client: Any, regulator: Member, auditor: Member, facility: Contract, line_id: int
) -> None:
    # Two facilities are deployed, so readers other than banks must name one.
    assert_problem(client.get(f"/v1/lines/{line_id}", headers=regulator.headers), 422)

    line = read_line(client, auditor, line_id, facility=facility.address)

    assert line["facility_address"] == facility.address


def test_payee_registered_twice_fails(client: Any, bank: Member) -> None:
    address = new_address("twice")
    body = {"address": address, "category": 106, "documents_hash": hash_of("utility")}
    confirm(client, bank, "/v1/payees", body)

    again = fail(client, bank, "/v1/payees", body, "FundFlowPayeeAlreadyRegistered")

    assert again["tx_hash"] is None
    assert address in again["revert"]["message"]
