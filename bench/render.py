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
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text("\n".join(lines) + "\n")
    print(f"wrote {PAGE.relative_to(ROOT)}")


def _machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{platform.system()} {platform.machine()}, {cores} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
