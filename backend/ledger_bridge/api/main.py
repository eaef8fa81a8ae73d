"""The bridge's routers; a new resource adds its router here."""

from fastapi import APIRouter

from ledger_bridge.api.routes import (
    drawdowns,
    health,
    history,
    lines,
    operations,
    organisations,
)

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(operations.router)
api_router.include_router(organisations.router)
api_router.include_router(lines.router)
api_router.include_router(drawdowns.router)
api_router.include_router(history.router)
