"""Settings of the bridge, read from environment variables prefixed with LEDGER_."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger_bridge.core.errors import ConfigurationError

# Anvil and Hardhat derive their funded development accounts from this public mnemonic.
DEVELOPMENT_MNEMONIC = "test test test test test test test test test test test junk"
DEVELOPMENT_ACCOUNT_COUNT = 10
# Chain ids that Anvil, Hardhat, Ganache and geth --dev use for local chains.
DEVELOPMENT_CHAIN_IDS = frozenset({1337, 31337})
DEFAULT_DEPLOYMENT_FILE = Path("deployments/local.json")

Environment = Literal["development", "production"]


class Settings(BaseSettings):
    """Configuration of one bridge process.

    In production the settings that only make sense for a local chain (SQLite,
    Anvil's public keys, local chain ids, the local deployment file) are
    rejected when the settings are loaded.
    """

    # hide_input_in_errors keeps private keys and passwords out of validation messages.
    model_config = SettingsConfigDict(
        env_prefix="LEDGER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    environment: Environment = "development"
    rpc_url: str = Field(
        "http://127.0.0.1:8545",
        description="JSON-RPC endpoint of the EVM node (http, https, ws or wss).",
    )
    chain_id: int | None = Field(
        None, gt=0, description="Chain id, read from the deployment file when unset."
    )
    deployment_file: Path = Field(
        DEFAULT_DEPLOYMENT_FILE, description="JSON file with the deployed contract addresses."
    )
    # repr=False because the URL may contain a database password.
    database_url: str = Field("sqlite:///./ledger-bridge.db", repr=False)
    migrate_on_start: bool = Field(
        True, description="Upgrade the database schema to the latest revision when the app starts."
    )
    confirmations: int = Field(
        1,
        ge=1,
        le=1000,
        description="Blocks, counting the receipt's block, before an operation is confirmed.",
    )
    chain_enabled: bool = Field(
        True,
        description=(
            "Connect to the chain at start-up and run the transaction worker and the event "
            "indexer. Turn off only to run the HTTP layer without a node, as some tests do."
        ),
    )
    rpc_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Time limit for each JSON-RPC request, in seconds."
    )
    worker_enabled: bool = Field(
        True, description="Run the worker that signs and sends accepted operations."
    )
    worker_poll_interval_ms: int = Field(
        200,
        ge=10,
        le=60_000,
        description="Time between the worker's passes over the operations, in milliseconds.",
    )
    worker_max_pending: int = Field(
        64,
        ge=1,
        le=1024,
        description="Transactions of one signer sent and not yet confirmed, at most.",
    )
    worker_lease_seconds: float = Field(
        15.0,
        ge=1,
        le=3600,
        description=(
            "How long a replica's lease on a signer lasts without renewal, in seconds. Another "
            "replica takes the signer over only after it has expired."
        ),
    )
    worker_lease_renewal_seconds: float = Field(
        3.0,
        gt=0,
        le=1200,
        description=(
            "Time between renewals of a held signer lease, in seconds; at most a third of "
            "LEDGER_WORKER_LEASE_SECONDS."
        ),
    )
    indexer_enabled: bool = Field(
        True, description="Run the indexer that stores the contracts' events in the database."
    )
    indexer_poll_interval_ms: int = Field(
        200,
        ge=10,
        le=60_000,
        description=(
            "Time between the indexer's polls once it has caught up, in milliseconds. A mined "
            "block's events become queryable within about this time plus one pass."
        ),
    )
    indexer_block_range: int = Field(
        2000, ge=1, le=100_000, description="Blocks requested in one eth_getLogs call, at most."
    )
    indexer_max_reorg_depth: int = Field(
        128,
        ge=1,
        le=100_000,
        description="Blocks the indexer searches back for the fork point after a reorganisation.",
    )
    indexer_token_transfers: bool = Field(
        False, description="Also store the settlement token's Transfer events."
    )
    signer_private_key: SecretStr | None = Field(
        None, description="Hex private key of the account that signs transactions."
    )
    signer_keystore_path: Path | None = Field(
        None, description="Encrypted JSON keystore of the signer, as an alternative to the raw key."
    )
    signer_keystore_password: SecretStr | None = None
    max_request_bytes: int = Field(
        65_536,
        ge=1024,
        le=67_108_864,
        description="Largest request body accepted, in bytes. Larger bodies get 413.",
    )
    rate_limit_per_minute: int = Field(
        6000,
        ge=1,
        le=1_000_000,
        description=(
            "Requests one credential may send per minute, failed ones included, before it "
            "gets 429. Counted in this process only, so each replica has its own budget."
        ),
    )
    readiness_timeout_ms: int = Field(
        2000, ge=1, le=60_000, description="Time limit for each readiness check, in milliseconds."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"

    @field_validator("rpc_url")
    @classmethod
    def _check_rpc_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https", "ws", "wss"} or not parts.netloc:
            raise ConfigurationError(
                "LEDGER_RPC_URL",
                f"is {value!r}, which is not an http, https, ws or wss URL",
                "Set it to the node's JSON-RPC URL, such as http://127.0.0.1:8545.",
            )
        return value

    @field_validator("signer_private_key")
    @classmethod
    def _check_private_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _private_key_bytes(value)
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> Self:
        _check_signer_sources(self)
        _check_lease_timing(self)
        if self.environment == "production":
            _reject_development_settings(self)
        return self

    @property
    def signer_configured(self) -> bool:
        """Whether a private key or a keystore is set."""
        return self.signer_private_key is not None or self.signer_keystore_path is not None

    def load_signer_key(self) -> bytes:
        """Return the signer's 32-byte private key, decrypting the keystore if one is set.

        Raises ConfigurationError when no signer is set, the keystore cannot be
        read or decrypted, or a development key is used in production.
        """
        if self.signer_private_key is not None:
            return _private_key_bytes(self.signer_private_key)
        if self.signer_keystore_path is None:
            raise ConfigurationError(
                "LEDGER_SIGNER_PRIVATE_KEY",
                "is missing and so is LEDGER_SIGNER_KEYSTORE_PATH",
                "Set one of them to the account that signs the bridge's transactions.",
            )
        key = _decrypt_keystore(self.signer_keystore_path, self.signer_keystore_password)
        if self.environment == "production" and key in development_private_keys():
            raise _development_key_error("LEDGER_SIGNER_KEYSTORE_PATH")
        return key

    def resolve_chain_id(self) -> int:
        """Return `chain_id`, or the integer `chain_id` field of the deployment file."""
        if self.chain_id is not None:
            return self.chain_id
        deployment = _read_deployment_file(self.deployment_file)
        chain_id = deployment.get("chain_id")
        if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
            raise ConfigurationError(
                "LEDGER_CHAIN_ID",
                f"is unset and {self.deployment_file} has no positive integer field 'chain_id'",
                "Set LEDGER_CHAIN_ID, or deploy the contracts again to rewrite the file.",
            )
        return chain_id


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Load the settings from the environment once per process.

    Routes receive it through a FastAPI dependency, so tests replace it with
    `app.dependency_overrides[get_settings]` or by passing settings to create_app.
    """
    return Settings()


@lru_cache(maxsize=1)
def development_private_keys() -> frozenset[bytes]:
    """Return the private keys of the accounts that Anvil funds by default."""
    seed = seed_from_mnemonic(DEVELOPMENT_MNEMONIC, passphrase="")
    paths = (f"m/44'/60'/0'/0/{index}" for index in range(DEVELOPMENT_ACCOUNT_COUNT))
    return frozenset(key_from_seed(seed, path) for path in paths)


def _private_key_bytes(secret: SecretStr) -> bytes:
    text = secret.get_secret_value().strip()
    digits = text[2:] if text.startswith(("0x", "0X")) else text
    try:
        key = bytes.fromhex(digits)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigurationError(
            "LEDGER_SIGNER_PRIVATE_KEY",
            "is not a private key of 64 hex digits",
            "Set it to the key as hex, with or without a 0x prefix.",
        )
    return key


def _check_signer_sources(settings: Settings) -> None:
    if settings.signer_private_key is not None and settings.signer_keystore_path is not None:
        raise ConfigurationError(
            "LEDGER_SIGNER_PRIVATE_KEY",
            "is set together with LEDGER_SIGNER_KEYSTORE_PATH",
            "Set only one of them, so it is clear which account signs.",
        )
    if settings.signer_keystore_path is not None and not settings.signer_keystore_password:
        raise ConfigurationError(
            "LEDGER_SIGNER_KEYSTORE_PASSWORD",
            "is missing or empty while LEDGER_SIGNER_KEYSTORE_PATH is set",
            "Set it to the password that decrypts the keystore.",
        )


def _check_lease_timing(settings: Settings) -> None:
    # Three renewals fit in one lease, so a holder that misses two still keeps the signer.
    if settings.worker_lease_renewal_seconds * 3 > settings.worker_lease_seconds:
        raise ConfigurationError(
            "LEDGER_WORKER_LEASE_RENEWAL_SECONDS",
            f"is {settings.worker_lease_renewal_seconds}, more than a third of "
            f"LEDGER_WORKER_LEASE_SECONDS ({settings.worker_lease_seconds})",
            "Renew at most every third of the lease, for example 3 s for a 15 s lease.",
        )


def _reject_development_settings(settings: Settings) -> None:
    if settings.database_url.startswith("sqlite"):
        raise ConfigurationError(
            "LEDGER_DATABASE_URL",
            "points to SQLite, which is for development only",
            "In production set it to a PostgreSQL URL, such as postgresql+psycopg://...",
        )
    if settings.chain_id in DEVELOPMENT_CHAIN_IDS:
        raise ConfigurationError(
            "LEDGER_CHAIN_ID",
            f"is {settings.chain_id}, the id of a local development chain",
            "In production set it to the id of the network the contracts are deployed on.",
        )
    if settings.deployment_file == DEFAULT_DEPLOYMENT_FILE:
        raise ConfigurationError(
            "LEDGER_DEPLOYMENT_FILE",
            f"is the local development file {DEFAULT_DEPLOYMENT_FILE}",
            "In production set it to the deployment file of the production network.",
        )
    key = settings.signer_private_key
    if key is not None and _private_key_bytes(key) in development_private_keys():
        raise _development_key_error("LEDGER_SIGNER_PRIVATE_KEY")


def _development_key_error(setting: str) -> ConfigurationError:
    return ConfigurationError(
        setting,
        "holds one of the public development keys that Anvil funds",
        "In production use a key that was generated for this bridge and never published.",
    )


def _decrypt_keystore(path: Path, password: SecretStr | None) -> bytes:
    try:
        keystore = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            "LEDGER_SIGNER_KEYSTORE_PATH",
            f"is {path}, which cannot be read as a JSON keystore ({type(error).__name__})",
            "Check the path and the file's permissions.",
        ) from error
    secret = "" if password is None else password.get_secret_value()
    try:
        return bytes(Account.decrypt(keystore, secret))
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigurationError(
            "LEDGER_SIGNER_KEYSTORE_PASSWORD",
            f"does not decrypt the keystore {path}",
            "Check the password, and that the file is an Ethereum V3 keystore.",
        ) from error


def _read_deployment_file(path: Path) -> dict[str, object]:
    try:
        deployment = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            "LEDGER_DEPLOYMENT_FILE",
            f"is {path}, which cannot be read as JSON ({type(error).__name__})",
            "Deploy the contracts first, or point the setting at the network's deployment file.",
        ) from error
    if not isinstance(deployment, dict):
        raise ConfigurationError(
            "LEDGER_DEPLOYMENT_FILE",
            f"is {path}, which does not contain a JSON object",
            "Deploy the contracts again to rewrite the file.",
        )
    return deployment
