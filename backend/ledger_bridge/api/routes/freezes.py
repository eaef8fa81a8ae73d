"""Freezes by the bank: a credit officer stops and resumes drawdowns and payouts on a line."""

from __future__ import annotations

from fastapi import APIRouter

from ledger_bridge.api.writes import add_line_action
from ledger_bridge.chain.calls import FREEZE_LINE, UNFREEZE_LINE

router = APIRouter(prefix="/v1/lines", tags=["bank"])

add_line_action(
    router,
    "/{line_id}/freeze",
    FREEZE_LINE,
    summary="Freeze a line (bank)",
    description=(
        "Stop drawdowns and payouts from locked balances on an active or defaulted line. "
        "Repayments continue, and interest keeps accruing. The bank's freeze and the "
        "regulator's are separate: unfreezing one leaves the other in place. Fails with "
        "CreditFreezeUnchanged when the bank has frozen the line already."
    ),
)
add_line_action(
    router,
    "/{line_id}/unfreeze",
    UNFREEZE_LINE,
    summary="Unfreeze a line (bank)",
    description=(
        "Lift the bank's freeze. A freeze by the regulator stays until the regulator lifts it."
    ),
)
