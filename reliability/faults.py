"""Faults injected while the load runs: bridge kills, node restarts that lose blocks, reorgs.

The schedule is drawn from the run's seed. Each fault fires when the load's
progress (the larger of the share of requests sent and the share of the load
time used) passes a point drawn for it. Faults run one at a time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .stack import AnvilNode, BridgeReplica

REORG_DEPTH = 2
# After a fault ends, 503 responses still count as the fault's for this long: a restarted
# bridge reconnects to its node, and the worker's back-off after node errors reaches seconds.
FAULT_GRACE_SECONDS = 15
REORG_SEARCH_SECONDS = 10
PROGRESS_POLL_SECONDS = 0.2
IN_FLIGHT_WAIT_SECONDS = 5


@dataclass
class FaultLog:
    bridge_kills: int = 0
    anvil_restarts: int = 0
    reorgs: int = 0
    lost_blocks: list[int] = field(default_factory=list)
    reorged_transactions: list[int] = field(default_factory=list)
    windows: list[tuple[float, float]] = field(default_factory=list)
    active_since: float | None = None

    def in_fault(self) -> bool:
        now = time.monotonic()
        if self.active_since is not None:
            return True
        return any(start <= now <= end + FAULT_GRACE_SECONDS for start, end in self.windows)


def plan_faults(
    rng: random.Random, kills: int, anvil_restarts: int, reorgs: int
) -> list[tuple[float, str]]:
    """Return (progress point, fault kind) pairs in the order they fire."""
    kinds = ["bridge_kill"] * kills + ["anvil_restart"] * anvil_restarts + ["reorg"] * reorgs
    points = sorted(rng.uniform(0.1, 0.85) for _ in kinds)
    rng.shuffle(kinds)
    return list(zip(points, kinds, strict=True))


class FaultInjector:
    """Fires the planned faults against the node and the bridge replicas."""

    def __init__(
        self,
        *,
        plan: list[tuple[float, str]],
        rng: random.Random,
        node: AnvilNode,
        replicas: list[BridgeReplica],
        choose_victim: Callable[[], BridgeReplica],
        progress: Callable[[], float],
        requests_in_flight: Callable[[], int],
        confirmations: int,
    ) -> None:
        self.log = FaultLog()
        self._plan = plan
        self._rng = rng
        self._node = node
        self._replicas = replicas
        self._choose_victim = choose_victim
        self._progress = progress
        self._requests_in_flight = requests_in_flight
        self._confirmations = confirmations

    async def run(self, load_done: asyncio.Event) -> None:
        for point, kind in self._plan:
            while self._progress() < point and not load_done.is_set():
                await asyncio.sleep(PROGRESS_POLL_SECONDS)
            if load_done.is_set():
                # Faults run one at a time, so a slow one can push the next past the load's
                # end. It still fires, while the last operations are being sent.
                print(f"fault: the {kind} planned at {point:.2f} fires after the load", flush=True)
            await asyncio.to_thread(self._fire, kind)

    def _fire(self, kind: str) -> None:
        self.log.active_since = time.monotonic()
        try:
            if kind == "bridge_kill":
                self._kill_bridge()
            elif kind == "anvil_restart":
                self._restart_anvil()
            else:
                self._reorg()
        finally:
            self.log.windows.append((self.log.active_since, time.monotonic()))
            self.log.active_since = None

    def _kill_bridge(self) -> None:
        # Wait for a request in flight, so the kill cuts one off before its response.
        deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
        while self._requests_in_flight() == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        victim = self._choose_victim()
        pid = victim.process.pid if victim.process else None
        victim.kill()
        self.log.bridge_kills += 1
        time.sleep(self._rng.uniform(0.0, 1.0))
        victim.start()
        print(
            f"fault: SIGKILL of bridge process {pid} on port {victim.port}, restarted", flush=True
        )

    def _restart_anvil(self) -> None:
        encoded = self._node.dump_state()
        time.sleep(self._rng.uniform(0.2, 1.0))
        head = self._node.head()
        saved = self._node.restart_from_dump(encoded)
        lost = max(head - saved, 0)
        self.log.anvil_restarts += 1
        self.log.lost_blocks.append(lost)
        print(
            f"fault: Anvil killed at block {head} and restarted from block {saved} "
            f"({lost} blocks lost)",
            flush=True,
        )
        if lost >= self._confirmations:
            print(
                f"warning: {lost} lost blocks reach the bridge's {self._confirmations} "
                "confirmations, so confirmed operations may be gone",
                flush=True,
            )

    def _reorg(self) -> None:
        """Replace the last REORG_DEPTH blocks once they contain transactions."""
        deadline = time.monotonic() + REORG_SEARCH_SECONDS
        while True:
            head = self._node.head()
            transactions = sum(
                self._node.block_transaction_count(number)
                for number in range(head - REORG_DEPTH + 1, head + 1)
            )
            if transactions > 0 or time.monotonic() >= deadline:
                break
            time.sleep(0.3)
        self._node.rpc("anvil_reorg", [REORG_DEPTH, []])
        self.log.reorgs += 1
        self.log.reorged_transactions.append(transactions)
        print(
            f"fault: reorg of the {REORG_DEPTH} blocks up to {head} with {transactions} "
            "transactions",
            flush=True,
        )
