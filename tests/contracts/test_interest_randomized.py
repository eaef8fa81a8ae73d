"""Randomized sequences of actions on one line, checked against the reference model after each step.

Hypothesis draws the line's terms and a sequence of steps: a wait of 0 to 70 days, then a
drawdown, repayment, interest repayment, payoff, limit change (by one officer or two), renewal or
review. Before each action the test predicts from the model whether the contract must reject it,
and with which error. After it, every balance, settlement and repayment split must equal the
model's to the fen. Each example runs inside its own chain snapshot, because chain time only
moves forward.

The default run is 15 sequences of up to 12 steps. `-m slow` adds 200 sequences of up to 40.
"""

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from conftest import day_number, next_request_id, reverts_with
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from modelled_line import fen

from ledger_bridge.reference.interest import DrawdownRejectedError, InvalidTermsError

MAX_LIMIT_CHANGE_BPS = 2200
LIMIT_CHANGE_INTERVAL_DAYS = 90
CYCLE_THRESHOLD = 8

# Hypothesis favours small integers, so the ranges near each limit are drawn on their own.
GAP_DAYS = st.one_of(st.just(0), st.integers(0, 10), st.integers(0, 70))
CHANGE_BPS = st.one_of(
    st.integers(-2200, 2200),
    st.integers(2201, 3000),
    st.integers(-3000, -2201),
    st.sampled_from([-2200, 2200]),
)
DRAW_PER_MILLE = st.one_of(st.integers(1, 1000), st.integers(950, 1100))
REPAY_PER_MILLE = st.one_of(st.integers(1, 1000), st.integers(990, 1010))
ACTIONS = st.one_of(
    st.tuples(st.just("wait")),
    st.tuples(st.just("draw"), DRAW_PER_MILLE),
    st.tuples(st.just("draw_fen"), st.integers(1, 500)),
    st.tuples(st.just("repay"), REPAY_PER_MILLE),
    st.tuples(st.just("repay_fen"), st.integers(1, 500)),
    st.tuples(st.just("repay_interest")),
    st.tuples(st.just("payoff")),
    st.tuples(st.just("change_limit"), CHANGE_BPS, st.booleans()),
    st.tuples(
        st.just("renew"),
        st.integers(1, 200),
        st.one_of(st.just(0), st.integers(1, 2400)),
        st.integers(0, 60),
        st.one_of(st.none(), CHANGE_BPS),
    ),
    st.tuples(st.just("clear_review")),
)
STEPS = st.tuples(GAP_DAYS, ACTIONS)
TERMS = st.fixed_dictionaries(
    {
        "limit_fen": st.integers(fen("1,000.00"), fen("50,000,000.00")),
        "rate_bps": st.integers(1, 2400),
        "open_offset_days": st.integers(0, 60),
        "term_days": st.integers(20, 400),
    }
)
FIRST_OPEN_DAY = date(2027, 1, 1)


@dataclass
class PolicyTracker:
    """What the contract remembers beyond the model: limit changes, cycles and a pending rate."""

    last_limit_change: date | None = None
    revolving_cycles: int = 0
    reviewed_cycles: int = 0
    pending_rate_day: date | None = None

    @property
    def review_flagged(self) -> bool:
        return self.revolving_cycles - self.reviewed_cycles > CYCLE_THRESHOLD


