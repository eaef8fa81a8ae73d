"""FundFlowRules: the payee registry, the regulator's blocks and freezes, and the rules version."""

import pytest
from conftest import (
    CATEGORY_CRYPTO_EXCHANGE,
    CATEGORY_EQUIPMENT,
    CATEGORY_RAW_MATERIALS,
    CATEGORY_RESEARCH,
    reverts_with,
)
from eth_utils import keccak, to_checksum_address

STATUS_NONE = 0
STATUS_ACTIVE = 1
STATUS_FROZEN = 2
ZERO_ADDRESS = "0x" + "00" * 20
DOCUMENTS_HASH = keccak(b"supplier registration file")
REASON_HASH = keccak(b"regulator notice")

NEW_PAYEE = to_checksum_address("0x" + "5e" * 20)


@pytest.fixture
def registrar(operator):
    return operator


def test_registerPayee_recordsPayeeAndVersion(rules, registrar):
    version_before = rules.rulesVersion()

    receipt = rules.registerPayee(NEW_PAYEE, CATEGORY_EQUIPMENT, DOCUMENTS_HASH, sender=registrar)

    event = receipt.events[0]
    assert event.event_name == "PayeeRegistered"
    assert event.payee == NEW_PAYEE
    assert event.category == CATEGORY_EQUIPMENT
    assert event.documentsHash == DOCUMENTS_HASH
    assert event.registrar == registrar.address
    assert event.rulesVersion == version_before + 1
    assert rules.rulesVersion() == version_before + 1
    entry = rules.payee(NEW_PAYEE)
    assert entry.category == CATEGORY_EQUIPMENT
    assert entry.status == STATUS_ACTIVE
    assert entry.registrar == registrar.address
    assert entry.documentsHash == DOCUMENTS_HASH


@pytest.mark.parametrize("account_name", ["outsider", "regulator", "admin", "officer"])
def test_registerPayee_revertsWithoutRegistrarRole(rules, request, account_name):
    account = request.getfixturevalue(account_name)

    with reverts_with(
        rules.AccessControlUnauthorizedAccount, account=account, neededRole=rules.REGISTRAR_ROLE()
    ):
        rules.registerPayee(NEW_PAYEE, CATEGORY_EQUIPMENT, DOCUMENTS_HASH, sender=account)

    assert rules.payee(NEW_PAYEE).status == STATUS_NONE


def test_registerPayee_revertsWhenAlreadyRegistered(rules, registrar, registered_payees):
    version_before = rules.rulesVersion()

    with reverts_with(rules.FundFlowPayeeAlreadyRegistered, payee=registered_payees[0]):
        rules.registerPayee(
            registered_payees[0], CATEGORY_EQUIPMENT, DOCUMENTS_HASH, sender=registrar
        )

    assert rules.payee(registered_payees[0]).category == CATEGORY_RESEARCH
    assert rules.rulesVersion() == version_before


def test_registerPayee_revertsForZeroAddress(rules, registrar):
    with reverts_with(rules.FundFlowPayeeInvalid, payee=ZERO_ADDRESS):
        rules.registerPayee(ZERO_ADDRESS, CATEGORY_EQUIPMENT, DOCUMENTS_HASH, sender=registrar)


def test_registerPayee_revertsForCategoryZero(rules, registrar):
    with reverts_with(rules.FundFlowCategoryInvalid, category=0):
        rules.registerPayee(NEW_PAYEE, 0, DOCUMENTS_HASH, sender=registrar)

    assert rules.payee(NEW_PAYEE).status == STATUS_NONE


def test_changePayeeCategory_movesPayeeAndVersion(rules, registrar, registered_payees):
    payee = registered_payees[0]
    version_before = rules.rulesVersion()

    receipt = rules.changePayeeCategory(payee, CATEGORY_RAW_MATERIALS, sender=registrar)

    event = receipt.events[0]
    assert event.event_name == "PayeeCategoryChanged"
    assert event.payee == to_checksum_address(payee)
    assert event.previousCategory == CATEGORY_RESEARCH
    assert event.category == CATEGORY_RAW_MATERIALS
    assert event.changedBy == registrar.address
    assert event.rulesVersion == version_before + 1
    assert rules.payee(payee).category == CATEGORY_RAW_MATERIALS
    assert rules.payee(payee).status == STATUS_ACTIVE


