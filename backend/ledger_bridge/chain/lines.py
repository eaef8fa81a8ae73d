"""Live reads of credit lines, pools and locked balances from the facility contracts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, Web3Exception

from ledger_bridge.chain.contracts import CREDIT_FACILITY, contract_at
from ledger_bridge.chain.errors import (
    ChainReadRevertedError,
    ChainUnavailableError,
    decode_revert,
    revert_data_of,
)
from ledger_bridge.chain.transactions import TRANSIENT_ERRORS
from ledger_bridge.chain.values import ENUM_MEMBERS

LINE_STATUSES = ENUM_MEMBERS["enum ICreditFacility.LineStatus"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class LineSnapshot:
    """A line's state as `lineState` returns it for today, read at one block.

    Amounts are integers in fen; days are China Standard Time day numbers.
    """

    block_number: int
    day: int
    status: str
    frozen_by_bank: bool
    frozen_by_regulator: bool
    review_flagged: bool
    revolving_cycles: int
    rate_bps: int
    maturity_day: int
    pool_id: int
    limit: int
    principal: int
    interest_due: int
    overdue_interest: int
    accrued_interest: int
    available: int
    payoff_amount: int
    written_off_outstanding: int
    locked: int


@dataclass(frozen=True, slots=True)
class LockedBalance:
    """The money of a self-directed drawdown still locked for its line's borrower, in fen."""

    line_id: int
    amount: int


class LineReader:
    """Reads lines, pools and locked balances from facilities, caching each line count.

    Line ids run from 1 to `lineCount()` and lines are never deleted, so a
    cached count only needs a refresh when a higher id is asked for.
    """

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3
        self._line_counts: dict[str, int] = {}
        self._facilities: dict[str, Contract] = {}
        self._lock = threading.Lock()

    def exists(self, facility_address: str, line_id: int) -> bool:
        """Return whether the facility has a line with this id."""
        if line_id < 1:
            return False
        with self._lock:
            cached = self._line_counts.get(facility_address, 0)
        if line_id <= cached:
            return True
        count = call_node(self._facility(facility_address).functions.lineCount().call)
        with self._lock:
            self._line_counts[facility_address] = max(count, cached)
        return line_id <= count

    def read(self, facility_address: str, line_id: int, day: int | None = None) -> LineSnapshot:
        """Return the line's state at `day` (default today), read at one block.

        `day` must be today or later in the contract's calendar. The caller
        checks it against `today`, because the contract cannot state a line's
        balances for a past day.
        """
        facility = self._facility(facility_address)
        block_number = call_node(lambda: self._w3.eth.block_number)
        if day is None:
            day = call_node(lambda: facility.functions.today().call(block_identifier=block_number))
        state = call_node(
            lambda: facility.functions.lineState(line_id, day).call(block_identifier=block_number)
        )
        return _snapshot(block_number, day, state)

    def today(self, facility_address: str) -> int:
        """Return the facility's current day number (China Standard Time, by block time)."""
        return call_node(self._facility(facility_address).functions.today().call)

    def pool(self, facility_address: str, pool_id: int) -> tuple[int, int]:
        """Return a pool's (limit, used) in fen; (0, 0) for a pool that was never created."""
        limit, used = call_node(self._facility(facility_address).functions.pool(pool_id).call)
        return limit, used

    def locked_balance(self, facility_address: str, drawdown_id: int) -> LockedBalance | None:
        """Return a drawdown's locked balance, or None if it locked no money in this facility."""
        call = self._facility(facility_address).functions.lockedBalance(drawdown_id).call
        line_id, amount = call_node(call)
        return None if line_id == 0 else LockedBalance(line_id=line_id, amount=amount)

    def _facility(self, address: str) -> Contract:
        with self._lock:
            contract = self._facilities.get(address)
            if contract is None:
                contract = contract_at(self._w3, CREDIT_FACILITY, address)
                self._facilities[address] = contract
            return contract


def _snapshot(block_number: int, day: int, state: tuple) -> LineSnapshot:
    (
        status,
        frozen_by_bank,
        frozen_by_regulator,
        review_flagged,
        revolving_cycles,
        rate_bps,
        maturity_day,
        pool_id,
        limit,
        principal,
        interest_due,
        overdue_interest,
        accrued_interest,
        available,
        payoff_amount,
        written_off_outstanding,
        locked,
    ) = state
    return LineSnapshot(
        block_number=block_number,
        day=day,
        status=LINE_STATUSES[status] if status < len(LINE_STATUSES) else str(status),
        frozen_by_bank=frozen_by_bank,
        frozen_by_regulator=frozen_by_regulator,
        review_flagged=review_flagged,
        revolving_cycles=revolving_cycles,
        rate_bps=rate_bps,
        maturity_day=maturity_day,
        pool_id=pool_id,
        limit=limit,
        principal=principal,
        interest_due=interest_due,
        overdue_interest=overdue_interest,
        accrued_interest=accrued_interest,
        available=available,
        payoff_amount=payoff_amount,
        written_off_outstanding=written_off_outstanding,
        locked=locked,
    )


def call_node(read: Callable[[], T]) -> T:
    """Run a read against the node, turning node failures into ChainUnavailableError."""
    try:
        return read()
    except ContractLogicError as error:
        raise ChainReadRevertedError(decode_revert(revert_data_of(error)).message) from error
    except (*TRANSIENT_ERRORS, Web3Exception) as error:
        raise ChainUnavailableError(f"{type(error).__name__}: {error}") from error
