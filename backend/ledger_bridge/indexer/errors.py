"""Errors of the event indexer.

`IndexerHaltedError` and its subclasses stop the indexer, because
continuing would mix events of two chains or delete history that cannot be
read again. The other errors are retried on the next pass.
"""

from __future__ import annotations

from ledger_bridge.chain.errors import ChainError

RESET_HINT = (
    "If the index is meant to follow this node from scratch, stop the bridge and run "
    "`python -m ledger_bridge.indexer --reset`, which deletes the indexed events."
)


class IndexerHaltedError(ChainError, RuntimeError):
    """The chain no longer matches the index, so the indexer stopped instead of guessing."""

    title = "Event index halted"
    slug = "event-index-halted"


class ChainIdentityError(IndexerHaltedError):
    """The node serves a chain other than the one the index was built from."""

    def __init__(self, field_name: str, expected: object, node: object, source: str) -> None:
        if source == "index":
            reason = f"the index was built from a chain whose {field_name} is {expected}"
        else:
            reason = f"the {source} names a chain whose {field_name} is {expected}"
        super().__init__(
            f"The node's {field_name} is {node}, but {reason}. The node was reset, or "
            f"LEDGER_RPC_URL points at another chain. {RESET_HINT}"
        )


class NodeBehindIndexError(IndexerHaltedError):
    """The node's head is below a block that the index marks as confirmed."""

    def __init__(self, head: int, confirmed_block: int) -> None:
        super().__init__(
            f"The node's head is block {head}, below block {confirmed_block}, whose events the "
            "index marks as confirmed. The node was restarted from an empty chain, or "
            f"LEDGER_RPC_URL points at a node that is not synchronised. {RESET_HINT}"
        )


class ReorgTooDeepError(IndexerHaltedError):
    """No recently indexed block is still on the chain, so the fork point is unknown."""

    def __init__(self, replaced_block: int, searched_down_to: int) -> None:
        super().__init__(
            f"Block {replaced_block} was replaced, and no indexed block from "
            f"{searched_down_to} upwards is still on the chain. The reorganisation is deeper "
            "than LEDGER_INDEXER_MAX_REORG_DEPTH blocks, or the node was reset. "
            f"{RESET_HINT}"
        )


class RangeChangedError(ChainError, RuntimeError):
    """A block changed while its range was read, so the range is read again on the next pass."""

    def __init__(self, block_number: int) -> None:
        super().__init__(
            f"Block {block_number} changed while its logs were read, so a reorganisation is in "
            "progress. The range is read again on the next pass."
        )


class LogRangeRejectedError(ChainError, RuntimeError):
    """The node rejected eth_getLogs even for a single block."""

    def __init__(self, block_number: int, reason: str) -> None:
        super().__init__(
            f"The node rejected eth_getLogs for block {block_number} alone ({reason}). Check "
            "the node's log query limits, or point LEDGER_RPC_URL at a node without them."
        )


class IndexNotReadyError(ChainError, RuntimeError):
    """The index has not stored its first range of blocks yet."""

    def __init__(self) -> None:
        super().__init__(
            "The event index has not stored its first range of blocks yet, so there is "
            "nothing to compare or report. Retry in a few seconds; if it persists, "
            "check GET /ready."
        )