def test_changePayeeCategory_allowedForRegulator(rules, regulator, registered_payees):
    receipt = rules.changePayeeCategory(
        registered_payees[1], CATEGORY_CRYPTO_EXCHANGE, sender=regulator
    )

    assert receipt.events[0].changedBy == regulator.address
    assert rules.payee(registered_payees[1]).category == CATEGORY_CRYPTO_EXCHANGE


def test_changePayeeCategory_revertsForOutsider(rules, outsider, registered_payees):
    with reverts_with(
        rules.AccessControlUnauthorizedAccount, account=outsider, neededRole=rules.REGISTRAR_ROLE()
    ):
        rules.changePayeeCategory(registered_payees[0], CATEGORY_RAW_MATERIALS, sender=outsider)


def test_changePayeeCategory_revertsForUnregisteredPayee(rules, registrar):
    with reverts_with(rules.FundFlowPayeeNotRegistered, payee=NEW_PAYEE):
        rules.changePayeeCategory(NEW_PAYEE, CATEGORY_RAW_MATERIALS, sender=registrar)


def test_changePayeeCategory_revertsForCategoryZero(rules, registrar, registered_payees):
    with reverts_with(rules.FundFlowCategoryInvalid, category=0):
        rules.changePayeeCategory(registered_payees[0], 0, sender=registrar)


def test_changePayeeCategory_registrarCannotLeaveBlockedCategory(rules, registrar, crypto_exchange):
    """Relabelling a payee out of a blocked category would lift the regulator's block."""
    with reverts_with(
        rules.FundFlowCategoryBlocked, payee=crypto_exchange, category=CATEGORY_CRYPTO_EXCHANGE
    ):
        rules.changePayeeCategory(crypto_exchange, CATEGORY_RAW_MATERIALS, sender=registrar)

    assert rules.payee(crypto_exchange).category == CATEGORY_CRYPTO_EXCHANGE


def test_changePayeeCategory_regulatorCanLeaveBlockedCategory(rules, regulator, crypto_exchange):
    rules.changePayeeCategory(crypto_exchange, CATEGORY_RAW_MATERIALS, sender=regulator)

    assert rules.checkPayout(crypto_exchange)[0] == CATEGORY_RAW_MATERIALS


def test_changePayeeCategory_keepsFreeze(rules, registrar, regulator, registered_payees):
    payee = registered_payees[0]
    rules.freezePayee(payee, REASON_HASH, sender=regulator)

    rules.changePayeeCategory(payee, CATEGORY_RAW_MATERIALS, sender=registrar)

    assert rules.payee(payee).status == STATUS_FROZEN
    with reverts_with(rules.FundFlowPayeeFrozen, payee=payee, category=CATEGORY_RAW_MATERIALS):
        rules.checkPayout.transact(payee, sender=registrar)


def test_blockCategory_recordsBlockAndVersion(rules, regulator):
    version_before = rules.rulesVersion()

    receipt = rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, REASON_HASH, sender=regulator)

    event = receipt.events[0]
    assert event.event_name == "CategoryBlocked"
    assert event.category == CATEGORY_CRYPTO_EXCHANGE
    assert event.reasonHash == REASON_HASH
    assert event.regulator == regulator.address
    assert event.rulesVersion == version_before + 1
    assert rules.isCategoryBlocked(CATEGORY_CRYPTO_EXCHANGE)


def test_blockCategory_revertsWhenBlocked(rules, regulator):
    rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, REASON_HASH, sender=regulator)
    version_before = rules.rulesVersion()

    with reverts_with(
        rules.FundFlowCategoryStateUnchanged, category=CATEGORY_CRYPTO_EXCHANGE, blocked=True
    ):
        rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, REASON_HASH, sender=regulator)

    assert rules.rulesVersion() == version_before


