"""Measure the gas of each ledger operation, whole transaction, on a warm line.

Usage: `ape run measure_gas --network ethereum:local:foundry` (Ape starts Anvil on a free port).
Writes bench/gas.json. "Warm" means the line, the payee and the request-id word were written
before, as they are for a bank that uses the ledger every day.
"""

import json
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from ape import accounts, chain, project

CST = timezone(timedelta(hours=8))
POLICY = (100_000_000, 2200, 90, 8, True)
OUTPUT = Path("bench/gas.json")


def main() -> None:
    admin, operator, officer, second_officer, regulator, treasury = accounts.test_accounts[:6]
    token = project.SettlementToken.deploy("Digital Yuan Deposit", "DYD", admin, sender=admin)
    rules = project.FundFlowRules.deploy(admin, regulator, sender=admin)
    facility = project.CreditFacility.deploy(token, rules, admin, 21, 50, POLICY, sender=admin)
    rules.grantRole(rules.REGISTRAR_ROLE(), operator, sender=admin)
    for role, account in ((facility.OPERATOR_ROLE(), operator), (facility.CREDIT_OFFICER_ROLE(), officer),
                          (facility.CREDIT_OFFICER_ROLE(), second_officer), (facility.TREASURY_ROLE(), treasury)):
        facility.grantRole(role, account, sender=admin)
    token.mint(treasury, 10**14, sender=admin)
    token.approve(facility, 10**14, sender=treasury)
    token.mint(operator, 10**13, sender=admin)
    token.approve(facility, 2**256 - 1, sender=operator)
    request_ids = iter(range(1, 2**64))
    facility.fundLiquidity(next(request_ids), 10**14, sender=treasury)

    gas: dict[str, int] = {}
    at(date(2027, 1, 4))
    payee = accounts.test_accounts[8].address
    gas["payee_registration"] = rules.registerPayee(payee, 101, b"\x01" * 32, sender=operator).gas_used
    line_id = facility.applyForLine(next(request_ids), accounts.test_accounts[7], b"\x02" * 32, 3_000_000_000, 435,
                                    day(date(2027, 12, 31)), sender=operator).events[0].lineId
    facility.approveLine(next(request_ids), line_id, sender=officer)
    gas["open_line"] = facility.openLine(next(request_ids), line_id, sender=officer).gas_used

    # Warm up: the line, the pool of request ids and the payee's balance hold values already.
    facility.drawdown(next(request_ids), line_id, 250_000_000, payee, b"\x03" * 32, sender=operator)
    at(date(2027, 1, 5))
    gas["drawdown_entrusted"] = facility.drawdown(next(request_ids), line_id, 250_000_000, payee, b"\x03" * 32,
                                                  sender=operator).gas_used
    receipt = facility.drawdown(next(request_ids), line_id, 50_000_000, "0x" + "00" * 20, b"\x00" * 32, sender=operator)
    gas["drawdown_self_directed"] = receipt.gas_used
    drawdown_id = receipt.events[0].drawdownId
    gas["payout_from_locked"] = facility.payFromLocked(next(request_ids), drawdown_id, payee, 10_000_000, b"\x04" * 32,
                                                       sender=operator).gas_used
    at(date(2027, 1, 10))
    gas["repay"] = facility.repay(next(request_ids), line_id, 10_000_000, sender=operator).gas_used
    at(date(2027, 1, 21))
    gas["settle"] = facility.repayInterest(next(request_ids), line_id, sender=operator).gas_used
    at(date(2027, 4, 1))
    gas["limit_change"] = facility.changeLimit(next(request_ids), line_id, 3_300_000_000, sender=officer).gas_used
    at(date(2027, 12, 1))
    gas["renewal"] = facility.renewLine(next(request_ids), line_id, day(date(2028, 6, 30)), 0, 420,
                                        day(date(2028, 1, 1)), sender=officer).gas_used
    at(date(2027, 12, 2))
    gas["payoff"] = facility.payoff(next(request_ids), line_id, sender=operator).gas_used

    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(gas, indent=2) + "\n")
    for name, used in gas.items():
        print(f"{name:24} {used:>9,}")


def day(value: date) -> int:
    return (value - date(1970, 1, 1)).days


def at(value: date) -> None:
    chain.pending_timestamp = int(datetime.combine(value, time(10, 0), tzinfo=CST).timestamp())
