"""Figures read from a line's history as the auditor reads it.

Event arguments arrive as the bridge presents them: amounts as decimal
strings of yuan, day numbers and other integers as decimal strings.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ledger_bridge.chain.values import day_to_date
from ledger_bridge.money import format_amount, parse_amount
from ledger_bridge.scenarios.client import BridgeClient
from ledger_bridge.scenarios.clock import ChainClock
from ledger_bridge.scenarios.errors import BridgeRequestError
from ledger_bridge.scenarios.model import CHINA_STANDARD_TIME

INDEX_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.02
# After this long without progress the runner mines a block, for indexers that lag behind.
MINE_AFTER_SECONDS = 0.5

Event = Mapping[str, Any]

# Parts of a repayment that are interest, in the Repaid event.
INTEREST_PARTS = ("overduePaid", "interestDuePaid", "accruedPaid")


def read_indexed_history(
    client: BridgeClient, clock: ChainClock, line_id: int, facility: str
) -> list[dict[str, Any]]:
    """Return the line's history once the index has read every block mined so far."""
    head = clock.block_number()
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    waiting_since = time.monotonic()
    while True:
        events, indexed_through = client.line_history(line_id, facility)
        if indexed_through is not None and indexed_through >= head:
            return events
        now = time.monotonic()
        if now > deadline:
            raise BridgeRequestError(
                f"The bridge's index reached block {indexed_through}, not block {head}, within "
                f"{INDEX_WAIT_SECONDS:.0f} s. Check that its indexer runs (see its log)."
            )
        if now - waiting_since > MINE_AFTER_SECONDS:
            # A bridge that needs several confirmations indexes a block only once later blocks
            # exist; on a development chain nothing else mines them.
            clock.mine()
            waiting_since = now
        time.sleep(POLL_SECONDS)


def fen(value: object) -> int:
    """Return an event amount, presented as a decimal string, in fen."""
    return parse_amount(value, allow_zero=True)


def interest_paid_fen(events: Iterable[Event]) -> int:
    """Return the interest repaid in the line's Repaid events."""
    return sum(
        fen(event["args"][part])
        for event in events
        if event["event"] == "Repaid"
        for part in INTEREST_PARTS
    )


def settlements(events: Iterable[Event]) -> list[dict[str, str]]:
    """Return [{"date", "amount"}] of the line's InterestSettled events, in chain order."""
    return [
        {
            "date": day_to_date(int(event["args"]["settlementDay"])).isoformat(),
            "amount": format_amount(fen(event["args"]["amount"])),
        }
        for event in events
        if event["event"] == "InterestSettled"
    ]


def event_counts(events: Iterable[Event]) -> dict[str, int]:
    """Return how many events of each name the history holds."""
    return dict(Counter(event["event"] for event in events))


def event_date(event: Event) -> dt.date:
    """Return the China Standard Time date of the block that holds `event`."""
    moment = dt.datetime.fromisoformat(str(event["block_timestamp"]).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CHINA_STANDARD_TIME).date()


def in_chain_order(events: Iterable[Event]) -> bool:
    """Return whether the events are ordered by block number and log index."""
    positions = [(event["block_number"], event["log_index"]) for event in events]
    return positions == sorted(positions)
