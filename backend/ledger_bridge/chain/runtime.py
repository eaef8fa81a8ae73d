"""The chain side of a running bridge: node connection, deployment, signers, worker and indexer.

`install_chain(app)` adds one `ChainRuntime` to the app's background
services. When the app starts, the runtime reads the deployment file,
checks that the node serves that chain, loads the signers and starts the
transaction worker and the event indexer. When the app stops, it stops them.
"""

from __future__ import annotations

import logging

import anyio.to_thread
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.deployment import Deployment, load_deployment, verify_chain
from ledger_bridge.chain.errors import ChainError
from ledger_bridge.chain.lines import LineReader
from ledger_bridge.chain.rules import RulesReader
from ledger_bridge.chain.signers import SignerRole, load_signers
from ledger_bridge.chain.worker import TransactionWorker
from ledger_bridge.core.config import Settings
from ledger_bridge.core.metrics import OperationMetrics
from ledger_bridge.indexer.service import EventIndexer, create_indexer

logger = logging.getLogger(__name__)


class ChainNotStartedError(ChainError, RuntimeError):
    """A route needs the chain, but the bridge runs without it or has not connected yet."""

    def __init__(self) -> None:
        super().__init__(
            "The bridge is not connected to the chain yet, or runs with LEDGER_CHAIN_ENABLED "
            "off. Retry in a few seconds; if it persists, check GET /ready."
        )


class ChainRuntime:
    """Owns the node connection and the worker and indexer threads of one app."""

    name = "chain"

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        metrics: OperationMetrics | None = None,
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._metrics = metrics
        self.w3: Web3 = create_web3(settings.rpc_url, settings.rpc_timeout_seconds)
        self.deployment: Deployment | None = None
        self.lines = LineReader(self.w3)
        self.rules = RulesReader(self.w3)
        self.worker: TransactionWorker | None = None
        self.indexer: EventIndexer | None = None

    @property
    def started(self) -> bool:
        """Whether the deployment was loaded and checked against the node."""
        return self.deployment is not None

    def require_deployment(self) -> Deployment:
        """Return the deployment, or raise ChainNotStartedError."""
        if self.deployment is None:
            raise ChainNotStartedError()
        return self.deployment

    async def start(self) -> None:
        """Connect, then start the worker and the indexer that the settings enable."""
        await anyio.to_thread.run_sync(self._start)

    async def stop(self) -> None:
        """Stop the worker and the indexer, each after its current step."""
        await anyio.to_thread.run_sync(self._stop)

    def wake_worker(self) -> None:
        """Let the worker start its next pass now."""
        if self.worker is not None:
            self.worker.wake()

    def check_ready(self) -> None:
        """Readiness check: raises unless connected, the node answers and the indexer runs."""
        self.require_deployment()
        self.w3.eth.block_number  # noqa: B018 - the request itself is the check
        if self.indexer is not None:
            self.indexer.check_running()

    def _start(self) -> None:
        settings = self._settings
        deployment = load_deployment(settings.deployment_file)
        verify_chain(deployment, self.w3)
        self.deployment = deployment
        logger.info(
            "Connected to chain %s with %s facilities",
            deployment.chain_id,
            len(deployment.facilities),
        )
        if settings.worker_enabled:
            self.worker = self._create_worker(deployment, load_signers(settings, deployment))
            self.worker.start()
        if settings.indexer_enabled:
            self.indexer = self._create_indexer(deployment)
            self.indexer.start()

    def _stop(self) -> None:
        for service in (self.worker, self.indexer):
            if service is not None:
                service.stop()

    def _create_worker(
        self, deployment: Deployment, signers: dict[SignerRole, LocalAccount]
    ) -> TransactionWorker:
        settings = self._settings
        return TransactionWorker(
            # Each thread gets a client of its own, so no HTTP session is shared across threads.
            w3=create_web3(settings.rpc_url, settings.rpc_timeout_seconds),
            session_factory=self._session_factory,
            signers=signers,
            confirmations=settings.confirmations,
            poll_interval_seconds=settings.worker_poll_interval_ms / 1000,
            max_pending=settings.worker_max_pending,
            facility_addresses=[facility.address for facility in deployment.facilities],
            rules_address=deployment.fund_flow_rules,
            metrics=self._metrics,
            lease_seconds=settings.worker_lease_seconds,
            lease_renewal_seconds=settings.worker_lease_renewal_seconds,
        )

    def _create_indexer(self, deployment: Deployment) -> EventIndexer:
        return create_indexer(self._settings, deployment, self._session_factory)


def install_chain(app: FastAPI) -> ChainRuntime:
    """Add the chain runtime to an app built by create_app, before the app starts."""
    runtime = ChainRuntime(
        app.state.settings, app.state.session_factory, app.state.metrics.operations
    )
    app.state.services.append(runtime)
    app.state.chain_client = runtime
    app.state.readiness.register("chain", runtime.check_ready)
    return runtime
