"""The order in which a run performs its steps, over one or more scenarios on one clock.

A chain's time only moves forward, so scenarios that share a chain are
replayed together: their steps are merged by moment. Each declared payee,
pool and line becomes a setup step at 10:00 CST on its date (payee
registration, pool creation, then application, approval and opening). At
one moment, setup steps come before actions, and a scenario's steps keep
their file order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from ledger_bridge.scenarios.model import Action, Line, Payee, Pool, Scenario, setup_moment


class Phase(IntEnum):
    """Order of the kinds of step at one moment."""

    PAYEE = 0
    POOL = 1
    LINE = 2
    ACTION = 3


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a run does at one moment for one scenario."""

    moment: dt.datetime
    phase: Phase
    scenario_index: int
    position: int
    item: Payee | Pool | Line | Action

    @property
    def sort_key(self) -> tuple[dt.datetime, int, int, int]:
        return (self.moment, self.phase, self.scenario_index, self.position)

    def describe(self) -> str:
        """Name the step for reports, such as "actions[3] drawdown" or "line staged"."""
        if isinstance(self.item, Action):
            return f"actions[{self.position}] {self.item.action}"  # type: ignore[attr-defined]
        kind = self.phase.name.lower()
        return f"{kind} {self.item.label}"  # type: ignore[union-attr]


def build_timeline(scenarios: Sequence[Scenario]) -> list[Step]:
    """Return the steps of every scenario, merged by moment."""
    steps: list[Step] = []
    for index, scenario in enumerate(scenarios):
        for position, payee in enumerate(scenario.payees):
            moment = setup_moment(scenario.registration_date(payee))
            steps.append(Step(moment, Phase.PAYEE, index, position, payee))
        for position, pool in enumerate(scenario.pools):
            steps.append(Step(setup_moment(pool.created), Phase.POOL, index, position, pool))
        for position, line in enumerate(scenario.lines):
            steps.append(Step(setup_moment(line.opened), Phase.LINE, index, position, line))
        for position, action in enumerate(scenario.actions):
            steps.append(Step(action.moment(), Phase.ACTION, index, position, action))
    return sorted(steps, key=lambda step: step.sort_key)
