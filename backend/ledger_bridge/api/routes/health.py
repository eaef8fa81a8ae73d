"""Liveness, readiness and Prometheus metrics, for load balancers and monitoring."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ledger_bridge.api.deps import SettingsDep
from ledger_bridge.core.metrics import CONTENT_TYPE, BridgeMetrics
from ledger_bridge.core.readiness import ReadinessChecks

router = APIRouter(tags=["admin"])


@router.get("/health", summary="Liveness: the process is running")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/ready",
    summary="Readiness: every registered check passed",
    responses={503: {"description": "At least one check failed or timed out."}},
)
async def read_readiness(request: Request, settings: SettingsDep) -> JSONResponse:
    checks: ReadinessChecks = request.app.state.readiness
    results = await checks.run(settings.readiness_timeout_ms)
    ready = all(result.ok for result in results.values())
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {
            name: {"status": "ok"} if result.ok else {"status": "failed", "error": result.error}
            for name, result in results.items()
        },
    }
    return JSONResponse(body, status_code=200 if ready else 503)


# A plain def runs in a worker thread, because scraping counts rows in the database.
@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def read_metrics(request: Request) -> Response:
    metrics: BridgeMetrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE)
