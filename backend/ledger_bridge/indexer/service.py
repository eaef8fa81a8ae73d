"""The indexer: follows the contracts' events into the database in bounded block ranges.

Each pass reads at most `block_range` blocks with one eth_getLogs call,
decodes the logs and commits them together with the new checkpoint (the
last block read and its hash). Before each pass the checkpoint's hash is
compared with the chain. When they differ, a reorganisation replaced that
block: the indexer finds the newest stored block that is still on the chain,
deletes the events after it and reads again from there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.types import BlockData, LogReceipt

from ledger_bridge.chain.transactions import TRANSIENT_ERRORS
from ledger_bridge.indexer.decoding import DecodedEvent, EventDecoder
from ledger_bridge.indexer.store import load_checkpoint, rewind, store_batch, stored_blocks
from ledger_bridge.storage.models import IndexerCheckpoint

logger = logging.getLogger(__name__)

# Maximum pause between passes while the node or the database keeps failing.
MAX_BACKOFF_SECONDS = 30.0


class RangeChangedError(RuntimeError):
    """A block changed while its range was read; the range is read again on the next pass."""


class EventIndexer:
    """Copies decoded events from the chain into the database, from one background thread."""

    name = "event indexer"

    def __init__(
        self,
        *,
        w3: Web3,
        session_factory: sessionmaker[Session],
        decoder: EventDecoder,
        first_block: int,
        block_range: int,
        lag_blocks: int,
        max_reorg_depth: int,
        poll_interval_seconds: float,
    ) -> None:
        self._w3 = w3
        self._sessions = session_factory
        self._decoder = decoder
        self._first_block = first_block
        self._block_range = block_range
        self._lag_blocks = lag_blocks
        self._max_reorg_depth = max_reorg_depth
        self._poll_interval = poll_interval_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="event-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Ask the thread to finish its current range and wait for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            if self._thread.is_alive():
                logger.warning("Event indexer did not stop within %s s", timeout_seconds)

    def run_once(self) -> int:
        """Index the next range of blocks; return how many blocks it covered (0 when caught up)."""
        with self._sessions() as session:
            checkpoint = load_checkpoint(session)
            if checkpoint is not None and self._rewound_after_reorg(session, checkpoint):
                return 0
            start = self._first_block if checkpoint is None else checkpoint.block_number + 1
        end = min(self._w3.eth.block_number - self._lag_blocks, start + self._block_range - 1)
        if end < start:
            return 0
        self._index_range(start, end)
        return end - start + 1

    def _run(self) -> None:
        logger.info(
            "Event indexer started from block %s for %s",
            self._first_block,
            ", ".join(self._decoder.addresses),
        )
        delay = self._poll_interval
        while not self._stopping.is_set():
            try:
                covered = self.run_once()
                delay = self._poll_interval
            except (RangeChangedError, *TRANSIENT_ERRORS) as error:
                covered = 0
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                logger.warning(
                    "Indexing failed (%s: %s); retrying in %.1f s",
                    type(error).__name__,
                    error,
                    delay,
                )
            except Exception:
                covered = 0
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                logger.exception("Indexing failed; retrying in %.1f s", delay)
            if covered == 0:
                self._stopping.wait(delay)
        logger.info("Event indexer stopped")

    def _index_range(self, start: int, end: int) -> None:
        logs = self._w3.eth.get_logs(
            {"address": self._decoder.addresses, "fromBlock": start, "toBlock": end}
        )
        blocks = self._blocks({log["blockNumber"] for log in logs} | {end})
        events = list(self._decode(logs, blocks))
        with self._sessions() as session:
            stored = store_batch(session, events, end, _hash_of(blocks[end]))
        logger.debug("Indexed blocks %s to %s: %s new events", start, end, stored)

    def _blocks(self, numbers: Iterable[int]) -> dict[int, BlockData]:
        return {number: self._w3.eth.get_block(number) for number in sorted(numbers)}

    def _decode(
        self, logs: Iterable[LogReceipt], blocks: dict[int, BlockData]
    ) -> Iterable[DecodedEvent]:
        for log in logs:
            block = blocks[log["blockNumber"]]
            if HexBytes(log["blockHash"]) != HexBytes(block["hash"]):
                raise RangeChangedError(
                    f"Block {log['blockNumber']} changed while blocks were read"
                )
            event = self._decoder.decode(log, block["timestamp"])
            if event is not None:
                yield event

    def _rewound_after_reorg(self, session: Session, checkpoint: IndexerCheckpoint) -> bool:
        """Rewind to the fork point if the checkpoint's block left the chain; return True if so."""
        if checkpoint.block_hash is None:
            return False
        replaced_block = checkpoint.block_number
        if self._chain_hash(replaced_block) == checkpoint.block_hash:
            return False
        number, block_hash = self._fork_point(session, replaced_block)
        deleted = rewind(session, number, block_hash)
        logger.warning(
            "Block %s was replaced by a reorganisation; deleted %s events after "
            "block %s and reading again from there",
            replaced_block,
            deleted,
            number,
        )
        return True

    def _fork_point(self, session: Session, replaced_block: int) -> tuple[int, str | None]:
        floor = max(self._first_block - 1, replaced_block - self._max_reorg_depth)
        for number, stored_hash in stored_blocks(session, below=replaced_block, down_to=floor):
            if self._chain_hash(number) == stored_hash:
                return number, stored_hash
        # NOTE: blocks at or below the floor are trusted unchecked; a reorganisation
        # deeper than indexer_max_reorg_depth leaves stale events there.
        return floor, None if floor < 0 else self._chain_hash(floor)

    def _chain_hash(self, number: int) -> str | None:
        """Return the hash of the chain's block `number`, or None if the chain is shorter."""
        try:
            return _hash_of(self._w3.eth.get_block(number))
        except BlockNotFound:
            return None


def _hash_of(block: BlockData) -> str:
    return HexBytes(block["hash"]).to_0x_hex()
