"""Settings: defaults, environment variables, production checks and the signer key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import ValidationError

from ledger_bridge.core.config import Settings, development_private_keys, get_settings
from ledger_bridge.core.errors import ConfigurationError

# Anvil's public development key of account 0; never a secret.
ANVIL_KEY_0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
# A key made up for these tests only; it controls no funds on any network.
TEST_ONLY_KEY = "0x" + "11" * 32

PRODUCTION = {
    "environment": "production",
    "database_url": "postgresql+psycopg://bridge@db.internal/ledger",
    "deployment_file": Path("deployments/production.json"),
    "chain_id": 20261,
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        "LEDGER_ENVIRONMENT",
        "LEDGER_DATABASE_URL",
        "LEDGER_CHAIN_ID",
        "LEDGER_SIGNER_PRIVATE_KEY",
        "LEDGER_SIGNER_KEYSTORE_PATH",
        "LEDGER_SIGNER_KEYSTORE_PASSWORD",
    ]:
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


def test_settings_defaults() -> None:
    settings = Settings()

    assert settings.environment == "development"
    assert settings.rpc_url == "http://127.0.0.1:8545"
    assert settings.chain_id is None
    assert settings.deployment_file == Path("deployments/local.json")
    assert settings.database_url == "sqlite:///./ledger-bridge.db"
    assert settings.confirmations == 1
    assert settings.signer_configured is False


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_CHAIN_ID", "20261")
    monkeypatch.setenv("LEDGER_CONFIRMATIONS", "12")
    monkeypatch.setenv("CHAIN_ID", "1")

    settings = Settings()

    assert settings.chain_id == 20261
    assert settings.confirmations == 12


def test_get_settings_is_cached() -> None:
    assert get_settings() is get_settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [("confirmations", 0), ("chain_id", 0), ("max_request_bytes", 10), ("rpc_url", "ftp://node")],
)
def test_settings_reject_out_of_range(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_repr_hides_signer_key_and_database_url() -> None:
    settings = Settings(
        signer_private_key=TEST_ONLY_KEY,
        database_url="postgresql://bridge:hunter2@db/ledger",
    )

    text = repr(settings) + str(settings)
    assert TEST_ONLY_KEY[2:] not in text
    assert "hunter2" not in text


def test_invalid_private_key_message_omits_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(signer_private_key="0x1234zz")

    assert "LEDGER_SIGNER_PRIVATE_KEY" in str(caught.value)
    assert "1234zz" not in str(caught.value)


def test_private_key_and_keystore_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="only one of them"):
        Settings(
            signer_private_key=TEST_ONLY_KEY,
            signer_keystore_path=tmp_path / "key.json",
            signer_keystore_password="pass",
        )


def test_keystore_requires_password(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="LEDGER_SIGNER_KEYSTORE_PASSWORD"):
        Settings(signer_keystore_path=tmp_path / "key.json")


def test_load_signer_key_from_private_key() -> None:
    settings = Settings(signer_private_key=TEST_ONLY_KEY[2:])

    assert settings.load_signer_key() == bytes.fromhex(TEST_ONLY_KEY[2:])


def _write_keystore(path: Path, key: str, password: str) -> Path:
    # PBKDF2 with few iterations keeps the test fast; real keystores use far more.
    keystore = Account.encrypt(key, password, kdf="pbkdf2", iterations=2)
    path.write_text(json.dumps(keystore))
    return path


def test_load_signer_key_from_keystore(tmp_path: Path) -> None:
    path = _write_keystore(tmp_path / "key.json", TEST_ONLY_KEY, "correct horse")
    settings = Settings(signer_keystore_path=path, signer_keystore_password="correct horse")

    assert settings.load_signer_key() == bytes.fromhex(TEST_ONLY_KEY[2:])


def test_load_signer_key_wrong_password(tmp_path: Path) -> None:
    path = _write_keystore(tmp_path / "key.json", TEST_ONLY_KEY, "correct horse")
    settings = Settings(signer_keystore_path=path, signer_keystore_password="wrong")

    with pytest.raises(ConfigurationError, match="does not decrypt"):
        settings.load_signer_key()


def test_load_signer_key_missing() -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_SIGNER_PRIVATE_KEY is missing"):
        Settings().load_signer_key()


def test_development_keys_include_anvil_account_zero() -> None:
    assert bytes.fromhex(ANVIL_KEY_0[2:]) in development_private_keys()
    assert len(development_private_keys()) == 10


def test_production_accepts_real_settings() -> None:
    settings = Settings(**PRODUCTION, signer_private_key=TEST_ONLY_KEY)

    assert settings.environment == "production"


@pytest.mark.parametrize(
    ("override", "setting"),
    [
        ({"database_url": "sqlite:///./ledger-bridge.db"}, "LEDGER_DATABASE_URL"),
        ({"chain_id": 31337}, "LEDGER_CHAIN_ID"),
        ({"chain_id": 1337}, "LEDGER_CHAIN_ID"),
        ({"deployment_file": Path("deployments/local.json")}, "LEDGER_DEPLOYMENT_FILE"),
        ({"signer_private_key": ANVIL_KEY_0}, "LEDGER_SIGNER_PRIVATE_KEY"),
    ],
    ids=["sqlite", "anvil-chain", "dev-chain", "local-deployment", "anvil-key"],
)
def test_production_rejects_development_settings(override: dict[str, object], setting: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(**{**PRODUCTION, **override})

    assert setting in str(caught.value)
    assert "In production" in str(caught.value)


def test_production_rejects_anvil_keystore(tmp_path: Path) -> None:
    path = _write_keystore(tmp_path / "key.json", ANVIL_KEY_0, "pass")
    settings = Settings(**PRODUCTION, signer_keystore_path=path, signer_keystore_password="pass")

    with pytest.raises(ConfigurationError, match="public development keys"):
        settings.load_signer_key()


def test_resolve_chain_id_prefers_setting(tmp_path: Path) -> None:
    assert Settings(chain_id=5, deployment_file=tmp_path / "missing.json").resolve_chain_id() == 5


def test_resolve_chain_id_reads_deployment_file(tmp_path: Path) -> None:
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"chain_id": 31337, "contracts": {}}))

    assert Settings(deployment_file=path).resolve_chain_id() == 31337


@pytest.mark.parametrize(
    "content", ['{"contracts": {}}', '{"chain_id": "31337"}', "[]", "not json"]
)
def test_resolve_chain_id_rejects_bad_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "local.json"
    path.write_text(content)

    with pytest.raises(ConfigurationError, match="LEDGER_"):
        Settings(deployment_file=path).resolve_chain_id()


def test_resolve_chain_id_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.json"

    with pytest.raises(ConfigurationError, match="Deploy the contracts first") as caught:
        Settings(deployment_file=path).resolve_chain_id()

    assert str(path) in str(caught.value)
