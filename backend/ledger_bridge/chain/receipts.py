"""The result of a confirmed operation, read from its receipt's logs.

A transaction's return value is not kept on chain, so the ids that an
operation creates (a new line, drawdown or pool) come from the events it
emitted. The result keeps those ids and every decoded event of the
bridge's contracts, with integers as decimal strings as the index stores them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from eth_abi.exceptions import DecodingError
from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3._utils.events import get_event_data
from web3.exceptions import Web3Exception
from web3.types import LogReceipt, TxReceipt

from ledger_bridge.chain.contracts import event_abis
from ledger_bridge.chain.values import to_json_arguments

logger = logging.getLogger(__name__)

# Event argument that carries an id the operation created, and the result key it is stored under.
CREATED_IDS: Mapping[tuple[str, str], str] = {
    ("LineApplied", "lineId"): "line_id",
    ("LineDrawn", "drawdownId"): "drawdown_id",
    ("PoolCreated", "poolId"): "pool_id",
}


def operation_result(
    w3: Web3, receipt: TxReceipt, contract_names: Mapping[str, str]
) -> dict[str, Any]:
    """Decode the receipt's logs of known contracts into {"ids": {...}, "events": [...]}.

    `contract_names` maps lowercase contract addresses to contract names.
    Logs of other contracts, such as the settlement token's, are left out,
    and so is a log that does not decode with the shipped ABI, which is
    logged, because the transaction itself is confirmed either way.
    """
    events: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    for log in receipt["logs"]:
        event = _decode(w3, log, contract_names)
        if event is None:
            continue
        events.append(event)
        for (event_name, argument), key in CREATED_IDS.items():
            if event["event"] == event_name and key not in ids:
                ids[key] = event["args"][argument]
    return {"ids": ids, "events": events}


def _decode(w3: Web3, log: LogReceipt, contract_names: Mapping[str, str]) -> dict[str, Any] | None:
    contract_name = contract_names.get(str(log["address"]).lower())
    if contract_name is None or not log["topics"]:
        return None
    definition = _events_by_topic(contract_name).get(bytes(log["topics"][0]))
    if definition is None:
        return None
    try:
        decoded = get_event_data(w3.codec, definition, log)
    except (Web3Exception, DecodingError) as error:
        logger.warning(
            "Log %s of transaction %s does not decode as %s.%s: %s",
            log["logIndex"],
            log["transactionHash"].hex(),
            contract_name,
            definition["name"],
            error,
        )
        return None
    inputs = definition["inputs"]
    args = to_json_arguments(inputs, [decoded["args"][item["name"]] for item in inputs])
    return {"event": definition["name"], "args": args}


@lru_cache(maxsize=8)
def _events_by_topic(contract_name: str) -> dict[bytes, Any]:
    return {
        bytes(event_abi_to_log_topic(item)): item  # type: ignore[arg-type]
        for item in event_abis(contract_name).values()
        if not item.get("anonymous", False)
    }
