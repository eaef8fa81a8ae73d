"""The contracts' ABIs, shipped in the package, and web3 contract objects built from them.

The JSON files in chain/abi are copies of Ape's build output, written by
scripts/export_abis.py, so the bridge needs neither Ape nor solc at run time.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract

CREDIT_FACILITY = "CreditFacility"
FUND_FLOW_RULES = "FundFlowRules"
SETTLEMENT_TOKEN = "SettlementToken"
CONTRACT_NAMES = (CREDIT_FACILITY, FUND_FLOW_RULES, SETTLEMENT_TOKEN)


@lru_cache(maxsize=len(CONTRACT_NAMES))
def load_abi(contract_name: str) -> tuple[dict[str, Any], ...]:
    """Return a contract's ABI from the package; raises ValueError for an unknown name."""
    if contract_name not in CONTRACT_NAMES:
        raise ValueError(
            f"No ABI named {contract_name!r} is shipped; use one of {', '.join(CONTRACT_NAMES)}"
        )
    abi_file = resources.files(__package__).joinpath("abi").joinpath(f"{contract_name}.json")
    return tuple(json.loads(abi_file.read_text("utf-8")))


def contract_at(w3: Web3, contract_name: str, address: ChecksumAddress | str) -> Contract:
    """Return a web3 contract object for a deployed contract of the given name."""
    return w3.eth.contract(
        address=Web3.to_checksum_address(address), abi=list(load_abi(contract_name))
    )


def event_abis(contract_name: str) -> dict[str, dict[str, Any]]:
    """Return a contract's event definitions keyed by event name."""
    return {item["name"]: item for item in load_abi(contract_name) if item["type"] == "event"}
