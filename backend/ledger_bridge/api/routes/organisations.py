"""Administration of organisations and their credentials."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from ledger_bridge.api.deps import AdminPrincipal, SessionDep
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.api.schemas import (
    CredentialOut,
    IssuedCredentialOut,
    OrganisationCreate,
    OrganisationCreated,
    OrganisationOut,
)
from ledger_bridge.storage import organisations as store

router = APIRouter(prefix="/v1", tags=["admin"])

# Responses that carry a secret must not be kept by caches or proxies.
_NO_STORE = {"Cache-Control": "no-store"}


@router.post(
    "/organisations",
    status_code=status.HTTP_201_CREATED,
    summary="Create an organisation and its first credential",
    responses=problem_responses(401, 403, 409, 422),
)
def create_organisation(
    body: OrganisationCreate, response: Response, _admin: AdminPrincipal, session: SessionDep
) -> OrganisationCreated:
    """Create the organisation. The credential's secret is in this response only."""
    created = store.create_organisation(
        session, name=body.name, kind=body.kind, facility_address=body.facility_address
    )
    response.headers.update(_NO_STORE)
    response.headers["Location"] = f"/v1/organisations/{created.organisation.id}"
    return OrganisationCreated.build(created.organisation, created.credential)


@router.get(
    "/organisations",
    summary="List organisations",
    responses=problem_responses(401, 403),
)
def list_organisations(_admin: AdminPrincipal, session: SessionDep) -> list[OrganisationOut]:
    return [OrganisationOut.model_validate(item) for item in store.list_organisations(session)]


@router.get(
    "/organisations/{organisation_id}",
    summary="Read an organisation",
    responses=problem_responses(401, 403, 404, 422),
)
def read_organisation(
    organisation_id: uuid.UUID, _admin: AdminPrincipal, session: SessionDep
) -> OrganisationOut:
    return OrganisationOut.model_validate(store.get_organisation(session, organisation_id))


@router.get(
    "/organisations/{organisation_id}/credentials",
    summary="List an organisation's credentials, without secrets",
    responses=problem_responses(401, 403, 404, 422),
)
def list_credentials(
    organisation_id: uuid.UUID, _admin: AdminPrincipal, session: SessionDep
) -> list[CredentialOut]:
    credentials = store.list_credentials(session, organisation_id)
    return [CredentialOut.from_credential(item) for item in credentials]


@router.post(
    "/organisations/{organisation_id}/credentials",
    status_code=status.HTTP_201_CREATED,
    summary="Issue another credential for an organisation",
    responses=problem_responses(401, 403, 404, 422),
)
def issue_credential(
    organisation_id: uuid.UUID, response: Response, _admin: AdminPrincipal, session: SessionDep
) -> IssuedCredentialOut:
    """Issue a credential. Its secret is in this response only."""
    issued = store.issue_credential(session, organisation_id)
    response.headers.update(_NO_STORE)
    return IssuedCredentialOut.from_issued(issued)


@router.post(
    "/credentials/{key_id}/rotate",
    summary="Replace a credential's secret",
    responses=problem_responses(401, 403, 404, 409),
)
def rotate_credential(
    key_id: str, response: Response, _admin: AdminPrincipal, session: SessionDep
) -> IssuedCredentialOut:
    """Issue a new secret for the key id. The old secret stops working at once."""
    issued = store.rotate_credential(session, key_id)
    response.headers.update(_NO_STORE)
    return IssuedCredentialOut.from_issued(issued)


@router.post(
    "/credentials/{key_id}/revoke",
    summary="Revoke a credential",
    responses=problem_responses(401, 403, 404),
)
def revoke_credential(key_id: str, _admin: AdminPrincipal, session: SessionDep) -> CredentialOut:
    """Revoke the credential, so that requests with it get 401 from now on."""
    return CredentialOut.from_credential(store.revoke_credential(session, key_id))
