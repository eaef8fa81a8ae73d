"""The fund-flow rules in force: which payee categories the regulator has blocked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ledger_bridge.api.chain_access import ChainDep
from ledger_bridge.api.deps import SessionDep, require_roles
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.categories import CATEGORIES, category_name, describe_categories
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.storage.models import ChainEvent

router = APIRouter(prefix="/v1/rules", tags=["bank", "auditor", "regulator"])

RulesReader = Annotated[Principal, Depends(require_roles(Role.BANK, Role.AUDITOR, Role.REGULATOR))]


class CategoryOut(BaseModel):
    """A payee category and whether payouts to it are blocked."""

    code: int
    name: str | None = Field(description="The documented name, or null for an undocumented code.")
    speculative: bool = Field(description="Whether the code is one of the speculative uses.")
    blocked: bool


class RulesOut(BaseModel):
    """The fund-flow rules in force at one block."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "rules_contract": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
                    "rules_version": 14,
                    "as_of_block": 1203,
                    "blocked_categories": [
                        {
                            "code": 901,
                            "name": "crypto-asset exchange",
                            "speculative": True,
                            "blocked": True,
                        }
                    ],
                    "categories": [
                        {
                            "code": 101,
                            "name": "research services",
                            "speculative": False,
                            "blocked": False,
                        }
                    ],
                }
            ]
        }
    )

    rules_contract: str
    rules_version: int = Field(
        description=(
            "Increments with every rule change. Each payout event names the version it passed."
        )
    )
    as_of_block: int
    blocked_categories: list[CategoryOut]
    categories: list[CategoryOut] = Field(
        description="Every documented category, and any other code the regulator has blocked."
    )


@router.get(
    "",
    summary="Read the blocked payee categories",
    description=(
        "Return the categories whose payouts the regulator has blocked, read from the "
        "fund-flow rules contract at one block. The contract cannot list its blocked "
        "categories, so the bridge asks it about every documented code and every code the "
        "event index has seen blocked. The documented codes are:\n\n" + describe_categories()
    ),
    responses=problem_responses(401, 403, 502, 503),
)
def read_rules(principal: RulesReader, session: SessionDep, chain: ChainDep) -> RulesOut:
    """Return the blocked categories and the rules version."""
    deployment = chain.require_deployment()
    codes = set(CATEGORIES) | _indexed_blocked_codes(session, deployment.fund_flow_rules)
    state = chain.rules.blocked_categories(deployment.fund_flow_rules, codes)
    categories = [
        CategoryOut(
            code=code,
            name=category_name(code),
            speculative=code in CATEGORIES and CATEGORIES[code].speculative,
            blocked=code in state.blocked,
        )
        for code in sorted(codes)
    ]
    return RulesOut(
        rules_contract=deployment.fund_flow_rules,
        rules_version=state.rules_version,
        as_of_block=state.block_number,
        blocked_categories=[item for item in categories if item.blocked],
        categories=[item for item in categories if item.blocked or item.code in CATEGORIES],
    )


def _indexed_blocked_codes(session: SessionDep, rules_address: str) -> set[int]:
    # Rules events have no line id, so the (contract_address, line_id, ...) index finds them.
    query = select(ChainEvent.args).where(
        ChainEvent.contract_address == rules_address,
        ChainEvent.line_id.is_(None),
        ChainEvent.event == "CategoryBlocked",
    )
    return {int(args["category"]) for args in session.scalars(query)}
