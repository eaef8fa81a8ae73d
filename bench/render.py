"""Write docs/benchmarks.md from the measured results in bench/.

Usage: `python bench/render.py` after `make gas` (bench/gas.json). Every figure on the page comes
from a file this repository's scripts wrote; the anchors are published figures of other systems.
"""

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GAS_FILE = ROOT / "bench" / "gas.json"
PAGE = ROOT / "docs" / "benchmarks.md"
GOAL_GAS = 70_000

OPERATIONS = (
    ("open_line", "open a line (after application and approval)"),
    ("drawdown_entrusted", "drawdown, entrusted payment to a registered payee"),
    ("drawdown_self_directed", "drawdown into the borrower's locked balance"),
    ("payout_from_locked", "payout from a locked balance"),
    ("repay", "repayment of principal"),
    ("payoff", "payoff"),
    ("settle", "repay the interest settled that day"),
    ("limit_change", "limit change by one officer"),
    ("renewal", "renewal with a new rate (eight months since the last touch)"),
    ("payee_registration", "payee registration"),
)
ANCHORS = (
    ("Compound III borrow", "140,549"),
    ("Aave v3 borrow", "about 270,000"),
    ("Aave v3 repay", "about 200,000"),
    ("OpenZeppelin ERC-20 transfer to an existing holder", "about 42,000"),
)

# The entrusted drawdown's gas by part, from Anvil's callTracer on the transaction that
# scripts/measure_gas.py sends (115,413 gas in the run measured on 2026-12-04).
GOAL_ANALYSIS = (
    "## Where the drawdown's gas goes, and what remains",
    "",
    "A call trace (`debug_traceTransaction` with `callTracer`) of the measured entrusted drawdown",
    "splits its 115,413 gas into: 21,000 transaction base and about 2,400 of calldata; 2,735 for the",
    "token `balanceOf` that computes free liquidity; 7,559 for `FundFlowRules.checkPayout`; 11,086 for",
    "the token transfer to the payee; about 5,200 for first access to the token and rules contracts;",
    "and about 65,000 inside the facility. Of the facility's share, storage accounts for an estimated",
    "38,000 (role check, request-id word, three line slots read and written, policy, counters) and",
    "events for about 6,000; the rest is execution of the lazy accrual step and the field-by-field",
    "copies of the line's accrual state between storage and memory.",
    "",
    "The goal of 70,000 for drawdown and repayment is not met. The locked total already shares the",
    "counters' slot, so a self-directed drawdown touches one slot fewer. The largest remaining savings are",
    "in writing the line's three slots as whole words instead of field by field, and in skipping the",
    "accrual step when the line was touched the same day; the fund-flow check and the token transfer",
    "(about 24,000 together) are inherent to paying a checked payee.",
)

OTHER_PAGES = (
    "## Other measurements",
    "",
    "- [History queries on a million events](benchmarks/history-queries.md), SQLite and PostgreSQL.",
    "- [Indexer backfill and visibility on Anvil](benchmarks/indexer.md).",
    "- [Bridge throughput and latency against raw sends](benchmarks/bridge.md).",
)


def main() -> None:
    gas = json.loads(GAS_FILE.read_text())
    lines = [
        "# Benchmarks",
        "",
        f"Measured on {datetime.now(UTC):%Y-%m-%d} on {_machine()}.",
        "",
        "## Gas",
        "",
        "`make gas` runs `scripts/measure_gas.py` on Anvil: each figure is the gas of the whole",
        "transaction (21,000 base included) on a warm line, meaning that the line, the payee's token",
        f"balance and the request-id word were written before. Goal for drawdown and repay: at most {GOAL_GAS:,}.",
        "",
        "| operation | gas |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {gas[key]:,} |" for key, label in OPERATIONS if key in gas]
    lines += ["", "Anchors, whole transaction, as published for those systems:", "", "| anchor | gas |", "|---|---:|"]
    lines += [f"| {label} | {figure} |" for label, figure in ANCHORS]
    lines += ["", *GOAL_ANALYSIS, "", *OTHER_PAGES]
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text("\n".join(lines) + "\n")
    print(f"wrote {PAGE.relative_to(ROOT)}")


def _machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{platform.system()} {platform.machine()}, {cores} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
