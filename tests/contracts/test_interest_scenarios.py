"""The acceptance scenarios A to C run on the contracts, with the chain moved to each date.

Every action happens at 10:00 CST on its date. Each figure is compared with the one the scenarios
print and with the reference model fed the same actions. Scenario D (pools) is in test_pools.py.
"""

from datetime import date, timedelta

import pytest
from conftest import day_number, next_request_id, reverts_with
from eth_utils import to_checksum_address
from modelled_line import fen

from ledger_bridge.reference.interest import (
    LimitExceededError,
    LineMaturedError,
    RepaymentExceedsOwedError,
)


def monthly(day_of_month: int, first_month: int, last_month: int, year: int = 2027) -> list[date]:
    return [date(year, month, day_of_month) for month in range(first_month, last_month + 1)]


def assert_cleared(line) -> None:
    state = line.state()
    assert state.principal == 0
    assert state.interestDue == 0
    assert state.overdueInterest == 0
    assert state.accruedInterest == 0
    assert state.payoffAmount == 0


# ---------------------------------------------------------------------------------------------
# A. Staged drawdowns: 2,500,000.00 on the 5th of each month of 2027 at 4.35%
# ---------------------------------------------------------------------------------------------

STAGED_SETTLEMENTS = [
    (date(2027, 1, 21), "4,833.33"),
    (date(2027, 2, 21), "14,197.92"),
    (date(2027, 3, 21), "21,750.00"),
    (date(2027, 4, 21), "32,927.08"),
    (date(2027, 5, 21), "41,083.33"),
    (date(2027, 6, 21), "51,656.25"),
    (date(2027, 7, 21), "59,208.33"),
    (date(2027, 8, 21), "70,385.42"),
    (date(2027, 9, 21), "79,750.00"),
    (date(2027, 10, 21), "86,395.83"),
    (date(2027, 11, 21), "98,479.17"),
    (date(2027, 12, 21), "104,520.83"),
]


def open_trial_line(modelled_line):
    return modelled_line(fen("30,000,000.00"), 435, date(2027, 1, 4), date(2027, 12, 31))


def run_staged_month(line, month: int, payees) -> object:
    """Draw one stage to the month's payee on the 5th and repay the interest due on the 21st."""
    payee = payees[(month - 1) % 3]
    receipt = line.draw(date(2027, month, 5), fen("2,500,000.00"), payee=payee)
    line.assert_matches_model()

    line.repay_interest(date(2027, month, 21))
    line.assert_matches_model()
    return receipt


def run_staged_drawdowns(line, payees) -> tuple[int, list]:
    """Draw in twelve stages to the three payees in turn, repay interest monthly, then pay off."""
    drawdowns = [run_staged_month(line, month, payees) for month in range(1, 13)]
    return line.payoff(date(2027, 12, 28)), drawdowns


def test_staged_drawdowns_settle_as_published(modelled_line, registered_payees):
    line = open_trial_line(modelled_line)

    payoff_fen, _ = run_staged_drawdowns(line, registered_payees)

    expected = [(day, fen(amount)) for day, amount in STAGED_SETTLEMENTS]
    assert line.settlements == expected
    assert payoff_fen == fen("30,025,375.00")
    assert line.interest_paid_fen == fen("690,562.49")
    line.assert_matches_model()
    assert_cleared(line)


def test_staged_drawdowns_pay_registered_payees(facility, modelled_line, registered_payees):
    line = open_trial_line(modelled_line)

    _, drawdowns = run_staged_drawdowns(line, registered_payees)

    for month, receipt in enumerate(drawdowns, start=1):
        [payout] = facility.PayoutMade.from_receipt(receipt)
        assert payout.lineId == line.line_id
        assert payout.payee == to_checksum_address(registered_payees[(month - 1) % 3])
        assert payout.amount == fen("2,500,000.00")
        assert payout.invoiceHash != b"\x00" * 32
        assert payout.lockedAfter == 0
        [drawn] = facility.LineDrawn.from_receipt(receipt)
        assert drawn.principalAfter == month * fen("2,500,000.00")
    assert line.state().locked == 0


def test_single_drawdown_costs_more_than_staged(modelled_line, registered_payees):
    staged = open_trial_line(modelled_line)
    single = open_trial_line(modelled_line)

    single.draw(date(2027, 1, 5), fen("30,000,000.00"))
    for month in range(1, 13):
        run_staged_month(staged, month, registered_payees)
        single.repay_interest(date(2027, month, 21))
    staged.payoff(date(2027, 12, 28))
    single_payoff_fen = single.payoff(date(2027, 12, 28))

    assert single_payoff_fen == fen("30,025,375.00")
    assert single.interest_paid_fen == fen("1,294,125.00")
    assert single.interest_paid_fen - staged.interest_paid_fen == fen("603,562.51")
    single.assert_matches_model()


