"""Contract reads at one given block, for comparing the index with the chain.

The index reaches a known block, and the checks read the contracts at that
block too. A read at the head would count transactions that the index has
not seen yet as differences.
"""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.contracts import CREDIT_FACILITY, SETTLEMENT_TOKEN, contract_at
from ledger_bridge.chain.errors import ChainReadRevertedError
from ledger_bridge.chain.lines import LINE_STATUSES, LineSnapshot, call_node


@dataclass(frozen=True, slots=True)
class FacilityBalances:
    """A facility's token accounts at one block, in fen.

    `liquidity` is None when `liquidity()` reverted, which it does when the
    facility holds fewer tokens than its locked balances add up to.
    """

    block_number: int
    token_balance: int
    total_locked: int
    liquidity: int | None
    liquidity_error: str | None


class FacilityReader:
    """Reads one facility contract, and its settlement token, at a fixed block."""

    def __init__(self, w3: Web3, facility_address: str, block_number: int) -> None:
        self._w3 = w3
        self._facility: Contract = contract_at(w3, CREDIT_FACILITY, facility_address)
        self.block_number = block_number

    def today(self) -> int:
        """Return the facility's day number (China Standard Time) at the block."""
        return int(self._call(self._facility.functions.today()))

    def line_state(self, line_id: int, day: int) -> LineSnapshot:
        """Return `lineState(line_id, day)` at the block."""
        state = self._call(self._facility.functions.lineState(line_id, day))
        status, *rest = state  # type: ignore[misc]
        name = LINE_STATUSES[status] if status < len(LINE_STATUSES) else str(status)
        # LineSnapshot lists the LineState fields in the struct's order after block and day.
        return LineSnapshot(self.block_number, day, name, *rest)

    def locked_balance(self, drawdown_id: int) -> tuple[int, int]:
        """Return (line id, amount in fen) locked for a drawdown, or (0, 0) if it locked none."""
        line_id, amount = self._call(self._facility.functions.lockedBalance(drawdown_id))
        return int(line_id), int(amount)

    def balances(self) -> FacilityBalances:
        """Return the token balance, the locked total and the free liquidity at the block."""
        token_address = self._call(self._facility.functions.settlementToken())
        token = contract_at(self._w3, SETTLEMENT_TOKEN, token_address)
        balance = int(self._call(token.functions.balanceOf(self._facility.address)))
        total_locked = int(self._call(self._facility.functions.totalLocked()))
        try:
            liquidity: int | None = int(self._call(self._facility.functions.liquidity()))
            liquidity_error = None
        except ChainReadRevertedError as error:
            liquidity, liquidity_error = None, error.message
        return FacilityBalances(
            block_number=self.block_number,
            token_balance=balance,
            total_locked=total_locked,
            liquidity=liquidity,
            liquidity_error=liquidity_error,
        )

    def _call(self, function: object) -> object:
        return call_node(lambda: function.call(block_identifier=self.block_number))  # type: ignore[attr-defined]
