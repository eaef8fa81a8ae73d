"""Reviews: a credit officer clears the flag a line gets after many revolving cycles."""

from __future__ import annotations

from fastapi import APIRouter

from ledger_bridge.api.writes import add_line_action
from ledger_bridge.chain.calls import CLEAR_REVIEW_FLAG

router = APIRouter(prefix="/v1/lines", tags=["bank"])

add_line_action(
    router,
    "/{line_id}/review-flag/clear",
    CLEAR_REVIEW_FLAG,
    summary="Clear a line's review flag",
    description=(
        "Record that an officer reviewed a line flagged for its revolving cycles (8 by "
        "default). When the facility's policy requires a review, drawdowns wait for this. "
        "The next flag comes after as many further cycles."
    ),
)