def test_blockCategory_revertsForCategoryZero(rules, regulator):
    with reverts_with(rules.FundFlowCategoryInvalid, category=0):
        rules.blockCategory(0, REASON_HASH, sender=regulator)


def test_unblockCategory_liftsBlockAndVersion(rules, regulator):
    rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, REASON_HASH, sender=regulator)
    version_before = rules.rulesVersion()

    receipt = rules.unblockCategory(CATEGORY_CRYPTO_EXCHANGE, sender=regulator)

    event = receipt.events[0]
    assert event.event_name == "CategoryUnblocked"
    assert event.category == CATEGORY_CRYPTO_EXCHANGE
    assert event.regulator == regulator.address
    assert event.rulesVersion == version_before + 1
    assert not rules.isCategoryBlocked(CATEGORY_CRYPTO_EXCHANGE)


def test_unblockCategory_revertsWhenNotBlocked(rules, regulator):
    with reverts_with(
        rules.FundFlowCategoryStateUnchanged, category=CATEGORY_CRYPTO_EXCHANGE, blocked=False
    ):
        rules.unblockCategory(CATEGORY_CRYPTO_EXCHANGE, sender=regulator)


def test_freezePayee_recordsFreezeAndVersion(rules, regulator, registered_payees):
    payee = registered_payees[2]
    version_before = rules.rulesVersion()

    receipt = rules.freezePayee(payee, REASON_HASH, sender=regulator)

    event = receipt.events[0]
    assert event.event_name == "PayeeFrozen"
    assert event.payee == to_checksum_address(payee)
    assert event.reasonHash == REASON_HASH
    assert event.regulator == regulator.address
    assert event.rulesVersion == version_before + 1
    assert rules.payee(payee).status == STATUS_FROZEN
    assert rules.payee(payee).category == CATEGORY_RAW_MATERIALS


def test_freezePayee_revertsWhenFrozen(rules, regulator, registered_payees):
    payee = registered_payees[2]
    rules.freezePayee(payee, REASON_HASH, sender=regulator)

    with reverts_with(rules.FundFlowPayeeStateUnchanged, payee=payee, status=STATUS_FROZEN):
        rules.freezePayee(payee, REASON_HASH, sender=regulator)


def test_freezePayee_revertsForUnregisteredPayee(rules, regulator):
    with reverts_with(rules.FundFlowPayeeNotRegistered, payee=NEW_PAYEE):
        rules.freezePayee(NEW_PAYEE, REASON_HASH, sender=regulator)


def test_unfreezePayee_liftsFreezeAndVersion(rules, regulator, registered_payees):
    payee = registered_payees[2]
    rules.freezePayee(payee, REASON_HASH, sender=regulator)
    version_before = rules.rulesVersion()

    receipt = rules.unfreezePayee(payee, sender=regulator)

    event = receipt.events[0]
    assert event.event_name == "PayeeUnfrozen"
    assert event.payee == to_checksum_address(payee)
    assert event.regulator == regulator.address
    assert event.rulesVersion == version_before + 1
    assert rules.payee(payee).status == STATUS_ACTIVE


def test_unfreezePayee_revertsWhenNotFrozen(rules, regulator, registered_payees):
    payee = registered_payees[2]

    with reverts_with(rules.FundFlowPayeeStateUnchanged, payee=payee, status=STATUS_ACTIVE):
        rules.unfreezePayee(payee, sender=regulator)


REGULATOR_ACTIONS = {
    "blockCategory": lambda rules, payee, sender: rules.blockCategory(
        CATEGORY_CRYPTO_EXCHANGE, REASON_HASH, sender=sender
    ),
    "unblockCategory": lambda rules, payee, sender: rules.unblockCategory(
        CATEGORY_CRYPTO_EXCHANGE, sender=sender
    ),
    "freezePayee": lambda rules, payee, sender: rules.freezePayee(
        payee, REASON_HASH, sender=sender
    ),
    "unfreezePayee": lambda rules, payee, sender: rules.unfreezePayee(payee, sender=sender),
}