# ---------------------------------------------------------------------------------------------
# B. Limits that follow research spending: 5,000,000.00 at 3.65%
# ---------------------------------------------------------------------------------------------


def open_research_line(modelled_line):
    return modelled_line(fen("5,000,000.00"), 365, date(2027, 1, 4), date(2028, 1, 3))


def run_research_line_to_july(facility, line, officer) -> None:
    """Run scenario B up to 2027-07-01, before that day's limit changes."""
    line.draw(date(2027, 2, 1), fen("4,000,000.00"))
    for settlement_day in monthly(21, 2, 3):
        line.repay_interest(settlement_day)

    receipt = line.change_limit(date(2027, 4, 1), fen("6,100,000.00"), officer)
    [changed] = facility.LimitChanged.from_receipt(receipt)
    assert (changed.previousLimit, changed.limit) == (fen("5,000,000.00"), fen("6,100,000.00"))

    line.move_to(date(2027, 4, 15))
    with reverts_with(
        facility.CreditLimitChangeTooSoon,
        lineId=line.line_id,
        lastChangeDay=day_number(date(2027, 4, 1)),
        nextAllowedDay=day_number(date(2027, 6, 30)),
    ):
        facility.changeLimit(next_request_id(), line.line_id, fen("6,405,000.00"), sender=officer)

    for settlement_day in monthly(21, 4, 6):
        line.repay_interest(settlement_day)
    line.move_to(date(2027, 7, 1))
    line.assert_matches_model()


def test_research_limits_follow_policy(facility, modelled_line, officer, request_id):
    line = open_research_line(modelled_line)
    run_research_line_to_july(facility, line, officer)

    with reverts_with(
        facility.CreditLimitChangeTooLarge,
        lineId=line.line_id,
        currentLimit=fen("6,100,000.00"),
        requestedLimit=fen("7,930,000.00"),
        maxChangeBps=2200,
    ):
        facility.changeLimit(request_id(), line.line_id, fen("7,930,000.00"), sender=officer)
    line.change_limit(date(2027, 7, 1), fen("7,320,000.00"), officer)
    line.draw(date(2027, 7, 2), fen("2,000,000.00"))
    assert line.state().principal == fen("6,000,000.00")
    for settlement_day in monthly(21, 7, 9):
        line.repay_interest(settlement_day)

    cut_day = date(2027, 10, 1)
    line.change_limit(cut_day, fen("5,709,600.00"), officer)
    with reverts_with(
        facility.CreditLimitExceeded, lineId=line.line_id, available=0, requested=fen("1.00")
    ):
        line.draw(cut_day, fen("1.00"))
    with pytest.raises(LimitExceededError):
        line.model.draw(cut_day, fen("1.00"))
    line.repay(cut_day, fen("500,000.00"))
    receipt = line.draw(cut_day, fen("100,000.00"))

    [drawn] = facility.LineDrawn.from_receipt(receipt)
    assert drawn.principalAfter == fen("5,600,000.00")
    assert drawn.availableAfter == fen("109,600.00")
    line.assert_matches_model()


def test_research_limit_raise_approved_by_second_officer(
    facility, modelled_line, officer, second_officer
):
    line = open_research_line(modelled_line)
    run_research_line_to_july(facility, line, officer)

    receipt = line.change_limit(
        date(2027, 7, 1), fen("7,930,000.00"), officer, approver=second_officer
    )

    [changed] = facility.LimitChanged.from_receipt(receipt)
    assert changed.previousLimit == fen("6,100,000.00")
    assert changed.limit == fen("7,930,000.00")
    assert changed.officer == officer.address
    assert changed.approver == second_officer.address
    line.draw(date(2027, 7, 2), fen("3,930,000.00"))
    line.assert_matches_model()


# ---------------------------------------------------------------------------------------------
# C. Renewal without repaying principal: 6,000,000.00 at 3.95% maturing 2027-07-09
# ---------------------------------------------------------------------------------------------


def open_logistics_line(modelled_line):
    line = modelled_line(fen("8,000,000.00"), 395, date(2027, 1, 10), date(2027, 7, 9))
    line.draw(date(2027, 1, 12), fen("6,000,000.00"))
    for settlement_day in monthly(21, 1, 6):
        line.repay_interest(settlement_day)
    return line


