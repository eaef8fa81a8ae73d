"""The indexer against nodes that reject eth_getLogs ranges, whatever their error message.

`RejectingProvider` sits between the indexer and the session's Anvil and
rejects eth_getLogs requests for more than a given number of blocks, or with
more than a given number of logs, in the ways real nodes and their proxies
do: JSON-RPC errors with different codes and texts, HTTP errors and timeouts.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint, RPCResponse

from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.indexer.errors import LogRangeRejectedError
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head

from .conftest import OpenLine
from .indexer_support import catch_up, chain_log_keys, new_indexer, stored_log_keys

MAX_BLOCKS = 3
MAX_LOGS = 4


def rpc_error(code: int, message: str) -> Callable[[Any], RPCResponse]:
    def respond(request_id: Any) -> RPCResponse:
        return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}

    return respond


def http_error(status: int) -> Callable[[Any], RPCResponse]:
    def respond(request_id: Any) -> RPCResponse:
        response = requests.Response()
        response.status_code = status
        raise requests.HTTPError(f"{status} Client Error", response=response)

    return respond


def read_timeout(request_id: Any) -> RPCResponse:
    raise requests.ReadTimeout("Read timed out. (read timeout=10)")


REJECTIONS = [
    pytest.param(rpc_error(-32005, "query returned more than 10000 results"), id="result-count"),
    pytest.param(rpc_error(-32602, "block range too large, max 3 blocks"), id="block-range"),
    pytest.param(
        rpc_error(-32000, "Log response size exceeded. Use a 2K block range"), id="response-size"
    ),
    pytest.param(rpc_error(-32603, "unexpected: 啊 \u0000 limit"), id="unknown-text"),
    pytest.param(http_error(413), id="http-413"),
    pytest.param(http_error(503), id="http-503"),
    pytest.param(read_timeout, id="read-timeout"),
]


class RejectingProvider(HTTPProvider):
    """An HTTP provider that rejects large eth_getLogs requests before they reach the node."""

    def __init__(
        self,
        url: str,
        reject: Callable[[Any], RPCResponse],
        *,
        max_blocks: int | None = None,
        max_logs: int | None = None,
    ) -> None:
        super().__init__(url, request_kwargs={"timeout": 10})
        self._reject = reject
        self._max_blocks = max_blocks
        self._max_logs = max_logs
        self.rejected = 0

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method != "eth_getLogs":
            return super().make_request(method, params)
        query = params[0]
        blocks = int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
        if self._max_blocks is not None and blocks > self._max_blocks:
            self.rejected += 1
            return self._reject(1)
        response = super().make_request(method, params)
        if self._max_logs is not None and len(response.get("result") or []) > self._max_logs:
            self.rejected += 1
            return self._reject(response.get("id"))
        return response


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    upgrade_to_head(url)
    return create_session_factory(create_db_engine(url))


@pytest.fixture(scope="module")
def lines(open_line: OpenLine) -> list[int]:
    """A few lines, so that the session's chain has logs in consecutive blocks."""
    return [open_line(1_000_000 + index) for index in range(3)]


@pytest.mark.parametrize("reject", REJECTIONS)
def test_indexer_shrinks_range_the_node_rejects(
    anvil_url: str,
    w3: Web3,
    deployment: Deployment,
    sessions: sessionmaker[Session],
    lines: list[int],
    reject: Callable[[Any], RPCResponse],
) -> None:
    provider = RejectingProvider(anvil_url, reject, max_blocks=MAX_BLOCKS)
    indexer = new_indexer(Web3(provider), deployment, sessions, block_range=1000)

    catch_up(indexer)

    with sessions() as session:
        checkpoint = load_checkpoint(session)
    assert checkpoint is not None
    assert provider.rejected > 0
    assert stored_log_keys(sessions) == chain_log_keys(w3, deployment, checkpoint.block_number)


@pytest.mark.parametrize("reject", REJECTIONS[:2])
def test_indexer_shrinks_range_with_too_many_logs(
    anvil_url: str,
    w3: Web3,
    deployment: Deployment,
    sessions: sessionmaker[Session],
    lines: list[int],
    reject: Callable[[Any], RPCResponse],
) -> None:
    provider = RejectingProvider(anvil_url, reject, max_logs=MAX_LOGS)
    indexer = new_indexer(Web3(provider), deployment, sessions, block_range=1000)

    catch_up(indexer)

    with sessions() as session:
        checkpoint = load_checkpoint(session)
    assert checkpoint is not None
    assert provider.rejected > 0
    assert stored_log_keys(sessions) == chain_log_keys(w3, deployment, checkpoint.block_number)


def test_indexer_reports_single_block_rejected(
    anvil_url: str, deployment: Deployment, sessions: sessionmaker[Session], lines: list[int]
) -> None:
    provider = RejectingProvider(anvil_url, rpc_error(-32000, "logs disabled"), max_blocks=0)
    indexer = new_indexer(Web3(provider), deployment, sessions, block_range=16)

    with pytest.raises(LogRangeRejectedError, match="logs disabled"):
        indexer.run_once()

    # Halving from 16 blocks reaches one block after four more requests.
    assert provider.rejected == 5
    assert stored_log_keys(sessions) == []
