"""Prometheus metrics of one app instance, in a registry of its own."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class OperationStateCollector(Collector):
    """Collector of the number of operations in each state, counted in the database at scrape time.

    Counting at scrape time keeps the numbers right across restarts and
    across replicas that share one database.
    """

    def __init__(self, count_by_state: Callable[[], Mapping[str, int]]) -> None:
        self._count_by_state = count_by_state

    def collect(self) -> Iterator[Metric]:
        try:
            counts = self._count_by_state()
        except Exception as error:  # a failed count must not fail the scrape
            logger.warning("Counting operations for metrics failed: %s", error)
            return
        family = GaugeMetricFamily(
            "ledger_bridge_operations", "Operations stored, by state.", labels=["state"]
        )
        for state, count in sorted(counts.items()):
            family.add_metric([state], count)
        yield family


# Seconds from acceptance to confirmation. Local chains confirm in well under a second, but
# public and permissioned networks take one or more block times, hence the long tail.
CONFIRMATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class OperationMetrics:
    """Counters and histograms of operations on their way to the chain.

    The API counts accepted operations. The worker counts the other states,
    the confirmation latency and the resyncs of its nonces with the node.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.transitions = Counter(
            "ledger_bridge_operation_transitions",
            "Operations that reached a state (accepted, sent, confirmed, failed), by kind.",
            ["kind", "state"],
            registry=registry,
        )
        self.confirmation_seconds = Histogram(
            "ledger_bridge_operation_confirmation_seconds",
            "Time from an operation's acceptance to its confirmation, by kind.",
            ["kind"],
            buckets=CONFIRMATION_BUCKETS,
            registry=registry,
        )
        self.inclusion_seconds = Histogram(
            "ledger_bridge_transaction_inclusion_seconds",
            "Time from sending an operation's transaction to its confirmation, by kind.",
            ["kind"],
            buckets=CONFIRMATION_BUCKETS,
            registry=registry,
        )
        self.nonce_resyncs = Counter(
            "ledger_bridge_nonce_resyncs",
            "Times the worker dropped a signer's next nonce and read it again from the node, "
            "by signer address and reason.",
            ["signer", "reason"],
            registry=registry,
        )

    def record(self, kind: str, state: str) -> None:
        """Count one operation of `kind` reaching `state`."""
        self.transitions.labels(kind, state).inc()


class BridgeMetrics:
    """The app's metrics registry and the HTTP metrics that its middleware records.

    Other parts of the bridge create their metrics with `registry=metrics.registry`.
    """

    def __init__(self, count_operations_by_state: Callable[[], Mapping[str, int]]) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "ledger_bridge_http_requests",
            "HTTP requests handled, by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_request_duration = Histogram(
            "ledger_bridge_http_request_duration_seconds",
            "Time to produce an HTTP response, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(OperationStateCollector(count_operations_by_state))
        self.operations = OperationMetrics(self.registry)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format."""
        return generate_latest(self.registry)
