"""The deployment file: which chain, which contracts at which addresses, from which block.

scripts/deploy.py writes it. The bridge reads it once at start-up, validates
every field and checks it against the node with `verify_chain`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_typing import ChecksumAddress
from web3 import Web3

from ledger_bridge.chain.errors import ChainMismatchError
from ledger_bridge.core.errors import ConfigurationError, InvalidValueError
from ledger_bridge.money import parse_address

SETTING = "LEDGER_DEPLOYMENT_FILE"
_HASH_PATTERN = re.compile(r"0x[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class FacilityDeployment:
    """One bank's credit facility contract."""

    name: str
    address: ChecksumAddress
    deployment_block: int


@dataclass(frozen=True, slots=True)
class Deployment:
    """The deployed contracts of one chain, as the deployment file describes them."""

    chain_id: int
    genesis_hash: str
    deployment_block: int
    settlement_token: ChecksumAddress
    fund_flow_rules: ChecksumAddress
    facilities: tuple[FacilityDeployment, ...]
    # Role name (operator, officer, ...) to the account that holds the role on chain.
    accounts: Mapping[str, ChecksumAddress]

    def facility(self, address: str) -> FacilityDeployment | None:
        """Return the facility at `address` (any letter case), or None."""
        requested = address.lower()
        return next((item for item in self.facilities if item.address.lower() == requested), None)

    @property
    def first_block(self) -> int:
        """The earliest block that can hold an event of any deployed contract."""
        return min([self.deployment_block, *(item.deployment_block for item in self.facilities)])


def load_deployment(path: Path) -> Deployment:
    """Read and validate a deployment file; raises ConfigurationError naming the bad field."""
    document = _read_json_object(path)
    contracts = _field(document, "contracts", dict, path)
    accounts = _field(document, "accounts", dict, path)
    return Deployment(
        chain_id=_positive_int(document, "chain_id", path),
        genesis_hash=_hash(document, "genesis_hash", path),
        deployment_block=_block_number(document, "deployment_block", path),
        settlement_token=_address(contracts, "SettlementToken", path, "contracts."),
        fund_flow_rules=_address(contracts, "FundFlowRules", path, "contracts."),
        facilities=_facilities(document, path),
        accounts={role: _address(accounts, role, path, "accounts.") for role in accounts},
    )


def verify_chain(deployment: Deployment, w3: Web3) -> None:
    """Raise ChainMismatchError unless the node serves the chain the deployment describes."""
    chain_id = w3.eth.chain_id
    if chain_id != deployment.chain_id:
        raise ChainMismatchError("chain id", deployment.chain_id, chain_id)
    genesis_hash = "0x" + bytes(w3.eth.get_block(0)["hash"]).hex()
    if genesis_hash.lower() != deployment.genesis_hash.lower():
        raise ChainMismatchError("genesis block hash", deployment.genesis_hash, genesis_hash)


def _read_json_object(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            SETTING,
            f"is {path}, which cannot be read as JSON ({type(error).__name__})",
            "Deploy the contracts first, or point the setting at the network's deployment file.",
        ) from error
    if not isinstance(document, dict):
        raise _invalid(path, "the document", "is not a JSON object")
    return document


def _facilities(document: Mapping[str, Any], path: Path) -> tuple[FacilityDeployment, ...]:
    entries = _field(document, "facilities", list, path)
    if not entries:
        raise _invalid(path, "facilities", "is empty")
    facilities = []
    for index, entry in enumerate(entries):
        prefix = f"facilities[{index}]."
        if not isinstance(entry, dict):
            raise _invalid(path, prefix.rstrip("."), "is not a JSON object")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise _invalid(path, prefix + "name", "is missing or not a non-empty string")
        facilities.append(
            FacilityDeployment(
                name=name,
                address=_address(entry, "address", path, prefix),
                deployment_block=_block_number(entry, "deployment_block", path, prefix),
            )
        )
    return tuple(facilities)


def _field(document: Mapping[str, Any], name: str, kind: type, path: Path) -> Any:
    value = document.get(name)
    if not isinstance(value, kind):
        raise _invalid(path, name, f"is missing or not a JSON {kind.__name__}")
    return value


def _positive_int(document: Mapping[str, Any], name: str, path: Path, prefix: str = "") -> int:
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _invalid(path, prefix + name, "is missing or not a positive integer")
    return value


def _block_number(document: Mapping[str, Any], name: str, path: Path, prefix: str = "") -> int:
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(path, prefix + name, "is missing or not a block number (integer >= 0)")
    return value


def _hash(document: Mapping[str, Any], name: str, path: Path) -> str:
    value = document.get(name)
    if not isinstance(value, str) or _HASH_PATTERN.fullmatch(value) is None:
        raise _invalid(path, name, "is missing or not 0x followed by 64 hex digits")
    return value.lower()


def _address(document: Mapping[str, Any], name: str, path: Path, prefix: str) -> ChecksumAddress:
    try:
        return ChecksumAddress(parse_address(document.get(name)))
    except InvalidValueError as error:
        problem = f"is not a contract or account address, because it {error.reason}"
        raise _invalid(path, prefix + name, problem) from error


def _invalid(path: Path, field_name: str, problem: str) -> ConfigurationError:
    return ConfigurationError(
        SETTING,
        f"is {path}, whose field {field_name!r} {problem}",
        "Deploy the contracts again with scripts/deploy.py to rewrite the file.",
    )
