"""Roles, principals and API credentials.

A credential is sent as `Authorization: Bearer <key id>.<secret>`. The key id
is public and identifies the credential row. The secret is random, shown to
the client once, and stored only as a salted scrypt hash.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Kind of organisation, which decides what its credentials may do."""

    BANK = "bank"
    AUDITOR = "auditor"
    REGULATOR = "regulator"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The organisation and credential behind an authenticated request."""

    organisation_id: uuid.UUID
    organisation_name: str
    role: Role
    key_id: str
    # Set only for banks: the facility contract that contains the bank's lines.
    facility_address: str | None


KEY_ID_PREFIX = "lbk_"
KEY_ID_PATTERN = re.compile(r"lbk_[0-9a-f]{16}")
# token_urlsafe(32) yields 43 characters, so the limit only keeps huge headers away from scrypt.
MAX_SECRET_LENGTH = 256

# scrypt cost parameters. Secrets carry 256 random bits, so the hash guards a
# leaked database, not weak passwords, and the cost stays near 50 ms per check.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_SALT_BYTES = 16
SCRYPT_KEY_BYTES = 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    """A credential as shown to its owner once, right after it is created or rotated."""

    key_id: str
    secret: str

    @property
    def token(self) -> str:
        """The value to send after `Bearer `."""
        return f"{self.key_id}.{self.secret}"

    def __repr__(self) -> str:
        return f"IssuedCredential(key_id={self.key_id!r}, secret='**********')"


def generate_credential() -> IssuedCredential:
    """Create a new random key id and secret."""
    return IssuedCredential(
        key_id=KEY_ID_PREFIX + secrets.token_hex(8),
        secret=secrets.token_urlsafe(32),
    )


def split_token(token: str) -> tuple[str, str] | None:
    """Split a bearer token into key id and secret, or return None if it is malformed."""
    key_id, separator, secret = token.partition(".")
    if not separator or KEY_ID_PATTERN.fullmatch(key_id) is None:
        return None
    if not 0 < len(secret) <= MAX_SECRET_LENGTH:
        return None
    return key_id, secret


def hash_secret(secret: str) -> str:
    """Hash a secret with scrypt and a fresh salt, in the form `scrypt$N$r$p$salt$hash`."""
    salt = secrets.token_bytes(SCRYPT_SALT_BYTES)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(
        [
            "scrypt",
            str(SCRYPT_N),
            str(SCRYPT_R),
            str(SCRYPT_P),
            _b64encode(salt),
            _b64encode(digest),
        ]
    )


def verify_secret(secret: str, encoded_hash: str) -> bool:
    """Check a secret against a hash from `hash_secret`, in constant time for equal lengths."""
    try:
        scheme, n, r, p, salt, expected = encoded_hash.split("$")
        if scheme != "scrypt":
            return False
        digest = _scrypt(secret, _b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(digest, _b64decode(expected))
    except ValueError:
        return False


class SecretVerifier:
    """Secret checker that remembers recent successes, so each request does not pay for scrypt.

    The cache maps a stored hash to the SHA-256 of the secret that matched it.
    Rotating a credential changes its stored hash, so old entries never match
    again. Revocation is checked on the credential row before this is called.
    """

    def __init__(self, max_entries: int = 1024) -> None:
        self._max_entries = max_entries
        self._verified: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, secret: str, encoded_hash: str) -> bool:
        """Return whether `secret` matches `encoded_hash`."""
        fingerprint = hashlib.sha256(secret.encode()).digest()
        with self._lock:
            remembered = self._verified.get(encoded_hash)
        if remembered is not None:
            return hmac.compare_digest(remembered, fingerprint)
        if not verify_secret(secret, encoded_hash):
            return False
        self._remember(encoded_hash, fingerprint)
        return True

    def _remember(self, encoded_hash: str, fingerprint: bytes) -> None:
        with self._lock:
            self._verified[encoded_hash] = fingerprint
            self._verified.move_to_end(encoded_hash)
            while len(self._verified) > self._max_entries:
                self._verified.popitem(last=False)


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=SCRYPT_KEY_BYTES
    )


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    padding = "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(text + padding)
