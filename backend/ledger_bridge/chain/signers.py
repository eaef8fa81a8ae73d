"""Signing keys of the bank roles that send the bridge's transactions.

Each role's key comes from, in this order:

1. `LEDGER_SIGNER_<ROLE>_KEY`: the private key as hex;
2. `LEDGER_SIGNER_<ROLE>_KEYSTORE` with `LEDGER_SIGNER_<ROLE>_KEYSTORE_PASSWORD`:
   an encrypted Ethereum V3 keystore;
3. for the operator only, the bridge's `LEDGER_SIGNER_PRIVATE_KEY` or
   `LEDGER_SIGNER_KEYSTORE_PATH`;
4. in development only, Anvil's public development key of the account that
   the deployment file names for the role.

A role without a key has no signer, and operations that need it wait.
Keys are never logged; only the addresses are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.core.config import Settings, development_private_keys
from ledger_bridge.core.errors import ConfigurationError

logger = logging.getLogger(__name__)


class SignerRole(StrEnum):
    """A bank role whose account signs some of the bridge's transactions."""

    OPERATOR = "operator"
    OFFICER = "officer"
    SECOND_OFFICER = "second_officer"
    REGULATOR = "regulator"
    TREASURY = "treasury"


class SignerKeySettings(BaseSettings):
    """Per-role signing keys, read from LEDGER_SIGNER_<ROLE>_KEY and _KEYSTORE variables."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_SIGNER_", extra="ignore", frozen=True)

    operator_key: SecretStr | None = None
    operator_keystore: Path | None = None
    operator_keystore_password: SecretStr | None = None
    officer_key: SecretStr | None = None
    officer_keystore: Path | None = None
    officer_keystore_password: SecretStr | None = None
    second_officer_key: SecretStr | None = None
    second_officer_keystore: Path | None = None
    second_officer_keystore_password: SecretStr | None = None
    regulator_key: SecretStr | None = None
    regulator_keystore: Path | None = None
    regulator_keystore_password: SecretStr | None = None
    treasury_key: SecretStr | None = None
    treasury_keystore: Path | None = None
    treasury_keystore_password: SecretStr | None = None

    def key_of(self, role: SignerRole) -> SecretStr | None:
        """Return the raw key set for a role, if any."""
        return getattr(self, f"{role.value}_key")

    def keystore_of(self, role: SignerRole) -> tuple[Path | None, SecretStr | None]:
        """Return the keystore path and password set for a role, if any."""
        return getattr(self, f"{role.value}_keystore"), getattr(
            self, f"{role.value}_keystore_password"
        )


def load_signers(
    settings: Settings, deployment: Deployment, keys: SignerKeySettings | None = None
) -> dict[SignerRole, LocalAccount]:
    """Return the signing account of every role that has a key.

    Raises ConfigurationError for a malformed key, an unreadable keystore, a
    key whose account differs from the one the deployment file names for the
    role, or a public development key outside development.
    """
    keys = keys if keys is not None else SignerKeySettings()
    signers: dict[SignerRole, LocalAccount] = {}
    for role in SignerRole:
        account = _account_for(role, settings, deployment, keys)
        if account is None:
            logger.warning("No signing key for role %s; its operations wait", role.value)
            continue
        _check_account(role, account, settings, deployment)
        signers[role] = account
        logger.info("Role %s signs as %s", role.value, account.address)
    return signers


def _account_for(
    role: SignerRole, settings: Settings, deployment: Deployment, keys: SignerKeySettings
) -> LocalAccount | None:
    setting = f"LEDGER_SIGNER_{role.value.upper()}"
    key = keys.key_of(role)
    if key is not None:
        return _from_hex(key, f"{setting}_KEY")
    keystore, password = keys.keystore_of(role)
    if keystore is not None:
        return _from_keystore(keystore, password, f"{setting}_KEYSTORE")
    if role is SignerRole.OPERATOR and settings.signer_configured:
        return Account.from_key(settings.load_signer_key())
    if settings.environment == "development":
        return _development_account(deployment.accounts.get(role.value))
    return None


def _check_account(
    role: SignerRole, account: LocalAccount, settings: Settings, deployment: Deployment
) -> None:
    setting = f"LEDGER_SIGNER_{role.value.upper()}_KEY"
    expected = deployment.accounts.get(role.value)
    if expected is not None and expected.lower() != account.address.lower():
        raise ConfigurationError(
            setting,
            f"(or its keystore) belongs to {account.address}, but the deployment file names "
            f"{expected} as the {role.value}",
            "Set the key of the account that holds the role on chain.",
        )
    if settings.environment != "development" and bytes(account.key) in development_private_keys():
        raise ConfigurationError(
            setting,
            "(or its keystore) holds one of the public development keys that Anvil funds",
            "Outside development use a key that was generated for this bank and never published.",
        )


def _from_hex(secret: SecretStr, setting: str) -> LocalAccount:
    text = secret.get_secret_value().strip()
    digits = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigurationError(
            setting,
            "is not a private key of 64 hex digits",
            "Set the key as hex, with or without 0x.",
        )
    return Account.from_key(key)


def _from_keystore(path: Path, password: SecretStr | None, setting: str) -> LocalAccount:
    if not password:
        raise ConfigurationError(
            f"{setting}_PASSWORD", "is missing or empty", "Set the password of the keystore."
        )
    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
        key = Account.decrypt(keystore, password.get_secret_value())
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigurationError(
            setting,
            f"is {path}, which cannot be read or decrypted ({type(error).__name__})",
            "Check the path, the file's permissions and the password.",
        ) from error
    return Account.from_key(key)


def _development_account(address: str | None) -> LocalAccount | None:
    if address is None:
        return None
    key = _development_keys_by_address().get(address.lower())
    return None if key is None else Account.from_key(key)


@lru_cache(maxsize=1)
def _development_keys_by_address() -> Mapping[str, bytes]:
    return {Account.from_key(key).address.lower(): key for key in development_private_keys()}
