"""Readiness checks that parts of the bridge register and GET /ready runs."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread

logger = logging.getLogger(__name__)

# A check returns normally when its dependency is usable and raises otherwise.
# Synchronous checks run in a worker thread.
ReadinessCheck = Callable[[], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one readiness check. `error` is the exception type name, never its message."""

    ok: bool
    error: str | None = None


class ReadinessChecks:
    """Named readiness checks, run in the order they were registered.

    The app registers a database check, and the chain client and the worker
    register their own through `app.state.readiness.register(...)`.
    """

    def __init__(self) -> None:
        self._checks: dict[str, ReadinessCheck] = {}

    def register(self, name: str, check: ReadinessCheck) -> None:
        """Add a check, or raise ValueError if the name is taken."""
        if name in self._checks:
            raise ValueError(f"A readiness check named {name!r} is already registered")
        self._checks[name] = check

    @property
    def names(self) -> list[str]:
        """Names of the registered checks."""
        return list(self._checks)

    async def run(self, timeout_ms: int) -> dict[str, CheckResult]:
        """Run every check, each limited to `timeout_ms` milliseconds."""
        return {
            name: await _run_one(name, check, timeout_ms) for name, check in self._checks.items()
        }


async def _run_one(name: str, check: ReadinessCheck, timeout_ms: int) -> CheckResult:
    try:
        with anyio.fail_after(timeout_ms / 1000):
            if inspect.iscoroutinefunction(check):
                await check()
            else:
                result = await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
                if inspect.isawaitable(result):
                    await result
    except Exception as error:  # any failure means "not ready"
        logger.warning("Readiness check %s failed: %s: %s", name, type(error).__name__, error)
        return CheckResult(ok=False, error=type(error).__name__)
    return CheckResult(ok=True)
