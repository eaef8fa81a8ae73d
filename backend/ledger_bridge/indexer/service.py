"""The indexer: follows the contracts' events into the database in bounded block ranges.

Each pass reads the logs of the next range of blocks up to the chain's head,
decodes them and commits them together with the new checkpoint (the last
block read and its hash). The range shrinks while the node rejects it (see
indexer/logs.py). Events in blocks with fewer than `confirmations`
confirmations are stored as unconfirmed and marked confirmed by a later pass.

Before each pass the checkpoint's hash is compared with the chain. When it
differs, a reorganisation replaced that block: the indexer finds the newest
recorded block that is still on the chain, deletes what it indexed after it
and reads again from there. The indexer halts instead, with an
IndexerHaltedError, when the node serves another chain, when its head is
below the last confirmed block, or when no recorded block within
`max_reorg_depth` is still on the chain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.chain.transactions import TRANSIENT_ERRORS
from ledger_bridge.core.config import Settings
from ledger_bridge.indexer.decoding import DecodedEvent, EventDecoder
from ledger_bridge.indexer.errors import (
    ChainIdentityError,
    IndexerHaltedError,
    LogRangeRejectedError,
    NodeBehindIndexError,
    RangeChangedError,
    ReorgTooDeepError,
)
from ledger_bridge.indexer.logs import ChainLog, LogReader
from ledger_bridge.indexer.rpc import BlockHeader, NodeClient
from ledger_bridge.indexer.store import (
    Batch,
    BlockMark,
    ChainIdentity,
    CheckpointMovedError,
    load_checkpoint,
    recorded_blocks,
    rewind,
    store_batch,
)
from ledger_bridge.storage.models import IndexerCheckpoint

logger = logging.getLogger(__name__)

# Maximum pause between passes while the node or the database keeps failing.
MAX_BACKOFF_SECONDS = 30.0

# Failures that the next pass may not repeat, logged as warnings without a traceback.
# IntegrityError comes from two indexers that store the first checkpoint row at once.
RETRIED_ERRORS: tuple[type[BaseException], ...] = (
    RangeChangedError,
    CheckpointMovedError,
    LogRangeRejectedError,
    IntegrityError,
    *TRANSIENT_ERRORS,
)


class EventIndexer:
    """Copies decoded events from the chain into the database, from one background thread."""

    name = "event indexer"

    def __init__(
        self,
        *,
        w3: Web3,
        session_factory: sessionmaker[Session],
        decoder: EventDecoder,
        identity: ChainIdentity,
        first_block: int,
        block_range: int,
        confirmations: int,
        max_reorg_depth: int,
        poll_interval_seconds: float,
    ) -> None:
        if confirmations < 1:
            raise ValueError(f"confirmations must be at least 1, not {confirmations}")
        self._w3 = w3
        self._node = NodeClient(w3)
        self._sessions = session_factory
        self._decoder = decoder
        self._identity = identity
        self._reader = LogReader(w3, decoder.addresses, block_range)
        self._first_block = first_block
        self._confirmations = confirmations
        self._max_reorg_depth = max_reorg_depth
        self._poll_interval = poll_interval_seconds
        self._identity_checked = False
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.halted: IndexerHaltedError | None = None

    def start(self) -> None:
        """Start the background thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="event-indexer", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Ask the indexer to finish its current range, and wait for its thread if it has one."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_seconds)
            if self._thread.is_alive():
                logger.warning("Event indexer did not stop within %s s", timeout_seconds)

    def check_running(self) -> None:
        """Readiness check: raises the error that halted the indexer, if one did."""
        if self.halted is not None:
            raise self.halted

    def run_once(self) -> int:
        """Index the next range of blocks, and return how many blocks it covered (0 when caught up).

        Raises IndexerHaltedError when the chain no longer matches the index.
        """
        head = self._node.block_number()
        with self._sessions() as session:
            checkpoint = load_checkpoint(session)
            if not self._identity_checked or (
                checkpoint is not None and head < checkpoint.block_number
            ):
                self._check_identity(checkpoint)
            if checkpoint is not None and self._rewound_after_reorg(session, checkpoint, head):
                return 0
            tip = (
                None
                if checkpoint is None
                else BlockMark(checkpoint.block_number, checkpoint.block_hash)
            )
        start = self._first_block if tip is None else tip.number + 1
        if head < start:
            return 0
        batch = self._read_range(start, head, after=tip)
        with self._sessions() as session:
            stored = store_batch(
                session,
                batch,
                expected_tip=tip,
                identity=self._identity,
                keep_hashes_from=batch.tip.number - self._max_reorg_depth,
            )
        logger.debug(
            "Indexed blocks %s to %s: %s new events, confirmed through block %s",
            start,
            batch.tip.number,
            stored,
            batch.confirmed_through,
        )
        return batch.tip.number - start + 1

    def run(self) -> None:
        """Run passes until `stop` is called or the indexer halts, logging and retrying errors.

        A halt leaves its error in `halted`.
        """
        logger.info(
            "Event indexer started from block %s for %s, %s confirmations",
            self._first_block,
            ", ".join(self._decoder.addresses),
            self._confirmations,
        )
        delay = self._poll_interval
        while not self._stopping.is_set():
            try:
                covered = self.run_once()
                delay = self._poll_interval
            except IndexerHaltedError as error:
                self.halted = error
                logger.error("Event indexer halted: %s", error.message)
                return
            except RETRIED_ERRORS as error:
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

    def _read_range(self, start: int, head: int, *, after: BlockMark | None) -> Batch:
        """Read the logs of the next range from `start`, as large as the node allows.

        The last block's hash is read before and after the logs, so a
        reorganisation during the read cannot leave logs of one branch under
        the hash of another. The block before `start` is read with the others
        and must still be `after`, the checkpoint: a reorganisation between the
        checkpoint check and this read would otherwise chain the new branch onto
        events of the replaced one. The first batch records that block as the
        base that a fork point search can always fall back to.
        """
        while True:
            last = self._reader.range_end(start, head)
            last_hash_before = self._chain_hash(last)
            logs = self._reader.try_read(start, last)
            if logs is not None:
                break
        numbers = {log.block_number for log in logs} | {last}
        if start > 0:
            numbers.add(start - 1)
        blocks = self._blocks(numbers)
        tip_hash = blocks[last].block_hash
        if tip_hash != last_hash_before:
            raise RangeChangedError(last)
        if after is not None and after.block_hash not in (None, blocks[after.number].block_hash):
            # The next pass finds the checkpoint replaced and rewinds to the fork point.
            raise RangeChangedError(after.number)
        events = list(self._decode(logs, blocks))
        return Batch(
            events=events,
            tip=BlockMark(last, tip_hash),
            confirmed_through=min(last, head - self._confirmations + 1),
            block_hashes={number: block.block_hash for number, block in blocks.items()},
        )

    def _blocks(self, numbers: Iterable[int]) -> dict[int, BlockHeader]:
        """Read the blocks in batch requests. Raises RangeChangedError if one is gone."""
        blocks = {}
        for number, block in self._node.block_headers(numbers).items():
            if block is None:
                raise RangeChangedError(number)
            blocks[number] = block
        return blocks

    def _decode(
        self, logs: Iterable[ChainLog], blocks: dict[int, BlockHeader]
    ) -> Iterable[DecodedEvent]:
        for log in logs:
            block = blocks[log.block_number]
            if log.block_hash != block.block_hash:
                raise RangeChangedError(log.block_number)
            event = self._decoder.decode(log, block.timestamp)
            if event is not None:
                yield event

    def _check_identity(self, checkpoint: IndexerCheckpoint | None) -> None:
        """Raise ChainIdentityError unless the node serves the chain of the deployment and index."""
        chain_id = self._w3.eth.chain_id
        genesis_hash = self._chain_hash(0)
        expected = self._identity
        if chain_id != expected.chain_id:
            raise ChainIdentityError("chain id", expected.chain_id, chain_id, "deployment file")
        if genesis_hash != expected.genesis_hash.lower():
            raise ChainIdentityError(
                "genesis block hash", expected.genesis_hash, genesis_hash, "deployment file"
            )
        if checkpoint is not None:
            if checkpoint.chain_id is not None and checkpoint.chain_id != chain_id:
                raise ChainIdentityError("chain id", checkpoint.chain_id, chain_id, "index")
            indexed_genesis = checkpoint.genesis_hash
            if indexed_genesis is not None and indexed_genesis.lower() != genesis_hash:
                raise ChainIdentityError(
                    "genesis block hash", indexed_genesis, genesis_hash, "index"
                )
        self._identity_checked = True

    def _rewound_after_reorg(
        self, session: Session, checkpoint: IndexerCheckpoint, head: int
    ) -> bool:
        """Return whether the checkpoint's block left the chain, after rewinding to the fork
        point if it did."""
        confirmed = checkpoint.confirmed_block_number
        if confirmed is not None and head < confirmed:
            raise NodeBehindIndexError(head, confirmed)
        tip = BlockMark(checkpoint.block_number, checkpoint.block_hash)
        if tip.block_hash is None or self._chain_hash(tip.number) == tip.block_hash:
            return False
        self._check_identity(checkpoint)
        fork = self._fork_point(session, tip.number)
        deleted = rewind(session, fork, expected_tip=tip)
        if confirmed is not None and fork.number < confirmed:
            logger.error(
                "Block %s was replaced by a reorganisation that reached block %s, which had "
                "%s confirmations: deleted %s events, including confirmed ones, after block %s "
                "and reading again from there. Raise LEDGER_CONFIRMATIONS if this recurs.",
                tip.number,
                fork.number + 1,
                self._confirmations,
                deleted,
                fork.number,
            )
        else:
            logger.warning(
                "Block %s was replaced by a reorganisation; deleted %s events after block %s "
                "and reading again from there",
                tip.number,
                deleted,
                fork.number,
            )
        return True

    def _fork_point(self, session: Session, replaced_block: int) -> BlockMark:
        """Return the newest recorded block that is still on the chain.

        Candidates are the recorded blocks within `max_reorg_depth` below the
        replaced block, and the newest one below that window, which is the
        only recorded block of a long range read in one pass. When the block before
        the deployment changed too, the contracts are gone from this chain.
        """
        floor = max(self._first_block - 1, replaced_block - self._max_reorg_depth)
        candidates = recorded_blocks(session, below=replaced_block, down_to=floor)
        below_window = recorded_blocks(session, below=floor, down_to=0)[:1]
        for mark in [*candidates, *below_window]:
            if self._chain_hash(mark.number) == mark.block_hash:
                return mark
        raise ReorgTooDeepError(replaced_block, floor)

    def _chain_hash(self, number: int) -> str | None:
        """Return the hash of the chain's block `number`, or None if the chain is shorter."""
        block = self._node.block_header(number)
        return None if block is None else block.block_hash


def create_indexer(
    settings: Settings,
    deployment: Deployment,
    session_factory: sessionmaker[Session],
    *,
    w3: Web3 | None = None,
) -> EventIndexer:
    """Build the indexer that the settings describe for a deployment.

    It gets a node client of its own from the settings unless `w3` is given.
    """
    if w3 is None:
        w3 = create_web3(settings.rpc_url, settings.rpc_timeout_seconds)
    decoder = EventDecoder(w3, deployment, token_transfers=settings.indexer_token_transfers)
    return EventIndexer(
        w3=w3,
        session_factory=session_factory,
        decoder=decoder,
        identity=ChainIdentity(deployment.chain_id, deployment.genesis_hash),
        first_block=deployment.first_block,
        block_range=settings.indexer_block_range,
        # Events count as confirmed with as many confirmations as operations need.
        confirmations=settings.confirmations,
        max_reorg_depth=settings.indexer_max_reorg_depth,
        poll_interval_seconds=settings.indexer_poll_interval_ms / 1000,
    )
