"""Limit changes by one officer or two, and renewals with a new maturity, rate or limit.

One officer may move a limit by at most 22% and at most once in 90 days (the policy in
conftest). Larger or earlier changes need a proposal and a second officer's approval. A limit
never changes the debt. Renewal keeps every fen accrued so far and applies a new rate from its
effective day.
"""

from datetime import date, timedelta

import pytest
from conftest import day_number, reverts_with
from modelled_line import fen

OPENED = date(2027, 3, 1)
MATURITY = date(2027, 8, 31)
LIMIT_FEN = fen("5,000,000.00")
RATE_BPS = 380
ONE_DAY = timedelta(days=1)


@pytest.fixture
def line_id(open_line) -> int:
    return open_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)


def limit_of(facility, line_id: int, day: date = OPENED) -> int:
    return facility.lineState(line_id, day_number(day)).limit


# ---------------------------------------------------------------------------------------------
# One officer alone
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "new_limit_fen",
    [fen("6,100,000.00"), fen("3,900,000.00"), LIMIT_FEN + 1, LIMIT_FEN - 1],
    ids=["raise 22%", "cut 22%", "raise one fen", "cut one fen"],
)
def test_change_limit_within_policy_accepted(facility, line_id, officer, request_id, new_limit_fen):
    change_request = request_id()

    receipt = facility.changeLimit(change_request, line_id, new_limit_fen, sender=officer)

    [changed] = facility.LimitChanged.from_receipt(receipt)
    assert changed.lineId == line_id
    assert changed.requestId == change_request
    assert changed.previousLimit == LIMIT_FEN
    assert changed.limit == new_limit_fen
    assert changed.officer == officer.address
    assert int(changed.approver, 16) == 0
    assert limit_of(facility, line_id) == new_limit_fen


@pytest.mark.parametrize(
    "new_limit_fen",
    [fen("6,100,000.01"), fen("3,899,999.99"), 0],
    ids=["raise past 22%", "cut past 22%", "cut to zero"],
)
def test_change_limit_beyond_policy_reverts(facility, line_id, officer, request_id, new_limit_fen):
    with reverts_with(
        facility.CreditLimitChangeTooLarge,
        lineId=line_id,
        currentLimit=LIMIT_FEN,
        requestedLimit=new_limit_fen,
        maxChangeBps=2200,
    ):
        facility.changeLimit(request_id(), line_id, new_limit_fen, sender=officer)

    assert limit_of(facility, line_id) == LIMIT_FEN


def test_change_limit_waits_for_interval(facility, line_id, officer, travel, request_id):
    facility.changeLimit(request_id(), line_id, fen("5,500,000.00"), sender=officer)
    last_day = day_number(OPENED)

    travel(OPENED + timedelta(days=89))
    with reverts_with(
        facility.CreditLimitChangeTooSoon,
        lineId=line_id,
        lastChangeDay=last_day,
        nextAllowedDay=last_day + 90,
    ):
        facility.changeLimit(request_id(), line_id, fen("6,000,000.00"), sender=officer)

    travel(OPENED + timedelta(days=90))
    facility.changeLimit(request_id(), line_id, fen("6,000,000.00"), sender=officer)
    assert limit_of(facility, line_id, OPENED + timedelta(days=90)) == fen("6,000,000.00")


def test_change_limit_unchanged_reverts(facility, line_id, officer, request_id):
    with reverts_with(facility.CreditLimitUnchanged, lineId=line_id, limit=LIMIT_FEN):
        facility.changeLimit(request_id(), line_id, LIMIT_FEN, sender=officer)


def test_change_limit_reverts_before_opening(
    facility, operator, officer, borrower, travel, request_id
):
    travel(OPENED)
    receipt = facility.applyForLine(
        request_id(),
        borrower,
        b"\x01" * 32,
        LIMIT_FEN,
        RATE_BPS,
        day_number(MATURITY),
        sender=operator,
    )
    applied = receipt.events[0].lineId

    with reverts_with(facility.CreditLineStatusInvalid, lineId=applied, status=1):
        facility.changeLimit(request_id(), applied, LIMIT_FEN + 1, sender=officer)


# ---------------------------------------------------------------------------------------------
# Proposal and approval by a second officer
# ---------------------------------------------------------------------------------------------


