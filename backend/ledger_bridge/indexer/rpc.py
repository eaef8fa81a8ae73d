"""The indexer's JSON-RPC reads, sent through the web3 provider as raw requests.

web3's `Eth` methods format every result into AttributeDicts of HexBytes,
which costs more than the rest of indexing a log. The indexer needs only a
few fields, so it sends its calls through the provider and reads the JSON
itself. Errors raise the exceptions web3 raises: Web3RPCError for an error
response, and the provider's own exceptions for a failed connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from requests.exceptions import HTTPError
from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import RPCEndpoint, RPCResponse

logger = logging.getLogger(__name__)

# Requests in one JSON-RPC batch: the default limit of Polygon's Bor node (rpc.batchlimit).
# Other nodes have similar options, and a node that rejects a batch gets single requests.
MAX_BATCH_REQUESTS = 100


@dataclass(frozen=True, slots=True)
class BlockHeader:
    """The fields of a block that the indexer stores: number, hash and timestamp in seconds."""

    number: int
    block_hash: str
    timestamp: int


class NodeClient:
    """A client for the indexer's JSON-RPC calls, sent through a web3 provider unformatted."""

    def __init__(self, w3: Web3) -> None:
        self._provider = w3.provider
        # Cleared when the node or a proxy rejects batch requests, so single requests follow.
        self._batches_accepted = True

    def call(self, method: str, params: Sequence[Any]) -> Any:
        """Send one request and return its result. Raises Web3RPCError on an error response."""
        response = self._provider.make_request(RPCEndpoint(method), list(params))
        return _result(method, response)

    def block_number(self) -> int:
        """Return the number of the node's latest block."""
        return int(self.call("eth_blockNumber", []), 16)

    def block_header(self, number: int) -> BlockHeader | None:
        """Return block `number`, or None when the chain is shorter."""
        return _header(self.call("eth_getBlockByNumber", [hex(number), False]))

    def block_headers(self, numbers: Iterable[int]) -> dict[int, BlockHeader | None]:
        """Return the blocks `numbers`, None for those beyond the chain, in batch requests."""
        block_numbers = sorted(set(numbers))
        requests = [("eth_getBlockByNumber", [hex(number), False]) for number in block_numbers]
        results = self._call_many(requests)
        return {
            number: _header(block) for number, block in zip(block_numbers, results, strict=True)
        }

    def get_logs(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Return the raw log objects of eth_getLogs, with hex strings as the node sent them."""
        return list(self.call("eth_getLogs", [dict(params)]))

    def _call_many(self, requests: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        results: list[Any] = []
        for start in range(0, len(requests), MAX_BATCH_REQUESTS):
            chunk = requests[start : start + MAX_BATCH_REQUESTS]
            batch = self._batch(chunk) if self._batches_accepted and len(chunk) > 1 else None
            if batch is None:
                batch = [self.call(method, params) for method, params in chunk]
            results.extend(batch)
        return results

    def _batch(self, requests: Sequence[tuple[str, list[Any]]]) -> list[Any] | None:
        """Send a batch and return its results in request order.

        Returns None when the node or a proxy rejected the batch as a whole: an
        HTTP error, one error object, an error for every request, or a response
        count that does not match. If the first request then succeeds alone,
        no more batches are sent.
        """
        try:
            responses = self._provider.make_batch_request(
                [(RPCEndpoint(method), params) for method, params in requests]
            )
        except HTTPError as error:
            rejection: object = error
        else:
            if _answered(responses, len(requests)):
                return [
                    _result(method, response)
                    for (method, _), response in zip(requests, responses, strict=True)
                ]
            rejection = _rejection(responses, len(requests))
        first_method, first_params = requests[0]
        self.call(first_method, first_params)
        self._batches_accepted = False
        logger.warning(
            "The node rejected a JSON-RPC batch request of %s calls (%s) but accepts single "
            "requests, so the indexer sends single requests from now on",
            len(requests),
            rejection,
        )
        return None


def _answered(responses: object, request_count: int) -> bool:
    if not isinstance(responses, list) or len(responses) != request_count:
        return False
    return not all("error" in response for response in responses)


def _rejection(responses: object, request_count: int) -> object:
    if isinstance(responses, list) and len(responses) != request_count:
        return f"{len(responses)} responses to {request_count} requests"
    if isinstance(responses, list):
        return responses[0].get("error")
    if isinstance(responses, dict):
        return responses.get("error")
    return responses


def _result(method: str, response: RPCResponse) -> Any:
    error = response.get("error")
    if error is not None:
        message = error.get("message") if isinstance(error, dict) else error
        raise Web3RPCError(f"{method} failed: {message}", rpc_response=response)
    if "result" not in response:
        raise Web3RPCError(f"{method} returned neither a result nor an error", response)
    return response["result"]


def _header(block: Mapping[str, Any] | None) -> BlockHeader | None:
    if block is None:
        return None
    return BlockHeader(
        number=int(block["number"], 16),
        block_hash=str(block["hash"]).lower(),
        timestamp=int(block["timestamp"], 16),
    )
