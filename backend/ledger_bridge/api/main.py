"""The bridge's routers; a new resource adds its router here."""

from fastapi import APIRouter

from ledger_bridge.api.routes import (
    applications,
    audit,
    defaults,
    drawdowns,
    freezes,
    health,
    history,
    limits,
    lines,
    liquidity,
    operations,
    organisations,
    payees,
    payouts,
    pools,
    portfolio,
    regulator,
    regulator_reports,
    renewals,
    repayments,
    reviews,
    rules,
)

# The OpenAPI document groups routes by who uses them.
OPENAPI_TAGS = [
    {
        "name": "bank",
        "description": (
            "Core-banking systems of one bank: applications, drawdowns, repayments, limits, "
            "renewals, freezes, defaults, payees, pools, liquidity and payouts of locked "
            "balances. A bank's credential acts only on its own facility: another facility's "
            "ids get 404."
        ),
    },
    {
        "name": "auditor",
        "description": "Read-only access to lines, their history, payees and the rules.",
    },
    {
        "name": "regulator",
        "description": (
            "The fund-flow locks across every facility: blocked payee categories, frozen "
            "payees and frozen lines."
        ),
    },
    {
        "name": "admin",
        "description": "Organisations and credentials, health, readiness and metrics.",
    },
]

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(operations.router)
api_router.include_router(organisations.router)
api_router.include_router(lines.router)
api_router.include_router(history.router)
api_router.include_router(applications.router)
api_router.include_router(drawdowns.router)
api_router.include_router(repayments.router)
api_router.include_router(limits.router)
api_router.include_router(renewals.router)
api_router.include_router(freezes.router)
api_router.include_router(reviews.router)
api_router.include_router(defaults.router)
api_router.include_router(payouts.router)
api_router.include_router(pools.router)
api_router.include_router(liquidity.router)
api_router.include_router(payees.router)
api_router.include_router(rules.router)
api_router.include_router(regulator.router)
api_router.include_router(regulator_reports.router)
api_router.include_router(audit.router)
api_router.include_router(portfolio.router)