def test_proposal_waits_for_second_officer(facility, line_id, officer, second_officer, request_id):
    proposal_request = request_id()

    receipt = facility.proposeLimitChange(
        proposal_request, line_id, fen("9,000,000.00"), sender=officer
    )

    [proposed] = facility.LimitChangeProposed.from_receipt(receipt)
    assert proposed.lineId == line_id
    assert proposed.requestId == proposal_request
    assert proposed.currentLimit == LIMIT_FEN
    assert proposed.proposedLimit == fen("9,000,000.00")
    assert proposed.officer == officer.address
    assert limit_of(facility, line_id) == LIMIT_FEN

    receipt = facility.approveLimitChange(request_id(), line_id, sender=second_officer)

    [changed] = facility.LimitChanged.from_receipt(receipt)
    assert (changed.previousLimit, changed.limit) == (LIMIT_FEN, fen("9,000,000.00"))
    assert changed.officer == officer.address
    assert changed.approver == second_officer.address
    assert limit_of(facility, line_id) == fen("9,000,000.00")


def test_approve_own_proposal_reverts(facility, line_id, officer, request_id):
    facility.proposeLimitChange(request_id(), line_id, fen("9,000,000.00"), sender=officer)

    with reverts_with(facility.CreditSecondOfficerRequired, lineId=line_id, proposer=officer):
        facility.approveLimitChange(request_id(), line_id, sender=officer)


def test_approve_without_proposal_reverts(facility, line_id, officer, second_officer, request_id):
    with reverts_with(facility.CreditNoPendingLimitChange, lineId=line_id):
        facility.approveLimitChange(request_id(), line_id, sender=second_officer)

    facility.proposeLimitChange(request_id(), line_id, fen("9,000,000.00"), sender=officer)
    facility.approveLimitChange(request_id(), line_id, sender=second_officer)
    with reverts_with(facility.CreditNoPendingLimitChange, lineId=line_id):
        facility.approveLimitChange(request_id(), line_id, sender=second_officer)


def test_propose_unchanged_limit_reverts(facility, line_id, officer, request_id):
    with reverts_with(facility.CreditLimitUnchanged, lineId=line_id, limit=LIMIT_FEN):
        facility.proposeLimitChange(request_id(), line_id, LIMIT_FEN, sender=officer)


def test_approved_change_ignores_interval(
    facility, line_id, officer, second_officer, travel, request_id
):
    facility.changeLimit(request_id(), line_id, fen("5,500,000.00"), sender=officer)
    next_day = OPENED + ONE_DAY
    travel(next_day)

    facility.proposeLimitChange(request_id(), line_id, fen("8,000,000.00"), sender=second_officer)
    facility.approveLimitChange(request_id(), line_id, sender=officer)

    assert limit_of(facility, line_id, next_day) == fen("8,000,000.00")


def test_zero_limit_keeps_debt_and_interest(
    facility, modelled_line, officer, second_officer, request_id
):
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    line.draw(date(2027, 3, 2), fen("3,000,000.00"))
    line.repay_interest(date(2027, 3, 21))
    before = line.state()

    facility.proposeLimitChange(request_id(), line.line_id, 0, sender=officer)
    facility.approveLimitChange(request_id(), line.line_id, sender=second_officer)

    after = line.state()
    assert after.limit == 0
    assert after.available == 0
    assert after.principal == before.principal == fen("3,000,000.00")
    assert after.accruedInterest == before.accruedInterest
    assert after.payoffAmount == before.payoffAmount
    with reverts_with(facility.CreditLimitExceeded, lineId=line.line_id, available=0, requested=1):
        line.draw(date(2027, 3, 21), 1)

    # The model keeps its limit, which only decides drawdowns, so every balance must still agree.
    line.repay_interest(date(2027, 4, 21))
    line.repay(date(2027, 5, 3), fen("1,000,000.00"))
    later = line.state(date(2027, 6, 21))
    line.model.advance_to(date(2027, 6, 21))
    assert later.principal == line.model.principal_fen == fen("2,000,000.00")
    assert later.interestDue == line.model.interest_due_fen
    assert later.overdueInterest == line.model.overdue_interest_fen
    assert later.payoffAmount == line.model.payoff_amount(date(2027, 6, 21))
    assert line.payoff(date(2027, 6, 21)) == later.payoffAmount


