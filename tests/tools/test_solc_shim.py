"""Tests of tools/solc-js/solc.js, the solc command line that runs the WebAssembly compiler."""

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "tools" / "solc-js" / "solc.js"
# The pattern py-solc-x applies to `solc --version` (solcx/wrapper.py).
SOLCX_VERSION_PATTERN = r"(\d+\.\d+\.\d+)(?:-nightly.\d+.\d+.\d+|)(\+commit.\w+)"

LIBRARY = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;
library Doubler { function twice(uint256 x) internal pure returns (uint256) { return 2 * x; } }
"""
CONSUMER = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;
import {Doubler} from "lib/Doubler.sol";
/// @notice Doubles numbers.
contract Consumer { function run(uint256 x) external pure returns (uint256) { return Doubler.twice(x); } }
"""


def run_shim(*args: str, stdin: str | None = None, cwd: Path | None = None):
    return subprocess.run(
        ["node", str(SHIM), *args], input=stdin, capture_output=True, text=True, cwd=cwd, check=False
    )


@pytest.fixture
def sources(tmp_path: Path) -> Path:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "Doubler.sol").write_text(LIBRARY)
    (tmp_path / "Consumer.sol").write_text(CONSUMER)
    return tmp_path


def test_version_matches_solcx_pattern():
    result = run_shim("--version")

    match = re.search(SOLCX_VERSION_PATTERN, result.stdout)
    assert result.returncode == 0
    assert match is not None
    assert match.group(1) == "0.8.28"


def test_standard_json_resolves_imports_from_base_path(sources: Path):
    request = {
        "language": "Solidity",
        "sources": {"Consumer.sol": {"content": CONSUMER}},
        "settings": {"outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }

    result = run_shim("--standard-json", "--base-path", str(sources), stdin=json.dumps(request))

    output = json.loads(result.stdout)
    assert result.returncode == 0
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"]
    assert output["contracts"]["Consumer.sol"]["Consumer"]["evm"]["bytecode"]["object"]


def test_standard_json_reports_missing_import(tmp_path: Path):
    request = {"language": "Solidity", "sources": {"Consumer.sol": {"content": CONSUMER}}}

    result = run_shim("--standard-json", "--base-path", str(tmp_path), stdin=json.dumps(request))

    messages = [e["message"] for e in json.loads(result.stdout)["errors"]]
    assert any("lib/Doubler.sol" in message for message in messages)


def test_combined_json_answers_slither_invocation(sources: Path):
    fields = "abi,ast,bin,bin-runtime,srcmap,srcmap-runtime,userdoc,devdoc,hashes"

    result = run_shim(
        "lib/=lib/", "Consumer.sol", "--combined-json", fields, "--allow-paths", ".", cwd=sources
    )

    output = json.loads(result.stdout)
    consumer = output["contracts"]["Consumer.sol:Consumer"]
    assert result.returncode == 0
    assert consumer["bin-runtime"]
    assert consumer["hashes"] == {"run(uint256)": "a444f5e9"}
    assert consumer["userdoc"]["notice"] == "Doubles numbers."
    assert output["sources"]["Consumer.sol"]["AST"]["nodeType"] == "SourceUnit"
    assert output["sourceList"] == ["Consumer.sol", "lib/Doubler.sol"]


def test_combined_json_fails_on_compile_error(tmp_path: Path):
    (tmp_path / "Broken.sol").write_text("pragma solidity 0.8.28; contract Broken { uint256 x = ; }")

    result = run_shim("Broken.sol", "--combined-json", "abi", cwd=tmp_path)

    assert result.returncode == 1
    assert "ParserError" in result.stderr


def test_unknown_option_is_rejected():
    result = run_shim("--frobnicate")

    assert result.returncode == 2
    assert "unsupported option --frobnicate" in result.stderr
