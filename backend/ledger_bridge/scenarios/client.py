"""The runner's side of the bridge's public HTTP API: writes as operations, and reads.

Each write is sent with its own Idempotency-Key and followed until its
operation is confirmed or failed. A request that the bridge rejects before
storing anything (a 4xx problem response) comes back as a rejected outcome
with the problem's detail, so a scenario can record it like a revert.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ledger_bridge.scenarios.errors import BridgeRequestError

FINAL_STATES = frozenset({"confirmed", "failed"})
POLL_SECONDS = 0.02
OPERATION_TIMEOUT_SECONDS = 60.0
# After this long in "sent" the runner mines a block, for bridges that need more confirmations.
MINE_AFTER_SECONDS = 0.5
HISTORY_PAGE_SIZE = 500
# The auditor's history of a line; bridges without the audit routes serve the second one.
AUDIT_HISTORY_ROUTE = "/v1/audit/lines/{line_id}/events"
LINE_HISTORY_ROUTE = "/v1/lines/{line_id}/history"
HTTP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """Bearer tokens of the three organisations a scenario acts as."""

    bank: str
    auditor: str
    regulator: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end state of one write: confirmed, failed on chain, or rejected by the bridge."""

    state: str
    operation: Mapping[str, Any] = field(default_factory=dict)
    problem: Mapping[str, Any] = field(default_factory=dict)

    @property
    def confirmed(self) -> bool:
        return self.state == "confirmed"

    @property
    def error_name(self) -> str | None:
        """The contract error of a failed operation, or None."""
        revert = self.operation.get("revert") or {}
        return revert.get("error")

    @property
    def error_args(self) -> Mapping[str, Any]:
        revert = self.operation.get("revert") or {}
        return revert.get("args") or {}

    @property
    def created_ids(self) -> Mapping[str, str]:
        """Ids the confirmed operation created, such as line_id, from its result."""
        result = self.operation.get("result") or {}
        return result.get("ids") or {}

    @property
    def events(self) -> list[Mapping[str, Any]]:
        result = self.operation.get("result") or {}
        return list(result.get("events") or [])

    def describe(self) -> str:
        """Return the outcome in words, for expectation details."""
        if self.state == "rejected":
            return f"rejected by the bridge ({self.problem.get('status')}): " + str(
                self.problem.get("detail") or self.problem.get("title")
            )
        if self.state == "failed":
            revert = self.operation.get("revert") or {}
            return f"failed: {revert.get('message') or revert.get('error')}"
        return f"confirmed in block {self.operation.get('block_number')}"


class BridgeClient:
    """HTTP client of one bridge, acting with the bank, auditor or regulator credential."""

    def __init__(
        self,
        api_url: str,
        credentials: Credentials,
        *,
        mine_block: Callable[[], None] | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._credentials = credentials
        self._mine_block = mine_block
        self._http = http or httpx.Client(base_url=self.api_url, timeout=HTTP_TIMEOUT_SECONDS)

    def close(self) -> None:
        self._http.close()

    # -------------------------------------------------------------------------------------
    # Writes
    # -------------------------------------------------------------------------------------

    def write(self, role: str, path: str, body: Mapping[str, Any], idempotency_key: str) -> Outcome:
        """POST a write as `role` and wait until its operation is final."""
        headers = {**self._auth(role), "Idempotency-Key": idempotency_key}
        response = self._request("POST", path, headers=headers, json=dict(body))
        if 400 <= response.status_code < 500:
            return Outcome(state="rejected", problem=_problem_of(response))
        if response.status_code != 202:
            raise _unexpected(response, "POST", path)
        operation = response.json()
        return self._wait_final(role, operation["id"])

    def _wait_final(self, role: str, operation_id: str) -> Outcome:
        path = f"/v1/operations/{operation_id}"
        deadline = time.monotonic() + OPERATION_TIMEOUT_SECONDS
        sent_since: float | None = None
        while True:
            operation = self.read(role, path)
            state = operation["state"]
            if state in FINAL_STATES:
                return Outcome(state=state, operation=operation)
            now = time.monotonic()
            if state == "sent":
                # NOTE: only a bridge that needs more than one confirmation waits here; the
                # tests' bridge confirms after one block, so they do not cover this branch.
                sent_since = sent_since or now
                if self._mine_block is not None and now - sent_since > MINE_AFTER_SECONDS:
                    self._mine_block()
                    sent_since = now
            if now > deadline:
                raise BridgeRequestError(
                    f"Operation {operation_id} is still {state} after "
                    f"{OPERATION_TIMEOUT_SECONDS:.0f} s. Check the bridge's log: the signer of "
                    "this kind may have no key, or the node may not mine."
                )
            time.sleep(POLL_SECONDS)

    # -------------------------------------------------------------------------------------
    # Reads
    # -------------------------------------------------------------------------------------

    def read(self, role: str, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """GET a JSON resource as `role`; raise BridgeRequestError unless the status is 200."""
        response = self._request("GET", path, headers=self._auth(role), params=params)
        if response.status_code != 200:
            raise _unexpected(response, "GET", path)
        return response.json()

    def has_route(self, method: str, path_template: str) -> bool:
        """Return whether the bridge's OpenAPI document lists `method path_template`."""
        document = self._openapi()
        return method.lower() in document.get("paths", {}).get(path_template, {})

    def line_history(self, line_id: int, facility: str) -> tuple[list[dict[str, Any]], int | None]:
        """Return every indexed event of a line as the auditor reads it, and the block the
        index has read through."""
        events: list[dict[str, Any]] = []
        indexed_through: int | None = None
        for page in self._history_pages(line_id, facility):
            events.extend(page["events"])
            indexed_through = page.get("indexed_through_block")
        return events, indexed_through

    def _history_pages(self, line_id: int, facility: str) -> Iterator[dict[str, Any]]:
        route = (
            AUDIT_HISTORY_ROUTE
            if self.has_route("GET", AUDIT_HISTORY_ROUTE)
            else LINE_HISTORY_ROUTE
        )
        params: dict[str, Any] = {"facility": facility, "limit": HISTORY_PAGE_SIZE}
        while True:
            page = self.read("auditor", route.format(line_id=line_id), params)
            yield page
            cursor = page.get("next_cursor")
            if cursor is None:
                return
            params = {**params, "cursor": cursor}

    # -------------------------------------------------------------------------------------
    # Helpers
    # -------------------------------------------------------------------------------------

    def _openapi(self) -> dict[str, Any]:
        cached = getattr(self, "_openapi_document", None)
        if cached is None:
            response = self._request("GET", "/openapi.json")
            if response.status_code != 200:
                raise _unexpected(response, "GET", "/openapi.json")
            cached = response.json()
            self._openapi_document = cached
        return cached

    def _auth(self, role: str) -> dict[str, str]:
        token = getattr(self._credentials, role)
        return {"Authorization": f"Bearer {token}"}

    def _request(self, method: str, path: str, **options: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **options)
        except httpx.HTTPError as error:
            raise BridgeRequestError(
                f"{method} {self.api_url}{path} failed: {error}. Check that the bridge runs "
                "and that --api-url points at it."
            ) from error


def _problem_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    if not isinstance(body, dict):
        body = {"detail": str(body)[:500]}
    return {"status": response.status_code, **body}


def _unexpected(response: httpx.Response, method: str, path: str) -> BridgeRequestError:
    problem = _problem_of(response)
    detail = problem.get("detail") or problem.get("title") or response.reason_phrase
    return BridgeRequestError(
        f"{method} {path} returned {response.status_code}: {detail}. The runner cannot go on "
        "without it; check the credentials and the bridge's log."
    )
