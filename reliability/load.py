"""Concurrent bank clients that send drawdowns and repayments and record every outcome.

Each request has its own Idempotency-Key. On a connection error, a 5xx or a
429 response the client sends the same key and body again, because a bank
system that does not know whether its request was stored must do so. It moves
to the next replica if there are several. Any other 4xx response is final and
recorded as rejected. A request that got no final response before its retry
time ran out is unknown.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.storage.models import Operation, OperationState

DRAWDOWN_AMOUNT = "2.00"
# Half a drawdown, so a line's principal grows and never returns to zero: a completed
# revolving cycle counts towards the review flag, which would block later drawdowns.
REPAYMENT_AMOUNT = "1.00"
# The bridge rejects more than two decimals with 422 and stores nothing.
INVALID_AMOUNT = "1.001"
CONFLICT_AMOUNT = "3.00"
# Shares of the request mix; the rest are drawdowns.
INVALID_SHARE = 0.03
CONFLICT_SHARE = 0.02
REPAYMENT_SHARE = 0.35
REQUEST_TIMEOUT_SECONDS = 30
RETRY_FIRST_SECONDS = 0.1
RETRY_MAX_SECONDS = 2.0
# Longer than a bridge restart plus an Anvil restart, so a request outlives any one fault.
RETRY_GIVE_UP_SECONDS = 120
BACKLOG_POLL_SECONDS = 0.5
UNFINISHED_STATES = (OperationState.ACCEPTED, OperationState.SENDING, OperationState.SENT)


@dataclass
class RequestRecord:
    """One request as the client saw it."""

    index: int
    key: str
    kind: str  # drawdown, repayment, invalid or conflict
    line_id: int
    body: dict[str, Any]
    outcome: str = "unsent"  # accepted, rejected, unknown or unsent
    operation_id: str | None = None
    status: int | None = None
    attempts: int = 0
    # Operation ids of every 202 response; more than one for a key is a duplicate.
    operation_ids: set[str] = field(default_factory=set)


@dataclass
class LoadCounters:
    connection_errors: int = 0
    server_errors: int = 0
    # 503 responses while a fault was in progress: the bridge reporting that its node is down.
    unavailable_responses: int = 0
    nonce_errors: int = 0
    server_error_samples: list[str] = field(default_factory=list)


def plan_requests(
    count: int, line_ids: Sequence[int], rng: random.Random, run_id: str
) -> list[RequestRecord]:
    """Return `count` requests spread over the lines, in a mix drawn from `rng`."""
    records = []
    for index in range(count):
        draw = rng.random()
        line_id = rng.choice(line_ids)
        if draw < INVALID_SHARE:
            kind, amount = "invalid", INVALID_AMOUNT
        elif draw < INVALID_SHARE + CONFLICT_SHARE:
            kind, amount = "conflict", DRAWDOWN_AMOUNT
        elif draw < INVALID_SHARE + CONFLICT_SHARE + REPAYMENT_SHARE:
            kind, amount = "repayment", REPAYMENT_AMOUNT
        else:
            kind, amount = "drawdown", DRAWDOWN_AMOUNT
        body: dict[str, Any] = {"amount": amount}
        if kind != "repayment":
            body["payee"] = None
        records.append(
            RequestRecord(
                index=index, key=f"chaos-{run_id}-{index}", kind=kind, line_id=line_id, body=body
            )
        )
    return records


def request_path(record: RequestRecord) -> str:
    route = "repayments" if record.kind == "repayment" else "drawdowns"
    return f"/v1/lines/{record.line_id}/{route}"


class Backlog:
    """Counts the bridge's unfinished operations in its database, so clients can wait.

    A bank system stops submitting when too many of its writes are still open.
    Clients wait here while more than `limit` operations are not final, which
    keeps the work left at the end of the load bounded.
    """

    def __init__(self, sessions: sessionmaker[Session], limit: int) -> None:
        self._sessions = sessions
        self._limit = limit
        self.unfinished = 0

    def count(self) -> int:
        query = (
            select(func.count())
            .select_from(Operation)
            .where(Operation.state.in_(UNFINISHED_STATES))
        )
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    async def follow(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.unfinished = await asyncio.to_thread(self.count)
            await asyncio.sleep(BACKLOG_POLL_SECONDS)

    async def wait_for_room(self, deadline: float) -> None:
        while self.unfinished >= self._limit and time.monotonic() < deadline:
            await asyncio.sleep(BACKLOG_POLL_SECONDS)


class LoadRun:
    """Sends the planned requests from concurrent clients until done or the deadline."""

    def __init__(
        self,
        *,
        records: list[RequestRecord],
        replica_urls: Callable[[], list[str]],
        token: str,
        clients: int,
        backlog: Backlog,
        in_fault: Callable[[], bool],
        deadline: float,
    ) -> None:
        self.records = records
        self.counters = LoadCounters()
        self.sent = 0
        # POST requests waiting for a response now, read by the fault injector.
        self.in_flight = 0
        self._replica_urls = replica_urls
        self._headers = {"Authorization": f"Bearer {token}"}
        self._clients = clients
        self._backlog = backlog
        self._in_fault = in_fault
        self._deadline = deadline
        self._next = 0

    async def run(self) -> None:
        stop = asyncio.Event()
        follower = asyncio.create_task(self._backlog.follow(stop))
        try:
            await asyncio.gather(*(self._client(number) for number in range(self._clients)))
        finally:
            stop.set()
            await follower

    async def _client(self, number: int) -> None:
        async with httpx.AsyncClient(
            headers=self._headers, timeout=REQUEST_TIMEOUT_SECONDS
        ) as client:
            while self._next < len(self.records) and time.monotonic() < self._deadline:
                record = self.records[self._next]
                self._next += 1
                await self._backlog.wait_for_room(self._deadline)
                self.sent += 1
                await self._send(client, number, record, record.body)
                if record.kind == "conflict" and record.outcome == "accepted":
                    await self._send_conflict(client, number, record)

    async def _send_conflict(
        self, client: httpx.AsyncClient, number: int, record: RequestRecord
    ) -> None:
        """Send the accepted request's key again with another amount; the bridge must reject it."""
        changed = {**record.body, "amount": CONFLICT_AMOUNT}
        attempt = RequestRecord(
            index=record.index,
            key=record.key,
            kind="conflict-resend",
            line_id=record.line_id,
            body=changed,
        )
        await self._send(client, number, attempt, changed)
        self.records.append(attempt)

    async def _send(
        self, client: httpx.AsyncClient, number: int, record: RequestRecord, body: dict[str, Any]
    ) -> None:
        give_up = time.monotonic() + RETRY_GIVE_UP_SECONDS
        delay = RETRY_FIRST_SECONDS
        path = request_path(record)
        while True:
            urls = self._replica_urls()
            # Client `number` starts on its own replica and moves on after each failed attempt.
            url = urls[(number + record.attempts) % len(urls)] + path
            record.attempts += 1
            self.in_flight += 1
            try:
                response = await client.post(
                    url, json=body, headers={"Idempotency-Key": record.key}
                )
            except httpx.TransportError:
                self.counters.connection_errors += 1
            else:
                if response.status_code >= 400 and "nonce" in response.text.lower():
                    self.counters.nonce_errors += 1
                if response.status_code == 202:
                    record.outcome = "accepted"
                    record.operation_id = str(response.json()["id"])
                    record.operation_ids.add(record.operation_id)
                    record.status = 202
                    return
                if response.status_code >= 500:
                    self._count_server_error(response, record)
                elif response.status_code != 429:
                    record.outcome = "rejected"
                    record.status = response.status_code
                    return
                # A 429 (rate limited) stored nothing, so the same request is sent again.
            finally:
                self.in_flight -= 1
            if time.monotonic() >= give_up:
                record.outcome = "unknown"
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)

    def _count_server_error(self, response: httpx.Response, record: RequestRecord) -> None:
        if response.status_code == 503 and self._in_fault():
            self.counters.unavailable_responses += 1
            return
        self.counters.server_errors += 1
        if len(self.counters.server_error_samples) < 5:
            self.counters.server_error_samples.append(
                f"{record.key}: {response.status_code} {response.text[:300]}"
            )