# ---------------------------------------------------------------------------------------------
# Renewal
# ---------------------------------------------------------------------------------------------


def test_renew_records_new_terms(facility, line_id, officer, request_id):
    renewal_request = request_id()
    new_maturity = day_number(date(2028, 2, 29))

    receipt = facility.renewLine(
        renewal_request,
        line_id,
        new_maturity,
        fen("6,000,000.00"),
        395,
        day_number(OPENED),
        sender=officer,
    )

    [renewed] = facility.LineRenewed.from_receipt(receipt)
    assert renewed.lineId == line_id
    assert renewed.requestId == renewal_request
    assert renewed.maturityDay == new_maturity
    assert renewed.limit == fen("6,000,000.00")
    assert renewed.rateBps == 395
    assert renewed.rateEffectiveDay == day_number(OPENED)
    [changed] = facility.LimitChanged.from_receipt(receipt)
    assert (changed.previousLimit, changed.limit) == (LIMIT_FEN, fen("6,000,000.00"))
    state = facility.lineState(line_id, day_number(OPENED))
    assert state.maturityDay == new_maturity
    assert state.limit == fen("6,000,000.00")
    assert state.rateBps == 395


def test_renew_day_before_maturity_keeps_accrued(modelled_line, officer):
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    line.draw(date(2027, 3, 2), fen("3,333,333.33"))
    for month in range(3, 9):
        line.repay_interest(date(2027, month, 21))
    renewal_day = MATURITY - ONE_DAY
    line.move_to(renewal_day)
    before = line.state()

    line.renew(renewal_day, officer, date(2028, 2, 29))

    after = line.state()
    assert after.principal == before.principal
    assert after.interestDue == before.interestDue
    assert after.overdueInterest == before.overdueInterest
    assert after.accruedInterest == before.accruedInterest > 0
    assert after.payoffAmount == before.payoffAmount
    line.assert_matches_model()
    # No penalty from the old maturity: the September settlement is at the line's own rate.
    line.repay_interest(date(2027, 9, 21))
    line.assert_matches_model()


def test_renew_on_maturity_day_accepted(modelled_line, officer):
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    line.draw(date(2027, 3, 2), fen("1,000,000.00"))
    for month in range(3, 9):
        line.repay_interest(date(2027, month, 21))

    line.renew(MATURITY, officer, date(2027, 12, 31))

    line.draw(MATURITY + ONE_DAY, fen("1.00"))
    line.assert_matches_model(date(2027, 10, 21))


def test_renew_after_maturity_reverts(facility, line_id, officer, travel, request_id):
    late = MATURITY + ONE_DAY
    travel(late)

    with reverts_with(
        facility.CreditLinePastMaturity,
        lineId=line_id,
        maturityDay=day_number(MATURITY),
        today=day_number(late),
    ):
        facility.renewLine(
            request_id(), line_id, day_number(date(2028, 2, 29)), 0, 0, 0, sender=officer
        )


def test_renew_to_earlier_maturity_reverts(facility, line_id, officer, request_id):
    with reverts_with(
        facility.CreditMaturityInvalid,
        maturityDay=day_number(MATURITY),
        earliestDay=day_number(MATURITY),
    ):
        facility.renewLine(request_id(), line_id, day_number(MATURITY), 0, 0, 0, sender=officer)


def test_renew_rate_effective_in_past_reverts(facility, line_id, officer, travel, request_id):
    today = OPENED + timedelta(days=5)
    travel(today)

    with reverts_with(
        facility.CreditRateEffectiveDayInvalid,
        lineId=line_id,
        effectiveDay=day_number(today) - 1,
        today=day_number(today),
    ):
        facility.renewLine(
            request_id(),
            line_id,
            day_number(date(2028, 2, 29)),
            0,
            395,
            day_number(today) - 1,
            sender=officer,
        )


def test_renew_rate_above_maximum_reverts(facility, line_id, officer, request_id):
    with reverts_with(facility.CreditRateInvalid, rateBps=10_001):
        facility.renewLine(
            request_id(),
            line_id,
            day_number(date(2028, 2, 29)),
            0,
            10_001,
            day_number(OPENED),
            sender=officer,
        )


