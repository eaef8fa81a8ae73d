"""Exceptions raised by the bridge.

Every error the bridge raises on purpose derives from `LedgerBridgeError` and
from the built-in exception that matches its meaning, so callers can catch
either. Each class carries the HTTP status, title and problem type slug that
api/problems.py uses to render it as an RFC 9457 problem response. Messages
are built in `__init__` and name the value that failed and what to do next.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class LedgerBridgeError(Exception):
    """Root of every error that the bridge raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        """Extra HTTP headers for the problem response."""
        return {}


class ConfigurationError(LedgerBridgeError, ValueError):
    """A setting is missing, malformed or not allowed in this environment."""

    title = "Invalid configuration"
    slug = "invalid-configuration"

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        # NOTE: callers pass a description, never the value, because some
        # settings hold private keys or passwords.
        super().__init__(f"Setting {setting} {problem}. {fix}")
        self.setting = setting


class InvalidValueError(LedgerBridgeError, ValueError):
    """A request value has the wrong form. Subclasses name the kind of value."""

    status = 422
    title = "Invalid value"
    slug = "invalid-value"
    expected: ClassVar[str] = "a valid value"

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(
            f"{_describe(value)} is invalid because it {reason}. Send {self.expected}."
        )
        self.value = value
        self.reason = reason


class InvalidAmountError(InvalidValueError):
    """An amount is not a decimal string of fen within the contracts' range."""

    title = "Invalid amount"
    slug = "invalid-amount"
    expected = 'a JSON string with at most two decimals, such as "2500000.00"'


class InvalidAddressError(InvalidValueError):
    """An Ethereum address is malformed or fails its EIP-55 checksum."""

    title = "Invalid address"
    slug = "invalid-address"
    expected = 'a 20-byte hex address starting with "0x", in lowercase or EIP-55 checksum case'


class InvalidHashError(InvalidValueError):
    """A document or invoice hash is not 32 bytes of hex."""

    title = "Invalid hash"
    slug = "invalid-hash"
    expected = 'a keccak256 hash as "0x" followed by 64 hex digits'


class InvalidRequestError(LedgerBridgeError, ValueError):
    """A request is well-formed field by field, but its fields do not fit together."""

    status = 422
    title = "Invalid request"
    slug = "invalid-request"

    def __init__(self, field: str, problem: str, fix: str) -> None:
        super().__init__(f"Field {field} {problem}. {fix}")
        self.field = field


class AuthenticationError(LedgerBridgeError, PermissionError):
    """The request carries no credential, or one that is unknown, wrong or revoked."""

    status = 401
    title = "Authentication required"
    slug = "authentication-required"

    def __init__(self, reason: str, *, credential_sent: bool) -> None:
        super().__init__(
            f"{reason}. Send the header 'Authorization: Bearer <key id>.<secret>' "
            "with a credential that an administrator issued to your organisation."
        )
        self.credential_sent = credential_sent

    @property
    def headers(self) -> dict[str, str]:
        # RFC 6750 section 3 leaves out the error code when the request had no credential.
        challenge = 'Bearer realm="ledger-bridge"'
        if self.credential_sent:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


class PermissionDeniedError(LedgerBridgeError, PermissionError):
    """The credential is valid but its role may not use this endpoint."""

    status = 403
    title = "Permission denied"
    slug = "permission-denied"

    def __init__(self, role: str, allowed_roles: Iterable[str]) -> None:
        allowed = ", ".join(sorted(allowed_roles))
        super().__init__(
            f"A credential with role {role!r} may not use this endpoint, which requires "
            f"one of: {allowed}. Use a credential of an organisation with one of those roles."
        )
        self.role = role


class NotFoundError(LedgerBridgeError, LookupError):
    """A resource does not exist or belongs to another organisation."""

    status = 404
    title = "Not found"
    slug = "not-found"

    def __init__(self, resource: str, identifier: object) -> None:
        super().__init__(
            f"No {resource} {identifier} is visible to your organisation. "
            f"Check the {resource} id, and that it was created with your organisation's credential."
        )
        self.resource = resource
        self.identifier = identifier


