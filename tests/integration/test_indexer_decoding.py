"""The indexer's own JSON-RPC reads and log decoding against the session's Anvil.

The indexer decodes logs with eth-abi from layouts computed once per ABI
entry and reads blocks in JSON-RPC batch requests. These tests hold the
decoded events equal to web3's `ContractEvent.process_log` and check the
fallback to single requests for nodes that reject batches.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint, RPCResponse

from ledger_bridge.chain.contracts import (
    CREDIT_FACILITY,
    FUND_FLOW_RULES,
    SETTLEMENT_TOKEN,
    contract_at,
    event_abis,
)
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.chain.values import to_json_arguments
from ledger_bridge.indexer.decoding import EventDecoder
from ledger_bridge.indexer.logs import ChainLog
from ledger_bridge.indexer.rpc import NodeClient
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head

from .conftest import OpenLine
from .indexer_support import catch_up, chain_log_keys, new_indexer, stored_log_keys

BLOCK_TIMESTAMP = 1_780_000_000


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    upgrade_to_head(url)
    return create_session_factory(create_db_engine(url))


def web3_decoded(w3: Web3, deployment: Deployment, log: Any) -> dict[str, Any] | None:
    """Decode a web3-formatted log with web3's contract events, the reference decoding."""
    names = {
        deployment.fund_flow_rules.lower(): FUND_FLOW_RULES,
        deployment.settlement_token.lower(): SETTLEMENT_TOKEN,
        **{item.address.lower(): CREDIT_FACILITY for item in deployment.facilities},
    }
    contract_name = names[str(log["address"]).lower()]
    contract = contract_at(w3, contract_name, log["address"])
    topic = HexBytes(log["topics"][0])
    for name, definition in event_abis(contract_name).items():
        if HexBytes(Web3.keccak(text=_signature(definition))) != topic:
            continue
        if contract_name == SETTLEMENT_TOKEN and name != "Transfer":
            return None
        decoded = getattr(contract.events, name)().process_log(log)
        inputs = definition["inputs"]
        line_id = decoded["args"].get("lineId")
        return {
            "event": name,
            "contract_name": contract_name,
            "contract_address": contract.address,
            "line_id": None if line_id is None else int(line_id),
            "args": to_json_arguments(inputs, [decoded["args"][item["name"]] for item in inputs]),
            "block_hash": HexBytes(log["blockHash"]).to_0x_hex(),
            "transaction_hash": HexBytes(log["transactionHash"]).to_0x_hex(),
            "log_index": log["logIndex"],
        }
    return None


def _signature(definition: dict[str, Any]) -> str:
    return f"{definition['name']}({','.join(item['type'] for item in definition['inputs'])})"


def test_decoder_matches_web3_process_log(
    w3: Web3, deployment: Deployment, open_line: OpenLine
) -> None:
    open_line(2_000_000)
    decoder = EventDecoder(w3, deployment, token_transfers=True)
    query = {"address": decoder.addresses, "fromBlock": 0, "toBlock": w3.eth.block_number}
    formatted = w3.eth.get_logs(query)  # type: ignore[arg-type]
    raw = NodeClient(w3).get_logs({**query, "fromBlock": "0x0", "toBlock": hex(query["toBlock"])})
    assert len(raw) == len(formatted)

    compared = set()
    for raw_log, formatted_log in zip(raw, formatted, strict=True):
        event = decoder.decode(ChainLog.from_json(raw_log), BLOCK_TIMESTAMP)
        expected = web3_decoded(w3, deployment, formatted_log)
        if expected is None:
            assert event is None
            continue
        assert event is not None
        actual = {name: getattr(event, name) for name in expected}
        assert actual == expected
        assert event.block_number == formatted_log["blockNumber"]
        assert event.transaction_index == formatted_log["transactionIndex"]
        assert int(event.block_timestamp.timestamp()) == BLOCK_TIMESTAMP
        compared.add(event.event)

    assert {"LineApplied", "LineApproved", "LineOpened", "Transfer"} <= compared


