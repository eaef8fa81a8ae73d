"""Sending write requests to the app and waiting for their operations, for the write tests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx
from web3 import Web3

from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.chain.signers import SignerRole

from .conftest import Member
from .support import wait_for_final

DAY_SECONDS = 86_400


def submit(
    client: Any,
    member: Member,
    path: str,
    body: Mapping[str, Any] | None = None,
    *,
    key: str | None = None,
) -> httpx.Response:
    """POST a write request with a fresh Idempotency-Key unless `key` is given."""
    headers = {**member.headers, "Idempotency-Key": key or f"test-{uuid.uuid4()}"}
    if body is None:
        return client.post(path, headers=headers)
    return client.post(path, json=body, headers=headers)


def run(
    client: Any, member: Member, path: str, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Submit a write, check that it was accepted, and return its operation once final."""
    response = submit(client, member, path, body)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/operations/{response.json()['id']}"
    return wait_for_final(client, response.headers["Location"], member.headers)


def confirm(
    client: Any, member: Member, path: str, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Submit a write and return its operation, checking that it was confirmed."""
    operation = run(client, member, path, body)
    assert operation["state"] == "confirmed", operation
    assert operation["revert"] is None
    return operation


def fail(
    client: Any, member: Member, path: str, body: Mapping[str, Any] | None, error: str
) -> dict[str, Any]:
    """Submit a write and return its operation, checking that it failed with `error`."""
    operation = run(client, member, path, body)
    assert operation["state"] == "failed", operation
    assert operation["revert"]["error"] == error, operation["revert"]
    return operation


def events_of(operation: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    """Return the arguments of the operation's events called `name`."""
    return [item["args"] for item in operation["result"]["events"] if item["event"] == name]


def read_line(client: Any, member: Member, line_id: int, **params: Any) -> dict[str, Any]:
    """Return GET /v1/lines/{line_id}, checking that the status is 200."""
    response = client.get(f"/v1/lines/{line_id}", params=params, headers=member.headers)
    assert response.status_code == 200, response.text
    return response.json()


def signer_nonces(w3: Web3, deployment: Deployment) -> dict[str, int]:
    """Return the pending nonce of every account the bridge signs with."""
    return {
        role.value: w3.eth.get_transaction_count(deployment.accounts[role.value], "pending")
        for role in SignerRole
    }


def move_chain_time(w3: Web3, days: int) -> None:
    """Move the local chain's clock forward by whole days and mine a block at the new time."""
    w3.provider.make_request("evm_increaseTime", [days * DAY_SECONDS])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def hash_of(text: str) -> str:
    """Return a keccak256 hash of `text` as 0x hex, standing for a document kept off chain."""
    return Web3.keccak(text=text).to_0x_hex()


def new_address(label: str) -> str:
    """Return a fresh checksummed address that no key controls, for payees and borrowers."""
    return Web3.to_checksum_address(Web3.keccak(text=f"{label} {uuid.uuid4()}")[-20:])
