"""Organisations and their API credentials.

Every function that writes commits its own transaction, so a caller never
sees a half-created organisation or a credential without its hash.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger_bridge.core.errors import (
    ConflictError,
    CredentialRevokedError,
    InvalidRequestError,
    NotFoundError,
)
from ledger_bridge.core.security import (
    IssuedCredential,
    Principal,
    Role,
    generate_credential,
    hash_secret,
)
from ledger_bridge.money import parse_address
from ledger_bridge.storage.db import begin_write
from ledger_bridge.storage.models import Credential, Organisation, RequestIdSequence, utcnow

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NewOrganisation:
    """An organisation just created, with its first credential in clear text."""

    organisation: Organisation
    credential: IssuedCredential


def create_organisation(
    session: Session, *, name: str, kind: Role, facility_address: str | None = None
) -> NewOrganisation:
    """Create an organisation with one credential of the same role, and commit.

    A bank needs the address of its facility contract, whose request id
    sequence is created here too. Other kinds must not have one.
    """
    name = _check_name(name)
    facility = _check_facility(kind, facility_address)
    begin_write(session)
    _reject_duplicates(session, name, facility)
    organisation = Organisation(name=name, kind=kind, facility_address=facility)
    session.add(organisation)
    if facility is not None:
        session.add(RequestIdSequence(facility_address=facility, next_request_id=1))
    issued = _add_credential(session, organisation)
    _commit_or_conflict(session, name)
    logger.info(
        "Created %s organisation %s (%s) with credential %s",
        kind.value,
        organisation.id,
        name,
        issued.key_id,
    )
    return NewOrganisation(organisation=organisation, credential=issued)


def issue_credential(session: Session, organisation_id: uuid.UUID) -> IssuedCredential:
    """Add another credential to an organisation, for example to replace one without downtime."""
    begin_write(session)
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFoundError("organisation", organisation_id)
    issued = _add_credential(session, organisation)
    session.commit()
    logger.info("Issued credential %s for organisation %s", issued.key_id, organisation_id)
    return issued


def rotate_credential(session: Session, key_id: str) -> IssuedCredential:
    """Replace a credential's secret, keeping its key id, and commit.

    The old secret stops working as soon as the transaction commits.
    """
    begin_write(session)
    credential = _get_credential(session, key_id)
    if credential.revoked_at is not None:
        raise CredentialRevokedError(key_id)
    issued = generate_credential()
    credential.secret_hash = hash_secret(issued.secret)
    credential.rotated_at = utcnow()
    session.commit()
    logger.info("Rotated credential %s", key_id)
    return IssuedCredential(key_id=key_id, secret=issued.secret)


def revoke_credential(session: Session, key_id: str) -> Credential:
    """Mark a credential as revoked and commit. Revoking it again changes nothing."""
    begin_write(session)
    credential = _get_credential(session, key_id)
    if credential.revoked_at is None:
        credential.revoked_at = utcnow()
        logger.info("Revoked credential %s", key_id)
    session.commit()
    return credential


def get_organisation(session: Session, organisation_id: uuid.UUID) -> Organisation:
    """Return an organisation, or raise NotFoundError."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFoundError("organisation", organisation_id)
    return organisation


def list_organisations(session: Session) -> Sequence[Organisation]:
    """Return every organisation, ordered by name."""
    return session.scalars(select(Organisation).order_by(Organisation.name)).all()


def list_credentials(session: Session, organisation_id: uuid.UUID) -> Sequence[Credential]:
    """Return an organisation's credentials, revoked ones included, oldest first."""
    get_organisation(session, organisation_id)
    query = (
        select(Credential)
        .where(Credential.organisation_id == organisation_id)
        .order_by(Credential.created_at, Credential.key_id)
    )
    return session.scalars(query).all()


def find_active_credential(session: Session, key_id: str) -> tuple[Credential, Principal] | None:
    """Return an unrevoked credential and the principal it authenticates, or None."""
    credential = session.get(Credential, key_id)
    if credential is None or credential.revoked_at is not None:
        return None
    organisation = credential.organisation
    principal = Principal(
        organisation_id=organisation.id,
        organisation_name=organisation.name,
        role=credential.role,
        key_id=credential.key_id,
        facility_address=organisation.facility_address,
    )
    return credential, principal


def _add_credential(session: Session, organisation: Organisation) -> IssuedCredential:
    issued = generate_credential()
    session.add(
        Credential(
            key_id=issued.key_id,
            organisation=organisation,
            role=organisation.kind,
            secret_hash=hash_secret(issued.secret),
        )
    )
    return issued


def _get_credential(session: Session, key_id: str) -> Credential:
    credential = session.get(Credential, key_id)
    if credential is None:
        raise NotFoundError("credential", key_id)
    return credential


def _check_name(name: str) -> str:
    stripped = name.strip()
    if not 1 <= len(stripped) <= 200:
        raise InvalidRequestError(
            "name", "must have 1 to 200 characters", "Send the organisation's name."
        )
    return stripped


def _check_facility(kind: Role, facility_address: str | None) -> str | None:
    if kind is Role.BANK and facility_address is None:
        raise InvalidRequestError(
            "facility_address",
            "is required for a bank",
            "Send the address of the facility contract deployed for this bank.",
        )
    if kind is not Role.BANK and facility_address is not None:
        raise InvalidRequestError(
            "facility_address",
            f"is only for banks, not for an organisation of kind {kind.value!r}",
            "Leave it out.",
        )
    return None if facility_address is None else parse_address(facility_address)


def _reject_duplicates(session: Session, name: str, facility: str | None) -> None:
    if session.scalar(select(Organisation.id).where(Organisation.name == name)) is not None:
        raise ConflictError("organisation", "name", name, "Choose another name.")
    if facility is None:
        return
    query = select(Organisation.id).where(Organisation.facility_address == facility)
    if session.scalar(query) is not None:
        raise ConflictError(
            "organisation",
            "facility_address",
            facility,
            "Each facility belongs to one bank; deploy a new facility for this bank.",
        )


def _commit_or_conflict(session: Session, name: str) -> None:
    """Commit, turning a unique violation from a concurrent create into ConflictError."""
    try:
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise ConflictError(
            "organisation", "name or facility_address", name, "Choose another name or facility."
        ) from error