class ConflictError(LedgerBridgeError, ValueError):
    """A create request collides with an existing resource."""

    status = 409
    title = "Conflict"
    slug = "conflict"

    def __init__(self, resource: str, field: str, value: object, fix: str) -> None:
        super().__init__(f"A {resource} with {field} {value!r} already exists. {fix}")
        self.resource = resource
        self.field = field


class CredentialRevokedError(LedgerBridgeError, PermissionError):
    """An administrator tried to change a credential that is already revoked."""

    status = 409
    title = "Credential revoked"
    slug = "credential-revoked"

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"Credential {key_id} is revoked and cannot be rotated. "
            "Issue a new credential for the organisation instead."
        )
        self.key_id = key_id


class IdempotencyKeyError(LedgerBridgeError, ValueError):
    """The Idempotency-Key header is missing or malformed."""

    status = 400
    title = "Invalid Idempotency-Key header"
    slug = "invalid-idempotency-key"

    def __init__(self, value: str | None) -> None:
        fix = (
            "Send an Idempotency-Key header of 1 to 128 characters from A-Z, a-z, 0-9 "
            "and . _ : -, unique for each new request, such as a UUID."
        )
        if value is None:
            message = f"This request requires an Idempotency-Key header. {fix}"
        else:
            message = f"Idempotency-Key {_shorten(value)!r} is malformed. {fix}"
        super().__init__(message)
        self.value = value


class IdempotencyKeyReusedError(LedgerBridgeError, ValueError):
    """An Idempotency-Key was already used for a request with a different body."""

    status = 422
    title = "Idempotency-Key reused"
    slug = "idempotency-key-reused"

    def __init__(self, key: str, operation_id: object) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for operation {operation_id} "
            "with a different method, path or body. Resend the original request unchanged "
            "to get that operation, or use a new key for a new request."
        )
        self.key = key


class InvalidStateTransitionError(LedgerBridgeError, RuntimeError):
    """An operation was asked to move to a state its current state does not lead to."""

    status = 409
    title = "Invalid operation state transition"
    slug = "invalid-state-transition"

    def __init__(self, operation_id: object, current: str, requested: str) -> None:
        super().__init__(
            f"Operation {operation_id} cannot move from state {current!r} to {requested!r}. "
            "Reload the operation and act on its current state."
        )


class RequestTooLargeError(LedgerBridgeError, ValueError):
    """The request body is larger than the configured maximum."""

    status = 413
    title = "Request body too large"
    slug = "request-too-large"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The request body is larger than the maximum of {max_bytes} bytes. "
            "Send a smaller body, or split the request into several."
        )
        self.max_bytes = max_bytes


class RateLimitExceededError(LedgerBridgeError, RuntimeError):
    """A credential, or a client without one, sent more requests than its budget per minute."""

    status = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, limit_per_minute: int, retry_after_seconds: int) -> None:
        super().__init__(
            f"This credential sent more than {limit_per_minute} requests in the last minute. "
            f"Wait {retry_after_seconds} seconds (the Retry-After header) before sending more, "
            "or spread the requests out."
        )
        self.limit_per_minute = limit_per_minute
        self.retry_after_seconds = retry_after_seconds

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class JsonTooDeepError(LedgerBridgeError, ValueError):
    """The request body nests JSON arrays or objects deeper than the parser is allowed to go."""

    status = 400
    title = "Malformed JSON"
    slug = "malformed-json"

    def __init__(self, max_depth: int) -> None:
        super().__init__(
            f"The request body nests JSON arrays or objects more than {max_depth} levels deep. "
            "Send the fields the endpoint documents, which need far fewer levels."
        )
        self.max_depth = max_depth


class UnsupportedMediaTypeError(LedgerBridgeError, ValueError):
    """The request body is not declared as JSON."""

    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"

    def __init__(self, content_type: str | None) -> None:
        declared = "no Content-Type" if content_type is None else f"Content-Type {content_type!r}"
        super().__init__(
            f"The request body has {declared}. Send the body as JSON with the header "
            "'Content-Type: application/json'."
        )


def _describe(value: object) -> str:
    if isinstance(value, str):
        return f"Value {_shorten(value)!r}"
    return f"Value {_shorten(repr(value))} of JSON type {_json_type(value)}"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _shorten(text: str, limit: int = 80) -> str:
    """Cut user input that is echoed in a message, so a huge value cannot flood logs."""
    if len(text) <= limit:
        return text
    return text[:limit] + "..."
