"""Seed the local deployment with demo data: registered payees, open lines and some history.

Usage: `ape run demo --network ethereum:local:foundry` after `ape run deploy`. Reads and extends
the deployment file (LEDGER_DEPLOYMENT_FILE, default deployments/local.json) with a "demo" section
listing the payees and lines it created, so that `make up` can print ready-to-run requests.
"""

import json
import os
from pathlib import Path

from ape import accounts, chain, project
from eth_utils import keccak, to_checksum_address

# Category codes as the bridge documents them.
DEMO_PAYEES = (
    ("contract research organisation", 101),
    ("lab-equipment maker", 102),
    ("reagent supplier", 103),
    ("crypto-asset exchange", 901),
)
# (limit fen, rate bps, days to maturity)
DEMO_LINES = ((3_000_000_000, 435, 360), (500_000_000, 365, 180))
CRYPTO_EXCHANGE_CATEGORY = 901
ZERO_ADDRESS = "0x" + "00" * 20
# Request ids of the seed come from the top of the range, away from the bridge's sequence.
FIRST_SEED_REQUEST_ID = 2**255 + 1_000


def main() -> None:
    deployment_file = Path(os.environ.get("LEDGER_DEPLOYMENT_FILE", "deployments/local.json"))
    deployment = json.loads(deployment_file.read_text())
    signers = {role: accounts.test_accounts[index] for index, role in enumerate(deployment["accounts"])}
    facility = project.CreditFacility.at(deployment["facilities"][0]["address"])
    rules = project.FundFlowRules.at(deployment["contracts"]["FundFlowRules"])
    request_ids = iter(range(FIRST_SEED_REQUEST_ID, 2**256))

    payees = _register_payees(rules, signers)
    rules.blockCategory(CRYPTO_EXCHANGE_CATEGORY, keccak(text="speculation"), sender=signers["regulator"])
    lines = [_open_line(facility, signers, request_ids, *terms, index) for index, terms in enumerate(DEMO_LINES)]
    _add_history(facility, signers, request_ids, lines, payees)

    deployment["demo"] = {"payees": payees, "lines": lines}
    deployment_file.write_text(json.dumps(deployment, indent=2) + "\n")
    print(f"seeded {len(payees)} payees and {len(lines)} open lines with drawdowns, a payout and repayments")


def _register_payees(rules, signers) -> list[dict]:
    payees = []
    for label, category in DEMO_PAYEES:
        # Demo payees are pseudonymous addresses derived from their label, and no keys exist for them.
        address = to_checksum_address(keccak(text=f"demo payee {label}")[-20:])
        rules.registerPayee(address, category, keccak(text=f"registration file of {label}"), sender=signers["operator"])
        payees.append({"label": label, "category": category, "address": address})
    return payees


def _add_history(facility, signers, request_ids, lines, payees) -> None:
    """Give the demo lines some history: an entrusted drawdown, a locked one paid on, repayments."""
    operator = signers["operator"]
    supplier, equipment = payees[0]["address"], payees[1]["address"]
    first, second = lines[0]["line_id"], lines[1]["line_id"]

    facility.drawdown(next(request_ids), first, 250_000_000, supplier, keccak(text="invoice CRO-0001"), sender=operator)
    facility.repay(next(request_ids), first, 50_000_000, sender=operator)
    receipt = facility.drawdown(next(request_ids), second, 30_000_000, ZERO_ADDRESS, b"\x00" * 32, sender=operator)
    drawdown_id = receipt.events[0].drawdownId
    facility.payFromLocked(next(request_ids), drawdown_id, equipment, 20_000_000, keccak(text="invoice EQ-0042"),
                           sender=operator)
    facility.repayFromLocked(next(request_ids), drawdown_id, 10_000_000, sender=operator)


def _open_line(facility, signers, request_ids, limit_fen, rate_bps, days, index) -> dict:
    borrower = to_checksum_address(keccak(text=f"demo borrower {index}")[-20:])
    maturity_day = facility.today() + days
    receipt = facility.applyForLine(
        next(request_ids), borrower, keccak(text=f"application file {index}"), limit_fen, rate_bps, maturity_day,
        sender=signers["operator"],
    )
    line_id = receipt.events[0].lineId
    facility.approveLine(next(request_ids), line_id, sender=signers["officer"])
    facility.openLine(next(request_ids), line_id, sender=signers["officer"])
    return {"line_id": line_id, "borrower": borrower, "limit_fen": limit_fen, "rate_bps": rate_bps,
            "maturity_day": maturity_day, "opened_block": chain.blocks.head.number}