@pytest.fixture
def regulator_action_ready(rules, regulator, registered_payees, action):
    """Prepare the state in which the regulator's own call of the action would succeed."""
    if action == "unblockCategory":
        rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, REASON_HASH, sender=regulator)
    if action == "unfreezePayee":
        rules.freezePayee(registered_payees[0], REASON_HASH, sender=regulator)
    return registered_payees[0]


@pytest.mark.parametrize("account_name", ["operator", "outsider", "admin", "officer"])
@pytest.mark.parametrize("action", sorted(REGULATOR_ACTIONS))
def test_regulatorAction_revertsForOthers(
    rules, regulator, regulator_action_ready, request, action, account_name
):
    account = request.getfixturevalue(account_name)
    payee = regulator_action_ready
    version_before = rules.rulesVersion()

    with reverts_with(
        rules.AccessControlUnauthorizedAccount, account=account, neededRole=rules.REGULATOR_ROLE()
    ):
        REGULATOR_ACTIONS[action](rules, payee, account)

    assert rules.rulesVersion() == version_before
    REGULATOR_ACTIONS[action](rules, payee, regulator)
    assert rules.rulesVersion() == version_before + 1


def test_rulesVersion_incrementsOncePerChange(rules, registrar, regulator):
    changes = [
        lambda: rules.registerPayee(NEW_PAYEE, CATEGORY_RESEARCH, DOCUMENTS_HASH, sender=registrar),
        lambda: rules.changePayeeCategory(NEW_PAYEE, CATEGORY_EQUIPMENT, sender=registrar),
        lambda: rules.blockCategory(CATEGORY_EQUIPMENT, REASON_HASH, sender=regulator),
        lambda: rules.freezePayee(NEW_PAYEE, REASON_HASH, sender=regulator),
        lambda: rules.unfreezePayee(NEW_PAYEE, sender=regulator),
        lambda: rules.unblockCategory(CATEGORY_EQUIPMENT, sender=regulator),
    ]
    version = rules.rulesVersion()

    for change in changes:
        receipt = change()

        version += 1
        assert len(receipt.events) == 1
        assert receipt.events[0].rulesVersion == version
        assert rules.rulesVersion() == version


def test_checkPayout_returnsCategoryAndVersion(rules, registered_payees):
    category, version = rules.checkPayout(registered_payees[1])

    assert category == CATEGORY_EQUIPMENT
    assert version == rules.rulesVersion()


# The view reverts are sent as transactions because ape does not decode reverts of eth_call.


def test_checkPayout_revertsForEachRule(
    rules, regulator, outsider, registered_payees, crypto_exchange
):
    with reverts_with(rules.FundFlowPayeeNotRegistered, payee=NEW_PAYEE):
        rules.checkPayout.transact(NEW_PAYEE, sender=outsider)
    with reverts_with(rules.FundFlowPayeeNotRegistered, payee=ZERO_ADDRESS):
        rules.checkPayout.transact(ZERO_ADDRESS, sender=outsider)
    with reverts_with(
        rules.FundFlowCategoryBlocked, payee=crypto_exchange, category=CATEGORY_CRYPTO_EXCHANGE
    ):
        rules.checkPayout.transact(crypto_exchange, sender=outsider)

    rules.freezePayee(registered_payees[0], REASON_HASH, sender=regulator)

    with reverts_with(
        rules.FundFlowPayeeFrozen, payee=registered_payees[0], category=CATEGORY_RESEARCH
    ):
        rules.checkPayout.transact(registered_payees[0], sender=outsider)


def test_checkPayout_reportsFreezeBeforeBlock(rules, regulator, outsider, crypto_exchange):
    rules.freezePayee(crypto_exchange, REASON_HASH, sender=regulator)

    with reverts_with(
        rules.FundFlowPayeeFrozen, payee=crypto_exchange, category=CATEGORY_CRYPTO_EXCHANGE
    ):
        rules.checkPayout.transact(crypto_exchange, sender=outsider)
