"""Decoding of raw logs from the deployed contracts into named events with exact arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_abi.decoding import ContextFramesBytesIO, TupleDecoder
from eth_abi.grammar import parse
from eth_abi.registry import registry
from eth_typing import ChecksumAddress
from eth_utils import event_abi_to_log_topic
from web3 import Web3

from ledger_bridge.chain.contracts import (
    CREDIT_FACILITY,
    FUND_FLOW_RULES,
    SETTLEMENT_TOKEN,
    event_abis,
)
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.chain.values import to_json_arguments
from ledger_bridge.indexer.logs import ChainLog

# The only token event worth storing: the other token events do not move credit money.
TOKEN_EVENTS = frozenset({"Transfer"})


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """One event as the index stores it."""

    block_number: int
    block_hash: str
    block_timestamp: datetime
    transaction_hash: str
    transaction_index: int
    log_index: int
    contract_address: ChecksumAddress
    contract_name: str
    event: str
    line_id: int | None
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _EventLayout:
    """The positions and eth-abi decoders of an event's arguments, computed once per ABI entry."""

    name: str
    inputs: tuple[Mapping[str, Any], ...]
    # Positions in `inputs` of the indexed arguments, in topic order, and their decoder.
    topic_positions: tuple[int, ...]
    topic_decoder: TupleDecoder | None
    # Positions in `inputs` of the arguments in the log's data, and their decoder.
    data_positions: tuple[int, ...]
    data_decoder: TupleDecoder | None
    line_id_position: int | None

    @classmethod
    def of(cls, definition: Mapping[str, Any]) -> _EventLayout:
        inputs = tuple(definition["inputs"])
        topics = [(index, item) for index, item in enumerate(inputs) if item.get("indexed")]
        data = [(index, item) for index, item in enumerate(inputs) if not item.get("indexed")]
        names = [item.get("name") for item in inputs]
        # The topic of an indexed value of a dynamic type contains its keccak256 hash, which
        # web3 also returns as bytes32.
        topic_types = [
            "bytes32" if parse(item["type"]).is_dynamic else item["type"] for _, item in topics
        ]
        return cls(
            name=definition["name"],
            inputs=inputs,
            topic_positions=tuple(index for index, _ in topics),
            topic_decoder=_tuple_decoder(topic_types),
            data_positions=tuple(index for index, _ in data),
            data_decoder=_tuple_decoder([item["type"] for _, item in data]),
            line_id_position=names.index("lineId") if "lineId" in names else None,
        )

    def decode_values(self, log: ChainLog) -> list[Any]:
        """Return the argument values in ABI order. Raises ValueError for a log of another
        layout."""
        if len(log.topics) != len(self.topic_positions) + 1:
            raise ValueError(
                f"The log at block {log.block_number}, index {log.log_index} has "
                f"{len(log.topics) - 1} indexed arguments, but {self.name} has "
                f"{len(self.topic_positions)}. The ABIs in chain/abi do not match the deployed "
                "contracts: export them again with scripts/export_abis.py."
            )
        values: list[Any] = [None] * len(self.inputs)
        # Every topic type is static and 32 bytes long, so the topics concatenated are
        # the ABI encoding of the indexed arguments as one tuple.
        topic_values = _decode(self.topic_decoder, b"".join(log.topics[1:]))
        for position, value in zip(self.topic_positions, topic_values, strict=True):
            values[position] = value
        data_values = _decode(self.data_decoder, log.data)
        for position, value in zip(self.data_positions, data_values, strict=True):
            values[position] = value
        return values


@dataclass(frozen=True, slots=True)
class _EventSource:
    contract_name: str
    address: ChecksumAddress
    # Topic 0 (the event signature's keccak256) to the event's layout.
    events: Mapping[bytes, _EventLayout]


class EventDecoder:
    """Decodes the logs of every facility, the fund-flow rules and optionally the token.

    Logs are decoded with eth-abi from layouts computed once per ABI entry,
    which gives the same values as web3's `ContractEvent.process_log`. `w3`
    is not used and stays in the signature for the callers.
    """

    def __init__(self, w3: Web3, deployment: Deployment, *, token_transfers: bool) -> None:
        sources = {item.address: CREDIT_FACILITY for item in deployment.facilities}
        sources[deployment.fund_flow_rules] = FUND_FLOW_RULES
        if token_transfers:
            sources[deployment.settlement_token] = SETTLEMENT_TOKEN
        self._sources = {
            address.lower(): _source(contract_name, address)
            for address, contract_name in sources.items()
        }

    @property
    def addresses(self) -> list[ChecksumAddress]:
        """The contract addresses whose logs the indexer requests."""
        return [source.address for source in self._sources.values()]

    def decode(self, log: ChainLog, block_timestamp: int) -> DecodedEvent | None:
        """Decode a log, or return None for a log of an event the index does not store.

        Raises ValueError when the log does not fit the ABI of its event.
        """
        source = self._sources.get(log.address)
        if source is None or not log.topics:
            return None
        layout = source.events.get(log.topics[0])
        if layout is None:
            return None
        values = layout.decode_values(log)
        position = layout.line_id_position
        return DecodedEvent(
            block_number=log.block_number,
            block_hash=log.block_hash,
            block_timestamp=datetime.fromtimestamp(block_timestamp, UTC),
            transaction_hash=log.transaction_hash,
            transaction_index=log.transaction_index,
            log_index=log.log_index,
            contract_address=source.address,
            contract_name=source.contract_name,
            event=layout.name,
            line_id=None if position is None else int(values[position]),
            args=to_json_arguments(layout.inputs, values),
        )


def _tuple_decoder(types: list[str]) -> TupleDecoder | None:
    """Return eth-abi's decoder of the tuple of `types`, or None for no types.

    The registry builds it once. eth_abi.decode builds a TupleDecoder on every call, which
    took about 30% of the decoding time in the indexer benchmark.
    """
    if not types:
        return None
    return registry.get_decoder(f"({','.join(types)})")  # type: ignore[no-any-return]


def _decode(decoder: TupleDecoder | None, data: bytes) -> tuple[Any, ...]:
    if decoder is None:
        return ()
    stream = ContextFramesBytesIO(data)
    if decoder.is_dynamic:
        return decoder(stream)  # type: ignore[no-any-return]
    # A tuple of static types has no offsets, so the tuple decoder's pointer check would only
    # decode every value twice. Each element decoder still checks its size and padding.
    return tuple(element(stream) for element in decoder.decoders)


def _source(contract_name: str, address: ChecksumAddress) -> _EventSource:
    definitions = event_abis(contract_name)
    if contract_name == SETTLEMENT_TOKEN:
        definitions = {name: item for name, item in definitions.items() if name in TOKEN_EVENTS}
    return _EventSource(
        contract_name=contract_name,
        address=Web3.to_checksum_address(address),
        events={
            bytes(event_abi_to_log_topic(item)): _EventLayout.of(item)  # type: ignore[arg-type]
            for item in definitions.values()
            if not item.get("anonymous", False)
        },
    )
