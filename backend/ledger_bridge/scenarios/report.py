"""The report of one scenario: each line's figures from the auditor's history, the fund flow
and the expectations.

Report shape (amounts are decimal strings of yuan, dates are CST dates):

    {"scenario": ..., "lines": {label: {"line_id", "settlements": [{"date", "amount"}],
      "payoffs": [...], "interest_paid", "principal", "status", "events", ...}},
     "payees": {label: {"address", "category"}},
     "fund_flow": {"source", "compliant", "payouts": [...], "refused": [...], ...},
     "operations": {"confirmed", "failed", "rejected"},
     "expectations": {"passed", "failed", "details": [...]}}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ledger_bridge.money import format_amount
from ledger_bridge.scenarios.checks import StepChecker
from ledger_bridge.scenarios.client import BridgeClient
from ledger_bridge.scenarios.clock import ChainClock
from ledger_bridge.scenarios.fund_flow import summarise_fund_flow
from ledger_bridge.scenarios.history import (
    event_counts,
    event_date,
    fen,
    in_chain_order,
    interest_paid_fen,
    read_indexed_history,
    settlements,
)
from ledger_bridge.scenarios.model import EndExpectations, FundFlowExpectations
from ledger_bridge.scenarios.state import ScenarioState

Event = Mapping[str, Any]
END = "end"


def build_report(
    state: ScenarioState, client: BridgeClient, clock: ChainClock, facility: str | None
) -> dict[str, Any]:
    """Read every line's history and state, check the end expectations and build the report."""
    histories = {
        label: read_indexed_history(client, clock, line_id, facility or "")
        for label, line_id in state.lines.items()
    }
    lines = {label: _line_report(state, client, label, histories[label]) for label in state.lines}
    fund_flow = summarise_fund_flow(state, client, facility, histories, lines)
    moment = clock.now()
    _check_history_order(state, histories, moment)
    _check_settlement_days(state, lines, moment)
    _check_end(
        state,
        StepChecker(client, clock),
        state.scenario.expect_at_end,
        lines,
        fund_flow,
        facility,
        moment,
    )
    return {
        "scenario": state.scenario.name,
        "description": state.scenario.description.strip(),
        "facility": facility,
        "lines": lines,
        "payees": {
            payee.label: {"address": state.payees.get(payee.label), "category": payee.category}
            for payee in state.scenario.payees
        },
        "fund_flow": fund_flow,
        "operations": _count_operations(state),
        "expectations": {
            "passed": sum(check.passed for check in state.checks),
            "failed": sum(not check.passed for check in state.checks),
            "details": [check.to_json() for check in state.checks],
        },
    }


# ---------------------------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------------------------


def _line_report(
    state: ScenarioState, client: BridgeClient, label: str, events: Sequence[Event]
) -> dict[str, Any]:
    line_id = state.lines[label]
    live = client.read("bank", f"/v1/lines/{line_id}")
    return {
        "line_id": line_id,
        "borrower": state.address_of("borrower", label),
        "settlements": settlements(events),
        "payoffs": _payoffs(state, label, events),
        "interest_paid": format_amount(interest_paid_fen(events)),
        "principal": live["principal"],
        "status": live["status"],
        "events": len(events),
        "event_counts": event_counts(events),
        "limit": live["limit"],
        "rate_bps": live["rate_bps"],
        "maturity_date": live["maturity_date"],
        "locked": live["locked"],
        "payoff_amount": live["payoff_amount"],
        "as_of_day": live["as_of_day"],
    }


def _payoffs(state: ScenarioState, label: str, events: Sequence[Event]) -> list[dict[str, str]]:
    """Return the amounts paid by the line's confirmed payoff operations, from the history."""
    payoff_transactions = {
        record.outcome.operation.get("tx_hash")
        for record in state.operations
        if record.kind == "payoff" and record.line_label == label and record.outcome.confirmed
    }
    return [
        {
            "date": event_date(event).isoformat(),
            "amount": format_amount(fen(event["args"]["amount"])),
        }
        for event in events
        if event["event"] == "Repaid" and event["transaction_hash"] in payoff_transactions
    ]


