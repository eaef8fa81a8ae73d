"""Prometheus metrics of operations: states reached, confirmation latency and nonce resyncs."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from ledger_bridge.chain.deployment import Deployment

from .conftest import Member, OpenLine
from .writes import confirm


def scrape(client: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Return every sample of GET /metrics by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_confirmed_drawdown_counted_and_timed(
    client: Any, bank: Member, open_line: OpenLine
) -> None:
    line_id = open_line(1_000_000)
    before = scrape(client)

    confirm(client, bank, f"/v1/lines/{line_id}/drawdowns", {"amount": "10.00"})

    after = scrape(client)
    transitions = "ledger_bridge_operation_transitions_total"
    for state in ("accepted", "sent", "confirmed"):
        increase = sample(after, transitions, kind="drawdown", state=state) - sample(
            before, transitions, kind="drawdown", state=state
        )
        assert increase == 1, state
    latency = "ledger_bridge_operation_confirmation_seconds_count"
    assert sample(after, latency, kind="drawdown") == sample(before, latency, kind="drawdown") + 1
    assert sample(after, "ledger_bridge_operations", state="confirmed") >= 1


def test_taken_nonce_is_resynced(
    client: Any, bank: Member, open_line: OpenLine, w3: Web3, deployment: Deployment
) -> None:
    line_id = open_line(1_000_000)
    operator = deployment.accounts["operator"]
    path = f"/v1/lines/{line_id}/drawdowns"
    # A first drawdown makes sure the worker has read the operator's next nonce.
    confirm(client, bank, path, {"amount": "10.00"})
    before = scrape(client)
    # Another client of the same key takes that nonce behind the worker's back.
    taken = w3.eth.send_transaction({"from": operator, "to": operator, "value": 0})
    w3.eth.wait_for_transaction_receipt(taken)

    operation = confirm(client, bank, path, {"amount": "20.00"})

    resyncs = "ledger_bridge_nonce_resyncs_total"
    labels = {"signer": operator, "reason": "rejected_by_node"}
    assert sample(scrape(client), resyncs, **labels) == sample(before, resyncs, **labels) + 1
    assert operation["nonce"] == w3.eth.get_transaction_count(operator) - 1
