"""The keyring: the root key registers itself, keys are registered and revoked under it, and every event's
signer must hold a key valid for the event's role at the event's time."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial

import pytest

from ledger.bootstrap import Ledger
from ledger.envelope import Actor, format_at
from ledger.errors import AlreadyInitializedError, KeyDirectoryError
from ledger.keys import SigningKey
from ledger.roles import command_role_error
from ledger.rules import Rule
from ledger.service import anchor, initialize, member_key
from ledger.store import decode_entry
from schemas.commands.keys import RegisterKey, RevokeKey
from schemas.commands.membership import Deposit, Exit
from schemas.commands.period import WindDown
from schemas.commands.plan import AnnounceClosing, CreatePlan
from sim.fixtures import rules
from tests.support import advance, cid, clock_of, create_plan, join, prepaid_rules, rejected


def test_the_first_event_registers_the_root_key_by_itself(ledger_app: Ledger) -> None:
    first = decode_entry(next(ledger_app.entries())[1])
    root = ledger_app.app.signing_key("operator-root")
    assert (first.type, first.seq, first.prev) == ("key.registered", 1, None)
    assert first.actor.key == root.key_id == first.body["key_id"]
    assert first.body["public_key"] == root.public_base64
    keyring = ledger_app.app.keyring()
    roles = sorted(k.role for k in keyring.keys.values())
    assert roles == ["custodian", "investigator", "operator", "operator", "regulator"]  # the log key is not there
    assert ledger_app.signers.load("log").key_id not in keyring.keys
    anchors = json.loads((ledger_app.settings.data_dir / "trust-anchors.json").read_text())
    assert anchors["operator-root"]["key_id"] == root.key_id
    assert set(anchors) == {"operator-root", "log", "custodian", "regulator"}
    assert anchors["log"]["verifier_key"] == ledger_app.checkpoints.verifier.encode()


def test_a_log_is_initialized_once(ledger_app: Ledger) -> None:
    before = ledger_app.app.recorder.max_notification_id()
    with pytest.raises(AlreadyInitializedError):
        initialize(ledger_app)
    assert ledger_app.app.recorder.max_notification_id() == before


def test_keys_must_be_registered_under_the_root_key(ledger_app: Ledger) -> None:
    key = SigningKey.generate("extra", "investigator")
    command = RegisterKey(command_id=cid(), role="investigator", public_key=key.public_base64)
    rejected(ledger_app, lambda: ledger_app.execute(command, sign_as="operator"),
             "signer", "keyring_changes_must_be_signed_by_the_root_key")
    assert ledger_app.execute(command)["key_id"] == key.key_id


def test_a_key_is_registered_once(ledger_app: Ledger) -> None:
    custodian = ledger_app.app.signing_key("custodian")
    rejected(ledger_app, lambda: ledger_app.execute(
        RegisterKey(command_id=cid(), role="custodian", public_key=custodian.public_base64)),
        "public_key", "key_must_not_be_registered_twice")


def test_member_keys_name_their_member_and_others_do_not(ledger_app: Ledger) -> None:
    key = SigningKey.generate("k", "member")
    rejected(ledger_app, lambda: ledger_app.execute(
        RegisterKey(command_id=cid(), role="member", public_key=key.public_base64)),
        "member", "member_and_juror_keys_name_their_member_and_others_do_not")
    rejected(ledger_app, lambda: ledger_app.execute(
        RegisterKey(command_id=cid(), role="custodian", public_key=key.public_base64,
                    member="0b6f5c1e-2f0c-4c43-9a43-4b8e2b8a2f10")),
        "member", "member_and_juror_keys_name_their_member_and_others_do_not")


def test_member_and_juror_keys_name_a_member_the_ledger_holds(ledger_app: Ledger) -> None:
    """Seed 104 of the fault simulation (`python -m sim --seed 104 --steps 30`): a juror's key registered for an
    unknown member id (the simulation's unknown-reference probe) was done — a key for no one, in the keyring for
    good."""
    key = SigningKey.generate("k", "juror")
    for role in ("member", "juror"):
        unknown = RegisterKey(command_id=cid(), role=role, public_key=key.public_base64,
                              member="0b6f5c1e-2f0c-4c43-9a43-4b8e2b8a2f10")
        rejected(ledger_app, partial(ledger_app.execute, unknown), "member", "membership_must_exist")
    plan = create_plan(ledger_app)
    rejected(ledger_app, lambda: ledger_app.execute(RegisterKey(
        command_id=cid(), role="juror", public_key=key.public_base64, member=plan)), "member",
        "id_must_name_the_expected_kind")
    member = join(ledger_app, plan)
    registered = ledger_app.execute(RegisterKey(command_id=cid(), role="juror", public_key=key.public_base64,
                                                member=member))
    assert registered["key_id"] == key.key_id


def test_revocation_rules(ledger_app: Ledger) -> None:
    root = ledger_app.app.signing_key("operator-root").key_id
    rejected(ledger_app, lambda: ledger_app.execute(RevokeKey(command_id=cid(), key_id=root)),
             "key_id", "root_key_cannot_be_revoked")
    rejected(ledger_app, lambda: ledger_app.execute(RevokeKey(command_id=cid(), key_id="00" * 8)),
             "key_id", "key_must_be_registered")
    investigator = ledger_app.app.signing_key("investigator").key_id
    ledger_app.execute(RevokeKey(command_id=cid(), key_id=investigator))
    rejected(ledger_app, lambda: ledger_app.execute(RevokeKey(command_id=cid(), key_id=investigator)),
             "key_id", "key_must_not_be_revoked_twice")


def test_a_revoked_key_signs_nothing_from_its_revocation_on(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, prepaid_rules())
    member = join(ledger_app, plan)
    ledger_app.execute(Deposit(command_id=cid(), member=member, amount_fen=1000, reference="bank-1"))
    advance(ledger_app, hours=1)
    ledger_app.execute(RevokeKey(command_id=cid(), key_id=ledger_app.app.signing_key("custodian").key_id))
    advance(ledger_app, hours=1)
    rejected(ledger_app, lambda: ledger_app.execute(
        Deposit(command_id=cid(), member=member, amount_fen=1000, reference="bank-2")),
        "signer", "signing_key_must_be_registered_and_valid_for_its_role")
    replacement = SigningKey.generate("custodian-2", "custodian")
    ledger_app.signers.party("custodian").save(replacement)
    ledger_app.app.anchors = anchor(ledger_app.settings.data_dir, "custodian-2", replacement.public_facts())
    ledger_app.execute(RegisterKey(command_id=cid(), role="custodian", public_key=replacement.public_base64))
    ledger_app.execute(Deposit(command_id=cid(), member=member, amount_fen=1000, reference="bank-2"),
                       sign_as="custodian-2")


def test_an_unregistered_key_signs_nothing(ledger_app: Ledger) -> None:
    stranger = SigningKey.generate("stranger", "operator")
    ledger_app.signers.own.save(stranger)
    rejected(ledger_app, lambda: ledger_app.execute(
        CreatePlan(command_id=cid(), name="x", kind="cancer", rules=rules()), sign_as="stranger"),
        "signer", "signing_key_must_be_registered_and_valid_for_its_role")


def test_a_custodian_or_regulator_key_outside_the_trust_anchors_is_never_registered(ledger_app: Ledger) -> None:
    for role in ("custodian", "regulator"):
        outsider = SigningKey.generate(f"forged-{role}", role)
        rejected(ledger_app, lambda role=role, outsider=outsider: ledger_app.execute(  # type: ignore[misc]
            RegisterKey(command_id=cid(), role=role, public_key=outsider.public_base64)),
            "public_key", "custodian_and_regulator_keys_must_be_trust_anchors")


def test_the_root_key_signs_keyring_events_only_and_the_log_key_signs_no_event(ledger_app: Ledger) -> None:
    command = CreatePlan(command_id=cid(), name="x", kind="cancer", rules=rules())
    rejected(ledger_app, lambda: ledger_app.execute(command, sign_as="operator-root"),
             "signer", "root_key_signs_only_keyring_events")
    rejected(ledger_app, lambda: ledger_app.execute(command, sign_as="log"),
             "signer", "this_event_must_be_signed_by_an_operator_key")
    rejected(ledger_app, lambda: ledger_app.execute(
        RegisterKey(command_id=cid(), role="investigator", public_key=SigningKey.generate("i", "investigator")
                    .public_base64), sign_as="log"),
        "signer", "keyring_changes_must_be_signed_by_the_root_key")


def test_a_key_name_outside_the_key_directory_is_refused(ledger_app: Ledger) -> None:
    from ledger.errors import KeyDirectoryError

    for name in ("../operator/keys/operator", "/etc/passwd", ".hidden", "a/b"):
        with pytest.raises(KeyDirectoryError, match="key_name_must_name_a_key_in_the_key_directory"):
            ledger_app.execute(CreatePlan(command_id=cid(), name="x", kind="cancer", rules=rules()), sign_as=name)


def test_role_rules_are_enforced_before_writing(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, prepaid_rules())
    member = join(ledger_app, plan)
    rejected(ledger_app, lambda: ledger_app.execute(
        Deposit(command_id=cid(), member=member, amount_fen=500, reference="r-1"), sign_as="operator"),
        "signer", "fund_movements_must_be_signed_by_a_custodian_key")
    rejected(ledger_app, lambda: ledger_app.execute(
        CreatePlan(command_id=cid(), name="x", kind="cancer", rules=rules()), sign_as="custodian"),
        "signer", "this_event_must_be_signed_by_an_operator_key")


def test_a_command_that_writes_no_event_is_refused_to_a_key_of_another_role(ledger_app: Ledger) -> None:
    """Found by the fault simulation's wrong-signer probe (docs/simulation.md): a collection with nothing to collect,
    signed by the investigator's key, was done and its receipt stored — the role rules were checked on the events a
    command writes, and it wrote none. Its signer is now checked against the command's role (here a wind-down with
    nothing left to do)."""
    member = join(ledger_app, create_plan(ledger_app, name="Open plan"))
    key = member_key(ledger_app, member)
    plan = create_plan(ledger_app, prepaid_rules())
    now = clock_of(ledger_app).now()
    ledger_app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(now + timedelta(days=3)),
                                       refund_deadline=format_at(now + timedelta(days=17)), claim_tail_days=0))
    empty = WindDown(command_id=cid("wind-down"), plan=plan)  # no member, no balance: nothing to record
    receipts = ledger_app.app.ledger_recorder.select_receipts
    for signer, rule in (("investigator", "this_event_must_be_signed_by_an_operator_key"),
                         ("custodian", "this_event_must_be_signed_by_an_operator_key"),
                         ("operator-root", "root_key_signs_only_keyring_events")):
        rejected(ledger_app, partial(ledger_app.execute, empty, sign_as=signer), "signer", rule)
        assert not receipts([empty.command_id])  # not done: no receipt either
    rejected(ledger_app, lambda: ledger_app.execute(empty, sign_as=key.name), "signer",
             "this_event_must_be_signed_by_an_operator_key")
    assert ledger_app.execute(empty, sign_as="operator")["events"] == []  # the operator's own: done, nothing to do
    assert receipts([empty.command_id])


def test_a_signer_of_a_command_that_writes_nothing_has_its_role(ledger_app: Ledger) -> None:
    """The command-level role rules (`command_role_error`) for each role: a member's or juror's key only for the
    member the command names, an operator key for a member's request, the root key never."""
    keyring = ledger_app.app.keyring()
    root = keyring.root_key_id
    member = Actor("member", "k-member")
    assert command_role_error("member", member, "m1", {"member": "m1"}, root) is None
    assert command_role_error("member", member, "m1", {"member": "m2"}, root) == (
        Rule.MEMBER_REQUESTS_MUST_BE_SIGNED_BY_THE_MEMBER_OR_THE_OPERATOR_ON_THEIR_BEHALF)
    assert command_role_error("member", Actor("operator", "k-op", "m2"), None, {"member": "m2"}, root) is None
    assert command_role_error("juror", Actor("juror", "k-juror"), "j1", {"juror": "j1"}, root) is None
    assert command_role_error("juror", Actor("juror", "k-juror"), "j1", {"juror": "j2"}, root) == (
        Rule.VOTES_MUST_BE_SIGNED_BY_THE_JURORS_OWN_KEY)
    assert command_role_error("custodian", Actor("operator", "k-op"), None, {}, root) == (
        Rule.FUND_MOVEMENTS_MUST_BE_SIGNED_BY_A_CUSTODIAN_KEY)
    assert command_role_error("regulator", Actor("custodian", "k-c"), None, {}, root) == (
        Rule.REGULATOR_REPORTS_MUST_BE_SIGNED_BY_A_REGULATOR_KEY)
    assert command_role_error("investigator", Actor("operator", "k-op"), None, {}, root) == (
        Rule.INVESTIGATIONS_MUST_BE_SIGNED_BY_AN_INVESTIGATOR_KEY)
    assert command_role_error("operator", Actor("operator", str(root)), None, {}, root) == (
        Rule.ROOT_KEY_SIGNS_ONLY_KEYRING_EVENTS)
    assert command_role_error("custodian", Actor("custodian", "k-c"), None, {}, root) is None


def test_a_member_request_is_signed_by_that_members_key(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    alice, bob = join(ledger_app, plan), join(ledger_app, plan)
    joined = [decode_entry(e) for _, e in ledger_app.entries()][-1]
    assert joined.actor.role == "operator" and joined.actor.on_behalf_of == bob
    key = member_key(ledger_app, alice)
    rejected(ledger_app, lambda: ledger_app.execute(Exit(command_id=cid(), member=bob), sign_as=key.name),
             "signer", "member_requests_must_be_signed_by_the_member_or_the_operator_on_their_behalf")
    ledger_app.execute(Exit(command_id=cid(), member=alice))
    exited = [decode_entry(e) for _, e in ledger_app.entries()][-1]
    assert (exited.type, exited.actor.role, exited.actor.key) == ("member.exited", "member", key.key_id)


def test_a_missing_private_key_is_a_clear_error(ledger_app: Ledger) -> None:
    before = ledger_app.app.recorder.max_notification_id()
    with pytest.raises(KeyDirectoryError):
        ledger_app.execute(CreatePlan(command_id=cid(), name="x", kind="cancer", rules=rules()),
                           sign_as="nobody")
    assert ledger_app.app.recorder.max_notification_id() == before
