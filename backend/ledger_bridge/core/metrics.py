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

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format."""
        return generate_latest(self.registry)
