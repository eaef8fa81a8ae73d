"""Copy the contracts' ABIs from Ape's build output into the bridge package.

Usage: `ape compile` first, then `python scripts/export_abis.py [BUILD_FILE]`.
BUILD_FILE defaults to .build/__local__.json. The bridge reads the copies in
backend/ledger_bridge/chain/abi/, which are committed, so it needs neither Ape
nor the compiler at run time. Run this again after every contract change.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_BUILD_FILE = REPOSITORY / ".build" / "__local__.json"
ABI_DIR = REPOSITORY / "backend" / "ledger_bridge" / "chain" / "abi"
CONTRACT_NAMES = ("CreditFacility", "FundFlowRules", "SettlementToken")


def export_abis(build_file: Path, target_dir: Path) -> list[Path]:
    """Write `<Name>.json` with the ABI of each contract in CONTRACT_NAMES; return the paths."""
    contract_types = json.loads(build_file.read_text(encoding="utf-8"))["contractTypes"]
    missing = [name for name in CONTRACT_NAMES if name not in contract_types]
    if missing:
        raise SystemExit(
            f"{build_file} has no contract types {', '.join(missing)}. Run `ape compile` first."
        )
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACT_NAMES:
        path = target_dir / f"{name}.json"
        abi = contract_types[name]["abi"]
        path.write_text(json.dumps(abi, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main() -> None:
    build_file = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_BUILD_FILE
    if not build_file.is_file():
        raise SystemExit(f"Build file {build_file} not found. Run `ape compile` first.")
    for path in export_abis(build_file, ABI_DIR):
        print(f"wrote {path.relative_to(REPOSITORY)}")


if __name__ == "__main__":
    main()
