"""RFC 9457 problem details for every error response.

Request validation errors, LedgerBridgeError, HTTPException and unexpected
exceptions all leave the app as `application/problem+json` with type, title,
status, detail and instance, plus `errors: [{field, message}]` for
validation errors.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger_bridge.core.errors import LedgerBridgeError

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:ledger-bridge:problem:"
_SCHEMA_REF = "#/components/schemas/{model}"
_FASTAPI_BODY_PARSE_DETAIL = "There was an error parsing the body"


class FieldError(BaseModel):
    """One invalid field of a request."""

    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None


class ProblemResponse(JSONResponse):
    """A JSON response with the problem details media type."""

    media_type = PROBLEM_MEDIA_TYPE


def problem_response(
    status: int,
    *,
    detail: str,
    instance: str,
    title: str | None = None,
    slug: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> ProblemResponse:
    """Build a problem response. Without a slug the type is "about:blank", as RFC 9457 specifies."""
    problem = Problem(
        type="about:blank" if slug is None else PROBLEM_TYPE_PREFIX + slug,
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=instance,
        errors=None if errors is None else list(errors),
    )
    return ProblemResponse(
        problem.model_dump(exclude_none=True), status_code=status, headers=dict(headers or {})
    )


def error_response(error: LedgerBridgeError, instance: str) -> ProblemResponse:
    """Render a LedgerBridgeError with the status, title and type its class declares."""
    return problem_response(
        error.status,
        title=error.title,
        slug=error.slug,
        detail=error.message,
        instance=instance,
        headers=error.headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Describe problem responses for a route's OpenAPI `responses` argument."""
    return {status: _problem_response_doc(HTTPStatus(status).phrase) for status in statuses}


def register_problem_handlers(app: FastAPI) -> None:
    """Install the exception handlers that turn every error into a problem response.

    The OpenAPI document gets the Problem schema, and each route's 422
    response is described as a problem instead of FastAPI's default body.
    """
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(LedgerBridgeError, _handle_bridge_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(Exception, _handle_unexpected_error)
    _document_problems(app)


def _problem_response_doc(description: str) -> dict[str, Any]:
    schema = {"$ref": _SCHEMA_REF.format(model="Problem")}
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}}}


def _document_problems(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        problem = Problem.model_json_schema(ref_template=_SCHEMA_REF)
        schemas.update(problem.pop("$defs", {}))
        schemas["Problem"] = problem
        _replace_default_validation_responses(document)
        _add_common_problem_responses(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _replace_default_validation_responses(document: dict[str, Any]) -> None:
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            if "422" in responses and "application/json" in responses["422"].get("content", {}):
                responses["422"] = _problem_response_doc("Invalid request")
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _add_common_problem_responses(document: dict[str, Any]) -> None:
    """Document on every operation the problems that middleware and dependencies return.

    Routes may describe a status more precisely; this only fills in what they left out.
    """
    for path, path_item in document.get("paths", {}).items():
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = _common_problem_statuses(path, operation)
            for status in statuses:
                operation["responses"].setdefault(
                    str(status), _problem_response_doc(HTTPStatus(status).phrase)
                )
            if 429 in statuses:
                operation["responses"]["429"]["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before the credential's next request.",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    }
                }


def _common_problem_statuses(path: str, operation: Mapping[str, Any]) -> list[int]:
    # Imported here because the middleware module imports this one.
    from ledger_bridge.api.middleware import RATE_LIMIT_EXEMPT_PATHS

    statuses = []
    if operation.get("security"):
        statuses.append(401)
    if "requestBody" in operation:
        # RequestBodyMiddleware: malformed or too deeply nested JSON, too large, not JSON.
        statuses += [400, 413, 415]
    if "requestBody" in operation or operation.get("parameters"):
        statuses.append(422)
    if path not in RATE_LIMIT_EXEMPT_PATHS:
        statuses.append(429)
    return statuses


async def _handle_bridge_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, LedgerBridgeError)
    if error.status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, error.message)
    return error_response(error, request.url.path)


async def _handle_validation_error(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, RequestValidationError)
    details = list(error.errors())
    json_error = next((item for item in details if item.get("type") == "json_invalid"), None)
    if json_error is not None:
        return _malformed_json_problem(request, json_error)
    field_errors = [_field_error(item) for item in details]
    return problem_response(
        422,
        title="Invalid request",
        slug="validation-error",
        detail=_validation_summary(field_errors),
        instance=request.url.path,
        errors=field_errors,
    )


async def _handle_http_exception(request: Request, error: Exception) -> ProblemResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400 and error.detail == _FASTAPI_BODY_PARSE_DETAIL:
        # FastAPI 0.165 raises this when json.loads fails with something other than a
        # JSONDecodeError, such as the ValueError for an integer too long to convert.
        return _malformed_json_problem(request, {"ctx": {"error": "the JSON cannot be parsed"}})
    return problem_response(
        error.status_code,
        detail=_http_detail(request, error),
        instance=request.url.path,
        headers=error.headers,
    )


async def _handle_unexpected_error(request: Request, error: Exception) -> ProblemResponse:
    logger.exception(
        "Unexpected %s while handling %s %s",
        type(error).__name__,
        request.method,
        request.url.path,
        exc_info=error,
    )
    return problem_response(
        500,
        slug="internal-error",
        detail=(
            "The bridge failed to handle the request because of an internal error. "
            "Retry later, and if the error persists, report the time and path to the operators."
        ),
        instance=request.url.path,
    )


def _malformed_json_problem(request: Request, item: Mapping[str, Any]) -> ProblemResponse:
    reason = item.get("ctx", {}).get("error", "invalid JSON")
    location = item.get("loc")
    where = f", character {location[-1]}" if location else ""
    return problem_response(
        400,
        title="Malformed JSON",
        slug="malformed-json",
        detail=(
            f"The request body is not valid JSON ({reason}{where}). "
            "Send one JSON object with the header 'Content-Type: application/json'."
        ),
        instance=request.url.path,
    )


def _field_error(item: Mapping[str, Any]) -> FieldError:
    return FieldError(field=_field_path(item.get("loc", ())), message=_field_message(item))


def _field_path(location: Iterable[Any]) -> str:
    """Render a location such as ("body", "payments", 0, "amount") as "body.payments[0].amount"."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "request"


def _field_message(item: Mapping[str, Any]) -> str:
    error_type = item.get("type")
    if error_type == "missing":
        return "This field is required. Add it to the request."
    if error_type == "extra_forbidden":
        return "This field is not allowed here. Remove it, or check its spelling."
    if error_type == "value_error" and "error" in item.get("ctx", {}):
        # Pydantic prefixes the message of a validator's ValueError with "Value error, ".
        return str(item["ctx"]["error"])
    return str(item.get("msg", "Invalid value."))


def _validation_summary(field_errors: Sequence[FieldError]) -> str:
    if len(field_errors) == 1:
        only = field_errors[0]
        return f"Field {only.field} is invalid. {only.message}"
    return (
        f"{len(field_errors)} fields of the request are invalid. "
        "Each entry of 'errors' names a field and how to fix it."
    )


def _http_detail(request: Request, error: StarletteHTTPException) -> str:
    if error.status_code == 404 and error.detail == HTTPStatus.NOT_FOUND.phrase:
        return f"No endpoint matches {request.url.path}. The API's endpoints are listed at /docs."
    if error.status_code == 405:
        return (
            f"Method {request.method} is not allowed on {request.url.path}. "
            "The Allow header lists the methods that are."
        )
    return str(error.detail)
