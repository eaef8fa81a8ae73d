"""FastAPI dependencies, with Annotated aliases for route signatures.

Authentication and role checks run as dependencies, so a route cannot forget
them: a request without a valid credential gets 401 and one whose role does
not fit gets 403, both before the route's body runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, Header, Request
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session

from ledger_bridge.core.config import Settings, get_settings
from ledger_bridge.core.errors import AuthenticationError, PermissionDeniedError
from ledger_bridge.core.security import Principal, Role, SecretVerifier, split_token
from ledger_bridge.storage.operations import validate_idempotency_key
from ledger_bridge.storage.organisations import find_active_credential

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """Yield a database session; closing it after the request rolls back what was not committed.

    Creating a session opens no connection, so it runs on the event loop. Closing one
    that still has a transaction runs in the threadpool, because it rolls back.
    """
    session: Session = request.app.state.session_factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            # Shielded, so that a client that disconnects cannot leave the connection checked out.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


class BearerToken(HTTPBearer):
    """Security dependency that returns the bearer token, or raises AuthenticationError.

    Subclassing HTTPBearer keeps the security scheme in the OpenAPI document.
    """

    async def __call__(self, request: Request) -> str:  # type: ignore[override]
        header = request.headers.get("Authorization")
        if not header:
            raise AuthenticationError(
                "The request has no Authorization header", credential_sent=False
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # The value is not echoed: a client that left out "Bearer " sent its secret here.
            raise AuthenticationError(
                "The Authorization header does not use the Bearer scheme", credential_sent=True
            )
        return token.strip()


bearer_token = BearerToken(
    scheme_name="credential",
    description="An API credential as `<key id>.<secret>`, issued by an administrator.",
)


def get_principal(
    request: Request, session: SessionDep, token: Annotated[str, Depends(bearer_token)]
) -> Principal:
    """Authenticate the request's credential and return who is calling."""
    parts = split_token(token)
    if parts is None:
        raise AuthenticationError(
            "The bearer token is not of the form <key id>.<secret>", credential_sent=True
        )
    key_id, secret = parts
    found = find_active_credential(session, key_id)
    verifier: SecretVerifier = request.app.state.secret_verifier
    if found is None or not verifier.verify(secret, found[0].secret_hash):
        raise AuthenticationError(
            f"Credential {key_id} is unknown or revoked, or its secret does not match",
            credential_sent=True,
        )
    # End the read transaction, so that a route which writes can start its own at once.
    session.rollback()
    return found[1]


AnyPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Return a dependency that admits only principals with one of `roles`."""
    allowed = frozenset(roles)

    # Async, like the other dependencies that do no I/O, so it runs on the event loop
    # instead of taking a trip through the threadpool.
    async def check_role(principal: AnyPrincipal) -> Principal:
        if principal.role not in allowed:
            raise PermissionDeniedError(principal.role.value, [role.value for role in allowed])
        return principal

    return check_role


BankPrincipal = Annotated[Principal, Depends(require_roles(Role.BANK))]
AuditorPrincipal = Annotated[Principal, Depends(require_roles(Role.AUDITOR))]
RegulatorPrincipal = Annotated[Principal, Depends(require_roles(Role.REGULATOR))]
AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


async def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description=(
                "Required on write requests: 1 to 128 characters of A-Z a-z 0-9 . _ : -, "
                "unique per new request. Resending a request with the same key returns "
                "the operation stored the first time."
            ),
        ),
    ] = None,
) -> str:
    """Return the validated Idempotency-Key header, or raise IdempotencyKeyError."""
    return validate_idempotency_key(idempotency_key)


IdempotencyKey = Annotated[str, Depends(get_idempotency_key)]
