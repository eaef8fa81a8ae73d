"""Checking a step's expectations against the bridge's responses right after the step.

Every write of a step is expected to be confirmed, unless the step expects
an error: then its last write must fail with that contract error and the
arguments given. Line figures come from `GET /v1/lines/{id}` as the bank.
Settled interest, interest paid and event counts come from the line's
history as the auditor reads it, once the index has caught up with the chain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ledger_bridge.chain.values import AMOUNT_ARGUMENT_NAMES, DAY_ARGUMENT_NAMES, date_to_day
from ledger_bridge.money import format_amount
from ledger_bridge.scenarios.client import BridgeClient
from ledger_bridge.scenarios.clock import ChainClock
from ledger_bridge.scenarios.history import (
    event_counts,
    fen,
    interest_paid_fen,
    read_indexed_history,
    settlements,
)
from ledger_bridge.scenarios.model import (
    Action,
    CategoryBlock,
    ExpectedError,
    LineFigures,
    PayFromLocked,
    Payoff,
    ReturnLocked,
    StepExpectations,
)
from ledger_bridge.scenarios.state import OperationRecord, ScenarioState
from ledger_bridge.scenarios.timeline import Step

# Errors of a block or unblock that find the rule in force already, for example because another
# scenario of the run or the demo seed set it. The scenario's intent is met either way.
UNCHANGED_RULE_ERRORS = frozenset({"FundFlowCategoryStateUnchanged"})

# LineFigures fields read from GET /v1/lines/{id}, mapped to the response field of each.
STATE_FIELDS: Mapping[str, str] = {
    "principal": "principal",
    "payoff": "payoff_amount",
    "limit": "limit",
    "available": "available",
    "locked": "locked",
    "interest_due": "interest_due",
    "status": "status",
}
MATURING_ROUTE = "/v1/portfolio/maturing"


class StepChecker:
    """Records the checks of setup steps and actions in their scenario's state."""

    def __init__(self, client: BridgeClient, clock: ChainClock) -> None:
        self.client = client
        self.clock = clock

    def check_setup(
        self, step: Step, state: ScenarioState, records: Sequence[OperationRecord]
    ) -> None:
        """Check that each write of a payee, pool or line setup was confirmed."""
        for record in records:
            state.add_check(
                step.describe(),
                step.moment,
                f"{record.kind} confirmed",
                "confirmed",
                record.outcome.describe(),
                record.outcome.confirmed,
            )

    def check_action(
        self,
        step: Step,
        state: ScenarioState,
        records: Sequence[OperationRecord],
        facility: str | None,
    ) -> None:
        """Check the outcome of an action's writes, then the figures it expects."""
        action = step.item
        assert isinstance(action, Action)
        expect = action.expect or StepExpectations()
        if expect.error is not None:
            self._check_error(step, state, records, expect.error)
        else:
            self._check_confirmed(step, state, records, action)
        line_label = _line_of(action, state)
        if line_label is None or line_label not in state.lines:
            if expect.needs_line():
                state.add_check(
                    step.describe(),
                    step.moment,
                    "line figures",
                    "a line",
                    f"line {line_label!r} was never opened",
                    False,
                )
            return
        line_id = state.lines[line_label]
        if expect.line_fields():
            self.check_figures(
                step.describe(),
                step.moment,
                state,
                line_label,
                expect,
                facility,
                payoff_paid=_payoff_paid(action, records),
            )
        if expect.settled is not None or expect.maturing_within is not None:
            self._check_settlement_and_maturity(step, state, line_label, line_id, expect, facility)

    # -------------------------------------------------------------------------------------
    # Outcomes
    # -------------------------------------------------------------------------------------

    def _check_confirmed(
        self, step: Step, state: ScenarioState, records: Sequence[OperationRecord], action: Action
    ) -> None:
        for record in records:
            outcome = record.outcome
            passed = outcome.confirmed
            actual = outcome.describe()
            if isinstance(action, CategoryBlock) and outcome.error_name in UNCHANGED_RULE_ERRORS:
                passed = True
                actual = f"already in force ({outcome.describe()})"
            check = f"{record.kind} confirmed"
            state.add_check(step.describe(), step.moment, check, "confirmed", actual, passed)

    def _check_error(
        self,
        step: Step,
        state: ScenarioState,
        records: Sequence[OperationRecord],
        expected: ExpectedError,
    ) -> None:
        check = f"fails with {expected.name}"
        expected_text = _describe_expected_error(expected)
        if not records:
            state.add_check(
                step.describe(), step.moment, check, expected_text, "nothing was sent", False
            )
            return
        for record in records[:-1]:
            state.add_check(
                step.describe(),
                step.moment,
                f"{record.kind} confirmed",
                "confirmed",
                record.outcome.describe(),
                record.outcome.confirmed,
            )
        outcome = records[-1].outcome
        mismatches = _argument_mismatches(expected, outcome.error_args, state)
        passed = outcome.error_name == expected.name and not mismatches
        actual = outcome.describe()
        if outcome.error_name == expected.name and mismatches:
            actual += "; " + "; ".join(mismatches)
        state.add_check(step.describe(), step.moment, check, expected_text, actual, passed)

    # -------------------------------------------------------------------------------------
    # Figures
    # -------------------------------------------------------------------------------------

    def check_figures(
        self,
        step_name: str,
        moment: dt.datetime,
        state: ScenarioState,
        line_label: str,
        figures: LineFigures,
        facility: str | None,
        *,
        payoff_paid: int | None = None,
    ) -> None:
        """Compare the line's state and history with the figures that are set."""
        line_id = state.lines[line_label]
        line = self.client.read("bank", f"/v1/lines/{line_id}")
        for name in figures.line_fields():
            figure = getattr(figures, name)
            check = f"{name} of line {line_label}"
            if name in ("interest_paid", "history"):
                events = read_indexed_history(self.client, self.clock, line_id, facility or "")
                actual: Any = (
                    format_amount(interest_paid_fen(events))
                    if name == "interest_paid"
                    else {key: event_counts(events).get(key, 0) for key in figure}
                )
                expected: Any = format_amount(figure) if name == "interest_paid" else figure
            elif name == "payoff" and payoff_paid is not None:
                check = f"amount paid off on line {line_label}"
                actual, expected = format_amount(payoff_paid), format_amount(figure)
            elif name == "status":
                actual, expected = line["status"], figure
            else:
                actual, expected = line[STATE_FIELDS[name]], format_amount(figure)
            state.record_check(step_name, moment, check, expected, actual)

    def _check_settlement_and_maturity(
        self,
        step: Step,
        state: ScenarioState,
        line_label: str,
        line_id: int,
        expect: StepExpectations,
        facility: str | None,
    ) -> None:
        name = step.describe()
        if expect.settled is not None:
            day = expect.settled.date or step.moment.date()
            events = read_indexed_history(self.client, self.clock, line_id, facility or "")
            found = [
                item["amount"] for item in settlements(events) if item["date"] == day.isoformat()
            ]
            check = f"interest settled on {day.isoformat()} for line {line_label}"
            actual = ", ".join(found) if found else "no InterestSettled event"
            state.record_check(
                name, step.moment, check, format_amount(expect.settled.amount), actual
            )
        if expect.maturing_within is not None:
            listed = self._maturing_line_ids(expect.maturing_within, facility)
            check = f"line {line_label} listed as maturing within {expect.maturing_within} days"
            actual = (
                "route missing"
                if listed is None
                else ("listed" if line_id in listed else "not listed")
            )
            state.record_check(name, step.moment, check, "listed", actual)

    def _maturing_line_ids(self, days: int, facility: str | None) -> set[int] | None:
        if not self.client.has_route("GET", MATURING_ROUTE):
            return None
        listed: set[int] = set()
        params: dict[str, Any] = {"within_days": days}
        while True:
            page = self.client.read("bank", MATURING_ROUTE, params)
            listed.update(int(item["line_id"]) for item in page.get("lines", []))
            cursor = page.get("next_cursor")
            if cursor is None:
                return listed
            params = {**params, "cursor": cursor}


