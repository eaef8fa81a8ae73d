"""Connections to the EVM node."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from web3 import HTTPProvider, LegacyWebSocketProvider, Web3
from web3.providers import BaseProvider


def create_web3(rpc_url: str, timeout_seconds: float) -> Web3:
    """Return a synchronous Web3 client for an http(s) or ws(s) JSON-RPC URL.

    A request times out when the node sends nothing for `timeout_seconds`
    (the read timeout of requests, or the websocket timeout), so a stalled
    node cannot block the worker or the indexer forever.
    """
    scheme = urlsplit(rpc_url).scheme
    provider: BaseProvider
    if scheme in {"ws", "wss"}:
        # The websocket provider takes whole seconds.
        timeout = max(1, math.ceil(timeout_seconds))
        provider = LegacyWebSocketProvider(rpc_url, websocket_timeout=timeout)
    else:
        # web3's validation middleware requests the chain id before every call that carries a
        # transaction; the id cannot change on a running node, so one answer is kept.
        provider = HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": timeout_seconds},
            cache_allowed_requests=True,
            cacheable_requests={"eth_chainId"},
        )
    return Web3(provider)