def test_renew_limit_follows_policy(facility, line_id, officer, travel, request_id):
    new_maturity = day_number(date(2028, 2, 29))
    with reverts_with(
        facility.CreditLimitChangeTooLarge,
        lineId=line_id,
        currentLimit=LIMIT_FEN,
        requestedLimit=fen("6,500,000.00"),
        maxChangeBps=2200,
    ):
        facility.renewLine(
            request_id(), line_id, new_maturity, fen("6,500,000.00"), 0, 0, sender=officer
        )

    facility.renewLine(
        request_id(), line_id, new_maturity, fen("6,000,000.00"), 0, 0, sender=officer
    )

    travel(OPENED + ONE_DAY)
    with reverts_with(
        facility.CreditLimitChangeTooSoon, lineId=line_id, lastChangeDay=day_number(OPENED)
    ):
        facility.changeLimit(request_id(), line_id, fen("6,500,000.00"), sender=officer)


def test_renew_rate_applies_from_effective_day(modelled_line, officer):
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    line.draw(date(2027, 3, 2), fen("4,000,000.00"))

    line.renew(
        date(2027, 3, 5), officer, date(2028, 2, 29), rate_bps=520, rate_effective=date(2027, 3, 11)
    )

    assert line.state(date(2027, 3, 10)).rateBps == RATE_BPS
    assert line.state(date(2027, 3, 11)).rateBps == 520
    line.repay_interest(date(2027, 3, 21))
    line.assert_matches_model()


def test_renew_rate_effective_today_applies_to_today(modelled_line, officer):
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    line.draw(date(2027, 3, 2), fen("4,000,000.00"))

    line.renew(
        date(2027, 3, 8), officer, date(2028, 2, 29), rate_bps=290, rate_effective=date(2027, 3, 8)
    )

    assert line.state().rateBps == 290
    line.assert_matches_model(date(2027, 3, 21))


@pytest.fixture
def rate_scheduled_line(modelled_line, officer):
    """A line renewed on 2027-03-03 with 5.00% from 2027-03-10, with 4,000,000.00 drawn."""
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    line.draw(date(2027, 3, 2), fen("4,000,000.00"))
    line.renew(
        date(2027, 3, 3),
        officer,
        date(2027, 12, 31),
        rate_bps=500,
        rate_effective=date(2027, 3, 10),
    )
    return line


def test_renew_after_pending_rate_reverts(facility, rate_scheduled_line, officer, request_id):
    line = rate_scheduled_line
    line.move_to(date(2027, 3, 5))

    with reverts_with(
        facility.CreditRateChangePending,
        lineId=line.line_id,
        pendingDay=day_number(date(2027, 3, 10)),
        effectiveDay=day_number(date(2027, 3, 15)),
    ):
        facility.renewLine(
            request_id(),
            line.line_id,
            day_number(date(2028, 2, 29)),
            0,
            300,
            day_number(date(2027, 3, 15)),
            sender=officer,
        )

    assert line.state(date(2027, 3, 12)).rateBps == 500
    line.repay_interest(date(2027, 3, 21))
    line.assert_matches_model()


def test_renew_before_pending_rate_replaces_it(rate_scheduled_line, officer):
    line = rate_scheduled_line

    line.renew(
        date(2027, 3, 5), officer, date(2028, 2, 29), rate_bps=300, rate_effective=date(2027, 3, 8)
    )

    assert line.state(date(2027, 3, 12)).rateBps == 300
    line.repay_interest(date(2027, 3, 21))
    line.assert_matches_model()


def test_renew_once_pending_rate_applied(rate_scheduled_line, officer):
    line = rate_scheduled_line

    line.renew(
        date(2027, 3, 12),
        officer,
        date(2028, 2, 29),
        rate_bps=300,
        rate_effective=date(2027, 3, 15),
    )

    assert line.state(date(2027, 3, 14)).rateBps == 500
    assert line.state(date(2027, 3, 15)).rateBps == 300
    line.repay_interest(date(2027, 3, 21))
    line.assert_matches_model()


def test_drawdown_on_maturity_day_accepted(facility, modelled_line):
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)

    line.draw(MATURITY, fen("1.00"))

    late = MATURITY + ONE_DAY
    line.move_to(late)
    with reverts_with(
        facility.CreditLinePastMaturity,
        lineId=line.line_id,
        maturityDay=day_number(MATURITY),
        today=day_number(late),
    ):
        line.draw(late, fen("1.00"))
