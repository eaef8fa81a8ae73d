"""Moving chain time: forward to a step's moment, never back, and only on a development node."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest

from ledger_bridge.scenarios.clock import ChainClock
from ledger_bridge.scenarios.errors import ClockError
from ledger_bridge.scenarios.model import CHINA_STANDARD_TIME

RPC_URL = "http://127.0.0.1:8545"
TEN_AM = dt.datetime(2027, 3, 2, 10, 0, tzinfo=CHINA_STANDARD_TIME)


class FakeNode:
    """A JSON-RPC node with a latest block time, recording the methods called."""

    def __init__(self, latest: dt.datetime, *, moves_time: bool = True) -> None:
        self.latest = int(latest.timestamp())
        self.moves_time = moves_time
        self.calls: list[tuple[str, list[Any]]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        method, params = body["method"], body["params"]
        self.calls.append((method, params))
        if method == "eth_getBlockByNumber":
            return self._result(body, {"timestamp": hex(self.latest)})
        if not self.moves_time:
            error = {"code": -32601, "message": "Method not found"}
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "error": error})
        if method == "evm_setNextBlockTimestamp":
            self.latest = params[0]
        return self._result(body, "0x0")

    def _result(self, body: dict[str, Any], result: Any) -> httpx.Response:
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": result})


def clock_on(node: FakeNode) -> ChainClock:
    return ChainClock(RPC_URL, httpx.Client(transport=httpx.MockTransport(node.handle)))


def test_move_to_mines_block_at_moment() -> None:
    node = FakeNode(TEN_AM - dt.timedelta(days=3))

    clock_on(node).move_to(TEN_AM)

    assert ("evm_setNextBlockTimestamp", [int(TEN_AM.timestamp())]) in node.calls
    assert node.calls[-1] == ("evm_mine", [])


def test_move_to_same_day_keeps_time() -> None:
    node = FakeNode(TEN_AM + dt.timedelta(minutes=5))

    clock_on(node).move_to(TEN_AM)

    assert [method for method, _ in node.calls] == ["eth_getBlockByNumber"]


def test_move_to_earlier_day_is_rejected() -> None:
    node = FakeNode(TEN_AM + dt.timedelta(days=1))

    with pytest.raises(ClockError, match="2027-03-03 10:00:00 CST, after the step at 2027-03-02"):
        clock_on(node).move_to(TEN_AM)


def test_node_without_time_methods_is_rejected() -> None:
    node = FakeNode(TEN_AM - dt.timedelta(days=1), moves_time=False)

    with pytest.raises(ClockError, match="has no evm_setNextBlockTimestamp .method not found."):
        clock_on(node).move_to(TEN_AM)


def test_unreachable_node_names_url() -> None:
    def fail_to_connect(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    clock = ChainClock(RPC_URL, httpx.Client(transport=httpx.MockTransport(fail_to_connect)))

    with pytest.raises(ClockError, match=f"The node at {RPC_URL} did not respond"):
        clock.move_to(TEN_AM)
