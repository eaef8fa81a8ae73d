"""Reads of contract logs in block ranges that shrink when the node rejects them.

Nodes limit eth_getLogs in different ways: by the number of blocks, by the
number of results, by response size or by time, each with its own error
text. The reader does not parse those texts. Any error other than a failed
connection halves the range and the request is sent again, down to one block.
After a run of successful reads the range doubles again, up to its maximum.

Logs come back as `ChainLog` values parsed from the node's JSON, without
web3's result formatting (see indexer/rpc.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_typing import ChecksumAddress
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import RequestException
from web3 import Web3
from web3.exceptions import ProviderConnectionError, Web3Exception

from ledger_bridge.indexer.errors import LogRangeRejectedError
from ledger_bridge.indexer.rpc import NodeClient

logger = logging.getLogger(__name__)

# The node could not be reached at all, so a smaller range would not help.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    RequestsConnectionError,
    ProviderConnectionError,
    ConnectionError,
)
# Every other failure of eth_getLogs that a node or its proxy returns: JSON-RPC errors, HTTP
# errors such as 413 or 503, and timeouts of queries that take the node too long.
REJECTION_ERRORS: tuple[type[BaseException], ...] = (
    Web3Exception,
    ValueError,
    RequestException,
    TimeoutError,
)
# Successful reads in a row after which a shrunken range doubles again.
SUCCESSES_BEFORE_GROWTH = 8

Topics = Sequence[str | Sequence[str] | None]


@dataclass(frozen=True, slots=True)
class ChainLog:
    """One log as eth_getLogs returns it, with hashes as lowercase 0x hex."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    block_hash: str
    transaction_hash: str
    transaction_index: int
    log_index: int

    @classmethod
    def from_json(cls, log: Mapping[str, Any]) -> ChainLog:
        """Parse a log object of a JSON-RPC response."""
        return cls(
            address=str(log["address"]).lower(),
            topics=tuple(bytes.fromhex(topic[2:]) for topic in log["topics"]),
            data=bytes.fromhex(log["data"][2:]),
            block_number=int(log["blockNumber"], 16),
            block_hash=str(log["blockHash"]).lower(),
            transaction_hash=str(log["transactionHash"]).lower(),
            transaction_index=int(log["transactionIndex"], 16),
            log_index=int(log["logIndex"], 16),
        )


class LogReader:
    """Reads the logs of a set of contracts, adapting the block range to the node's limits."""

    def __init__(
        self, w3: Web3, addresses: Sequence[ChecksumAddress], max_block_range: int
    ) -> None:
        if max_block_range < 1:
            raise ValueError(f"max_block_range must be at least 1, not {max_block_range}")
        self._node = NodeClient(w3)
        self._addresses = list(addresses)
        self._max_range = max_block_range
        self._range = max_block_range
        self._successes = 0

    @property
    def block_range(self) -> int:
        """The maximum number of blocks in the next request."""
        return self._range

    def read(
        self, start: int, end: int, topics: Topics | None = None
    ) -> tuple[list[ChainLog], int]:
        """Return the logs of blocks `start` to `last`, and `last`.

        `last` is `end` unless the node rejected the range, in which case it is
        as far as the node allowed. Raises LogRangeRejectedError when the node
        rejects even the single block `start`, and the connection errors as they are.
        """
        while True:
            last = self.range_end(start, end)
            logs = self.try_read(start, last, topics)
            if logs is not None:
                return logs, last

    def range_end(self, start: int, end: int) -> int:
        """Return the last block of the next request for `start` to `end`."""
        if end < start:
            raise ValueError(f"The range {start} to {end} is empty")
        return min(end, start + self._range - 1)

    def try_read(
        self, start: int, last: int, topics: Topics | None = None
    ) -> list[ChainLog] | None:
        """Request the logs of blocks `start` to `last` once.

        Returns None when the node rejected the request, after halving the
        range that `range_end` returns next. Raises LogRangeRejectedError when
        the node rejected a single block, and the connection errors as they are.
        """
        try:
            logs = self._node.get_logs(self._params(start, last, topics))
        except CONNECTION_ERRORS:
            raise
        except REJECTION_ERRORS as error:
            self._shrink(start, last, error)
            return None
        self._grow()
        return [ChainLog.from_json(log) for log in logs]

    def _params(self, start: int, last: int, topics: Topics | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "address": self._addresses,
            "fromBlock": hex(start),
            "toBlock": hex(last),
        }
        if topics is not None:
            params["topics"] = list(topics)
        return params

    def _shrink(self, start: int, last: int, error: BaseException) -> None:
        reason = f"{type(error).__name__}: {error}"
        if last == start:
            raise LogRangeRejectedError(start, reason) from error
        self._range = max(1, min(self._range, last - start + 1) // 2)
        self._successes = 0
        logger.info(
            "The node rejected eth_getLogs for blocks %s to %s (%s); retrying with %s blocks",
            start,
            last,
            reason,
            self._range,
        )

    def _grow(self) -> None:
        if self._range >= self._max_range:
            return
        self._successes += 1
        if self._successes >= SUCCESSES_BEFORE_GROWTH:
            self._range = min(self._max_range, self._range * 2)
            self._successes = 0