def _check_history_order(
    state: ScenarioState, histories: Mapping[str, Sequence[Event]], moment: dt.datetime
) -> None:
    """Check that each line's history lists every confirmed write of the line, in order."""
    for label, events in histories.items():
        sent = [
            record.outcome.operation.get("tx_hash")
            for record in state.operations
            if record.line_label == label and record.outcome.confirmed
        ]
        seen = list(dict.fromkeys(event["transaction_hash"] for event in events))
        missing = [tx for tx in sent if tx not in seen]
        same_order = [tx for tx in seen if tx in sent] == [tx for tx in sent if tx in seen]
        ordered = same_order and in_chain_order(events)
        actual = (
            "yes" if ordered and not missing else f"{len(missing)} missing, in order: {ordered}"
        )
        check = f"history of line {label} contains every confirmed write in order"
        state.record_check(END, moment, check, "yes", actual)


def _count_operations(state: ScenarioState) -> dict[str, int]:
    counts = {"confirmed": 0, "failed": 0, "rejected": 0}
    for record in state.operations:
        counts[record.outcome.state] = counts.get(record.outcome.state, 0) + 1
    return counts


def _check_settlement_days(
    state: ScenarioState, lines: Mapping[str, Mapping[str, Any]], moment: dt.datetime
) -> None:
    """Check that each line settled interest only on its declared settlement day."""
    for label, line in lines.items():
        if not line["settlements"]:
            continue
        expected = state.scenario.line(label).settlement_day
        days = sorted({dt.date.fromisoformat(item["date"]).day for item in line["settlements"]})
        check = f"days of the month on which line {label} settled interest"
        state.record_check(END, moment, check, [expected], days)


# ---------------------------------------------------------------------------------------------
# End expectations
# ---------------------------------------------------------------------------------------------


def _check_end(
    state: ScenarioState,
    checker: StepChecker,
    expected: EndExpectations,
    lines: Mapping[str, Mapping[str, Any]],
    fund_flow: Mapping[str, Any],
    facility: str | None,
    moment: dt.datetime,
) -> None:
    for label, figures in expected.lines.items():
        if label not in lines:
            state.add_check(END, moment, f"line {label}", "opened", "never opened", False)
            continue
        if figures.line_fields():
            checker.check_figures(END, moment, state, label, figures, facility)
        for name in ("settlements", "payoffs"):
            expected_list = getattr(figures, name)
            if expected_list is not None:
                listed = [
                    {
                        "date": item.date.isoformat() if item.date else None,
                        "amount": format_amount(item.amount),
                    }
                    for item in expected_list
                ]
                state.record_check(
                    END, moment, f"{name} of line {label}", listed, lines[label][name]
                )
    saved = expected.interest_saved
    if saved is not None and saved.line in lines and saved.compared_with in lines:
        difference = fen(lines[saved.compared_with]["interest_paid"]) - fen(
            lines[saved.line]["interest_paid"]
        )
        check = f"interest saved by line {saved.line} against line {saved.compared_with}"
        actual = format_amount(difference) if difference >= 0 else f"-{format_amount(-difference)}"
        state.record_check(END, moment, check, format_amount(saved.amount), actual)
    if expected.fund_flow is not None:
        _check_fund_flow(state, expected.fund_flow, fund_flow, moment)


def _check_fund_flow(
    state: ScenarioState,
    expected: FundFlowExpectations,
    fund_flow: Mapping[str, Any],
    moment: dt.datetime,
) -> None:
    if expected.compliant is not None:
        state.record_check(
            END, moment, "fund flow compliant", expected.compliant, fund_flow["compliant"]
        )
    if expected.paid is not None:
        paid = {label: format_amount(amount) for label, amount in expected.paid.items()}
        state.record_check(END, moment, "paid by payee", paid, dict(fund_flow["paid_by_payee"]))
    if expected.refused is not None:
        expected_refused = [
            {"payee": item.payee, "category": item.category, "rule": item.rule}
            for item in expected.refused
        ]
        actual_refused = [
            {key: item[key] for key in ("payee", "category", "rule")}
            for item in fund_flow["refused"]
        ]
        state.record_check(END, moment, "refused payouts", expected_refused, actual_refused)
    for name in ("returned", "locked"):
        expected_amount = getattr(expected, name)
        if expected_amount is not None:
            check = f"{name} over all lines"
            state.record_check(END, moment, check, format_amount(expected_amount), fund_flow[name])
