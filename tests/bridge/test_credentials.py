"""Credential secrets are stored only as salted scrypt hashes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.core.config import Settings
from ledger_bridge.core.security import (
    SecretVerifier,
    generate_credential,
    hash_secret,
    split_token,
    verify_secret,
)
from ledger_bridge.storage.models import Credential

from .conftest import Member


def test_hash_has_scrypt_parameters_and_salt() -> None:
    scheme, n, r, p, salt, digest = hash_secret("secret").split("$")

    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(salt) >= 22
    assert len(digest) >= 43


def test_same_secret_gets_different_salts() -> None:
    assert hash_secret("secret") != hash_secret("secret")


def test_verify_secret() -> None:
    encoded = hash_secret("correct")

    assert verify_secret("correct", encoded) is True
    assert verify_secret("wrong", encoded) is False
    assert verify_secret("correct", "md5$abc") is False
    assert verify_secret("correct", "not a hash") is False


def test_verifier_remembers_only_matching_secret() -> None:
    verifier = SecretVerifier(max_entries=2)
    encoded = hash_secret("correct")

    assert verifier.verify("correct", encoded) is True
    assert verifier.verify("correct", encoded) is True
    assert verifier.verify("wrong", encoded) is False


def test_verifier_evicts_oldest() -> None:
    verifier = SecretVerifier(max_entries=1)
    first, second = hash_secret("one"), hash_secret("two")

    assert verifier.verify("one", first)
    assert verifier.verify("two", second)
    assert verifier.verify("one", first)


def test_generated_credential_round_trips_token() -> None:
    issued = generate_credential()

    assert split_token(issued.token) == (issued.key_id, issued.secret)
    assert issued.secret not in repr(issued)


def test_secret_not_stored_in_clear(
    bank: Member, session_factory: sessionmaker[Session], settings: Settings
) -> None:
    secret = bank.credential.secret
    with session_factory() as session:
        stored = session.scalars(select(Credential)).all()
        hashes = [credential.secret_hash for credential in stored]

    assert all(secret not in value for value in hashes)
    assert any(verify_secret(secret, value) for value in hashes)
    if settings.database_url.startswith("sqlite"):
        database_path = Path(settings.database_url.removeprefix("sqlite:///"))
        for path in database_path.parent.glob(database_path.name + "*"):
            assert secret.encode() not in path.read_bytes()