class SequenceRunner:
    """Runs one random sequence on a `ModelledLine`, predicting each rejection from the model."""

    def __init__(self, facility, line, officer, second_officer) -> None:
        self.facility = facility
        self.line = line
        self.model = line.model
        self.officer = officer
        self.second_officer = second_officer
        self.policy = PolicyTracker()
        self.day = line.day

    def run(self, gap_days: int, action: tuple) -> None:
        self.day += timedelta(days=gap_days)
        self.line.move_to(self.day)
        self.model.advance_to(self.day)
        if self.policy.pending_rate_day and self.policy.pending_rate_day <= self.day:
            self.policy.pending_rate_day = None
        note(f"{self.day}: {action}")
        event(f"action: {action[0]}")

        getattr(self, f"_{action[0]}")(*action[1:])

        self.line.assert_matches_model()
        state = self.line.state()
        assert state.revolvingCycles == self.policy.revolving_cycles
        assert state.reviewFlagged == self.policy.review_flagged

    def _expect_rejection(self, error: str, inputs: dict, send) -> None:
        """Send a transaction that must revert with the custom error `error` on this line."""
        event(f"rejected: {error}")
        with reverts_with(getattr(self.facility, error), lineId=self.line.line_id, **inputs):
            send()

    def _wait(self) -> None:
        pass

    def _draw(self, per_mille: int) -> None:
        room_fen = max(self.model.limit_fen - self.model.principal_fen, 0)
        self._draw_fen(max(room_fen * per_mille // 1000, 1))

    def _draw_fen(self, amount_fen: int) -> None:
        room_fen = max(self.model.limit_fen - self.model.principal_fen, 0)
        maturity = self.model.maturity
        overdue_fen = self.model.overdue_interest_fen
        if self.day > maturity:
            error = (
                "CreditLinePastMaturity",
                {"maturityDay": day_number(maturity), "today": day_number(self.day)},
            )
        elif overdue_fen:
            error = ("CreditInterestOverdue", {"overdueInterest": overdue_fen})
        elif self.policy.review_flagged:
            error = ("CreditReviewRequired", {"revolvingCycles": self.policy.revolving_cycles})
        elif amount_fen > room_fen:
            error = ("CreditLimitExceeded", {"available": room_fen, "requested": amount_fen})
        else:
            self.line.draw(self.day, amount_fen)
            return

        name, inputs = error
        self._expect_rejection(name, inputs, lambda: self.line.draw(self.day, amount_fen))
        if name != "CreditReviewRequired":
            with pytest.raises(DrawdownRejectedError):
                self.model.draw(self.day, amount_fen)

    def _repay(self, per_mille: int) -> None:
        owed_fen = self.model.payoff_amount(self.day)
        self._repay_fen(max(owed_fen * per_mille // 1000, 1))

    def _repay_fen(self, amount_fen: int) -> None:
        owed_fen = self.model.payoff_amount(self.day)
        if amount_fen > owed_fen:
            inputs = {"amount": amount_fen, "owed": owed_fen}
            self._expect_rejection(
                "CreditRepaymentExceedsOwed", inputs, lambda: self.line.repay(self.day, amount_fen)
            )
            return
        self._count_cycle(lambda: self.line.repay(self.day, amount_fen))

    def _repay_interest(self) -> None:
        if self.model.overdue_interest_fen + self.model.interest_due_fen == 0:
            self._expect_rejection(
                "CreditNothingOwed", {}, lambda: self.line.repay_interest(self.day)
            )
            return
        self.line.repay_interest(self.day)

    def _payoff(self) -> None:
        if self.model.payoff_amount(self.day) == 0:
            self._expect_rejection("CreditNothingOwed", {}, lambda: self.line.payoff(self.day))
            return
        self._count_cycle(lambda: self.line.payoff(self.day))

    def _change_limit(self, change_bps: int, by_two_officers: bool) -> None:
        new_limit_fen = self._changed_limit(change_bps)
        if by_two_officers and new_limit_fen != self.model.limit_fen:
            self.line.change_limit(
                self.day, new_limit_fen, self.officer, approver=self.second_officer
            )
            self.policy.last_limit_change = self.day
            return
        if by_two_officers:
            self._expect_rejection(
                "CreditLimitUnchanged",
                {"limit": new_limit_fen},
                lambda: self.line.change_limit(
                    self.day, new_limit_fen, self.officer, approver=self.second_officer
                ),
            )
            return

        if error := self._solo_limit_error(new_limit_fen):
            name, inputs = error
            self._expect_rejection(
                name, inputs, lambda: self.line.change_limit(self.day, new_limit_fen, self.officer)
            )
            return
        self.line.change_limit(self.day, new_limit_fen, self.officer)
        self.policy.last_limit_change = self.day

    def _renew(
        self, extension_days: int, rate_bps: int, effective_offset_days: int, limit_bps: int | None
    ) -> None:
        maturity = self.model.maturity + timedelta(days=extension_days)
        limit_fen = None if limit_bps is None else self._changed_limit(limit_bps)
        if limit_fen == self.model.limit_fen:
            limit_fen = None
        effective = self.day + timedelta(days=effective_offset_days) if rate_bps else None
        pending = self.policy.pending_rate_day

        error = None
        if self.day > self.model.maturity:
            error = (
                "CreditLinePastMaturity",
                {"maturityDay": day_number(self.model.maturity), "today": day_number(self.day)},
            )
        elif limit_fen is not None:
            error = self._solo_limit_error(limit_fen)
        if error is None and effective and pending and effective > pending:
            error = (
                "CreditRateChangePending",
                {"pendingDay": day_number(pending), "effectiveDay": day_number(effective)},
            )

        if error:
            name, inputs = error
            self._expect_rejection(
                name,
                inputs,
                lambda: self.line.renew(
                    self.day, self.officer, maturity, limit_fen, rate_bps or None, effective
                ),
            )
            if name == "CreditLinePastMaturity":
                with pytest.raises(InvalidTermsError):
                    self.model.renew(self.day, maturity)
            return

        self.line.renew(self.day, self.officer, maturity, limit_fen, rate_bps or None, effective)
        if limit_fen is not None:
            self.policy.last_limit_change = self.day
        if effective:
            self.policy.pending_rate_day = effective if effective > self.day else None

    def _clear_review(self) -> None:
        self.facility.clearReviewFlag(next_request_id(), self.line.line_id, sender=self.officer)
        self.policy.reviewed_cycles = self.policy.revolving_cycles

    def _changed_limit(self, change_bps: int) -> int:
        return max(self.model.limit_fen * (10_000 + change_bps) // 10_000, 1)

    def _solo_limit_error(self, new_limit_fen: int) -> tuple[str, dict] | None:
        current_fen = self.model.limit_fen
        last = self.policy.last_limit_change
        if new_limit_fen == current_fen:
            return ("CreditLimitUnchanged", {"limit": new_limit_fen})
        if abs(new_limit_fen - current_fen) * 10_000 > current_fen * MAX_LIMIT_CHANGE_BPS:
            inputs = {
                "currentLimit": current_fen,
                "requestedLimit": new_limit_fen,
                "maxChangeBps": 2200,
            }
            return ("CreditLimitChangeTooLarge", inputs)
        if last and self.day < last + timedelta(days=LIMIT_CHANGE_INTERVAL_DAYS):
            next_allowed = day_number(last) + LIMIT_CHANGE_INTERVAL_DAYS
            return (
                "CreditLimitChangeTooSoon",
                {"lastChangeDay": day_number(last), "nextAllowedDay": next_allowed},
            )
        return None

    def _count_cycle(self, repay) -> None:
        had_principal = self.model.principal_fen > 0
        repay()
        if had_principal and self.model.principal_fen == 0:
            self.policy.revolving_cycles += 1

    def finish(self, gap_days: int) -> None:
        """Pay off whatever is owed after a last wait, and check that nothing is left."""
        self.run(gap_days, ("wait",))
        if self.model.payoff_amount(self.day):
            self._count_cycle(lambda: self.line.payoff(self.day))
        state = self.line.state()
        assert state.payoffAmount == 0
        assert state.accruedInterest == 0
        assert self.line.interest_paid_fen == self.model.total_interest_paid_fen


def run_sequence(
    chain, facility, modelled_line, officer, second_officer, terms, steps, final_gap_days
):
    snapshot = chain.snapshot()
    try:
        opened = FIRST_OPEN_DAY + timedelta(days=terms["open_offset_days"])
        maturity = opened + timedelta(days=terms["term_days"])
        note(f"line of {terms['limit_fen']} fen at {terms['rate_bps']} bps, {opened} to {maturity}")
        line = modelled_line(terms["limit_fen"], terms["rate_bps"], opened, maturity)
        runner = SequenceRunner(facility, line, officer, second_officer)
        for gap_days, action in steps:
            runner.run(gap_days, action)
        runner.finish(final_gap_days)
    finally:
        chain.restore(snapshot)


# The fixtures used are stateless factories and each example restores its own snapshot.
SHARED_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}


@settings(max_examples=15, **SHARED_SETTINGS)
@given(terms=TERMS, steps=st.lists(STEPS, min_size=1, max_size=12), final_gap_days=GAP_DAYS)
def test_random_sequences_match_model(
    chain, facility, modelled_line, officer, second_officer, terms, steps, final_gap_days
):
    run_sequence(
        chain, facility, modelled_line, officer, second_officer, terms, steps, final_gap_days
    )


@pytest.mark.slow
@pytest.mark.timeout(3600)
@settings(max_examples=200, **SHARED_SETTINGS)
@given(terms=TERMS, steps=st.lists(STEPS, min_size=10, max_size=40), final_gap_days=GAP_DAYS)
def test_long_random_sequences_match_model(
    chain, facility, modelled_line, officer, second_officer, terms, steps, final_gap_days
):
    run_sequence(
        chain, facility, modelled_line, officer, second_officer, terms, steps, final_gap_days
    )
