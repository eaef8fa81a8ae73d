"""The worker that signs, sends and tracks accepted operations until they are final.

An operation moves through these states in the worker:

- accepted -> sending: the worker claims it, builds the call of the contract
  that the kind targets (the operation's facility or the fund-flow rules) and
  estimates its gas. A revert at estimation makes it failed with the decoded
  error before any nonce is taken, so the signer's nonces keep no gap.
- sending -> sent: the transaction is signed with the next nonce and stored
  with its hash, nonce and raw bytes in one commit, and only then sent.
- sent -> confirmed or failed: once its receipt has `confirmations` blocks.
  A confirmed operation keeps the ids and events that its receipt carries.

After a restart, operations left in "sending" go back to "accepted", because
nothing was signed for them yet. Operations in "sent" are tracked by their
stored hashes: a transaction that the node has forgotten is resent with the
same bytes, so the same nonce. Only when that nonce went to another
transaction is the operation signed again with a new nonce, and never if the
chain already used its request id. Calls to the fund-flow rules carry no
request id. They are signed again, because a transaction whose nonce another
transaction took can no longer be mined.

Several replicas may run this worker against one database. Each signer
address has a lease (`ledger_bridge.chain.lease`): only the replica holding
it claims, signs, sends and tracks that signer's operations, and each of
those writes checks the lease in its own database transaction. A replica that
takes a lease over reads the nonce from the node and the database again and
recovers the operations left in "sending", as after a restart.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterable, Mapping

from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import TxReceipt

from ledger_bridge.chain.calls import (
    CALL_TARGETS,
    SIGNER_ROLES,
    CallTarget,
    build_call,
    kinds_signed_by,
)
from ledger_bridge.chain.contracts import CREDIT_FACILITY, FUND_FLOW_RULES, contract_at
from ledger_bridge.chain.errors import DecodedRevert, decode_revert, revert_data_of
from ledger_bridge.chain.lease import LeaseStatus, SignerLeases
from ledger_bridge.chain.outcomes import (
    explain_failed_receipt,
    facility_not_deployed,
    invalid_payload,
    request_used_elsewhere,
    rules_not_deployed,
)
from ledger_bridge.chain.receipts import operation_result
from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.chain.transactions import (
    TRANSIENT_ERRORS,
    NonceTracker,
    SignedCall,
    build_unsigned,
    estimate_gas,
    fee_fields,
    sign_transaction,
)
from ledger_bridge.core.metrics import OperationMetrics
from ledger_bridge.storage.db import begin_write
from ledger_bridge.storage.models import (
    Operation,
    OperationState,
    SignedTransaction,
    utcnow,
)
from ledger_bridge.storage.operations import transition_operation

logger = logging.getLogger(__name__)

# Maximum pause between passes while the node or the database keeps failing.
MAX_BACKOFF_SECONDS = 30.0


class TransactionWorker:
    """Sends accepted operations to the chain from one background thread."""

    name = "transaction worker"

    def __init__(
        self,
        *,
        w3: Web3,
        session_factory: sessionmaker[Session],
        signers: Mapping[SignerRole, LocalAccount],
        confirmations: int,
        poll_interval_seconds: float,
        max_pending: int,
        facility_addresses: Iterable[str],
        rules_address: str | None = None,
        metrics: OperationMetrics | None = None,
        lease_seconds: float = 15.0,
        lease_renewal_seconds: float = 3.0,
        holder_id: str | None = None,
    ) -> None:
        self._w3 = w3
        self._sessions = session_factory
        self._signers = dict(signers)
        self._accounts = {account.address: account for account in signers.values()}
        # The roles that sign with each address, so one lease covers every kind it signs.
        self._kinds: dict[str, list[str]] = {}
        for role, account in signers.items():
            self._kinds.setdefault(account.address, []).extend(kinds_signed_by(role))
        self._nonces = {address: NonceTracker(w3, address) for address in self._accounts}
        self._confirmations = confirmations
        self._poll_interval = poll_interval_seconds
        self._max_pending = max_pending
        # Only these contracts get transactions: a call to an address without code succeeds
        # at estimation and on chain, so a wrong address would look like a confirmed write.
        self._facility_addresses = frozenset(address.lower() for address in facility_addresses)
        self._rules_address = rules_address
        self._contract_names = {address: CREDIT_FACILITY for address in self._facility_addresses}
        if rules_address is not None:
            self._contract_names[rules_address.lower()] = FUND_FLOW_RULES
        self._contracts: dict[str, Contract] = {}
        # Without a registry of the app's, the metrics are counted and never exported.
        self._metrics = metrics or OperationMetrics(CollectorRegistry())
        self._leases = SignerLeases(
            session_factory,
            holder_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            lease_seconds,
            lease_renewal_seconds,
        )
        self._chain_id: int | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holder_id(self) -> str:
        """The id this worker writes into the signer leases it holds."""
        return self._leases.holder_id

    def start(self) -> None:
        """Start the background thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="transaction-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout_seconds: float = 30.0) -> None:
        """Ask the thread to finish its current step, wait for it and release the leases."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_seconds)
            if self._thread.is_alive():
                logger.warning("Transaction worker did not stop within %s s", timeout_seconds)
                return
        self._leases.release_all()

    def wake(self) -> None:
        """Start the next pass now, for example right after an operation was accepted."""
        self._wake.set()

    def run_once(self) -> bool:
        """Make one pass for each signer whose lease this worker holds or can take.

        A pass tracks the signer's sent operations and sends its accepted ones.
        Returns whether anything was sent or became final, so that the thread
        starts the next pass at once instead of waiting for the poll interval.
        """
        progressed = False
        for address in self._accounts:
            if self._stopping.is_set():
                break
            status = self._leases.refresh(address)
            if status is LeaseStatus.NOT_HELD:
                continue
            if status is LeaseStatus.ACQUIRED:
                self._nonces[address].reset()
                self._recover(address)
            progressed |= self._track_sent(address)
            progressed |= self._send_accepted(address)
        return progressed

    def _run(self) -> None:
        logger.info(
            "Transaction worker %s started for signers %s", self.holder_id, sorted(self._signers)
        )
        delay = self._poll_interval
        while not self._stopping.is_set():
            try:
                if self.run_once():
                    continue
                delay = self._poll_interval
            except TRANSIENT_ERRORS as error:
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                logger.warning(
                    "Worker pass failed (%s: %s); retrying in %.1f s",
                    type(error).__name__,
                    error,
                    delay,
                )
            except Exception:
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)
                logger.exception("Worker pass failed; retrying in %.1f s", delay)
            # A lease must be renewed on time, so no pause is longer than the renewal interval.
            self._wake.wait(min(delay, self._leases.renewal_seconds))
            self._wake.clear()
        logger.info("Transaction worker stopped")

    # ---------------------------------------------------------------------------------------
    # Recovery
    # ---------------------------------------------------------------------------------------

    def _recover(self, address: str) -> None:
        """Return the signer's operations left in "sending" to "accepted".

        None of them was stored as signed: a worker that stores a transaction
        moves its operation to "sent" in the same commit.
        """
        with self._sessions() as session:
            if not self._begin_fenced(session, address):
                return
            stuck = session.scalars(
                select(Operation).where(
                    Operation.state == OperationState.SENDING,
                    Operation.kind.in_(self._kinds[address]),
                )
            ).all()
            for operation in stuck:
                transition_operation(operation, OperationState.ACCEPTED)
                operation.tx_hash = None
                operation.nonce = None
                logger.info("Operation %s goes back to accepted after a restart", operation.id)
            session.commit()

    # ---------------------------------------------------------------------------------------
    # Sending
    # ---------------------------------------------------------------------------------------

    def _send_accepted(self, address: str) -> bool:
        """Claim and send the signer's oldest accepted operations, up to the pending cap."""
        with self._sessions() as session:
            room = self._max_pending - self._count_in_flight(session, address)
            if room <= 0:
                return False
            query = (
                select(Operation.id)
                .where(
                    Operation.state == OperationState.ACCEPTED,
                    Operation.kind.in_(self._kinds[address]),
                )
                .order_by(Operation.created_at, Operation.request_id)
                .limit(room)
            )
            operation_ids = session.scalars(query).all()
        if not operation_ids:
            return False
        claimed = self._claim(operation_ids, address)
        if not claimed:
            return False
        try:
            # One read of the fees and the chain id serves every transaction of this batch.
            fees = fee_fields(self._w3)
            if self._chain_id is None:
                self._chain_id = self._w3.eth.chain_id
            account = self._accounts[address]
            for index, operation_id in enumerate(claimed):
                if not self._keep_lease(address):
                    break
                if self._stopping.is_set() or not self._submit(operation_id, account, fees):
                    self._release(claimed[index:], address)
                    break
        except Exception:
            # A node or database error in the batch must not leave the rest of it in
            # "sending": only a restart or a lease takeover would return them to "accepted".
            self._release(claimed, address)
            raise
        return True

    def _keep_lease(self, address: str) -> bool:
        """Renew the lease during a long pass, and return whether the pass may go on.

        A lease taken again after it lapsed starts over as after a takeover: the
        nonce is read again and the operations left in "sending" are recovered.
        """
        status = self._leases.refresh(address)
        if status is LeaseStatus.ACQUIRED:
            self._nonces[address].reset()
            self._recover(address)
        return status is LeaseStatus.HELD

    def _count_in_flight(self, session: Session, sender: str) -> int:
        query = (
            select(func.count())
            .select_from(Operation)
            .join(SignedTransaction, SignedTransaction.tx_hash == Operation.tx_hash)
            .where(Operation.state == OperationState.SENT, SignedTransaction.sender == sender)
        )
        return session.scalar(query) or 0

    def _claim(self, operation_ids: Iterable[uuid.UUID], address: str) -> list[uuid.UUID]:
        """Move the operations that are still accepted to "sending" in one commit."""
        with self._sessions() as session:
            if not self._begin_fenced(session, address):
                return []
            operations = session.scalars(
                select(Operation)
                .where(Operation.id.in_(list(operation_ids)))
                .order_by(Operation.created_at, Operation.request_id)
            ).all()
            claimed = []
            for operation in operations:
                if operation.state is OperationState.ACCEPTED:
                    transition_operation(operation, OperationState.SENDING)
                    claimed.append(operation.id)
            session.commit()
            return claimed

    def _release(self, operation_ids: Iterable[uuid.UUID], address: str) -> None:
        """Return claimed operations that were not sent to "accepted", for a later pass."""
        with self._sessions() as session:
            if not self._begin_fenced(session, address):
                return
            for operation_id in operation_ids:
                operation = session.get(Operation, operation_id)
                if operation is not None and operation.state is OperationState.SENDING:
                    transition_operation(operation, OperationState.ACCEPTED)
            session.commit()

    def _submit(self, operation_id: uuid.UUID, account: LocalAccount, fees: dict[str, int]) -> bool:
        """Estimate, sign, store and send the transaction of an operation in "sending".

        Returns False when the lease was lost, so the caller stops sending.
        """
        tracker = self._nonces[account.address]
        with self._sessions() as session:
            operation = session.get(Operation, operation_id)
            if operation is None or operation.state is not OperationState.SENDING:
                return True
            try:
                signed = self._prepare(session, operation, account, tracker, fees)
            except Exception:
                session.rollback()
                self._release([operation_id], account.address)
                raise
            if signed is None:
                return True
            if not self._record_sent(session, operation, account, signed):
                return account.address in self._leases.held_addresses
            tracker.take(signed.nonce)
        self._broadcast(operation_id, signed, tracker)
        return True

    def _prepare(
        self,
        session: Session,
        operation: Operation,
        account: LocalAccount,
        tracker: NonceTracker,
        fees: dict[str, int],
    ) -> SignedCall | None:
        """Return the signed call, or None after marking the operation failed at estimation."""
        target = self._target(session, operation, account.address)
        if target is None:
            return None
        try:
            function = build_call(operation, target)
        except (KeyError, ValueError) as error:
            self._fail(session, operation, invalid_payload(operation, error), account.address)
            return None
        assert self._chain_id is not None
        transaction = build_unsigned(
            function, account.address, tracker.peek(session), chain_id=self._chain_id, fees=fees
        )
        try:
            gas = estimate_gas(self._w3, transaction)
        except ContractLogicError as error:
            revert = decode_revert(revert_data_of(error))
            self._fail(session, operation, revert, account.address)
            return None
        return sign_transaction(account, transaction, gas)

    def _target(self, session: Session, operation: Operation, address: str) -> Contract | None:
        """Return the contract the operation calls, or None after failing it for a missing one."""
        if CALL_TARGETS.get(operation.kind) is CallTarget.RULES:
            if self._rules_address is None:
                self._fail(session, operation, rules_not_deployed(operation), address)
                return None
            return self._contract(FUND_FLOW_RULES, self._rules_address)
        facility = operation.facility_address
        if facility is None or facility.lower() not in self._facility_addresses:
            self._fail(session, operation, facility_not_deployed(operation), address)
            return None
        return self._contract(CREDIT_FACILITY, facility)

    def _record_sent(
        self, session: Session, operation: Operation, account: LocalAccount, signed: SignedCall
    ) -> bool:
        """Store the signed transaction and mark the operation sent, if the lease still holds."""
        if session.in_transaction():
            session.rollback()
        if not self._begin_fenced(session, account.address):
            return False
        if operation.state is not OperationState.SENDING:
            logger.warning(
                "Operation %s changed to %s while signing; not sending it",
                operation.id,
                operation.state.value,
            )
            session.commit()
            return False
        operation.tx_hash = signed.tx_hash
        operation.nonce = signed.nonce
        operation.sent_at = utcnow()
        transition_operation(operation, OperationState.SENT)
        session.add(
            SignedTransaction(
                tx_hash=signed.tx_hash,
                operation_id=operation.id,
                sender=account.address,
                nonce=signed.nonce,
                raw_transaction=signed.raw_transaction,
            )
        )
        session.commit()
        self._metrics.record(operation.kind, OperationState.SENT.value)
        return True

    def _broadcast(
        self, operation_id: uuid.UUID, signed: SignedCall, tracker: NonceTracker
    ) -> None:
        try:
            self._w3.eth.send_raw_transaction(signed.raw_transaction)
        except TRANSIENT_ERRORS as error:
            # The transaction is stored; the next pass finds it or resends the same bytes.
            logger.warning(
                "Sending transaction %s of operation %s failed (%s); will resend",
                signed.tx_hash,
                operation_id,
                type(error).__name__,
            )
            return
        except Web3RPCError as error:
            if self._is_pending(signed.tx_hash):
                return
            logger.error(
                "Node rejected transaction %s of operation %s: %s",
                signed.tx_hash,
                operation_id,
                error,
            )
            self._unsend(operation_id, tracker.address)
            self._resync(tracker, "rejected_by_node")
            return
        logger.debug(
            "Sent transaction %s with nonce %s for operation %s",
            signed.tx_hash,
            signed.nonce,
            operation_id,
        )

    def _unsend(self, operation_id: uuid.UUID, address: str) -> None:
        """Return an operation whose transaction the node rejected to "accepted"."""
        with self._sessions() as session:
            if not self._begin_fenced(session, address):
                return
            operation = session.get(Operation, operation_id)
            if operation is not None and operation.state is OperationState.SENT:
                transition_operation(operation, OperationState.SENDING)
                transition_operation(operation, OperationState.ACCEPTED)
                operation.tx_hash = None
                operation.nonce = None
                operation.sent_at = None
            session.commit()

    # ---------------------------------------------------------------------------------------
    # Tracking
    # ---------------------------------------------------------------------------------------

    def _track_sent(self, address: str) -> bool:
        """Settle the signer's sent operations whose receipts are final, in one commit.

        Operations without a receipt are checked one by one: still pending,
        forgotten by the node (resent), or their nonce taken by another transaction.
        """
        with self._sessions() as session:
            query = (
                select(Operation.id, Operation.tx_hash)
                .join(SignedTransaction, SignedTransaction.tx_hash == Operation.tx_hash)
                .where(Operation.state == OperationState.SENT, SignedTransaction.sender == address)
                .order_by(Operation.nonce)
            )
            sent = session.execute(query).all()
        if not sent:
            return False
        head = self._w3.eth.block_number
        receipts: list[tuple[uuid.UUID, TxReceipt]] = []
        for operation_id, tx_hash in sent:
            if self._stopping.is_set() or not self._keep_lease(address):
                break
            try:
                receipt = self._w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                self._track(operation_id, head, address)
                continue
            if head - receipt["blockNumber"] + 1 >= self._confirmations:
                receipts.append((operation_id, receipt))
        if receipts:
            self._settle(receipts, address)
        return bool(receipts)

    def _track(self, operation_id: uuid.UUID, head: int, address: str) -> None:
        with self._sessions() as session:
            operation = session.get(Operation, operation_id)
            if operation is None or operation.state is not OperationState.SENT:
                return
            current = session.get(SignedTransaction, operation.tx_hash)
            if current is None:
                raise RuntimeError(
                    f"Operation {operation.id} is sent but its transaction is missing"
                )
            # Read before looking for receipts: if the nonce was used by then and none of
            # this operation's transactions has a receipt, another transaction used it.
            mined_nonce = self._w3.eth.get_transaction_count(current.sender, "latest")
            receipt = self._find_receipt(session, operation, current.nonce)
            if receipt is not None:
                if head - receipt["blockNumber"] + 1 >= self._confirmations:
                    session.rollback()
                    self._settle([(operation.id, receipt)], address)
            elif self._is_pending(current.tx_hash):
                return
            elif mined_nonce <= current.nonce:
                self._resend(current)
            else:
                self._handle_nonce_taken(session, operation, current)

    def _find_receipt(self, session: Session, operation: Operation, nonce: int) -> TxReceipt | None:
        candidates = session.scalars(
            select(SignedTransaction.tx_hash).where(
                SignedTransaction.operation_id == operation.id, SignedTransaction.nonce == nonce
            )
        ).all()
        for tx_hash in candidates:
            try:
                return self._w3.eth.get_transaction_receipt(tx_hash)
            except TransactionNotFound:
                continue
        return None

    def _settle(self, receipts: list[tuple[uuid.UUID, TxReceipt]], address: str) -> None:
        """Record final receipts: confirmed with the decoded result, or failed with the revert."""
        outcomes = []
        for operation_id, receipt in receipts:
            succeeded = receipt["status"] == 1
            revert = None if succeeded else explain_failed_receipt(self._w3, receipt)
            result = (
                operation_result(self._w3, receipt, self._contract_names) if succeeded else None
            )
            outcomes.append((operation_id, receipt, revert, result))
        settled: list[Operation] = []
        with self._sessions() as session:
            if not self._begin_fenced(session, address):
                return
            for operation_id, receipt, revert, result in outcomes:
                operation = session.get(Operation, operation_id)
                if operation is None or operation.state is not OperationState.SENT:
                    continue
                operation.tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
                operation.block_number = receipt["blockNumber"]
                operation.block_hash = HexBytes(receipt["blockHash"]).to_0x_hex()
                if revert is None:
                    operation.confirmed_at = utcnow()
                    operation.result = result
                    transition_operation(operation, OperationState.CONFIRMED)
                else:
                    operation.revert = revert.to_json()
                    transition_operation(operation, OperationState.FAILED)
                settled.append(operation)
            session.commit()
        for operation in settled:
            self._record_final(operation)
            logger.info(
                "Operation %s is %s in block %s (transaction %s)",
                operation.id,
                operation.state.value,
                operation.block_number,
                operation.tx_hash,
            )

    def _resend(self, current: SignedTransaction) -> None:
        """Send the stored bytes again: same nonce, same hash, so it can only be mined once."""
        try:
            self._w3.eth.send_raw_transaction(current.raw_transaction)
        except Web3RPCError as error:
            # TODO: replace with the same nonce and higher fees when the node rejects the
            # stored bytes (for example because the base fee rose above their maximum fee).
            logger.error(
                "Node rejected resent transaction %s with nonce %s: %s",
                current.tx_hash,
                current.nonce,
                error,
            )
            return
        logger.info("Resent transaction %s with nonce %s", current.tx_hash, current.nonce)

    def _handle_nonce_taken(
        self, session: Session, operation: Operation, current: SignedTransaction
    ) -> None:
        """Act on a sent operation whose nonce another transaction used."""
        address = current.sender
        if operation.request_id is not None and self._request_used(operation):
            self._fail(session, operation, request_used_elsewhere(operation, current), address)
            logger.error(
                "Request id %s of operation %s was used by a transaction the bridge did not send",
                operation.request_id,
                operation.id,
            )
            return
        role = SIGNER_ROLES[operation.kind]
        account = self._signers.get(role)
        if account is None:
            logger.error(
                "Operation %s needs signing again, but role %s has no key; it stays "
                "sent until one is configured",
                operation.id,
                role.value,
            )
            return
        logger.warning(
            "Nonce %s of %s went to another transaction; signing operation %s again",
            current.nonce,
            current.sender,
            operation.id,
        )
        session.rollback()
        if not self._begin_fenced(session, account.address):
            return
        if operation.state is not OperationState.SENT:
            session.commit()
            return
        transition_operation(operation, OperationState.SENDING)
        operation.tx_hash = None
        operation.nonce = None
        session.commit()
        self._resync(self._nonces[account.address], "nonce_taken")
        if self._chain_id is None:
            self._chain_id = self._w3.eth.chain_id
        if not self._submit(operation.id, account, fee_fields(self._w3)):
            self._release([operation.id], account.address)

    # ---------------------------------------------------------------------------------------
    # Helpers
    # ---------------------------------------------------------------------------------------

    def _begin_fenced(self, session: Session, address: str) -> bool:
        """Start a write transaction, and return whether this worker still holds the lease.

        When it does not, the transaction is rolled back, the lease is
        forgotten and the signer's nonce is dropped, so nothing is written.
        """
        begin_write(session)
        if self._leases.holds_in_transaction(session, address):
            return True
        session.rollback()
        self._leases.lose(address)
        self._nonces[address].reset()
        return False

    def _fail(
        self, session: Session, operation: Operation, revert: DecodedRevert, address: str
    ) -> None:
        if session.in_transaction():
            session.rollback()
        if not self._begin_fenced(session, address):
            return
        if operation.state.is_final:
            session.commit()
            return
        operation.revert = revert.to_json()
        transition_operation(operation, OperationState.FAILED)
        session.commit()
        self._record_final(operation)
        logger.info("Operation %s failed: %s", operation.id, revert.message)

    def _record_final(self, operation: Operation) -> None:
        self._metrics.record(operation.kind, operation.state.value)
        if operation.confirmed_at is None:
            return
        self._metrics.confirmation_seconds.labels(operation.kind).observe(
            (operation.confirmed_at - operation.created_at).total_seconds()
        )
        if operation.sent_at is not None:
            self._metrics.inclusion_seconds.labels(operation.kind).observe(
                (operation.confirmed_at - operation.sent_at).total_seconds()
            )

    def _resync(self, tracker: NonceTracker, reason: str) -> None:
        """Drop the signer's next nonce, so the next transaction reads it from the node again."""
        tracker.reset()
        self._metrics.nonce_resyncs.labels(tracker.address, reason).inc()

    def _request_used(self, operation: Operation) -> bool:
        facility = self._contract(CREDIT_FACILITY, operation.facility_address or "")
        return bool(facility.functions.isRequestUsed(operation.request_id).call())

    def _is_pending(self, tx_hash: str) -> bool:
        try:
            self._w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return False
        return True

    def _contract(self, contract_name: str, address: str) -> Contract:
        contract = self._contracts.get(address)
        if contract is None:
            contract = contract_at(self._w3, contract_name, address)
            self._contracts[address] = contract
        return contract
