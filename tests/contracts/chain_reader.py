"""Fast access to the contracts for the randomized state machines.

Ape's call and transaction paths cost several times more per call than plain JSON-RPC, and the
machines read every balance after every step, so they read in one JSON-RPC batch and send
transactions from Anvil's unlocked development accounts with `eth_sendTransaction`.
"""

from dataclasses import dataclass

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address, to_hex
from hypothesis import strategies as st
from web3.exceptions import ContractCustomError

# Enough for a batch of four payouts. An explicit limit saves a gas estimate per transaction.
TRANSACTION_GAS = 3_000_000
MAX_FEE_PER_GAS = 100 * 10**9

PAYOUT_MADE_TOPIC = keccak(
    text="PayoutMade(uint64,uint64,address,uint256,uint32,bytes32,uint128,uint64,uint128)"
)


def weighted(*choices):
    """Return a strategy that draws each value with the integer weight given before it."""
    return st.sampled_from([value for weight, value in choices for _ in range(weight)])


@dataclass(frozen=True)
class Rejection:
    """A predicted revert: the custom error's name and its inputs, in declaration order."""

    error: str
    inputs: tuple


@dataclass
class RulesModel:
    """The payee registry and the regulator's blocks as the rules contract should hold them."""

    payees: dict[str, tuple[int, bool]]  # address -> (category, frozen), registered payees only
    blocked: set[int]
    version: int

    def rejection(self, payee: str) -> Rejection | None:
        """Return the revert a payout to `payee` must meet, or None when it is allowed."""
        if payee not in self.payees:
            return Rejection("FundFlowPayeeNotRegistered", (payee,))
        category, frozen = self.payees[payee]
        if frozen:
            return Rejection("FundFlowPayeeFrozen", (payee, category))
        if category in self.blocked:
            return Rejection("FundFlowCategoryBlocked", (payee, category))
        return None


class ChainReader:
    """Reader of contract views that sends plain `eth_call`s as one JSON-RPC batch.

    Ape's call path costs several times more per call, and the invariants read every balance
    after every step.
    """

    def __init__(self, web3, contracts: list):
        self.web3 = web3
        self.errors = {}
        for contract in contracts:
            for abi in contract.contract_type.errors:
                types = [item.canonical_type for item in abi.inputs]
                selector = keccak(text=f"{abi.name}({','.join(types)})")[:4]
                self.errors[selector] = (abi.name, types)

    def read(self, calls: list) -> list:
        """Run `(contract, method, args)` view calls and return their decoded outputs.

        A single output is returned as its value and a struct output as a dict by field name.
        The batch goes to the provider directly, past web3's per-call request formatting.
        """
        requests = []
        for contract, method, args in calls:
            data = getattr(contract, method).encode_input(*args)
            requests.append(
                ("eth_call", [{"to": contract.address, "data": to_hex(data)}, "latest"])
            )
        responses = self.web3.provider.make_batch_request(requests)
        failed = [response["error"] for response in responses if "error" in response]
        assert not failed, f"view calls failed: {failed}"
        raw_outputs = [bytes.fromhex(response["result"][2:]) for response in responses]

        outputs = []
        for (contract, method, _), raw in zip(calls, raw_outputs, strict=True):
            (abi,) = getattr(contract, method).abis
            values = abi_decode([item.canonical_type for item in abi.outputs], raw)
            if len(abi.outputs) > 1:
                outputs.append(values)
            elif abi.outputs[0].components:
                names = [item.name for item in abi.outputs[0].components]
                outputs.append(dict(zip(names, values[0], strict=True)))
            else:
                outputs.append(values[0])
        return outputs

    def expect_rejection(self, contract, method: str, args: list, sender, expected: Rejection):
        """Check by `eth_call` that the call reverts with exactly `expected`."""
        rejection = self.rejection(contract, method, args, sender)
        assert rejection is not None, f"{method}{tuple(args)} passed; expected {expected}"
        assert rejection == expected, f"{method}{tuple(args)}"

    def rejection(
        self, contract, method: str, args: list, sender, block="latest"
    ) -> Rejection | None:
        """Return the custom error the call reverts with by `eth_call`, or None if it passes."""
        data = getattr(contract, method).encode_input(*args)
        call = {"from": _address(sender), "to": contract.address, "data": data}
        try:
            self.web3.eth.call(call, block)
        except ContractCustomError as err:
            return self.decode_error(bytes.fromhex(err.data[2:]))
        return None

    def decode_error(self, revert_data: bytes) -> Rejection:
        name, types = self.errors[revert_data[:4]]
        values = tuple(
            to_checksum_address(value) if kind == "address" else value
            for kind, value in zip(types, abi_decode(types, revert_data[4:]), strict=True)
        )
        return Rejection(name, values)

    def send(self, contract, method: str, args: list, sender) -> dict:
        """Send a transaction from an unlocked account and return its receipt.

        A reverted transaction fails the caller's check with the error it reverts with, replayed
        by `eth_call` on the state before its block.
        """
        data = getattr(contract, method).encode_input(*args)
        transaction = {
            "from": _address(sender),
            "to": contract.address,
            "data": to_hex(data),
            "gas": TRANSACTION_GAS,
            "maxFeePerGas": MAX_FEE_PER_GAS,
            "maxPriorityFeePerGas": 0,
        }
        transaction_hash = self.web3.eth.send_transaction(transaction)
        receipt = self.web3.eth.wait_for_transaction_receipt(transaction_hash, poll_latency=0.01)
        if receipt["status"] != 1:
            error = self.rejection(contract, method, args, sender, receipt["blockNumber"] - 1)
            raise AssertionError(f"{method}{tuple(args)} from {_address(sender)} reverted: {error}")
        return receipt

    def payout_logs(self, facility_address: str, from_block: int, to_block: int) -> list[dict]:
        """Return the PayoutMade logs in the block range, decoded from topics and data alone."""
        if from_block > to_block:
            return []
        logs = self.web3.eth.get_logs(
            {
                "address": facility_address,
                "fromBlock": from_block,
                "toBlock": to_block,
                "topics": [PAYOUT_MADE_TOPIC],
            }
        )
        return [decode_payout(log) for log in logs]


def _address(account) -> str:
    return account if isinstance(account, str) else account.address


def decode_payout(log) -> dict:
    """Decode a PayoutMade log from its topics and data alone."""
    _, category, invoice_hash, amount, version, locked_after = abi_decode(
        ["uint256", "uint32", "bytes32", "uint128", "uint64", "uint128"], log["data"]
    )
    return {
        "block": log["blockNumber"],
        "lineId": int.from_bytes(log["topics"][1], "big"),
        "drawdownId": int.from_bytes(log["topics"][2], "big"),
        "payee": to_checksum_address(log["topics"][3][-20:]),
        "category": category,
        "invoiceHash": invoice_hash,
        "amount": amount,
        "rulesVersion": version,
        "lockedAfter": locked_after,
    }