def _line_of(action: Action, state: ScenarioState) -> str | None:
    if isinstance(action, PayFromLocked | ReturnLocked):
        return state.drawdowns.get(action.drawdown, (None, 0))[0]
    return action.line_label()


def _payoff_paid(action: Action, records: Sequence[OperationRecord]) -> int | None:
    """Return the amount a confirmed payoff paid, from its Repaid event, or None."""
    if not isinstance(action, Payoff) or not records or not records[-1].outcome.confirmed:
        return None
    for event in records[-1].outcome.events:
        if event["event"] == "Repaid":
            return fen(event["args"]["amount"])
    return None


def _describe_expected_error(expected: ExpectedError) -> str:
    if not expected.args:
        return expected.name
    listed = ", ".join(f"{key}={value}" for key, value in expected.args.items())
    return f"{expected.name}({listed})"


def _argument_mismatches(
    expected: ExpectedError, actual: Mapping[str, Any], state: ScenarioState
) -> list[str]:
    """Compare expected error arguments, written as in the scenario, with the decoded ones."""
    mismatches = []
    for name, value in expected.args.items():
        if name not in actual:
            mismatches.append(f"the error has no argument {name}")
            continue
        decoded = _normalise_argument(name, value, state)
        if str(actual[name]).lower() != decoded.lower():
            mismatches.append(f"{name} is {_present_argument(name, actual[name])}, not {value}")
    return mismatches


def _normalise_argument(name: str, value: Any, state: ScenarioState) -> str:
    """Return the decoded form of a scenario value: fen, day numbers and payee addresses."""
    if name in AMOUNT_ARGUMENT_NAMES:
        return str(fen(str(value)))
    if name in DAY_ARGUMENT_NAMES and isinstance(value, dt.date):
        return str(date_to_day(value))
    if name == "payee" and isinstance(value, str) and value in state.payees:
        return state.payees[value]
    if isinstance(value, bool):
        return str(value)
    return str(value)


def _present_argument(name: str, value: Any) -> str:
    if name in AMOUNT_ARGUMENT_NAMES:
        return format_amount(int(value))
    if name in DAY_ARGUMENT_NAMES:
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(value))).isoformat()
    return str(value)
