"""Deploy the settlement token, the fund-flow rules and one bank's credit facility.

Usage: `ape run deploy --network ethereum:local:foundry` (set APE_FOUNDRY_HOST to reach a running
Anvil). Writes the deployment file the bridge reads: chain id, genesis hash, addresses, the
deployment block and which account holds which role.

Environment:
    LEDGER_DEPLOYMENT_FILE    where to write the file (default deployments/local.json)
    LEDGER_BANK_NAME          the facility's label in the file (default demo-bank)
    LEDGER_LIQUIDITY_FEN      settlement tokens minted into the facility (default 10**14 fen)
"""

import json
import os
from pathlib import Path

from ape import accounts, chain, project

SETTLEMENT_DAY_OF_MONTH = 21
PENALTY_MARKUP_PCT = 50
# (entrustedThreshold fen, maxLimitChangeBps, limitChangeIntervalDays, cycleThreshold, reviewRequired)
DEFAULT_POLICY = (100_000_000, 2200, 90, 8, True)
DEFAULT_LIQUIDITY_FEN = 10**14
OPERATOR_FLOAT_FEN = 10**13

# The local chain's accounts are Anvil's public development accounts (mnemonic "test test ... junk").
ROLE_ACCOUNTS = ("admin", "operator", "officer", "second_officer", "regulator", "treasury")


def main() -> None:
    deployment_file = Path(os.environ.get("LEDGER_DEPLOYMENT_FILE", "deployments/local.json"))
    bank_name = os.environ.get("LEDGER_BANK_NAME", "demo-bank")
    liquidity_fen = int(os.environ.get("LEDGER_LIQUIDITY_FEN", DEFAULT_LIQUIDITY_FEN))
    signers = dict(zip(ROLE_ACCOUNTS, accounts.test_accounts, strict=False))
    admin = signers["admin"]
    first_block = chain.blocks.head.number + 1

    token = project.SettlementToken.deploy("Digital Yuan Deposit", "DYD", admin, sender=admin)
    rules = project.FundFlowRules.deploy(admin, signers["regulator"], sender=admin)
    facility = project.CreditFacility.deploy(
        token, rules, admin, SETTLEMENT_DAY_OF_MONTH, PENALTY_MARKUP_PCT, DEFAULT_POLICY, sender=admin
    )
    _grant_roles(rules, facility, signers)
    _fund(token, facility, signers, liquidity_fen)

    deployment = {
        "chain_id": chain.chain_id,
        "genesis_hash": _hex(chain.blocks[0].hash),
        "deployment_block": first_block,
        "contracts": {"SettlementToken": token.address, "FundFlowRules": rules.address},
        "facilities": [{"name": bank_name, "address": facility.address, "deployment_block": first_block}],
        "accounts": {role: account.address for role, account in signers.items()},
        "settlement_day_of_month": SETTLEMENT_DAY_OF_MONTH,
        "penalty_markup_pct": PENALTY_MARKUP_PCT,
    }
    deployment_file.parent.mkdir(parents=True, exist_ok=True)
    deployment_file.write_text(json.dumps(deployment, indent=2) + "\n")
    print(f"deployed facility {facility.address} on chain {chain.chain_id}; wrote {deployment_file}")


def _hex(value: bytes) -> str:
    text = value.hex()
    return text if text.startswith("0x") else "0x" + text


def _grant_roles(rules, facility, signers) -> None:
    admin = signers["admin"]
    rules.grantRole(rules.REGISTRAR_ROLE(), signers["operator"], sender=admin)
    facility.grantRole(facility.OPERATOR_ROLE(), signers["operator"], sender=admin)
    facility.grantRole(facility.CREDIT_OFFICER_ROLE(), signers["officer"], sender=admin)
    facility.grantRole(facility.CREDIT_OFFICER_ROLE(), signers["second_officer"], sender=admin)
    facility.grantRole(facility.TREASURY_ROLE(), signers["treasury"], sender=admin)


def _fund(token, facility, signers, liquidity_fen: int) -> None:
    admin, treasury, operator = signers["admin"], signers["treasury"], signers["operator"]
    token.mint(treasury, liquidity_fen, sender=admin)
    token.approve(facility, liquidity_fen, sender=treasury)
    # Request ids of the deployment come from the top of the range, away from the bridge's sequence.
    facility.fundLiquidity(2**255, liquidity_fen, sender=treasury)
    token.mint(operator, OPERATOR_FLOAT_FEN, sender=admin)
    token.approve(facility, 2**256 - 1, sender=operator)
