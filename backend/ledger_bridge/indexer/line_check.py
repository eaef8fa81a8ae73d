"""The auditor's check of one line: the index next to the chain, up to the index's last block.

The check reads the line's logs with eth_getLogs, in ranges that shrink when
the node rejects them, and compares them event by event with the index. It
then folds the indexed events into the line's state (indexer/lines.py) and
compares that with `lineState` read from the contract at the same block.
Interest figures are left out of the state comparison, because interest
settles on chain without an event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.exceptions import BlockNotFound

from ledger_bridge.chain.contracts import CREDIT_FACILITY, event_abis
from ledger_bridge.chain.lines import LineSnapshot
from ledger_bridge.indexer.chain_state import FacilityReader
from ledger_bridge.indexer.decoding import DecodedEvent, EventDecoder
from ledger_bridge.indexer.lines import LineRecord, apply_line_event, cst_day
from ledger_bridge.indexer.logs import LogReader
from ledger_bridge.indexer.rpc import NodeClient
from ledger_bridge.storage.models import ChainEvent

# Fields of LineState that only events change, so the index must reproduce them exactly.
# (field of the contract's LineState, attribute of LineSnapshot, attribute of LineRecord)
COMPARED_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("status", "status", "status"),
    ("limit", "limit", "credit_limit"),
    ("principal", "principal", "principal"),
    ("maturityDay", "maturity_day", "maturity_day"),
    ("rateBps", "rate_bps", "rate_bps"),
    ("frozenByBank", "frozen_by_bank", "frozen_by_bank"),
    ("frozenByRegulator", "frozen_by_regulator", "frozen_by_regulator"),
    ("reviewFlagged", "review_flagged", "review_flagged"),
    ("revolvingCycles", "revolving_cycles", "revolving_cycles"),
    ("poolId", "pool_id", "pool_id"),
    ("locked", "locked", "locked"),
    ("writtenOffOutstanding", "written_off_outstanding", "written_off_outstanding"),
)


@dataclass(frozen=True, slots=True)
class EventDifference:
    """An event that is on one side only, or whose stored copy differs from the chain's."""

    kind: str  # "missing-from-index", "not-on-chain" or "differs"
    transaction_hash: str
    log_index: int
    block_number: int
    event: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StateDifference:
    """A LineState field whose value rebuilt from the index differs from the contract's."""

    field_name: str
    index_value: Any
    chain_value: Any


@dataclass(slots=True)
class LineCheck:
    """The result of checking one line."""

    facility_address: str
    line_id: int
    through_block: int
    through_block_hash: str
    day: int
    chain_event_count: int
    index_event_count: int
    event_differences: list[EventDifference] = field(default_factory=list)
    state_differences: list[StateDifference] = field(default_factory=list)
    index_state: LineRecord | None = None
    chain_state: LineSnapshot | None = None

    @property
    def consistent(self) -> bool:
        """Whether the index agrees with the chain on every event and every compared field."""
        return not self.event_differences and not self.state_differences


def check_line(
    session: Session,
    w3: Web3,
    decoder: EventDecoder,
    facility_address: str,
    line_id: int,
    *,
    from_block: int,
    through_block: int,
    max_block_range: int,
) -> LineCheck:
    """Compare the line's indexed events and state with the chain at `through_block`."""
    chain_events = read_line_events(
        w3, decoder, facility_address, line_id, from_block, through_block, max_block_range
    )
    indexed = _indexed_events(session, facility_address, line_id, through_block)
    reader = FacilityReader(w3, facility_address, through_block)
    day = reader.today()
    chain_state = reader.line_state(line_id, day)
    index_state = fold_line(facility_address, line_id, indexed)
    return LineCheck(
        facility_address=facility_address,
        line_id=line_id,
        through_block=through_block,
        through_block_hash=HexBytes(w3.eth.get_block(through_block)["hash"]).to_0x_hex(),
        day=day,
        chain_event_count=len(chain_events),
        index_event_count=len(indexed),
        event_differences=compare_events(chain_events, indexed),
        state_differences=compare_state(index_state, chain_state, day),
        index_state=index_state,
        chain_state=chain_state,
    )


