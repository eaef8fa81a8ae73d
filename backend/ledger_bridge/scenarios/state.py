"""Per-scenario state of a run: ids the chain assigned, operations sent and checks made."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from eth_utils import keccak, to_checksum_address

from ledger_bridge.scenarios.client import Outcome
from ledger_bridge.scenarios.model import CHINA_STANDARD_TIME, Scenario
from ledger_bridge.scenarios.timeline import Step


class UnresolvedReferenceError(LookupError):
    """A step names a line, pool or drawdown that an earlier step failed to create."""


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One write the run sent, with the step it belongs to and how it ended."""

    step: Step
    kind: str
    line_label: str | None
    outcome: Outcome
    amount_fen: int | None = None
    payee_label: str | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One expectation and whether the bridge's responses met it."""

    step: str
    moment: str
    check: str
    expected: str
    actual: str
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "moment": self.moment,
            "check": self.check,
            "expected": self.expected,
            "actual": self.actual,
            "passed": self.passed,
        }


@dataclass
class ScenarioState:
    """The run's knowledge of one scenario: labels mapped to on-chain ids, and the log."""

    scenario: Scenario
    index: int
    salt: str
    payees: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    pools: dict[str, int] = field(default_factory=dict)
    drawdowns: dict[str, tuple[str, int]] = field(default_factory=dict)
    operations: list[OperationRecord] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    # (moment, category, blocked) of every confirmed block and unblock, in order.
    category_changes: list[tuple[dt.datetime, int, bool]] = field(default_factory=list)

    def address_of(self, kind: str, label: str) -> str:
        """Return a pseudonymous address for a label, fixed within one run of this scenario.

        The run's salt makes the address new in each run, so a scenario can be
        replayed again on a chain where its payees are registered already.
        """
        seed = f"{self.salt}/{self.scenario.name}/{kind}/{label}"
        return to_checksum_address(keccak(text=seed)[-20:])

    def line_id(self, label: str) -> int:
        if label not in self.lines:
            raise UnresolvedReferenceError(f"line {label!r} was not opened by an earlier step")
        return self.lines[label]

    def pool_id(self, label: str) -> int:
        if label not in self.pools:
            raise UnresolvedReferenceError(f"pool {label!r} was not created by an earlier step")
        return self.pools[label]

    def payee(self, label: str) -> str:
        if label not in self.payees:
            raise UnresolvedReferenceError(f"payee {label!r} was not registered by an earlier step")
        return self.payees[label]

    def drawdown(self, ref: str) -> tuple[str, int]:
        if ref not in self.drawdowns:
            raise UnresolvedReferenceError(f"drawdown {ref!r} was not confirmed by an earlier step")
        return self.drawdowns[ref]

    def payee_label(self, address: str) -> str | None:
        """Return the label of a payee address of this scenario, or None."""
        target = address.lower()
        return next((label for label, item in self.payees.items() if item.lower() == target), None)

    def record_check(
        self, step: str, moment: dt.datetime, check: str, expected: object, actual: object
    ) -> None:
        """Record an expectation that passes when `expected` equals `actual`."""
        self.add_check(step, moment, check, str(expected), str(actual), expected == actual)

    def add_check(
        self, step: str, moment: dt.datetime, check: str, expected: str, actual: str, passed: bool
    ) -> None:
        when = moment.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M")
        self.checks.append(CheckResult(step, when, check, expected, actual, passed))
