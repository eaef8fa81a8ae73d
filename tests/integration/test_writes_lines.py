"""A line's life through the bridge: each write route end to end, with the state read back.

Every test sends its requests through the app, waits for the worker to
confirm them on Anvil and reads the line back from the contract. The
interest test moves the chain's clock forward, so it runs last and later
tests open lines of their own.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from ledger_bridge.chain.values import date_to_day, day_to_date
from ledger_bridge.money import format_amount

from .conftest import FIXTURE_REQUEST_IDS, Member, OpenLine, _transact
from .writes import (
    confirm,
    events_of,
    fail,
    hash_of,
    move_chain_time,
    new_address,
    read_line,
)

LIMIT = "10000.00"
LIMIT_FEN = 1_000_000
# The deployment flags a line for review after this many revolving cycles.
CYCLE_THRESHOLD = 8


@pytest.fixture(scope="module")
def payee(client: Any, bank: Member) -> str:
    """A payee of category 103 (raw materials), registered through the bridge."""
    address = new_address("line tests payee")
    body = {"address": address, "category": 103, "documents_hash": hash_of("payee file")}
    confirm(client, bank, "/v1/payees", body)
    return address


def test_application_approved_and_opened(client: Any, bank: Member, facility: Contract) -> None:
    today = facility.functions.today().call()
    maturity = day_to_date(today + 200)
    borrower = new_address("borrower")
    body = {
        "borrower": borrower.lower(),
        "application_hash": hash_of("application file"),
        "limit": "50000",
        "rate_bps": 435,
        "maturity_date": maturity.isoformat(),
    }

    applied = confirm(client, bank, "/v1/applications", body)

    line_id = int(applied["result"]["ids"]["line_id"])
    assert applied["line_id"] is None
    assert applied["payload"]["borrower"] == borrower
    assert applied["payload"]["limit"] == "50000.00"
    [event] = events_of(applied, "LineApplied")
    assert event["requestId"] == str(applied["request_id"])
    assert event["borrower"] == borrower
    line = read_line(client, bank, line_id)
    assert line["status"] == "Applied"
    assert line["limit"] == "50000.00"
    assert line["rate_bps"] == 435
    assert line["maturity_date"] == maturity.isoformat()

    approved = confirm(client, bank, f"/v1/lines/{line_id}/approve")
    assert approved["line_id"] == str(line_id)
    assert read_line(client, bank, line_id)["status"] == "Approved"

    confirm(client, bank, f"/v1/lines/{line_id}/open", {})
    line = read_line(client, bank, line_id)
    assert line["status"] == "Active"
    assert line["available"] == "50000.00"


def test_application_is_rejected(client: Any, bank: Member, facility: Contract) -> None:
    maturity = day_to_date(facility.functions.today().call() + 90)
    body = {
        "borrower": new_address("rejected borrower"),
        "application_hash": hash_of("rejected application"),
        "limit": "1000.00",
        "rate_bps": 500,
        "maturity_date": maturity.isoformat(),
    }
    line_id = int(confirm(client, bank, "/v1/applications", body)["result"]["ids"]["line_id"])

    confirm(client, bank, f"/v1/lines/{line_id}/reject")

    assert read_line(client, bank, line_id)["status"] == "Rejected"
    fail(client, bank, f"/v1/lines/{line_id}/open", None, "CreditLineStatusInvalid")


def test_drawdown_result_names_drawdown(client: Any, bank: Member, open_line: OpenLine) -> None:
    line_id = open_line(LIMIT_FEN)

    drawn = confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "400.00"})

    [event] = events_of(drawn, "LineDrawn")
    assert drawn["result"]["ids"]["drawdown_id"] == event["drawdownId"]
    assert event["amount"] == "400.00"
    assert events_of(drawn, "FundsLocked")[0]["amount"] == "400.00"


def test_repayment_and_payoff_settle_line(client: Any, bank: Member, open_line: OpenLine) -> None:
    line_id = open_line(LIMIT_FEN)
    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "4000.00"})

    repaid = confirm(client, bank, f"/v1/lines/{line_id}/repayments", {"amount": "1500.00"})

    assert events_of(repaid, "Repaid")[0]["principalPaid"] == "1500.00"
    assert read_line(client, bank, line_id)["principal"] == "2500.00"

    paid_off = confirm(client, bank, f"/v1/lines/{line_id}/payoff")

    assert events_of(paid_off, "Repaid")[0]["principalAfter"] == "0.00"
    line = read_line(client, bank, line_id)
    assert line["principal"] == "0.00"
    assert line["payoff_amount"] == "0.00"
    assert line["available"] == LIMIT


def test_limit_change_needs_second_officer(client: Any, bank: Member, open_line: OpenLine) -> None:
    line_id = open_line(LIMIT_FEN)

    changed = confirm(client, bank, f"/v1/lines/{line_id}/limit-changes", {"limit": "11000.00"})

    assert events_of(changed, "LimitChanged")[0]["previousLimit"] == LIMIT
    assert read_line(client, bank, line_id)["limit"] == "11000.00"
    too_soon = fail(
        client,
        bank,
        f"/v1/lines/{line_id}/limit-changes",
        {"limit": "12000.00"},
        "CreditLimitChangeTooSoon",
    )
    assert too_soon["nonce"] is None

    path = f"/v1/lines/{line_id}/limit-change-proposals"
    confirm(client, bank, path, {"limit": "30000.00"})
    assert read_line(client, bank, line_id)["limit"] == "11000.00"
    approved = confirm(client, bank, f"{path}/approve")

    [event] = events_of(approved, "LimitChanged")
    assert event["limit"] == "30000.00"
    assert event["officer"] != event["approver"]
    assert read_line(client, bank, line_id)["limit"] == "30000.00"


def test_renewal_sets_new_terms(client: Any, bank: Member, open_line: OpenLine) -> None:
    line_id = open_line(LIMIT_FEN)
    before = read_line(client, bank, line_id)
    maturity = (date.fromisoformat(before["maturity_date"]) + timedelta(days=90)).isoformat()
    body = {
        "maturity_date": maturity,
        "limit": "10500.00",
        "rate_bps": 395,
        "rate_effective_date": before["today"],
    }

    confirm(client, bank, f"/v1/lines/{line_id}/renewals", body)

    after = read_line(client, bank, line_id)
    assert after["maturity_date"] == maturity
    assert after["limit"] == "10500.00"
    assert after["rate_bps"] == 395


def test_freeze_stops_drawdowns(client: Any, bank: Member, open_line: OpenLine) -> None:
    line_id = open_line(LIMIT_FEN)

    confirm(client, bank, f"/v1/lines/{line_id}/freeze")

    frozen = read_line(client, bank, line_id)
    assert frozen["frozen_by_bank"] is True
    assert frozen["flags"] == ["frozen_by_bank"]
    refused = fail(
        client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "10.00"}, "CreditLineFrozen"
    )
    assert refused["tx_hash"] is None

    confirm(client, bank, f"/v1/lines/{line_id}/unfreeze")

    assert read_line(client, bank, line_id)["flags"] == []
    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "10.00"})


def test_cleared_review_flag_allows_drawdowns(
    client: Any,
    bank: Member,
    open_line: OpenLine,
    w3: Web3,
    facility: Contract,
    line_applicant: str,
) -> None:
    line_id = open_line(LIMIT_FEN)
    # Complete the revolving cycles on chain directly: draw, then return the locked money.
    for _ in range(CYCLE_THRESHOLD + 1):
        drawdown = facility.functions.drawdown(
            next(FIXTURE_REQUEST_IDS), line_id, 100, "0x" + "00" * 20, bytes(32)
        )
        receipt = _transact(w3, drawdown, line_applicant)
        drawn = facility.events.LineDrawn().process_receipt(receipt, errors=DISCARD)
        drawdown_id = drawn[0]["args"]["drawdownId"]
        repay = facility.functions.repayFromLocked(next(FIXTURE_REQUEST_IDS), drawdown_id, 100)
        _transact(w3, repay, line_applicant)
    flagged = read_line(client, bank, line_id)
    assert flagged["review_flagged"] is True
    assert flagged["flags"] == ["review_flagged"]
    fail(
        client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "10.00"}, "CreditReviewRequired"
    )

    cleared = confirm(client, bank, f"/v1/lines/{line_id}/review-flag/clear")

    assert events_of(cleared, "ReviewFlagCleared")[0]["revolvingCycles"] == str(CYCLE_THRESHOLD + 1)
    assert read_line(client, bank, line_id)["review_flagged"] is False
    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "10.00"})


def test_written_off_line_recovers_and_closes(
    client: Any, bank: Member, open_line: OpenLine, payee: str
) -> None:
    line_id = open_line(LIMIT_FEN)
    entrusted = {"amount": "3000.00", "payee": payee, "invoice_hash": hash_of("invoice 1")}
    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", entrusted)

    confirm(client, bank, f"/v1/lines/{line_id}/default")
    assert read_line(client, bank, line_id)["status"] == "Defaulted"
    confirm(client, bank, f"/v1/lines/{line_id}/write-off")
    written_off = read_line(client, bank, line_id)
    assert written_off["status"] == "WrittenOff"
    assert written_off["written_off_outstanding"] == "3000.00"
    assert written_off["principal"] == "0.00"

    recovered = confirm(client, bank, f"/v1/lines/{line_id}/recoveries", {"amount": "1000.00"})

    assert events_of(recovered, "RecoveryReceived")[0]["outstandingAfter"] == "2000.00"
    assert read_line(client, bank, line_id)["written_off_outstanding"] == "2000.00"
    closed = confirm(client, bank, f"/v1/lines/{line_id}/close")
    assert events_of(closed, "LineClosed")[0]["writtenOffUnrecovered"] == "2000.00"
    assert read_line(client, bank, line_id)["status"] == "Closed"
    fail(
        client,
        bank,
        f"/v1/lines/{line_id}/drawdowns",
        {"amount": "1.00"},
        "CreditLineStatusInvalid",
    )


def test_payoff_amount_on_later_day(
    client: Any, bank: Member, open_line: OpenLine, facility: Contract
) -> None:
    line_id = open_line(LIMIT_FEN)
    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "9000.00"})
    today = read_line(client, bank, line_id)
    later = date.fromisoformat(today["today"]) + timedelta(days=30)

    ahead = read_line(client, bank, line_id, on=later.isoformat())

    assert today["payoff_amount"] == "9000.00"
    assert ahead["as_of_day"] == later.isoformat()
    assert ahead["today"] == today["today"]
    expected = facility.functions.payoffAmount(line_id, date_to_day(later)).call()
    assert ahead["payoff_amount"] == format_amount(expected)
    # 30 days of 9,000.00 at 4.35% (ACT/360) are 32.625 of simple interest. Each settled part
    # is rounded to the fen, and the part that falls overdue earns a few fen of compound interest.
    assert Decimal("9032.62") <= Decimal(ahead["payoff_amount"]) <= Decimal("9032.70")
    assert ahead["principal"] == "9000.00"
    assert ahead["available"] == "1000.00"


def test_interest_repaid_after_settlement(
    client: Any, bank: Member, open_line: OpenLine, w3: Web3
) -> None:
    line_id = open_line(LIMIT_FEN)
    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "8000.00"})
    # Forty days pass at least one settlement day (the 21st) and its due day.
    move_chain_time(w3, 40)
    owing = read_line(client, bank, line_id)
    assert owing["interest_due"] != "0.00" or owing["overdue_interest"] != "0.00"

    repaid = confirm(client, bank, f"/v1/lines/{line_id}/interest-repayments")

    [event] = events_of(repaid, "Repaid")
    assert event["principalPaid"] == "0.00"
    line = read_line(client, bank, line_id)
    assert line["interest_due"] == "0.00"
    assert line["overdue_interest"] == "0.00"
    assert line["principal"] == "8000.00"
    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "100.00"})
