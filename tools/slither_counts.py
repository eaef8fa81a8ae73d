"""Count Slither's high and medium findings over the deployable contracts.

Usage: `python tools/slither_counts.py [--report FILE] CONTRACT...`

Runs Slither with slither.config.json on each contract, as `make slither` does, and prints one
line per contract with its findings by impact. With --report it writes
{"slither_high": N, "slither_medium": N, "findings": [...]} to FILE. Findings suppressed in the
source with a `slither-disable` comment are not counted; docs/static-analysis.md explains each.
Exits 1 when any high or medium finding is left, or when Slither itself fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLITHER = Path(sys.executable).parent / "slither"
COUNTED = ("High", "Medium")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contracts", nargs="+", help="Solidity files to analyse")
    parser.add_argument("--report", type=Path, help="write the counts as JSON to this file")
    arguments = parser.parse_args()
    findings: list[dict[str, str]] = []
    failed = False
    for contract in arguments.contracts:
        found = _analyse(contract)
        if found is None:
            failed = True
            continue
        findings += found
        by_impact = {impact: sum(f["impact"] == impact for f in found) for impact in COUNTED}
        print(f"slither {contract}: high={by_impact['High']} medium={by_impact['Medium']}")
    counts = {
        "slither_high": sum(f["impact"] == "High" for f in findings),
        "slither_medium": sum(f["impact"] == "Medium" for f in findings),
        "findings": findings,
    }
    if arguments.report:
        arguments.report.write_text(json.dumps(counts, indent=2) + "\n")
    return 1 if failed or counts["slither_high"] or counts["slither_medium"] else 0


def _analyse(contract: str) -> list[dict[str, str]] | None:
    """Return the high and medium findings of one contract, or None when Slither failed."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "slither.json"
        result = subprocess.run(
            [
                str(SLITHER),
                contract,
                "--config-file",
                "slither.config.json",
                "--json",
                str(output),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if not output.exists():
            print(f"slither {contract}: failed\n{result.stderr[-2000:]}", file=sys.stderr)
            return None
        report = json.loads(output.read_text())
    if not report.get("success"):
        print(f"slither {contract}: failed: {report.get('error')}", file=sys.stderr)
        return None
    detectors = report.get("results", {}).get("detectors", [])
    return [
        {"contract": contract, "check": item["check"], "impact": item["impact"]}
        for item in detectors
        if item["impact"] in COUNTED
    ]


if __name__ == "__main__":
    sys.exit(main())
