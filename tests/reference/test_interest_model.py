"""Tests that the interest reference model reproduces the acceptance scenarios to the fen.

Figures are written in yuan as the scenarios print them and converted to fen with ``fen``.
Scenario actions happen at 10:00 China Standard Time on their dates.
"""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledger_bridge.reference.interest import (
    CST,
    InvalidTermsError,
    LimitExceededError,
    LineMaturedError,
    LineModel,
    LineModelError,
    NaiveDatetimeError,
    OverdueInterestError,
    RepaymentExceedsOwedError,
)

ONE_DAY = timedelta(days=1)


def fen(yuan: str) -> int:
    """Convert a yuan figure as printed, such as "4,833.33", to fen."""
    amount = Decimal(yuan.replace(",", ""))
    assert amount == amount.quantize(Decimal("0.01")), f"{yuan} has more than two decimals"
    return int(amount * 100)


def at_ten(day: date) -> datetime:
    return datetime.combine(day, time(10, 0), tzinfo=CST)


def settlement_days(first: date, last: date) -> list[date]:
    """List the same day of each month from ``first`` through ``last``."""
    days = []
    day = first
    while day <= last:
        days.append(day)
        day = date(day.year + day.month // 12, day.month % 12 + 1, day.day)
    return days


def repay_due_on(line: LineModel, first: date, last: date) -> None:
    for day in settlement_days(first, last):
        line.repay_interest_due(at_ten(day))


# Scenario A: twelve drawdowns of 2,500,000.00 on the 5th of each month of 2027.

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


def open_trial_line() -> LineModel:
    return LineModel(fen("30,000,000.00"), 435, date(2027, 12, 31))


@pytest.fixture(scope="module")
def staged() -> tuple[LineModel, int]:
    """Line of scenario A after its payoff on 2027-12-28, with the payoff amount in fen."""
    line = open_trial_line()
    for month in range(1, 13):
        line.draw(at_ten(date(2027, month, 5)), fen("2,500,000.00"))
        line.repay_interest_due(at_ten(date(2027, month, 21)))
    return line, line.payoff(at_ten(date(2027, 12, 28)))


@pytest.mark.parametrize(
    ("day", "settled"), STAGED_SETTLEMENTS, ids=[str(day) for day, _ in STAGED_SETTLEMENTS]
)
def test_staged_drawdowns_settlements_match(staged, day, settled):
    line, _ = staged
    assert dict(line.settlements)[day] == fen(settled)


def test_staged_drawdowns_settle_twelve_times(staged):
    line, _ = staged
    assert [day for day, _ in line.settlements] == [day for day, _ in STAGED_SETTLEMENTS]


def test_staged_drawdowns_payoff_matches(staged):
    _, payoff_fen = staged
    assert payoff_fen == fen("30,025,375.00")


def test_staged_drawdowns_total_interest(staged):
    line, _ = staged
    assert line.total_interest_paid_fen == fen("690,562.49")


def test_staged_drawdowns_end_at_zero(staged):
    line, _ = staged
    assert line.principal_fen == 0
    assert line.interest_due_fen == 0
    assert line.overdue_interest_fen == 0
    assert line.accrued_exact == 0


def test_single_drawdown_costs_more(staged):
    staged_line, _ = staged
    line = open_trial_line()
    line.draw(at_ten(date(2027, 1, 5)), fen("30,000,000.00"))
    repay_due_on(line, date(2027, 1, 21), date(2027, 12, 21))
    payoff_fen = line.payoff(at_ten(date(2027, 12, 28)))

    assert payoff_fen == fen("30,025,375.00")
    assert line.total_interest_paid_fen == fen("1,294,125.00")
    saving_fen = line.total_interest_paid_fen - staged_line.total_interest_paid_fen
    assert saving_fen == fen("603,562.51")


# Scenario B: a limit lowered below principal blocks drawdowns until principal is under it.
# The 22% and 90-day limit policy belongs to the contracts, not to this model.


def test_lowered_limit_blocks_drawdown():
    line = LineModel(fen("5,000,000.00"), 365, date(2028, 1, 3))
    line.draw(at_ten(date(2027, 2, 1)), fen("4,000,000.00"))
    repay_due_on(line, date(2027, 2, 21), date(2027, 3, 21))
    line.change_limit(at_ten(date(2027, 4, 1)), fen("6,100,000.00"))
    repay_due_on(line, date(2027, 4, 21), date(2027, 6, 21))
    line.change_limit(at_ten(date(2027, 7, 1)), fen("7,320,000.00"))
    line.draw(at_ten(date(2027, 7, 2)), fen("2,000,000.00"))
    repay_due_on(line, date(2027, 7, 21), date(2027, 9, 21))
    cut_day = at_ten(date(2027, 10, 1))
    line.change_limit(cut_day, fen("5,709,600.00"))

    with pytest.raises(LimitExceededError) as rejected:
        line.draw(cut_day, fen("1.00"))
    assert "5709600.00" in str(rejected.value)
    assert line.principal_fen == fen("6,000,000.00")

    allocation = line.repay(cut_day, fen("500,000.00"))
    assert allocation.principal_fen == fen("500,000.00")
    assert allocation.interest_fen == 0

    line.draw(cut_day, fen("100,000.00"))
    assert line.principal_fen == fen("5,600,000.00")


# Scenario C: 6,000,000.00 at 3.95% maturing 2027-07-09, renewed or not.


def open_logistics_line() -> LineModel:
    line = LineModel(fen("8,000,000.00"), 395, date(2027, 7, 9))
    line.draw(at_ten(date(2027, 1, 12)), fen("6,000,000.00"))
    return line


@pytest.fixture(scope="module")
def renewed() -> tuple[LineModel, int]:
    """Line of scenario C renewed to 2028-01-08 at 3.85%, after its payoff on 2028-01-06."""
    line = open_logistics_line()
    repay_due_on(line, date(2027, 1, 21), date(2027, 6, 21))
    line.renew(
        at_ten(date(2027, 6, 25)),
        new_maturity=date(2028, 1, 8),
        new_rate_bps=385,
        rate_effective=date(2027, 7, 10),
    )
    line.draw(at_ten(date(2027, 7, 20)), fen("1,500,000.00"))
    repay_due_on(line, date(2027, 7, 21), date(2027, 12, 21))
    return line, line.payoff(at_ten(date(2028, 1, 6)))


@pytest.mark.parametrize(
    ("day", "settled"),
    [(date(2027, 7, 21), "19,727.08"), (date(2027, 8, 21), "24,864.58")],
    ids=["2027-07-21", "2027-08-21"],
)
def test_renewed_line_settlements_match(renewed, day, settled):
    line, _ = renewed
    assert dict(line.settlements)[day] == fen(settled)


def test_renewed_line_payoff_matches(renewed):
    _, payoff_fen = renewed
    assert payoff_fen == fen("7,512,833.33")


def test_renewed_line_total_interest(renewed):
    line, _ = renewed
    assert line.total_interest_paid_fen == fen("260,612.47")


@pytest.fixture(scope="module")
def unrenewed() -> tuple[LineModel, int]:
    """Line of scenario C left to mature, after its payoff on 2027-07-29."""
    line = open_logistics_line()
    repay_due_on(line, date(2027, 1, 21), date(2027, 7, 21))
    return line, line.payoff(at_ten(date(2027, 7, 29)))


def test_unrenewed_line_rejects_drawdown():
    line = open_logistics_line()
    repay_due_on(line, date(2027, 1, 21), date(2027, 6, 21))

    with pytest.raises(LineMaturedError) as rejected:
        line.draw(at_ten(date(2027, 7, 10)), fen("1.00"))
    assert "2027-07-09" in str(rejected.value)
    assert line.principal_fen == fen("6,000,000.00")


def test_drawdown_on_maturity_day_accepted():
    line = open_logistics_line()
    repay_due_on(line, date(2027, 1, 21), date(2027, 6, 21))
    line.draw(at_ten(date(2027, 7, 9)), fen("1.00"))
    assert line.principal_fen == fen("6,000,001.00")


def test_unrenewed_line_settlement_matches(unrenewed):
    line, _ = unrenewed
    assert dict(line.settlements)[date(2027, 7, 21)] == fen("23,370.83")


def test_unrenewed_line_payoff_matches(unrenewed):
    _, payoff_fen = unrenewed
    assert payoff_fen == fen("6,007,900.00")


def test_unrenewed_line_total_interest(unrenewed):
    line, _ = unrenewed
    assert line.total_interest_paid_fen == fen("136,604.15")


# Hand-computed cases. At 3.60% the daily rate is 0.0360 / 360 = 0.0001, so 1,000,000.00 of
# principal accrues 100.00 a day and 1.00 of overdue interest accrues 0.0001 a day.


def open_unpaid_line(maturity: date = date(2027, 12, 31)) -> LineModel:
    """Line with 1,000,000.00 drawn on 2027-03-01 at 3.60%, on which nothing is repaid."""
    line = LineModel(fen("2,000,000.00"), 360, maturity)
    line.draw(at_ten(date(2027, 3, 1)), fen("1,000,000.00"))
    return line


def test_unpaid_interest_compounds():
    # 2027-03-21 settles 03-01..03-20: 20 x 100.00 = 2,000.00, left unpaid and overdue from 03-22.
    # 2027-04-21 settles 03-21..04-20 on principal, 31 x 100.00 = 3,100.00, plus 03-22..04-20 on
    # the overdue 2,000.00, 30 x 0.20 = 6.00: in all 3,106.00.
    # Payoff on 04-25 adds 04-21..04-24: 4 x 100.00 on principal, 0.20 on 04-21 while only the
    # 2,000.00 is overdue, and 3 x 0.5106 on the 5,106.00 overdue from 04-22. That is 401.7318,
    # so 401.73, and the payoff is 1,000,000.00 + 5,106.00 + 401.73 = 1,005,507.73.
    line = open_unpaid_line()

    line.advance_to(date(2027, 4, 21))
    assert line.settlements == (
        (date(2027, 3, 21), fen("2,000.00")),
        (date(2027, 4, 21), fen("3,106.00")),
    )
    assert line.overdue_interest_fen == fen("2,000.00")
    assert line.interest_due_fen == fen("3,106.00")

    line.advance_to(date(2027, 4, 22))
    assert line.overdue_interest_fen == fen("5,106.00")
    assert line.interest_due_fen == 0

    assert line.payoff_amount(date(2027, 4, 25)) == fen("1,005,507.73")


def test_overdue_interest_blocks_drawdown():
    line = open_unpaid_line()
    line.advance_to(date(2027, 3, 21))
    line.draw(at_ten(date(2027, 3, 21)), fen("1.00"))

    with pytest.raises(OverdueInterestError) as rejected:
        line.draw(at_ten(date(2027, 3, 22)), fen("1.00"))
    assert "2000.00" in str(rejected.value)
    assert line.principal_fen == fen("1,000,001.00")


def test_overdue_interest_penalized_after_maturity():
    # Maturity 2027-04-30, so from 05-01 the rate is 3.60% x 1.5 = 5.40%, daily 0.00015.
    # 2027-05-21 settles, on principal, 10 x 100.00 (04-21..04-30) + 20 x 150.00 (05-01..05-20)
    # = 4,000.00. On overdue interest it adds 0.20 (04-21, only 2,000.00 overdue) +
    # 9 x 0.5106 (04-22..04-30) + 20 x 0.7659 (05-01..05-20, 5,106.00 at the penalty rate)
    # = 20.1134. In all 4,020.1134, so 4,020.11.
    line = open_unpaid_line(maturity=date(2027, 4, 30))
    line.advance_to(date(2027, 5, 21))
    assert dict(line.settlements)[date(2027, 5, 21)] == fen("4,020.11")


def test_repayment_waterfall_order():
    line = open_unpaid_line()
    allocation = line.repay(at_ten(date(2027, 4, 21)), fen("10,000.00"))
    assert allocation.overdue_interest_fen == fen("2,000.00")
    assert allocation.interest_due_fen == fen("3,106.00")
    assert allocation.principal_fen == fen("4,894.00")
    assert allocation.accrued_interest_fen == 0
    assert line.principal_fen == fen("995,106.00")


def test_repayment_reaches_accrued_interest_last():
    # By 04-25 the running period has accrued 401.7318 (see test_unpaid_interest_compounds).
    line = open_unpaid_line()
    day = at_ten(date(2027, 4, 25))
    allocation = line.repay(day, fen("1,005,407.73"))
    assert allocation.principal_fen == fen("1,000,000.00")
    assert allocation.accrued_interest_fen == fen("301.73")
    assert line.accrued_exact == Fraction("10000.18")
    assert line.payoff_amount(day) == fen("100.00")


def test_repayment_above_payoff_rejected():
    line = open_unpaid_line()
    day = at_ten(date(2027, 4, 25))

    with pytest.raises(RepaymentExceedsOwedError) as rejected:
        line.repay(day, fen("1,005,507.74"))
    assert rejected.value.owed_fen == fen("1,005,507.73")
    assert "1005507.73" in str(rejected.value)
    assert line.principal_fen == fen("1,000,000.00")
    assert line.overdue_interest_fen == fen("5,106.00")


def test_payoff_leaves_exact_zero():
    # 4.37% on 1,234,567.89 accrues a fraction of a fen that never ends in decimals.
    line = LineModel(fen("2,000,000.00"), 437, date(2027, 12, 31))
    line.draw(at_ten(date(2027, 3, 3)), fen("1,234,567.89"))
    line.payoff(at_ten(date(2027, 4, 9)))

    assert line.principal_fen == 0
    assert line.interest_due_fen == 0
    assert line.overdue_interest_fen == 0
    assert line.accrued_exact == 0
    assert line.payoff_amount(date(2027, 6, 1)) == 0
    assert line.settlements[-1][0] == date(2027, 3, 21)


def test_thousand_drawdowns_accrue_as_one():
    many = LineModel(fen("5,000,000.00"), 437, date(2027, 12, 31))
    single = LineModel(fen("5,000,000.00"), 437, date(2027, 12, 31))
    day = at_ten(date(2027, 3, 3))
    for _ in range(1000):
        many.draw(day, fen("3,000.00"))
    single.draw(day, fen("3,000,000.00"))

    many.advance_to(date(2027, 5, 30))
    single.advance_to(date(2027, 5, 30))
    assert many.settlements == single.settlements
    assert many.accrued_exact == single.accrued_exact
    assert many.state() == single.state()


def test_reprice_applies_from_effective_day():
    # 03-01..03-10 at 3.60% (100.00 a day) and 03-11..03-20 at 7.20% (200.00 a day).
    line = open_unpaid_line()
    line.reprice(at_ten(date(2027, 3, 5)), 720, effective=date(2027, 3, 11))
    line.advance_to(date(2027, 3, 21))
    assert line.settlements == ((date(2027, 3, 21), fen("3,000.00")),)


def test_reprice_before_today_rejected():
    line = open_unpaid_line()
    with pytest.raises(InvalidTermsError):
        line.reprice(at_ten(date(2027, 3, 5)), 720, effective=date(2027, 3, 4))


def test_renewal_after_maturity_rejected():
    line = open_unpaid_line(maturity=date(2027, 4, 30))
    with pytest.raises(InvalidTermsError) as rejected:
        line.renew(at_ten(date(2027, 5, 1)), new_maturity=date(2027, 10, 31))
    assert "2027-04-30" in str(rejected.value)


def test_utc_evening_is_next_cst_day():
    # 2027-03-01 17:00 UTC is 2027-03-02 01:00 CST, so 03-02..03-20 accrue: 19 x 100.00.
    line = LineModel(fen("2,000,000.00"), 360, date(2027, 12, 31))
    line.draw(datetime(2027, 3, 1, 17, 0, tzinfo=UTC), fen("1,000,000.00"))
    line.advance_to(date(2027, 3, 21))
    assert line.settlements == ((date(2027, 3, 21), fen("1,900.00")),)


def test_naive_datetime_rejected():
    line = LineModel(fen("2,000,000.00"), 360, date(2027, 12, 31))
    with pytest.raises(NaiveDatetimeError):
        line.draw(datetime(2027, 3, 1, 10, 0), fen("1.00"))


# Randomized sequences of actions on a line with random terms.

ACTIONS = st.sampled_from(["draw", "repay", "repay_interest_due", "payoff", "reprice"])
EVENTS = st.lists(
    st.tuples(
        st.integers(0, 45),
        ACTIONS,
        st.one_of(st.integers(1, fen("1,000.00")), st.integers(1, fen("3,000,000.00"))),
    ),
    max_size=15,
)
TERMS = st.fixed_dictionaries(
    {
        "rate_bps": st.integers(0, 2400),
        "settlement_day": st.integers(1, 28),
        "term_days": st.integers(0, 400),
        "penalty_markup_pct": st.integers(0, 100),
    }
)
START = date(2027, 1, 1)


def make_line(terms: dict[str, int]) -> LineModel:
    return LineModel(
        fen("10,000,000.00"),
        terms["rate_bps"],
        START + timedelta(days=terms["term_days"]),
        settlement_day=terms["settlement_day"],
        penalty_markup_pct=terms["penalty_markup_pct"],
    )


def apply_event(line: LineModel, day: date, action: str, amount_fen: int) -> object:
    """Apply one action and return its result, or the type and message of its rejection."""
    try:
        if action == "draw":
            return line.draw(day, amount_fen)
        if action == "repay":
            return line.repay(day, amount_fen)
        if action == "reprice":
            return line.reprice(day, amount_fen % 2400, effective=day + timedelta(amount_fen % 40))
        return getattr(line, action)(day)
    except LineModelError as error:
        return type(error), str(error)


@settings(max_examples=150, deadline=None)
@given(terms=TERMS, events=EVENTS)
def test_daily_queries_change_nothing(terms, events):
    daily = make_line(terms)
    lazy = make_line(terms)
    daily.advance_to(START)
    lazy.advance_to(START)
    daily_results = []
    lazy_results = []

    day = START
    for gap_days, action, amount_fen in events:
        for _ in range(gap_days):
            day += ONE_DAY
            daily.advance_to(day)
            daily.payoff_amount(day)
        daily_results.append(apply_event(daily, day, action, amount_fen))
        lazy_results.append(apply_event(lazy, day, action, amount_fen))

    end = day + timedelta(days=70)
    while day < end:
        day += ONE_DAY
        daily.advance_to(day)
    lazy.advance_to(end)

    assert daily_results == lazy_results
    assert daily.state() == lazy.state()


@settings(max_examples=100, deadline=None)
@given(terms=TERMS, events=EVENTS, payoff_gap_days=st.integers(0, 60))
def test_payoff_clears_random_line(terms, events, payoff_gap_days):
    line = make_line(terms)
    day = START
    for gap_days, action, amount_fen in events:
        day += timedelta(days=gap_days)
        apply_event(line, day, action, amount_fen)

    line.payoff(day + timedelta(days=payoff_gap_days))
    assert line.principal_fen == 0
    assert line.interest_due_fen == 0
    assert line.overdue_interest_fen == 0
    assert line.accrued_exact == 0
