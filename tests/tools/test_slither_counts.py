"""tools/slither_counts.py counts what Slither reports, so a real finding shows in the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# selfdestruct callable by anyone is a high finding (suicidal); a contract that takes ether and
# can never send it is a medium one (locked-ether).
FLAWED_CONTRACT = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

contract AnyoneDestroys {
    function destroy() external {
        selfdestruct(payable(msg.sender));
    }
}

contract KeepsEther {
    receive() external payable {}
}
"""


def test_flawed_contract_is_counted(tmp_path: Path) -> None:
    contract = tmp_path / "Flawed.sol"
    contract.write_text(FLAWED_CONTRACT)
    report = tmp_path / "slither.json"

    result = subprocess.run(
        [sys.executable, "tools/slither_counts.py", "--report", str(report), str(contract)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    counts = json.loads(report.read_text())
    assert result.returncode == 1, result.stdout + result.stderr
    assert counts["slither_high"] == 1
    assert counts["slither_medium"] == 1
    assert {finding["check"] for finding in counts["findings"]} == {"suicidal", "locked-ether"}