def batch_error(requests_sent: list[tuple[RPCEndpoint, Any]]) -> RPCResponse:
    return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch disabled"}}


def batch_error_per_request(requests_sent: list[tuple[RPCEndpoint, Any]]) -> list[RPCResponse]:
    error = {"code": -32600, "message": "batch too large"}
    return [{"jsonrpc": "2.0", "id": index, "error": error} for index in range(len(requests_sent))]


def batch_http_error(requests_sent: list[tuple[RPCEndpoint, Any]]) -> RPCResponse:
    response = requests.Response()
    response.status_code = 405
    raise requests.HTTPError("405 Client Error: Method Not Allowed", response=response)


class BatchRejectingProvider(HTTPProvider):
    """An HTTP provider for a node or proxy that rejects JSON-RPC batch requests."""

    def __init__(self, url: str, reject: Callable[[list[tuple[RPCEndpoint, Any]]], Any]) -> None:
        super().__init__(url, request_kwargs={"timeout": 10})
        self._reject = reject
        self.batches = 0
        self.single_block_reads = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_getBlockByNumber":
            self.single_block_reads += 1
        return super().make_request(method, params)

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        self.batches += 1
        return self._reject(batch_requests)


class CountingProvider(HTTPProvider):
    """An HTTP provider that counts block reads sent one by one and in batches."""

    def __init__(self, url: str) -> None:
        super().__init__(url, request_kwargs={"timeout": 10})
        self.single_block_reads = 0
        self.batched_block_reads = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_getBlockByNumber":
            self.single_block_reads += 1
        return super().make_request(method, params)

    def make_batch_request(
        self, batch_requests: list[tuple[RPCEndpoint, Any]]
    ) -> list[RPCResponse] | RPCResponse:
        self.batched_block_reads += sum(
            1 for method, _ in batch_requests if method == "eth_getBlockByNumber"
        )
        return super().make_batch_request(batch_requests)


@pytest.mark.parametrize(
    "reject",
    [
        pytest.param(batch_error, id="error-object"),
        pytest.param(batch_error_per_request, id="error-per-request"),
        pytest.param(batch_http_error, id="http-405"),
    ],
)
def test_indexer_reads_blocks_singly_when_batches_rejected(
    anvil_url: str,
    w3: Web3,
    deployment: Deployment,
    sessions: sessionmaker[Session],
    open_line: OpenLine,
    reject: Callable[[list[tuple[RPCEndpoint, Any]]], Any],
) -> None:
    open_line(1_500_000)
    provider = BatchRejectingProvider(anvil_url, reject)
    indexer = new_indexer(Web3(provider), deployment, sessions, block_range=1000)

    catch_up(indexer)

    assert provider.batches == 1
    assert provider.single_block_reads > 0
    assert stored_log_keys(sessions) == chain_log_keys(w3, deployment, w3.eth.block_number)


def test_indexer_reads_range_blocks_in_batches(
    anvil_url: str,
    w3: Web3,
    deployment: Deployment,
    sessions: sessionmaker[Session],
    open_line: OpenLine,
) -> None:
    open_line(1_700_000)
    provider = CountingProvider(anvil_url)
    indexer = new_indexer(Web3(provider), deployment, sessions, block_range=100_000)

    covered = indexer.run_once()

    with sessions() as session:
        checkpoint = load_checkpoint(session)
    assert checkpoint is not None
    assert covered == checkpoint.block_number - deployment.first_block + 1
    logged_blocks = {key[0] for key in chain_log_keys(w3, deployment, checkpoint.block_number)}
    assert len(logged_blocks) > 1
    # Identity check (genesis), the range's last block before its logs, nothing per log.
    assert provider.single_block_reads == 2
    assert provider.batched_block_reads >= len(logged_blocks)
