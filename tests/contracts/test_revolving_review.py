"""Revolving cycles: each return of principal to zero counts, and too many flag the line.

With the conftest policy a line is flagged after its 9th cycle since the last review (threshold
8), and, because the policy requires review, its drawdowns wait until an officer clears the flag.
"""

from datetime import date

import pytest
from conftest import ENTRUSTED_THRESHOLD_FEN, day_number, reverts_with
from modelled_line import fen

OPENED = date(2027, 3, 1)
MATURITY = date(2028, 2, 29)
LIMIT_FEN = fen("2,000,000.00")
RATE_BPS = 410
CYCLE_THRESHOLD = 8


@pytest.fixture
def line(modelled_line):
    return modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)


def revolve(facility, line, day: date, times: int) -> list:
    """Draw and repay 500,000.00 `times` times on `day`, and return the cycle events."""
    completed = []
    for _ in range(times):
        line.draw(day, fen("500,000.00"))
        receipt = line.repay(day, fen("500,000.00"))
        completed.extend(facility.RevolvingCycleCompleted.from_receipt(receipt))
    return completed


def test_cycle_counted_when_principal_reaches_zero(facility, line):
    line.draw(OPENED, fen("1,000,000.00"))

    partial = line.repay(OPENED, fen("400,000.00"))
    final = line.repay(OPENED, fen("600,000.00"))

    assert facility.RevolvingCycleCompleted.from_receipt(partial) == []
    [completed] = facility.RevolvingCycleCompleted.from_receipt(final)
    assert (completed.lineId, completed.revolvingCycles, completed.reviewFlagged) == (
        line.line_id,
        1,
        False,
    )
    assert line.state().revolvingCycles == 1


def test_payoff_completes_cycle(facility, line, request_id):
    line.draw(OPENED, fen("1,000,000.00"))
    line.move_to(date(2027, 3, 11))

    receipt = facility.payoff(request_id(), line.line_id, sender=line.operator)

    [completed] = facility.RevolvingCycleCompleted.from_receipt(receipt)
    assert completed.revolvingCycles == 1


def test_paying_leftover_interest_is_no_cycle(facility, line):
    line.draw(OPENED, fen("1,000,000.00"))
    line.repay(date(2027, 3, 11), fen("1,000,000.00"))
    assert line.state().accruedInterest > 0

    line.payoff(date(2027, 3, 12))

    assert line.state().revolvingCycles == 1
    line.assert_matches_model()


def test_cycles_past_threshold_flag_line(facility, line):
    completed = revolve(facility, line, OPENED, CYCLE_THRESHOLD + 1)

    assert [event.revolvingCycles for event in completed] == list(range(1, CYCLE_THRESHOLD + 2))
    assert [event.reviewFlagged for event in completed] == [False] * CYCLE_THRESHOLD + [True]
    state = line.state()
    assert state.reviewFlagged
    assert state.revolvingCycles == CYCLE_THRESHOLD + 1


def test_flagged_line_waits_for_review(facility, line, officer, request_id):
    revolve(facility, line, OPENED, CYCLE_THRESHOLD + 1)

    with reverts_with(
        facility.CreditReviewRequired, lineId=line.line_id, revolvingCycles=CYCLE_THRESHOLD + 1
    ):
        line.draw(OPENED, fen("1.00"))

    clear_request = request_id()
    receipt = facility.clearReviewFlag(clear_request, line.line_id, sender=officer)
    [cleared] = facility.ReviewFlagCleared.from_receipt(receipt)
    assert cleared.lineId == line.line_id
    assert cleared.requestId == clear_request
    assert cleared.revolvingCycles == CYCLE_THRESHOLD + 1
    assert cleared.officer == officer.address
    assert not line.state().reviewFlagged
    line.draw(OPENED, fen("1.00"))


def test_flag_returns_after_another_threshold(facility, line, officer, request_id):
    revolve(facility, line, OPENED, CYCLE_THRESHOLD + 1)
    facility.clearReviewFlag(request_id(), line.line_id, sender=officer)

    completed = revolve(facility, line, OPENED, CYCLE_THRESHOLD + 1)

    assert [event.reviewFlagged for event in completed] == [False] * CYCLE_THRESHOLD + [True]
    assert line.state().revolvingCycles == 2 * (CYCLE_THRESHOLD + 1)
    with reverts_with(
        facility.CreditReviewRequired,
        lineId=line.line_id,
        revolvingCycles=2 * (CYCLE_THRESHOLD + 1),
    ):
        line.draw(OPENED, fen("1.00"))


def test_flagged_line_accepts_repayment(facility, line):
    revolve(facility, line, OPENED, CYCLE_THRESHOLD)
    line.draw(OPENED, fen("800,000.00"))

    line.repay(date(2027, 3, 5), fen("800,000.00"))

    assert line.state().reviewFlagged
    line.payoff(date(2027, 3, 6))
    line.assert_matches_model()


def test_flag_without_review_policy_allows_drawdowns(facility, admin, line):
    facility.updatePolicy((ENTRUSTED_THRESHOLD_FEN, 2200, 90, CYCLE_THRESHOLD, False), sender=admin)

    revolve(facility, line, OPENED, CYCLE_THRESHOLD + 1)

    assert line.state().reviewFlagged
    line.draw(OPENED, fen("1.00"))
    assert facility.lineState(line.line_id, day_number(OPENED)).principal == fen("1.00")
