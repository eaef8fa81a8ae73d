"""Shared credit pools and the facility's liquidity through the bridge, end to end."""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.contracts import SETTLEMENT_TOKEN, contract_at
from ledger_bridge.chain.deployment import Deployment

from .conftest import Member, OpenLine, _transact
from .writes import confirm, events_of, fail, read_line

LIMIT_FEN = 1_000_000


def test_pool_members_share_its_limit(client: Any, bank: Member, open_line: OpenLine) -> None:
    first, second = open_line(LIMIT_FEN), open_line(LIMIT_FEN)

    created = confirm(client, bank, "/v1/pools", {"limit": "6000.00"})

    pool_id = int(created["result"]["ids"]["pool_id"])
    assert events_of(created, "PoolCreated")[0]["limit"] == "6000.00"
    for line_id in (first, second):
        confirm(client, bank, f"/v1/pools/{pool_id}/members", {"line_id": line_id})
        assert read_line(client, bank, line_id)["pool_id"] == pool_id
    confirm(client, bank, f"/v1/lines/{first}/drawdowns", {"amount": "5000.00"})
    assert read_line(client, bank, second)["available"] == "1000.00"
    fail(
        client,
        bank,
        f"/v1/lines/{second}/drawdowns",
        {"amount": "2000.00"},
        "CreditPoolLimitExceeded",
    )

    raised = confirm(client, bank, f"/v1/pools/{pool_id}/limit-changes", {"limit": "8000.00"})

    assert events_of(raised, "PoolLimitChanged")[0]["previousLimit"] == "6000.00"
    assert read_line(client, bank, second)["available"] == "3000.00"

    removed = confirm(client, bank, f"/v1/pools/{pool_id}/members/{second}/remove")

    assert events_of(removed, "PoolMemberRemoved")[0]["poolUsedAfter"] == "5000.00"
    line = read_line(client, bank, second)
    assert line["pool_id"] == 0
    assert line["available"] == "10000.00"


def test_treasury_withdraws_and_funds_liquidity(
    client: Any, bank: Member, w3: Web3, facility: Contract, deployment: Deployment
) -> None:
    treasury = deployment.accounts["treasury"]
    token = contract_at(w3, SETTLEMENT_TOKEN, deployment.settlement_token)
    # The treasury approves the facility once, outside the bridge, as a bank would with its
    # own tools. Running before the bridge's first treasury transaction keeps its nonces apart.
    _transact(w3, token.functions.approve(facility.address, 2**256 - 1), treasury)
    liquidity_before = facility.functions.liquidity().call()
    balance_before = token.functions.balanceOf(treasury).call()

    withdrawn = confirm(
        client, bank, "/v1/liquidity/withdrawals", {"to": treasury, "amount": "100.00"}
    )

    assert events_of(withdrawn, "LiquidityWithdrawn")[0]["amount"] == "100.00"
    assert facility.functions.liquidity().call() == liquidity_before - 10_000
    assert token.functions.balanceOf(treasury).call() == balance_before + 10_000

    funded = confirm(client, bank, "/v1/liquidity/fundings", {"amount": "100.00"})

    assert events_of(funded, "LiquidityFunded")[0]["amount"] == "100.00"
    assert facility.functions.liquidity().call() == liquidity_before