def test_renewed_line_settles_as_published(facility, modelled_line, officer):
    line = open_logistics_line(modelled_line)
    listing_day = day_number(date(2027, 6, 24))
    assert line.state(date(2027, 6, 24)).maturityDay - listing_day <= 15

    receipt = line.renew(
        date(2027, 6, 25), officer, date(2028, 1, 8), rate_bps=385, rate_effective=date(2027, 7, 10)
    )
    [renewed] = facility.LineRenewed.from_receipt(receipt)
    assert renewed.maturityDay == day_number(date(2028, 1, 8))
    assert renewed.rateBps == 385
    assert renewed.rateEffectiveDay == day_number(date(2027, 7, 10))
    assert line.state().principal == fen("6,000,000.00")

    line.draw(date(2027, 7, 20), fen("1,500,000.00"))
    for settlement_day in monthly(21, 7, 12):
        line.repay_interest(settlement_day)
        line.assert_matches_model()
    payoff_fen = line.payoff(date(2028, 1, 6))

    settled = dict(line.settlements)
    assert settled[date(2027, 7, 21)] == fen("19,727.08")
    assert settled[date(2027, 8, 21)] == fen("24,864.58")
    assert payoff_fen == fen("7,512,833.33")
    assert line.interest_paid_fen == fen("260,612.47")
    line.assert_matches_model()
    assert_cleared(line)


def test_unrenewed_line_settles_at_penalty_rate(facility, modelled_line):
    line = open_logistics_line(modelled_line)

    past_maturity = date(2027, 7, 10)
    line.move_to(past_maturity)
    with reverts_with(
        facility.CreditLinePastMaturity,
        lineId=line.line_id,
        maturityDay=day_number(date(2027, 7, 9)),
        today=day_number(past_maturity),
    ):
        line.draw(past_maturity, fen("1.00"))
    with pytest.raises(LineMaturedError):
        line.model.draw(past_maturity, fen("1.00"))
    line.repay_interest(date(2027, 7, 21))
    payoff_fen = line.payoff(date(2027, 7, 29))

    assert dict(line.settlements)[date(2027, 7, 21)] == fen("23,370.83")
    assert payoff_fen == fen("6,007,900.00")
    assert line.interest_paid_fen == fen("136,604.15")
    line.assert_matches_model()
    assert_cleared(line)


# ---------------------------------------------------------------------------------------------
# Hard cases: split drawdowns, tiny loops, exact payoff and lazy settlement
# ---------------------------------------------------------------------------------------------

# 4.37% on odd amounts gives daily interest with sub-fen remainders that never end.
ODD_RATE_BPS = 437


