"""Checks of a scenario across fields: labels that exist, actions in order, refs defined first.

Each problem comes with the location of the field at fault, such as
("actions", 3, "payee"), so the loader can name the file's line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from ledger_bridge.scenarios.model import (
    Check,
    Drawdown,
    PayFromLocked,
    ReturnLocked,
    Scenario,
    setup_moment,
)

Location = tuple[str | int, ...]
Problem = tuple[Location, str]


def find_problems(scenario: Scenario) -> list[Problem]:
    """Return the cross-field problems, each with the location of the field at fault."""
    problems = [*_duplicate_labels(scenario), *_unknown_references(scenario)]
    problems.extend(_ordering_problems(scenario))
    problems.extend(_expectation_problems(scenario))
    return problems


def _duplicate_labels(scenario: Scenario) -> Iterator[Problem]:
    for section in ("payees", "pools", "lines"):
        seen: set[str] = set()
        for index, item in enumerate(getattr(scenario, section)):
            if item.label in seen:
                yield (section, index, "label"), f"label {item.label!r} is used twice"
            seen.add(item.label)


def _unknown_references(scenario: Scenario) -> Iterator[Problem]:
    payees = {payee.label for payee in scenario.payees}
    pools = {pool.label for pool in scenario.pools}
    lines = {line.label for line in scenario.lines}
    for index, line in enumerate(scenario.lines):
        if line.pool is not None and line.pool not in pools:
            yield ("lines", index, "pool"), _unknown("pool", line.pool, pools)
    for index, action in enumerate(scenario.actions):
        label = action.line_label()
        if label is not None and label not in lines:
            yield ("actions", index, "line"), _unknown("line", label, lines)
        payee = getattr(action, "payee", None)
        if payee is not None and payee not in payees:
            yield ("actions", index, "payee"), _unknown("payee", payee, payees)
        pool = getattr(action, "pool", None)
        if pool is not None and pool not in pools:
            yield ("actions", index, "pool"), _unknown("pool", pool, pools)


def _ordering_problems(scenario: Scenario) -> Iterator[Problem]:
    opened = {line.label: line.opened for line in scenario.lines}
    drawdown_refs: set[str] = set()
    previous: dt.datetime | None = None
    for index, action in enumerate(scenario.actions):
        moment = action.moment()
        if previous is not None and moment < previous:
            yield (
                ("actions", index, "date"),
                f"{_when(moment)} is before the previous action ({_when(previous)}); "
                "list actions in date and time order",
            )
        previous = moment
        label = action.line_label()
        if label in opened and moment < setup_moment(opened[label]):
            yield (
                ("actions", index, "date"),
                f"line {label!r} opens at {_when(setup_moment(opened[label]))}, after "
                f"this action at {_when(moment)}",
            )
        if (
            isinstance(action, PayFromLocked | ReturnLocked)
            and action.drawdown not in drawdown_refs
        ):
            yield (
                ("actions", index, "drawdown"),
                f"no earlier self_directed drawdown has ref {action.drawdown!r}",
            )
        if isinstance(action, Drawdown) and action.ref is not None:
            if action.ref in drawdown_refs:
                yield ("actions", index, "ref"), f"ref {action.ref!r} is used twice"
            if action.mode != "self_directed":
                yield (
                    ("actions", index, "ref"),
                    "only a self_directed drawdown has a locked balance to refer to",
                )
            drawdown_refs.add(action.ref)


def _expectation_problems(scenario: Scenario) -> Iterator[Problem]:
    lines = {line.label for line in scenario.lines}
    payees = {payee.label for payee in scenario.payees}
    for index, action in enumerate(scenario.actions):
        expect = action.expect
        if expect is None:
            continue
        has_line = action.line_label() is not None or isinstance(
            action, PayFromLocked | ReturnLocked
        )
        if expect.needs_line() and not has_line:
            yield (
                ("actions", index, "expect"),
                "line figures need an action with a line; use a check action with line",
            )
        if expect.error is not None and isinstance(action, Check):
            yield ("actions", index, "expect", "error"), "a check sends nothing to fail"
    end = scenario.expect_at_end
    for label in end.lines:
        if label not in lines:
            yield ("expect_at_end", "lines", label), _unknown("line", label, lines)
    if end.interest_saved is not None:
        for field in ("line", "compared_with"):
            label = getattr(end.interest_saved, field)
            if label not in lines:
                yield ("expect_at_end", "interest_saved", field), _unknown("line", label, lines)
    if end.fund_flow is not None:
        for label in end.fund_flow.paid or {}:
            if label not in payees:
                yield (
                    ("expect_at_end", "fund_flow", "paid", label),
                    _unknown("payee", label, payees),
                )
        for index, refused in enumerate(end.fund_flow.refused or []):
            if refused.payee is not None and refused.payee not in payees:
                yield (
                    ("expect_at_end", "fund_flow", "refused", index, "payee"),
                    _unknown("payee", refused.payee, payees),
                )


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _unknown(kind: str, label: str, known: set[str]) -> str:
    listed = ", ".join(sorted(known)) or "none"
    return f"no {kind} has the label {label!r}; declared {kind}s: {listed}"
