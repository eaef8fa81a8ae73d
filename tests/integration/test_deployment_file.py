"""Loading and validating the deployment file that scripts/deploy.py writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ledger_bridge.chain.contracts import CONTRACT_NAMES, load_abi
from ledger_bridge.chain.deployment import load_deployment, verify_chain
from ledger_bridge.chain.errors import ChainMismatchError
from ledger_bridge.core.errors import ConfigurationError

from .conftest import REPOSITORY


def test_deployed_file_loads_and_matches_node(deployment_file: Path, w3: Any) -> None:
    deployment = load_deployment(deployment_file)

    verify_chain(deployment, w3)
    assert deployment.chain_id == 31337
    assert len(deployment.facilities) == 1
    assert deployment.first_block == deployment.deployment_block
    assert set(deployment.accounts) >= {"operator", "officer", "regulator", "treasury"}


def test_verify_chain_rejects_other_genesis(deployment_file: Path, w3: Any, tmp_path: Path) -> None:
    document = json.loads(deployment_file.read_text())
    document["genesis_hash"] = "0x" + "ab" * 32
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))

    with pytest.raises(ChainMismatchError, match="genesis block hash"):
        verify_chain(load_deployment(other), w3)


BROKEN_FIELDS = [
    pytest.param("chain_id", "31337", "'chain_id'", id="chain-id-as-string"),
    pytest.param("genesis_hash", "0x1234", "'genesis_hash'", id="short-genesis-hash"),
    pytest.param("facilities", [], "'facilities'", id="no-facilities"),
    pytest.param(
        "facilities",
        [{"name": "bank", "address": "0x12", "deployment_block": 1}],
        "'facilities[0].address'",
        id="short-facility-address",
    ),
    pytest.param(
        "contracts",
        {"SettlementToken": "0x" + "11" * 20},
        "'contracts.FundFlowRules'",
        id="missing-rules-address",
    ),
]


@pytest.mark.parametrize(("field", "value", "named"), BROKEN_FIELDS)
def test_load_deployment_names_invalid_field(
    deployment_file: Path, tmp_path: Path, field: str, value: object, named: str
) -> None:
    document = json.loads(deployment_file.read_text())
    document[field] = value
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))

    with pytest.raises(ConfigurationError) as raised:
        load_deployment(broken)

    assert named in str(raised.value)
    assert "LEDGER_DEPLOYMENT_FILE" in str(raised.value)


def test_load_deployment_reports_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read as JSON"):
        load_deployment(tmp_path / "absent.json")


def test_shipped_abis_match_build(deployment_file: Path) -> None:
    # The deployment fixture ran `ape run deploy`, which compiled the contracts first.
    build = json.loads((REPOSITORY / ".build" / "__local__.json").read_text())["contractTypes"]

    for name in CONTRACT_NAMES:
        shipped = list(load_abi(name))
        assert shipped == build[name]["abi"], (
            f"chain/abi/{name}.json differs from the compiled contract; "
            "run `python scripts/export_abis.py` and commit the result"
        )
