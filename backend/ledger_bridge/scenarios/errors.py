"""Errors of scenario replay. The CLI prints their message and exits with status 1."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ledger_bridge.core.errors import LedgerBridgeError


class ScenarioError(LedgerBridgeError):
    """Root of the errors that stop a scenario run before or while it replays."""


class ScenarioFileError(ScenarioError, ValueError):
    """A scenario file cannot be read, is not YAML, or breaks the scenario format."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        listed = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(
            f"Scenario file {path} is invalid ({len(problems)} problem"
            f"{'' if len(problems) == 1 else 's'}):\n{listed}\n"
            "Fix the fields listed; docs/scenarios.md describes the format."
        )
        self.path = path
        self.problems = tuple(problems)


class ClockError(ScenarioError, RuntimeError):
    """The chain's time cannot be moved to where the next step needs it."""


class StackError(ScenarioError, RuntimeError):
    """The local chain, the deployment or the bridge for a run failed to start."""


class BridgeRequestError(ScenarioError, RuntimeError):
    """The bridge returned an unexpected status for a request of the runner, or no response."""