@pytest.mark.parametrize(
    "pieces",
    [100, pytest.param(1000, marks=pytest.mark.slow)],
    ids=["100 pieces", "1000 pieces"],
)
def test_split_drawdown_accrues_as_one(modelled_line, pieces):
    single = modelled_line(fen("5,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    split = modelled_line(fen("5,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    day = date(2027, 3, 3)

    single.draw(day, fen("3,000,000.00"))
    for _ in range(pieces):
        split.draw(day, fen("3,000,000.00") // pieces)

    for check_day in (date(2027, 3, 21), date(2027, 4, 21), date(2027, 5, 30)):
        single_state = single.state(check_day)
        split_state = split.state(check_day)
        assert split_state.principal == single_state.principal
        assert split_state.interestDue == single_state.interestDue
        assert split_state.overdueInterest == single_state.overdueInterest
        assert split_state.accruedInterest == single_state.accruedInterest
        assert split_state.payoffAmount == single_state.payoffAmount
    assert split.payoff(date(2027, 5, 30)) == single.payoff(date(2027, 5, 30))
    split.assert_matches_model()
    single.assert_matches_model()


def test_tiny_loops_never_lower_owed(modelled_line):
    looped = modelled_line(fen("2,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    quiet = modelled_line(fen("2,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    looped.draw(date(2027, 3, 2), fen("1,234,567.89"))
    quiet.draw(date(2027, 3, 2), fen("1,234,567.89"))

    # One fen drawn and repaid on the same day leaves that day's end-of-day balance unchanged.
    for day_of_month in range(3, 28):
        day = date(2027, 3, day_of_month)
        if day_of_month == 21:
            looped.repay_interest(day)
            quiet.repay_interest(day)
        looped.draw(day, 1)
        looped.repay(day, 1)

        assert looped.state().payoffAmount == quiet.state(day).payoffAmount, (
            f"payoff amount on {day}"
        )
        looped.assert_matches_model()

    assert looped.payoff(date(2027, 4, 2)) == quiet.payoff(date(2027, 4, 2))
    assert looped.interest_paid_fen == quiet.interest_paid_fen


def test_accrued_interest_repaid_fen_by_fen(modelled_line):
    stepped = modelled_line(fen("2,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    at_once = modelled_line(fen("2,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    for line in (stepped, at_once):
        line.draw(date(2027, 3, 2), fen("1,000.00"))
    day = date(2027, 3, 5)

    stepped.repay(day, fen("1,000.00"))
    assert stepped.state().accruedInterest > 10
    while stepped.state().payoffAmount > 1:
        stepped.repay(day, 1)
        stepped.assert_matches_model()
    stepped.payoff(day)
    at_once.payoff(day)

    assert stepped.interest_paid_fen == at_once.interest_paid_fen
    assert_cleared(stepped)


def test_partial_repayment_keeps_sub_fen_accrual(modelled_line):
    # 40.00 at 4.00% accrues about 0.44 fen a day, which rounds to zero on its own.
    line = modelled_line(fen("1,000.00"), 400, date(2027, 3, 1), date(2027, 12, 31))
    line.draw(date(2027, 3, 1), fen("40.00"))

    for day_of_month in range(2, 21):
        line.repay(date(2027, 3, day_of_month), 1)
        line.assert_matches_model()
    line.repay_interest(date(2027, 3, 21))

    assert line.settlements == list(line.model.settlements)
    assert line.settlements[0][1] > 0
    line.assert_matches_model()


def test_drawdown_rejected_while_interest_overdue(facility, modelled_line):
    line = modelled_line(fen("2,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    line.draw(date(2027, 3, 2), fen("1,000,000.00"))

    line.draw(date(2027, 3, 21), fen("1.00"))
    line.move_to(date(2027, 3, 22))
    overdue_fen = line.state().overdueInterest
    assert overdue_fen > 0
    with reverts_with(
        facility.CreditInterestOverdue, lineId=line.line_id, overdueInterest=overdue_fen
    ):
        line.draw(date(2027, 3, 22), fen("1.00"))

    line.repay_interest(date(2027, 3, 22))
    line.draw(date(2027, 3, 22), fen("1.00"))
    line.assert_matches_model()


def test_payoff_leaves_exact_zero(facility, modelled_line, request_id):
    line = modelled_line(fen("2,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    line.draw(date(2027, 3, 3), fen("1,234,567.89"))
    line.repay(date(2027, 4, 23), fen("3,333.33"))

    line.payoff(date(2027, 5, 9))

    assert_cleared(line)
    later = line.state(date(2027, 7, 1))
    assert later.payoffAmount == 0
    assert later.accruedInterest == 0
    line.assert_matches_model(date(2027, 7, 1))
    with reverts_with(facility.CreditNothingOwed, lineId=line.line_id):
        facility.payoff(request_id(), line.line_id, sender=line.operator)
    with reverts_with(facility.CreditNothingOwed, lineId=line.line_id):
        facility.repayInterest(request_id(), line.line_id, sender=line.operator)
    with reverts_with(facility.CreditRepaymentExceedsOwed, lineId=line.line_id, amount=1, owed=0):
        facility.repay(request_id(), line.line_id, 1, sender=line.operator)


def test_over_repayment_reverts_with_payoff_amount(facility, modelled_line, request_id):
    line = modelled_line(fen("2,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    line.draw(date(2027, 3, 3), fen("1,234,567.89"))
    day = date(2027, 4, 25)
    line.move_to(day)
    owed_fen = line.state().payoffAmount
    assert owed_fen == line.model.payoff_amount(day)

    with reverts_with(
        facility.CreditRepaymentExceedsOwed, lineId=line.line_id, amount=owed_fen + 1, owed=owed_fen
    ):
        facility.repay(request_id(), line.line_id, owed_fen + 1, sender=line.operator)
    with pytest.raises(RepaymentExceedsOwedError) as rejected:
        line.model.repay(day, owed_fen + 1)
    assert rejected.value.owed_fen == owed_fen

    line.repay(day, owed_fen)
    assert_cleared(line)


def test_settlements_independent_of_touches(facility, modelled_line, officer):
    touched = modelled_line(fen("3,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31))
    untouched = modelled_line(
        fen("3,000,000.00"), ODD_RATE_BPS, date(2027, 3, 1), date(2027, 12, 31)
    )
    for line in (touched, untouched):
        line.draw(date(2027, 3, 2), fen("2,345,678.91"))

    # A renewal by one day brings the line up to date without changing any balance, so the
    # touched line is settled eagerly every day (twice on settlement days) and the other lazily.
    maturity = date(2027, 12, 31)
    day = date(2027, 3, 3)
    while day <= date(2027, 6, 25):
        touches = 2 if day.day == 21 else 1
        for _ in range(touches):
            maturity += timedelta(days=1)
            touched.renew(day, officer, maturity)
        if day == date(2027, 5, 21):
            touched.repay_interest(day)
            untouched.repay_interest(day)
        assert touched.state().payoffAmount == untouched.state(day).payoffAmount, (
            f"payoff amount on {day}"
        )
        day += timedelta(days=1)

    assert touched.payoff(date(2027, 6, 26)) == untouched.payoff(date(2027, 6, 26))
    assert touched.settlements == untouched.settlements
    assert len(touched.settlements) == 4
    assert touched.interest_paid_fen == untouched.interest_paid_fen
    touched.assert_matches_model()
    untouched.assert_matches_model()