def read_line_events(
    w3: Web3,
    decoder: EventDecoder,
    facility_address: str,
    line_id: int,
    from_block: int,
    through_block: int,
    max_block_range: int,
) -> list[DecodedEvent]:
    """Read every event of the line from the chain with eth_getLogs, in chain order."""
    reader = LogReader(w3, [w3.to_checksum_address(facility_address)], max_block_range)
    logs = []
    for topics in _line_topic_filters(line_id):
        start = from_block
        while start <= through_block:
            batch, last = reader.read(start, through_block, topics)
            logs.extend(batch)
            start = last + 1
    blocks = NodeClient(w3).block_headers(log.block_number for log in logs)
    events = {}
    for log in logs:
        block = blocks[log.block_number]
        if block is None:
            raise BlockNotFound(
                f"Block {log.block_number}, which has a log of line {line_id}, was not found: "
                "the chain became shorter while the check read it. Run the check again."
            )
        event = decoder.decode(log, block.timestamp)
        if event is not None and event.line_id == line_id:
            events[(event.transaction_hash, event.log_index)] = event
    return sorted(events.values(), key=lambda item: (item.block_number, item.log_index))


def fold_line(facility_address: str, line_id: int, events: Iterable[Any]) -> LineRecord:
    """Fold events (stored rows or decoded events) of a line, in chain order, into its state."""
    record = LineRecord(facility_address=facility_address, line_id=line_id)
    for event in events:
        apply_line_event(
            record,
            event.event,
            event.args,
            day=cst_day(event.block_timestamp),
            block_number=event.block_number,
            log_index=event.log_index,
        )
    return record


def compare_events(
    chain_events: Sequence[DecodedEvent], indexed: Sequence[ChainEvent]
) -> list[EventDifference]:
    """List the events that are on one side only or differ, in chain order."""
    on_chain = {(item.transaction_hash, item.log_index): item for item in chain_events}
    in_index = {(item.transaction_hash, item.log_index): item for item in indexed}
    differences = []
    for key, event in on_chain.items():
        stored = in_index.get(key)
        if stored is None:
            differences.append(_difference("missing-from-index", event))
            continue
        changed = _changed_fields(event, stored)
        if changed:
            differences.append(_difference("differs", event, changed))
    for key, stored in in_index.items():
        if key not in on_chain:
            differences.append(_difference("not-on-chain", stored))
    return sorted(differences, key=lambda item: (item.block_number, item.log_index))


def compare_state(record: LineRecord, snapshot: LineSnapshot, day: int) -> list[StateDifference]:
    """List the compared LineState fields where the folded index differs from the contract."""
    differences = []
    for name, snapshot_attribute, record_attribute in COMPARED_FIELDS:
        chain_value = getattr(snapshot, snapshot_attribute)
        index_value = (
            record.rate_on(day) if name == "rateBps" else getattr(record, record_attribute)
        )
        if index_value != chain_value:
            differences.append(StateDifference(name, index_value, chain_value))
    return differences


def _line_topic_filters(line_id: int) -> list[list[Any]]:
    """Return one topic filter per position at which facility events index `lineId`.

    Most events index lineId first. PoolMemberAdded and PoolMemberRemoved
    index it second, after the pool id. Logs that match a filter by another
    argument with the same value are dropped after decoding.
    """
    line_topic = "0x" + line_id.to_bytes(32, "big").hex()
    by_position: dict[int, list[str]] = {}
    for definition in event_abis(CREDIT_FACILITY).values():
        indexed = [item["name"] for item in definition["inputs"] if item.get("indexed")]
        if "lineId" in indexed:
            signature = HexBytes(event_abi_to_log_topic(definition)).to_0x_hex()  # type: ignore[arg-type]
            by_position.setdefault(indexed.index("lineId") + 1, []).append(signature)
    filters: list[list[Any]] = []
    for position, signatures in sorted(by_position.items()):
        topics: list[Any] = [sorted(signatures)] + [None] * (position - 1)
        topics.append(line_topic)
        filters.append(topics)
    return filters


def _indexed_events(
    session: Session, facility_address: str, line_id: int, through_block: int
) -> list[ChainEvent]:
    query = (
        select(ChainEvent)
        .where(
            ChainEvent.contract_address == facility_address,
            ChainEvent.line_id == line_id,
            ChainEvent.block_number <= through_block,
        )
        .order_by(ChainEvent.block_number, ChainEvent.log_index)
    )
    return list(session.scalars(query))


def _changed_fields(event: DecodedEvent, stored: ChainEvent) -> tuple[str, ...]:
    pairs = {
        "event": (event.event, stored.event),
        "block_number": (event.block_number, stored.block_number),
        "block_hash": (event.block_hash, stored.block_hash),
        "block_timestamp": (event.block_timestamp, stored.block_timestamp),
        "args": (event.args, stored.args),
    }
    return tuple(
        name for name, (chain_value, index_value) in pairs.items() if chain_value != index_value
    )


def _difference(kind: str, event: Any, fields: tuple[str, ...] = ()) -> EventDifference:
    return EventDifference(
        kind=kind,
        transaction_hash=event.transaction_hash,
        log_index=event.log_index,
        block_number=event.block_number,
        event=event.event,
        fields=fields,
    )
