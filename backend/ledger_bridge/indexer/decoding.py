"""Decoding of raw logs from the deployed contracts into named events with exact arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eth_typing import ChecksumAddress
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.types import LogReceipt

from ledger_bridge.chain.contracts import (
    CREDIT_FACILITY,
    FUND_FLOW_RULES,
    SETTLEMENT_TOKEN,
    contract_at,
    event_abis,
)
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.chain.values import to_json_arguments

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
class _EventSource:
    contract_name: str
    contract: Contract
    # Topic 0 (the event signature's keccak256) to the event's ABI entry.
    events: Mapping[bytes, Mapping[str, Any]]


class EventDecoder:
    """Decodes the logs of every facility, the fund-flow rules and optionally the token."""

    def __init__(self, w3: Web3, deployment: Deployment, *, token_transfers: bool) -> None:
        sources = {item.address: CREDIT_FACILITY for item in deployment.facilities}
        sources[deployment.fund_flow_rules] = FUND_FLOW_RULES
        if token_transfers:
            sources[deployment.settlement_token] = SETTLEMENT_TOKEN
        self._sources = {
            address.lower(): _source(w3, contract_name, address)
            for address, contract_name in sources.items()
        }

    @property
    def addresses(self) -> list[ChecksumAddress]:
        """The contract addresses whose logs the indexer requests."""
        return [source.contract.address for source in self._sources.values()]

    def decode(self, log: LogReceipt, block_timestamp: int) -> DecodedEvent | None:
        """Decode a log, or return None for a log of an event the index does not store."""
        source = self._sources.get(str(log["address"]).lower())
        if source is None or not log["topics"]:
            return None
        definition = source.events.get(bytes(log["topics"][0]))
        if definition is None:
            return None
        name = definition["name"]
        decoded = getattr(source.contract.events, name)().process_log(log)
        inputs = definition["inputs"]
        args = to_json_arguments(inputs, [decoded["args"][item["name"]] for item in inputs])
        line_id = decoded["args"].get("lineId")
        return DecodedEvent(
            block_number=log["blockNumber"],
            block_hash=HexBytes(log["blockHash"]).to_0x_hex(),
            block_timestamp=datetime.fromtimestamp(block_timestamp, UTC),
            transaction_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
            transaction_index=log["transactionIndex"],
            log_index=log["logIndex"],
            contract_address=source.contract.address,
            contract_name=source.contract_name,
            event=name,
            line_id=None if line_id is None else int(line_id),
            args=args,
        )


def _source(w3: Web3, contract_name: str, address: ChecksumAddress) -> _EventSource:
    definitions = event_abis(contract_name)
    if contract_name == SETTLEMENT_TOKEN:
        definitions = {name: item for name, item in definitions.items() if name in TOKEN_EVENTS}
    return _EventSource(
        contract_name=contract_name,
        contract=contract_at(w3, contract_name, address),
        events={
            bytes(event_abi_to_log_topic(item)): item  # type: ignore[arg-type]
            for item in definitions.values()
            if not item.get("anonymous", False)
        },
    )
