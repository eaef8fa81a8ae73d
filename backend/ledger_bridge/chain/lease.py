"""Leases that let one bridge replica at a time assign nonces and send for a signer.

Each signer address has one row in `signer_leases`. The replica whose holder
id and epoch the row names may send for that signer until `expires_at`. It
renews the row every renewal interval; another replica takes the row only
after `expires_at` has passed, and raises the epoch when it does.

Every write of the worker that assigns or records a nonce first calls
`holds_in_transaction` inside its own database transaction. On PostgreSQL
that reads the row with SELECT ... FOR UPDATE, so a takeover waits for the
transaction or the transaction sees the takeover. On SQLite the worker's
transaction starts with BEGIN IMMEDIATE and holds the database's write lock,
which has the same effect. Expiry is judged by the database server's clock
on PostgreSQL, so replicas on machines with different clocks agree on it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.storage.db import begin_write
from ledger_bridge.storage.models import SignerLease, utcnow

logger = logging.getLogger(__name__)


class LeaseStatus(Enum):
    """What `SignerLeases.refresh` found for a signer."""

    NOT_HELD = "not_held"
    HELD = "held"
    # Held from this call on, after another holder's lease expired or after a restart:
    # the nonce must be read again and operations left in "sending" recovered.
    ACQUIRED = "acquired"


@dataclass(slots=True)
class _Held:
    epoch: int
    renewed_at: float  # time.monotonic() of the last successful renewal


class SignerLeases:
    """The leases one worker holds, identified by `holder_id`."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        holder_id: str,
        lease_seconds: float,
        renewal_seconds: float,
    ) -> None:
        self._sessions = session_factory
        self.holder_id = holder_id
        self._lease = timedelta(seconds=lease_seconds)
        self._lease_seconds = lease_seconds
        self._renewal_seconds = renewal_seconds
        self._held: dict[str, _Held] = {}

    @property
    def renewal_seconds(self) -> float:
        """Time between renewals of a held lease, in seconds."""
        return self._renewal_seconds

    @property
    def held_addresses(self) -> frozenset[str]:
        """The signers whose leases this worker holds, as far as it knows."""
        return frozenset(self._held)

    def refresh(self, address: str) -> LeaseStatus:
        """Renew the signer's lease when due, or try to take it, and return the outcome."""
        held = self._held.get(address)
        if held is not None:
            if time.monotonic() - held.renewed_at < self._renewal_seconds:
                return LeaseStatus.HELD
            if self._renew(address, held):
                return LeaseStatus.HELD
            self.lose(address)
        return LeaseStatus.ACQUIRED if self._acquire(address) else LeaseStatus.NOT_HELD

    def holds_in_transaction(self, session: Session, address: str) -> bool:
        """Return whether this worker still holds the lease, inside the session's open write.

        Call it after `begin_write`, in the transaction that stores the
        change, so that no takeover can commit between the check and the change.
        """
        held = self._held.get(address)
        if held is None:
            return False
        lease, now = _locked_lease(session, address)
        if lease is None or lease.holder_id != self.holder_id or lease.epoch != held.epoch:
            return False
        return lease.expires_at > now

    def lose(self, address: str) -> None:
        """Forget a lease that another replica took or that expired before renewal."""
        if self._held.pop(address, None) is not None:
            logger.warning("Lost the lease on signer %s (holder %s)", address, self.holder_id)

    def release_all(self) -> None:
        """Let the leases expire now, so another replica can take over without waiting."""
        for address in list(self._held):
            held = self._held.pop(address)
            with self._sessions() as session:
                begin_write(session)
                lease, now = _locked_lease(session, address)
                if lease is not None and (lease.holder_id, lease.epoch) == (
                    self.holder_id,
                    held.epoch,
                ):
                    lease.expires_at = now
                session.commit()
            logger.info("Released the lease on signer %s", address)

    def _renew(self, address: str, held: _Held) -> bool:
        started = time.monotonic()
        with self._sessions() as session:
            begin_write(session)
            lease, now = _locked_lease(session, address)
            if lease is None or (lease.holder_id, lease.epoch) != (self.holder_id, held.epoch):
                session.commit()
                return False
            lease.expires_at = now + self._lease
            lease.renewed_at = now
            session.commit()
        held.renewed_at = started
        return True

    def _acquire(self, address: str) -> bool:
        started = time.monotonic()
        with self._sessions() as session:
            begin_write(session)
            lease, now = _locked_lease(session, address)
            if lease is None:
                lease = SignerLease(
                    signer_address=address,
                    holder_id=self.holder_id,
                    epoch=1,
                    expires_at=now + self._lease,
                    acquired_at=now,
                    renewed_at=now,
                )
                session.add(lease)
            elif lease.expires_at > now:
                session.commit()
                return False
            else:
                previous = lease.holder_id
                lease.holder_id = self.holder_id
                lease.epoch += 1
                lease.expires_at = now + self._lease
                lease.acquired_at = now
                lease.renewed_at = now
                logger.info(
                    "Took over signer %s from holder %s after its lease expired", address, previous
                )
            epoch = lease.epoch
            try:
                session.commit()
            except IntegrityError:
                # Another replica inserted the first row for this signer at the same time.
                session.rollback()
                return False
        self._held[address] = _Held(epoch=epoch, renewed_at=started)
        logger.info(
            "Holding the lease on signer %s as %s (epoch %s, %s s)",
            address,
            self.holder_id,
            epoch,
            self._lease_seconds,
        )
        return True


def _locked_lease(session: Session, address: str) -> tuple[SignerLease | None, datetime]:
    """Read the signer's lease row for update, with the time that expiry is judged by."""
    query = (
        select(SignerLease)
        .where(SignerLease.signer_address == address)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        lease = session.scalar(query.with_for_update())
        now = session.scalar(select(func.clock_timestamp()))
        assert now is not None
        return lease, now
    # Elsewhere the caller's BEGIN IMMEDIATE already holds the only write lock.
    return session.scalar(query), utcnow()
