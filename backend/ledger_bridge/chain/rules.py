"""Live reads of the fund-flow rules: registered payees, blocked categories, the rules version."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.contracts import FUND_FLOW_RULES, contract_at
from ledger_bridge.chain.lines import call_node
from ledger_bridge.chain.values import ENUM_MEMBERS

PAYEE_STATUSES = ENUM_MEMBERS["enum IFundFlowRules.PayeeStatus"]


@dataclass(frozen=True, slots=True)
class PayeeRecord:
    """A payee as the rules contract stores it, read at one block."""

    block_number: int
    address: str
    category: int
    status: str
    registrar: str
    documents_hash: str
    category_blocked: bool
    rules_version: int


@dataclass(frozen=True, slots=True)
class BlockedCategories:
    """The blocked codes among those requested, read at one block."""

    block_number: int
    rules_version: int
    blocked: tuple[int, ...]


class RulesReader:
    """Reader of the fund-flow rules contract. The figures of each result come from one block."""

    def __init__(self, w3: Web3) -> None:
        self._w3 = w3
        self._contracts: dict[str, Contract] = {}
        self._lock = threading.Lock()

    def payee(self, rules_address: str, address: str) -> PayeeRecord | None:
        """Return the payee, or None if it was never registered."""
        rules = self._rules(rules_address)
        block = call_node(lambda: self._w3.eth.block_number)
        category, status, registrar, documents_hash = call_node(
            lambda: rules.functions.payee(address).call(block_identifier=block)
        )
        if status == 0:
            return None
        blocked = call_node(
            lambda: rules.functions.isCategoryBlocked(category).call(block_identifier=block)
        )
        version = call_node(lambda: rules.functions.rulesVersion().call(block_identifier=block))
        return PayeeRecord(
            block_number=block,
            address=address,
            category=category,
            status=PAYEE_STATUSES[status] if status < len(PAYEE_STATUSES) else str(status),
            registrar=registrar,
            documents_hash="0x" + bytes(documents_hash).hex(),
            category_blocked=blocked,
            rules_version=version,
        )

    def blocked_categories(self, rules_address: str, codes: Iterable[int]) -> BlockedCategories:
        """Return which of `codes` the regulator has blocked, asking the contract for each."""
        rules = self._rules(rules_address)
        block = call_node(lambda: self._w3.eth.block_number)
        blocked = tuple(
            code
            for code in sorted(set(codes))
            if call_node(
                lambda code=code: rules.functions.isCategoryBlocked(code).call(
                    block_identifier=block
                )
            )
        )
        version = call_node(lambda: rules.functions.rulesVersion().call(block_identifier=block))
        return BlockedCategories(block_number=block, rules_version=version, blocked=blocked)

    def _rules(self, address: str) -> Contract:
        with self._lock:
            contract = self._contracts.get(address)
            if contract is None:
                contract = contract_at(self._w3, FUND_FLOW_RULES, address)
                self._contracts[address] = contract
            return contract
