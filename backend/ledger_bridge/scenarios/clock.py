"""Moving a development chain's time with Anvil's JSON-RPC methods.

Time only moves forward: `move_to` mines an empty block with the requested
timestamp (`evm_setNextBlockTimestamp`, then `evm_mine`), and later blocks
continue from there with the node's clock. A step that finds the chain
already past its moment, on the same China Standard Time date, runs at the
chain's time, because several actions of one day each take a block.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from typing import Any

import httpx

from ledger_bridge.scenarios.errors import ClockError
from ledger_bridge.scenarios.model import CHINA_STANDARD_TIME

logger = logging.getLogger(__name__)

# JSON-RPC 2.0 error code for a method the node does not have.
METHOD_NOT_FOUND = -32601
RPC_TIMEOUT_SECONDS = 10.0


class ChainClock:
    """The time of the chain behind one JSON-RPC URL."""

    def __init__(self, rpc_url: str, http: httpx.Client | None = None) -> None:
        self.rpc_url = rpc_url
        self._http = http or httpx.Client(timeout=RPC_TIMEOUT_SECONDS)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self._http.close()

    def latest_timestamp(self) -> int:
        """Return the Unix timestamp of the latest block."""
        block = self._call("eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    def block_number(self) -> int:
        """Return the number of the latest block."""
        return int(self._call("eth_blockNumber", []), 16)

    def now(self) -> dt.datetime:
        """Return the latest block's time in China Standard Time."""
        return dt.datetime.fromtimestamp(self.latest_timestamp(), CHINA_STANDARD_TIME)

    def move_to(self, moment: dt.datetime) -> None:
        """Mine a block at `moment`, unless the chain is already there on the same CST date.

        Raises ClockError when the chain is on a later date than `moment`, or
        when the node has no evm_setNextBlockTimestamp (it is not a development node).
        """
        target = int(moment.timestamp())
        latest = self.latest_timestamp()
        if latest >= target:
            chain_time = dt.datetime.fromtimestamp(latest, CHINA_STANDARD_TIME)
            if chain_time.date() == moment.astimezone(CHINA_STANDARD_TIME).date():
                return
            raise ClockError(
                f"The chain at {self.rpc_url} is at {_format(chain_time)}, after the step at "
                f"{_format(moment)}, and chain time cannot move back. Replay on a fresh chain "
                "(leave out --rpc-url and --api-url), or move the scenario's dates later."
            )
        self._call("evm_setNextBlockTimestamp", [target], moves_time=True)
        self._call("evm_mine", [], moves_time=True)
        logger.debug("Moved chain time to %s", _format(moment))

    def mine(self) -> None:
        """Mine one empty block, so that sent transactions gain a confirmation."""
        self._call("evm_mine", [], moves_time=True)

    def _call(self, method: str, params: list[Any], *, moves_time: bool = False) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._http.post(self.rpc_url, json=request)
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ClockError(
                f"The node at {self.rpc_url} did not respond to {method} ({error}). Check that it "
                "runs and that the URL is its JSON-RPC endpoint."
            ) from error
        error = body.get("error") if isinstance(body, dict) else None
        if error is None:
            return body.get("result")
        if moves_time and error.get("code") == METHOD_NOT_FOUND:
            raise ClockError(
                f"The node at {self.rpc_url} has no {method} (method not found), so scenario "
                "replay cannot move its time. Replay against Anvil, which the runner starts "
                "when --rpc-url is left out."
            )
        raise ClockError(f"The node at {self.rpc_url} rejected {method}: {error.get('message')}")


def _format(moment: dt.datetime) -> str:
    return moment.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M:%S CST")
