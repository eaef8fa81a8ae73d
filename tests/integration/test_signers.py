"""Signing keys per bank role: from settings, from a keystore, or Anvil's keys in development."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import SecretStr

from ledger_bridge.chain.deployment import Deployment, load_deployment
from ledger_bridge.chain.signers import SignerKeySettings, SignerRole, load_signers
from ledger_bridge.core.config import Settings, development_private_keys
from ledger_bridge.core.errors import ConfigurationError

# A key made up for these tests; it holds nothing on any chain.
UNRELATED_KEY = "0x" + "5a" * 32


def development_settings() -> Settings:
    return Settings(environment="development", database_url="sqlite:///:memory:")


def test_development_uses_anvil_keys_of_deployment_accounts(deployment: Deployment) -> None:
    signers = load_signers(development_settings(), deployment, SignerKeySettings())

    assert set(signers) == set(SignerRole)
    for role, account in signers.items():
        assert account.address == deployment.accounts[role.value]


def test_key_of_other_account_is_rejected(deployment: Deployment) -> None:
    keys = SignerKeySettings(officer_key=SecretStr(UNRELATED_KEY))

    with pytest.raises(ConfigurationError, match="LEDGER_SIGNER_OFFICER_KEY"):
        load_signers(development_settings(), deployment, keys)


def test_keystore_is_decrypted(deployment_file: Path, tmp_path: Path) -> None:
    account = Account.from_key(UNRELATED_KEY)
    document = json.loads(deployment_file.read_text())
    document["accounts"]["treasury"] = account.address
    edited = tmp_path / "deployment.json"
    edited.write_text(json.dumps(document))
    keystore = tmp_path / "treasury.json"
    keystore.write_text(json.dumps(Account.encrypt(UNRELATED_KEY, "test password")))
    keys = SignerKeySettings(
        treasury_keystore=keystore, treasury_keystore_password=SecretStr("test password")
    )

    signers = load_signers(development_settings(), load_deployment(edited), keys)

    assert signers[SignerRole.TREASURY].address == account.address


def test_keystore_with_wrong_password_is_rejected(deployment: Deployment, tmp_path: Path) -> None:
    keystore = tmp_path / "operator.json"
    keystore.write_text(json.dumps(Account.encrypt(UNRELATED_KEY, "right password")))
    keys = SignerKeySettings(
        operator_keystore=keystore, operator_keystore_password=SecretStr("wrong password")
    )

    with pytest.raises(ConfigurationError, match="cannot be read or decrypted"):
        load_signers(development_settings(), deployment, keys)


def production_settings(tmp_path: Path) -> Settings:
    return Settings(
        environment="production",
        database_url="postgresql+psycopg://bridge@db.invalid/ledger",
        deployment_file=tmp_path / "production.json",
        chain_id=1,
    )


def test_production_falls_back_to_no_keys(tmp_path: Path, deployment: Deployment) -> None:
    signers = load_signers(production_settings(tmp_path), deployment, SignerKeySettings())

    assert signers == {}


def test_production_rejects_development_key(tmp_path: Path, deployment: Deployment) -> None:
    operator_key = next(
        key
        for key in development_private_keys()
        if Account.from_key(key).address == deployment.accounts["operator"]
    )
    keys = SignerKeySettings(operator_key=SecretStr("0x" + operator_key.hex()))

    with pytest.raises(ConfigurationError, match="public development keys"):
        load_signers(production_settings(tmp_path), deployment, keys)
