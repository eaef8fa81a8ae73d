"""The FastAPI application: `create_app(settings)` wires settings, storage and routes.

Run it with `ledger-bridge serve`, or `uvicorn ledger_bridge.app:create_app --factory`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Protocol

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.api.main import OPENAPI_TAGS, api_router
from ledger_bridge.api.middleware import (
    MetricsMiddleware,
    RateLimitMiddleware,
    RequestBodyMiddleware,
)
from ledger_bridge.api.problems import register_problem_handlers
from ledger_bridge.chain.runtime import install_chain
from ledger_bridge.core.config import Settings, get_settings
from ledger_bridge.core.metrics import BridgeMetrics
from ledger_bridge.core.readiness import ReadinessChecks
from ledger_bridge.core.security import SecretVerifier
from ledger_bridge.storage.db import (
    create_db_engine,
    create_session_factory,
    display_url,
    upgrade_to_head,
)
from ledger_bridge.storage.operations import count_operations_by_state

logger = logging.getLogger(__name__)

DESCRIPTION = """
The HTTP API through which bank systems reach the revolving-credit ledger.

* Amounts are decimal strings with at most two decimals, such as `"2500000.00"`; never JSON numbers.
* Write requests need an `Idempotency-Key` header. They are stored as operations and answered
  with `202 Accepted` and a `Location` to poll; a worker sends them to the chain exactly once.
* Errors are RFC 9457 problem details (`application/problem+json`).
* Authenticate with `Authorization: Bearer <key id>.<secret>`.
"""


class BackgroundService(Protocol):
    """A long-running part of the bridge, such as the chain worker, started with the app."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(
    settings: Settings | None = None, *, services: Sequence[BackgroundService] = ()
) -> FastAPI:
    """Build the app for `settings`, which default to those read from the environment.

    Attributes of `app.state` that other modules use:
    `settings`, `engine`, `session_factory`, `readiness` (register checks),
    `metrics` (register metrics), `services` (started in order at startup and
    stopped in reverse at shutdown), and `chain_client` and `worker`, which
    stay None until the chain module sets them.
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="Ledger bridge",
        version=_package_version(),
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        lifespan=_lifespan,
    )
    _init_state(app, settings, services)
    if settings.chain_enabled:
        install_chain(app)
    # Routes and dependencies that ask for get_settings() see the same settings as the app.
    app.dependency_overrides[get_settings] = lambda: settings
    register_problem_handlers(app)
    # The middleware added last runs first: metrics also count requests rejected for their rate or
    # body, and the rate limit counts requests before their body is read.
    app.add_middleware(RequestBodyMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(RateLimitMiddleware, limit_per_minute=settings.rate_limit_per_minute)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.include_router(api_router)
    return app


def _init_state(app: FastAPI, settings: Settings, services: Sequence[BackgroundService]) -> None:
    engine = create_db_engine(settings.database_url)
    session_factory = create_session_factory(engine)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = session_factory
    app.state.secret_verifier = SecretVerifier()
    app.state.readiness = ReadinessChecks()
    app.state.readiness.register("database", lambda: _check_database(session_factory))
    app.state.metrics = BridgeMetrics(lambda: _count_operations(session_factory))
    app.state.services = list(services)
    app.state.chain_client = None
    app.state.worker = None


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.migrate_on_start:
        await anyio.to_thread.run_sync(upgrade_to_head, settings.database_url)
    started: list[BackgroundService] = []
    try:
        for service in app.state.services:
            await service.start()
            started.append(service)
            logger.info("Started %s", service.name)
        logger.info("Bridge ready, database %s", display_url(settings.database_url))
        yield
    finally:
        for service in reversed(started):
            await _stop_service(service)
        app.state.engine.dispose()


async def _stop_service(service: BackgroundService) -> None:
    try:
        await service.stop()
    except Exception:
        # Keep stopping the other services, and log this one's traceback.
        logger.exception("Stopping %s failed", service.name)
    else:
        logger.info("Stopped %s", service.name)


def _check_database(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        session.execute(text("SELECT 1"))


def _count_operations(session_factory: sessionmaker[Session]) -> Mapping[str, int]:
    with session_factory() as session:
        return {state.value: count for state, count in count_operations_by_state(session).items()}


def _package_version() -> str:
    try:
        return version("ledger-bridge")
    except PackageNotFoundError:
        # Running from a source tree on PYTHONPATH, without an installed distribution.
        return "0.0.0+source"
