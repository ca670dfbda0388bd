"""Privacy by construction (docs/privacy.md): sealed fields and their contract, the vault and its tampering, keyed
ids, the signer of sealed requests, reveal, the audit with and without sealed values, and erasure."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from click.testing import CliRunner, Result
from kafka import KafkaConsumer, TopicPartition

from audit.bundle import verify_bundle
from audit.verify import Auditor
from consumers.relay import Relay
from ledger.anchors import TrustAnchors
from ledger.bootstrap import Ledger
from ledger.cli import main
from ledger.errors import KeyDirectoryError, RefusedError, VerificationError
from ledger.log.bundle import build_bundle
from ledger.reveal import check_records, may_see, reveal_claim, reveal_member
from ledger.rules import Rule
from ledger.sealing import Revealed, age_band, check_revealed, commitment
from ledger.service import member_key
from ledger.store import decode_entry
from ledger.unit_of_work import UnitOfWork
from ledger.vault import VAULT_KEY_FILE, Vault
from schemas.commands.claim import DecideClaim, FileClaim, NoticeClaim, PayClaim
from schemas.commands.disclosure import PublishDisclosure
from schemas.commands.membership import Deposit, DisburseRefund, EraseMember, Exit, QualifyJuror, RecordFraud
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, SettlePeriod
from sim.fixtures import START
from sim.fixtures import commitment as document_commitment
from tests.support import (
    advance,
    cid,
    clock_of,
    create_plan,
    join,
    new_ledger,
    prepaid_rules,
    rejected,
    reopen,
    sealed_values,
)
from tests.test_claim import investigate
from tests.test_period import at_local

KNOWN_SALT = bytes(range(32))
"""The salt of the known-answer vectors docs/privacy.md gives."""


def day(app: Ledger, days: int = 0) -> str:
    """The simulated date, shifted."""
    from datetime import timedelta

    return (clock_of(app).current.date() + timedelta(days=days)).isoformat()


def file(app: Ledger, member: str, diagnosed_on: str, age: int = 30, category: str = "illness") -> str:
    """File a claim and return its id."""
    return str(app.execute(FileClaim(
        command_id=cid(), member=member, category=category, condition="breast_cancer",  # type: ignore[arg-type]
        diagnosed_on=diagnosed_on, age_at_diagnosis=age, evidence_commitment=document_commitment("evidence")))["claim"])


def body_of(app: Ledger, stream: str, seq: int = 1) -> tuple[str, int, dict[str, Any]]:
    """(type, schema, body) of a stored event."""
    envelope = next(e for e in map(decode_entry, (x for _, x in app.entries())) if (e.stream, e.seq) == (stream, seq))
    return envelope.type, envelope.schema, envelope.body


def execute_sql(app: Ledger, statement: str, parameters: tuple[Any, ...]) -> None:
    """Change the store behind the ledger's back (a tampering test), on either backend."""
    recorder = app.app.ledger_recorder
    if app.settings.database_url is not None:
        schema = getattr(recorder.datastore, "schema")  # noqa: B009  (PostgreSQL's datastore only)
        for table in ("vault_values", "vault_keys", "command_receipts"):
            statement = statement.replace(f" {table} ", f' "{schema}".{table} ')
        statement = statement.replace("?", "%s")
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(statement, parameters)


# -- the contract -------------------------------------------------------------------------------------------


def test_the_commitment_is_sha256_of_the_salt_and_the_values_rfc8785_bytes() -> None:
    assert commitment(KNOWN_SALT, "2026-03-14") == hashlib.sha256(KNOWN_SALT + b'"2026-03-14"').hexdigest()
    assert commitment(KNOWN_SALT, 42) == hashlib.sha256(KNOWN_SALT + b"42").hexdigest()
    # the known answers docs/privacy.md prints, so an outside verifier can check its own implementation
    assert commitment(KNOWN_SALT, "2026-03-14") == "9b0f5a1edee93d2df27a315fb9f0c8dc38c9769bd84ffe1d63944b4ecee4ee48"
    assert commitment(KNOWN_SALT, 42) == "5d772254909c0127008b84602372a120054b8a2929e8d4f1638dfffba63f947f"
    docs = (Path(__file__).parent.parent / "docs" / "privacy.md").read_text(encoding="utf-8")
    assert "9b0f5a1edee93d2df27a315fb9f0c8dc38c9769bd84ffe1d63944b4ecee4ee48" in docs
    assert (age_band(0), age_band(42), age_band(45), age_band(59)) == ("0-4", "40-44", "45-49", "55-59")


def test_a_revealed_value_opens_its_commitment_only_with_its_salt_and_coarse_value() -> None:
    body = {"member_sealed": commitment(KNOWN_SALT, "00000000-0000-4000-8000-000000000000"),
            "diagnosed_on_sealed": commitment(KNOWN_SALT, "2026-03-14"), "diagnosed_month": "2026-03",
            "age_at_diagnosis_sealed": commitment(KNOWN_SALT, 42), "age_band": "40-44"}

    def why(field: str, value: Any, salt: bytes = KNOWN_SALT, month: str = "2026-03") -> str | None:
        return check_revealed("claim.filed", 2, {**body, "diagnosed_month": month},
                              Revealed("s", 1, field, value, salt))

    assert why("diagnosed_on", "2026-03-14") is None and why("age_at_diagnosis", 42) is None
    assert "does not match its commitment" in str(why("diagnosed_on", "2026-03-15"))
    assert "does not match its commitment" in str(why("diagnosed_on", "2026-03-14", bytes(32)))
    assert "does not fall in the public diagnosed_month" in str(why("diagnosed_on", "2026-03-14", month="2026-04"))
    assert "seals no field" in str(why("condition", "breast_cancer"))
    assert "must be an integer" in str(why("age_at_diagnosis", "42"))
    assert "not of its shape" in str(why("diagnosed_on", "14/03/2026"))
    assert "seals no field" in str(check_revealed("claim.filed", 1, body, Revealed("s", 1, "member", "x", KNOWN_SALT)))
    with pytest.raises(ValueError, match="salt must be 32 bytes"):
        Revealed.from_json_value({"stream": "s", "seq": 1, "field": "diagnosed_on", "value": "x", "salt": "00"})


# -- sealed claims on the log -------------------------------------------------------------------------------


@pytest.fixture
def plan(ledger_app: Ledger) -> str:
    return create_plan(ledger_app)


def test_a_filed_claim_seals_who_when_and_how_old_and_shows_only_coarse_values(ledger_app: Ledger, plan: str
                                                                                ) -> None:
    member = join(ledger_app, plan, age=42)
    advance(ledger_app, days=100)
    diagnosed = day(ledger_app, -3)
    claim = file(ledger_app, member, diagnosed, age=42)
    kind, schema, body = body_of(ledger_app, claim)
    assert (kind, schema) == ("claim.filed", 2)
    assert "member" not in body and "diagnosed_on" not in body and "age_at_diagnosis" not in body
    assert (body["age_band"], body["diagnosed_month"], body["condition"]) == ("40-44", diagnosed[:7], "breast_cancer")
    entry = next(x for _, x in ledger_app.entries() if decode_entry(x).stream == claim)
    assert member.encode() not in entry and diagnosed.encode() not in entry
    envelope = decode_entry(entry)
    assert (envelope.actor.role, envelope.actor.on_behalf_of) == ("operator", None)  # no one named as signer
    opened = sealed_values(ledger_app, claim)
    assert opened == {"member": member, "diagnosed_on": diagnosed, "age_at_diagnosis": 42,
                      "joined_at": opened["joined_at"]}
    for _, record in ledger_app.app.vault.values_of_stream(claim):
        assert check_revealed(kind, schema, body, record) is None


def test_a_sealed_request_is_signed_by_an_operator_key_for_no_one_named(ledger_app: Ledger, plan: str) -> None:
    member = join(ledger_app, plan)
    key = member_key(ledger_app, member)
    advance(ledger_app, days=100)
    rejected(ledger_app, lambda: ledger_app.execute(FileClaim(
        command_id=cid(), member=member, category="illness", condition="breast_cancer",
        diagnosed_on=day(ledger_app, -1), age_at_diagnosis=30, evidence_commitment=document_commitment()),
        sign_as=key.name),
        "signer", Rule.SEALED_REQUESTS_MUST_BE_SIGNED_BY_AN_OPERATOR_KEY_FOR_NO_ONE_NAMED)
    assert ledger_app.app.vault.streams_of(member) == set()  # nothing sealed either


def test_a_sealed_claims_receipt_keeps_a_keyed_hash_of_the_request(ledger_app: Ledger, plan: str) -> None:
    from ledger.application import request_hash

    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    command = FileClaim(command_id=cid(), member=member, category="illness", condition="breast_cancer",
                        diagnosed_on=day(ledger_app, -1), age_at_diagnosis=30,
                        evidence_commitment=document_commitment())
    first = ledger_app.execute(command)
    assert member not in json.dumps(first)  # the receipt's result does not tie the claim to its member
    stored = ledger_app.app.ledger_recorder.select_receipts([command.command_id])[command.command_id]
    assert stored.request_hash != request_hash(command)  # a plain hash would confirm a guessed date or age
    assert stored.request_hash == request_hash(command, ledger_app.app.vault.receipt_key)
    assert ledger_app.execute(command) == {**first, "repeated": True}


LEGACY = Path(__file__).parent / "vectors" / "legacy-v1"
"""An export written by the code before ages and fraud findings were sealed (tests/vectors/README.md)."""


def test_an_export_from_before_the_ages_were_sealed_still_loads_and_verifies() -> None:
    from datetime import UTC, datetime
    from typing import cast

    from ledger.aggregates.membership import Membership
    from ledger.envelope import Actor
    from ledger.log.note import Verifier
    from schemas.events import MemberJoinedV1

    entries = (LEGACY / "export.jsonl").read_bytes().splitlines()
    envelopes = [decode_entry(entry) for entry in entries]  # every body validates against its version's model
    kinds = {(e.type, e.schema) for e in envelopes}
    assert {("member.joined", 1), ("member.juror_qualified", 1), ("member.fraud_recorded", 1)} <= kinds
    assert not {("member.joined", 2), ("member.juror_qualified", 2), ("member.fraud_recorded", 2)} & kinds
    anchors = TrustAnchors.load(LEGACY / "trust-anchors.json")
    assert anchors.log_verifier_key is not None
    report = Auditor(anchors, Verifier.parse(anchors.log_verifier_key)).run(
        entries, [(LEGACY / "checkpoint.txt").read_text()])
    assert report.ok, report.failures[:3]
    assert "13 sealed (joining)" not in report.needs_sealed_values  # a v1 join's age is public, as it was
    assert report.needs_sealed_values["13 sealed (filing)"] > 0
    tampered = [entry.replace(b'"age_years":', b'"age_years": ', 1) if b'"member.joined"' in entry else entry
                for entry in entries]
    assert not Auditor(anchors).run(tampered).ok
    # a v1 join's age is read as it is, without the vault
    joined = next(e for e in envelopes if e.type == "member.joined")
    membership = Membership.start(Membership.Joined, UUID(joined.stream), datetime(2026, 1, 1, tzinfo=UTC),
                                  Actor("operator", "k"), MemberJoinedV1.from_json_value(joined.body))
    uow = UnitOfWork(cast(Any, None), cast(Any, None), datetime(2026, 1, 1, tzinfo=UTC))
    assert uow.age_at_joining(membership) == joined.body["age_years"]


# -- the vault ----------------------------------------------------------------------------------------------


def test_the_vault_is_in_the_store_and_refuses_every_altered_moved_or_foreign_row(ledger_app: Ledger, plan: str
                                                                                 ) -> None:
    member, other = join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim, theirs = file(ledger_app, member, day(ledger_app, -2)), file(ledger_app, other, day(ledger_app, -2))
    vault = ledger_app.app.vault
    recorder = ledger_app.app.ledger_recorder
    row = next(r for r in recorder.select_vault_values(stream=claim) if r.field == "diagnosed_on")
    flipped = row.sealed[:-1] + bytes([row.sealed[-1] ^ 1])
    execute_sql(ledger_app, "UPDATE vault_values SET sealed = ? WHERE stream = ? AND field = ?",
                (flipped, claim, "diagnosed_on"))
    with pytest.raises(VerificationError, match=f"the sealed diagnosed_on of {claim}#1 does not open"):
        vault.values_of_stream(claim)
    execute_sql(ledger_app, "UPDATE vault_values SET sealed = ? WHERE stream = ? AND field = ?",
                (row.sealed, claim, "diagnosed_on"))
    assert sealed_values(ledger_app, claim)["member"] == member
    # a value moved to another field of the same event does not open
    age = next(r for r in recorder.select_vault_values(stream=claim) if r.field == "age_at_diagnosis")
    execute_sql(ledger_app, "UPDATE vault_values SET sealed = ? WHERE stream = ? AND field = ?",
                (age.sealed, claim, "diagnosed_on"))
    with pytest.raises(VerificationError, match="does not open"):
        vault.values_of_stream(claim)
    execute_sql(ledger_app, "UPDATE vault_values SET sealed = ? WHERE stream = ? AND field = ?",
                (row.sealed, claim, "diagnosed_on"))
    # one member's wrapped data key given to another does not open
    wrapped = recorder.select_vault_key(other)
    assert wrapped is not None
    execute_sql(ledger_app, "UPDATE vault_keys SET wrapped = ? WHERE member = ?", (wrapped, member))
    with pytest.raises(VerificationError, match=f"the data key of member {member} does not open"):
        vault.values_of(member)
    # another vault key opens nothing
    assert {r.field for r in vault.values_of(other)} == {"age_years", "member", "diagnosed_on", "age_at_diagnosis",
                                                         "joined_at"}
    with pytest.raises(VerificationError, match="does not open"):
        Vault(recorder, bytes(32)).values_of_stream(theirs)


def test_without_the_vault_key_nothing_is_sealed_or_written(tmp_path: Path) -> None:
    from tests.support import reopen

    app = new_ledger(tmp_path, None)
    plan = create_plan(app)
    before = app.app.recorder.max_notification_id()
    key_file = app.settings.key_dir / VAULT_KEY_FILE
    saved = key_file.read_bytes()
    key_file.unlink()
    other = reopen(app)
    with pytest.raises(KeyDirectoryError) as missing:
        join(other, plan)
    assert missing.value.rule == Rule.VAULT_KEY_MUST_EXIST
    key_file.write_text("not base64 of 32 bytes\n")
    with pytest.raises(KeyDirectoryError) as malformed:
        join(reopen(app), plan)
    assert malformed.value.rule == Rule.VAULT_KEY_MUST_BE_32_BYTES_OF_BASE64
    assert app.app.recorder.max_notification_id() == before  # no join written
    key_file.write_bytes(saved)
    assert UUID(join(reopen(app), plan)).version == 8
    assert clock_of(app).current == START


def test_the_vault_key_is_protected_by_the_passphrase_when_one_is_set(tmp_path: Path) -> None:
    from dataclasses import replace

    from ledger.vault import PROTECTED, load_vault_key, vault_key_text

    app = new_ledger(tmp_path, None, key_passphrase=b"correct horse")
    plan = create_plan(app)
    key_file = app.settings.key_dir / VAULT_KEY_FILE
    text = key_file.read_text()
    key = load_vault_key(app.settings.key_dir, b"correct horse")
    assert text.startswith(PROTECTED + " scrypt ") and base64.b64encode(key).decode() not in text
    assert UUID(join(app, plan)).version == 8  # the process with the passphrase seals
    before = app.app.recorder.max_notification_id()
    for passphrase in (b"wrong", None):
        other = reopen(replace(app, settings=replace(app.settings, key_passphrase=passphrase)))
        with pytest.raises(KeyDirectoryError) as refused:
            join(other, plan)
        assert (refused.value.field, refused.value.rule) == ("vault_key", Rule.KEY_FILE_MUST_OPEN_WITH_THE_PASSPHRASE)
    fields = text.split()
    sealed = bytearray(base64.b64decode(fields[-1]))
    sealed[0] ^= 1
    key_file.write_text(" ".join([*fields[:-1], base64.b64encode(bytes(sealed)).decode()]) + "\n")
    with pytest.raises(KeyDirectoryError) as damaged:
        load_vault_key(app.settings.key_dir, b"correct horse")
    assert damaged.value.rule == Rule.KEY_FILE_MUST_OPEN_WITH_THE_PASSPHRASE
    assert app.app.recorder.max_notification_id() == before  # nothing written without the key
    key_file.write_text(vault_key_text(key, b"correct horse"))  # sealed again (fresh salt): the same key opens
    assert load_vault_key(app.settings.key_dir, b"correct horse") == key


def test_rotating_the_vault_key_rewraps_every_data_key_and_keeps_ids_receipts_and_values(
        ledger_app: Ledger, plan: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import ledger.vault as vault_module
    from ledger.vault import load_vault_key, rotate_vault_key

    member, other = join(ledger_app, plan, age=42), join(ledger_app, plan, age=30)
    advance(ledger_app, days=100)
    command = FileClaim(command_id=cid(), member=member, category="illness", condition="breast_cancer",
                        diagnosed_on=day(ledger_app, -1), age_at_diagnosis=42,
                        evidence_commitment=document_commitment())
    first = ledger_app.execute(command)
    recorder, key_dir = ledger_app.app.ledger_recorder, ledger_app.settings.key_dir
    old_key, old_vault = load_vault_key(key_dir), ledger_app.app.vault
    values = {m: reveal_member(ledger_app.app, m) for m in (member, other)}
    wrapped = {m: recorder.select_vault_key(m) for m in (member, other)}

    def fresh() -> Ledger:  # another process, which reads the key file anew
        return reopen(ledger_app, clock_of(ledger_app))

    # a crash after the rewrap committed, before the new file replaced the old: the old file opens nothing ...
    monkeypatch.setattr("ledger.vault.os.replace", lambda *_: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError, match="crash"):
        rotate_vault_key(recorder, key_dir, None)
    monkeypatch.undo()
    with pytest.raises(VerificationError, match="does not open"):
        reveal_member(fresh().app, member)
    # ... until the rotation is run again, which finishes it
    assert rotate_vault_key(recorder, key_dir, None) == 0
    rotated = fresh()
    assert {m: reveal_member(rotated.app, m) for m in (member, other)} == values
    new_key = load_vault_key(key_dir)
    assert len(new_key) == 64 and new_key[32:] == old_key and new_key[:32] != old_key
    assert all(recorder.select_vault_key(m) != wrapped[m] for m in (member, other))
    with pytest.raises(VerificationError, match="does not open"):
        old_vault.values_of(member)  # the old key opens no data key any more
    assert (rotated.app.vault.id_key, rotated.app.vault.receipt_key) == (old_vault.id_key, old_vault.receipt_key)
    assert rotated.execute(command) == {**first, "repeated": True}  # receipts and ids keep their keys
    # a crash before the rewrap committed: the next run starts over from the key in use
    monkeypatch.setattr(type(recorder), "rewrap_vault_keys", lambda *_: (_ for _ in ()).throw(OSError("crash")))
    with pytest.raises(OSError, match="crash"):
        rotate_vault_key(recorder, key_dir, None)
    monkeypatch.undo()
    assert {m: reveal_member(fresh().app, m) for m in (member, other)} == values
    assert rotate_vault_key(recorder, key_dir, None) == 2
    assert {m: reveal_member(fresh().app, m) for m in (member, other)} == values
    assert not (key_dir / vault_module.VAULT_KEY_NEXT).exists() and load_vault_key(key_dir)[32:] == old_key


# -- reveal and the audit -----------------------------------------------------------------------------------


def entries_of(app: Ledger) -> list[bytes]:
    """Every entry of the log, as an export holds them."""
    return [entry for _, entry in app.entries()]


def anchors_of(app: Ledger) -> TrustAnchors:
    """The operator's trust anchors."""
    return TrustAnchors.load(app.settings.data_dir / "trust-anchors.json")


def test_values_are_revealed_to_the_member_a_custodian_or_a_regulator_only(ledger_app: Ledger, plan: str) -> None:
    member, other = join(ledger_app, plan), join(ledger_app, plan)
    own, others = member_key(ledger_app, member), member_key(ledger_app, other)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, day(ledger_app, -2), age=30)
    app = ledger_app.app
    regulator = ledger_app.signers.load("regulator").key_id
    for allowed in (own.key_id, regulator, ledger_app.signers.load("custodian").key_id):
        may_see(app, allowed, member)
    for refused in (others.key_id, ledger_app.signers.load("operator").key_id, "0123456789abcdef"):
        with pytest.raises(RefusedError) as caught:
            may_see(app, refused, member)
        assert caught.value.rule == Rule.SEALED_VALUES_ARE_REVEALED_ONLY_TO_THE_MEMBER_THE_CUSTODIAN_OR_THE_REGULATOR
    records = reveal_member(app, member)
    assert {(r.stream, r.field) for r in records} == {(member, "age_years")} | {
        (claim, f) for f in ("member", "diagnosed_on", "age_at_diagnosis", "joined_at")}
    assert reveal_claim(app, claim) == [r for r in records if r.stream == claim]
    assert [(r.stream, r.field) for r in reveal_member(app, other)] == [(other, "age_years")]
    envelopes = {(e["stream"], e["seq"]): e for e in map(json.loads, entries_of(ledger_app))}
    assert check_records(records, envelopes) == []
    forged = [Revealed(r.stream, r.seq, r.field, 31, r.salt) if r.field == "age_at_diagnosis" else r for r in records]
    assert check_records(forged, envelopes) == [f"{claim}#1: age_at_diagnosis does not match its commitment "
                                                "age_at_diagnosis_sealed"]


def seal_another(monkeypatch: pytest.MonkeyPatch, field: str, value: Any) -> None:
    """Make the operator seal `value` for `field` instead of the value it checked (a dishonest operator)."""
    honest = UnitOfWork.seal

    def dishonest(self: UnitOfWork, member: str, stream: UUID, seq: int, name: str, checked: Any,
                  new_member: bool = False) -> str:
        return honest(self, member, stream, seq, name, value if name == field else checked, new_member)

    monkeypatch.setattr(UnitOfWork, "seal", dishonest)


def test_an_operator_that_checks_one_value_and_seals_another_is_caught_only_with_the_values(
        ledger_app: Ledger, plan: str, monkeypatch: pytest.MonkeyPatch) -> None:
    member = join(ledger_app, plan, age=30)
    advance(ledger_app, days=100)  # 2026-04-11: the waiting period ended on 2026-04-01
    assert day(ledger_app) == "2026-04-11"
    seal_another(monkeypatch, "diagnosed_on", "2026-04-15")  # same month, so the public month agrees: in the future
    file(ledger_app, member, "2026-04-08", age=30)
    monkeypatch.undo()
    honest_member = join(ledger_app, plan, age=30)
    advance(ledger_app, days=100)
    file(ledger_app, honest_member, day(ledger_app, -1), age=30)
    blind = Auditor(anchors_of(ledger_app)).run(entries_of(ledger_app))
    assert blind.ok and blind.needs_sealed_values == {"13 sealed (joining)": 2, "13 sealed (filing)": 2}
    records = reveal_member(ledger_app.app, member) + reveal_member(ledger_app.app, honest_member)
    seeing = Auditor(anchors_of(ledger_app), revealed=records).run(entries_of(ledger_app))
    assert [(f.check, f.found) for f in seeing.failures] == [("13 sealed (diagnosis date)", "2026-04-15")]
    assert seeing.needs_sealed_values == {}
    missing = Auditor(anchors_of(ledger_app), revealed=[r for r in records if (r.stream, r.field) != (
        claimed := next(r.stream for r in records if r.field == "member"), "member")]).run(entries_of(ledger_app))
    assert [(f.check, f.stream) for f in missing.failures] == [("13 sealed (revealed member)", claimed)]
    without_join = Auditor(anchors_of(ledger_app), revealed=[r for r in records if r.stream != honest_member]).run(
        entries_of(ledger_app))
    # the values of one member not given at all: their events' checks are counted as needed, not failed
    assert [(f.check, f.stream) for f in without_join.failures] == [("13 sealed (diagnosis date)", claimed)]
    assert without_join.needs_sealed_values == {"13 sealed (joining)": 1}
    swapped = [Revealed(r.stream, r.seq, r.field, "2026-04-09", r.salt) if r.field == "diagnosed_on" else r
               for r in records]
    assert {f.check for f in Auditor(anchors_of(ledger_app), revealed=swapped).run(entries_of(ledger_app)).failures
            } == {"13 sealed (commitment diagnosed_on)"}


def test_the_waiting_period_and_the_claim_window_are_rechecked_from_sealed_values(
        ledger_app: Ledger, plan: str, monkeypatch: pytest.MonkeyPatch) -> None:
    advance(ledger_app, days=10)
    waiting, window = join(ledger_app, plan), join(ledger_app, plan)  # joined 2026-01-11: waiting until 04-11
    advance(ledger_app, days=100)
    assert day(ledger_app) == "2026-04-21"
    seal_another(monkeypatch, "diagnosed_on", "2026-04-05")  # checked on the 15th, sealed in the waiting period
    file(ledger_app, waiting, "2026-04-15")
    monkeypatch.undo()
    clock_of(ledger_app).set(clock_of(ledger_app).current.replace(month=10, day=20))  # 180 days back: 04-23
    seal_another(monkeypatch, "diagnosed_on", "2026-04-21")  # checked on the 25th, sealed 182 days back
    file(ledger_app, window, "2026-04-25")
    monkeypatch.undo()
    records = reveal_member(ledger_app.app, waiting) + reveal_member(ledger_app.app, window)
    assert Auditor(anchors_of(ledger_app)).run(entries_of(ledger_app)).ok
    report = Auditor(anchors_of(ledger_app), revealed=records).run(entries_of(ledger_app))
    assert sorted((f.check, f.found) for f in report.failures) == [
        ("13 sealed (claim window)", "2026-10-20"), ("13 sealed (waiting period)", "2026-04-05")]


def test_ages_and_the_claim_of_a_fraud_finding_are_sealed_and_rechecked_from_their_values(
        ledger_app: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = create_plan(ledger_app, prepaid_rules(min_age_years=18))
    member, minor_sealed = join(ledger_app, plan, age=42), join(ledger_app, plan, age=30)
    seal_another(monkeypatch, "age_years", 17)  # checked 19, sealed 17: the same band 15-19 on the log
    young = join(ledger_app, plan, age=19)
    monkeypatch.undo()
    ledger_app.execute(QualifyJuror(command_id=cid(), member=member, age_years=42,
                                    exam_commitment=document_commitment("exam")))
    seal_another(monkeypatch, "age_years", 16)  # checked 18 at the exam, sealed 16 (band 15-19)
    ledger_app.execute(QualifyJuror(command_id=cid(), member=minor_sealed, age_years=18,
                                    exam_commitment=document_commitment("exam")))
    monkeypatch.undo()
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, day(ledger_app, -1), age=42)
    ledger_app.execute(RecordFraud(command_id=cid(), member=member, claim=claim,
                                   finding_commitment=document_commitment()))
    seal_another(monkeypatch, "claim", str(uuid4()))  # a finding about a claim that is not on the log
    ledger_app.execute(RecordFraud(command_id=cid(), member=young, claim=claim,
                                   finding_commitment=document_commitment()))
    monkeypatch.undo()
    ledger_app.execute(RecordFraud(command_id=cid(), member=minor_sealed, finding_commitment=document_commitment()))
    bodies = {(e["stream"], e["seq"]): e for e in map(json.loads, entries_of(ledger_app))}
    joined, qualified, finding = bodies[(member, 1)], bodies[(member, 2)], bodies[(member, 3)]
    assert (joined["schema"], joined["body"]["age_band"]) == (2, "40-44") and "age_years" not in joined["body"]
    assert (qualified["schema"], qualified["body"]["age_band"]) == (2, "40-44")
    assert (finding["schema"], "claim" in finding["body"]) == (2, False)
    assert claim.encode() not in b"".join(entry for entry in entries_of(ledger_app) if json.loads(entry)["type"]
                                          == "member.fraud_recorded")  # the finding does not name the claim
    opened = {(r.stream, r.seq, r.field): r.value for m in (member, minor_sealed) for r in reveal_member(
        ledger_app.app, m)}
    assert opened[(member, 1, "age_years")] == 42 and opened[(member, 3, "claim")] == claim
    assert opened[(minor_sealed, 3, "claim")] is None  # a finding about no claim is sealed all the same
    blind = Auditor(anchors_of(ledger_app)).run(entries_of(ledger_app))
    assert blind.ok and blind.needs_sealed_values == {
        "13 sealed (joining)": 3, "13 sealed (juror age)": 2, "13 sealed (filing)": 1, "13 sealed (fraud finding)": 3}
    records = [r for m in (member, minor_sealed, young) for r in reveal_member(ledger_app.app, m)]
    seeing = Auditor(anchors_of(ledger_app), revealed=records).run(entries_of(ledger_app))
    assert sorted((f.check, f.stream, f.found) for f in seeing.failures) == sorted([
        ("13 sealed (age at joining)", young, "17"), ("13 sealed (juror age)", minor_sealed, "16"),
        ("13 sealed (fraud finding)", young, next(r.value for r in records if r.stream == young
                                                  and r.field == "claim"))])
    assert seeing.needs_sealed_values == {}
    changed = {(member, 1): 43, (member, 2): 41, (member, 3): str(uuid4())}  # each keeps its public band
    forged = [Revealed(r.stream, r.seq, r.field, changed.get((r.stream, r.seq), r.value), r.salt) for r in records]
    assert [(f.check, f.stream, f.seq) for f in Auditor(anchors_of(ledger_app), revealed=forged).run(
        entries_of(ledger_app)).failures if f.stream == member] == [
        ("13 sealed (commitment age_years)", member, 1), ("13 sealed (commitment age_years)", member, 2),
        ("13 sealed (commitment claim)", member, 3)]


def test_a_jurors_sealed_age_at_joining_is_rechecked_at_the_vote(ledger_app: Ledger, plan: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from schemas.commands.claim import RequestJury
    from tests.test_claim import jurors, vote

    panel = jurors(ledger_app, plan, 1)
    seal_another(monkeypatch, "age_years", 17)  # checked 19, sealed 17 (the same band)
    young = join(ledger_app, plan, age=19)
    monkeypatch.undo()
    ledger_app.execute(QualifyJuror(command_id=cid(), member=young, age_years=19,
                                    exam_commitment=document_commitment("exam")))
    member_key(ledger_app, young, role="juror")
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, day(ledger_app, -1))
    investigate(ledger_app, claim, reason="insufficient_evidence")
    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    ledger_app.execute(RequestJury(command_id=cid(), claim=claim))
    # the writer reads the sealed age back through the unit of work: 17 is not of age
    rejected(ledger_app, lambda: vote(ledger_app, claim, young, True), "juror", Rule.JUROR_MUST_BE_OF_AGE)
    honest = UnitOfWork.age_at_joining
    monkeypatch.setattr(UnitOfWork, "age_at_joining",  # a dishonest operator reads back the age it checked
                        lambda self, m: 19 if str(m.id) == young else honest(self, m))
    vote(ledger_app, claim, young, True)
    monkeypatch.undo()
    vote(ledger_app, claim, panel[0], True)
    blind = Auditor(anchors_of(ledger_app)).run(entries_of(ledger_app))
    assert blind.ok and blind.needs_sealed_values["13 sealed (juror age at the vote)"] == 2
    records = [r for m in (*panel, young, member) for r in reveal_member(ledger_app.app, m)]
    seeing = Auditor(anchors_of(ledger_app), revealed=records).run(entries_of(ledger_app))
    assert [(f.check, f.found) for f in seeing.failures] == [("13 sealed (juror age at the vote)", "17")]
    assert seeing.needs_sealed_values == {}


# -- erasure ------------------------------------------------------------------------------------------------


def erase(app: Ledger, member: str, reason: str = "left") -> dict[str, Any]:
    """Erase a member's sealed values."""
    return app.execute(EraseMember(command_id=cid("erase"), member=member, reason=reason))  # type: ignore[arg-type]


def test_erasure_comes_after_leaving_with_no_open_claim_once_and_after_retention(ledger_app: Ledger, plan: str
                                                                                ) -> None:
    member, other = join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, day(ledger_app, -1))
    rejected(ledger_app, lambda: erase(ledger_app, member), "member", Rule.MEMBER_MUST_HAVE_LEFT_BEFORE_ERASURE)
    ledger_app.execute(Exit(command_id=cid(), member=member))
    rejected(ledger_app, lambda: erase(ledger_app, member), "member", Rule.MEMBER_HAS_AN_OPEN_CLAIM)
    investigate(ledger_app, claim, reason="insufficient_evidence")
    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    advance(ledger_app, days=8)
    ledger_app.execute(DecideClaim(command_id=cid(), claim=claim))  # rejected: closed
    rejected(ledger_app, lambda: erase(ledger_app, member, "retention_ended"), "reason",
             Rule.RETENTION_PERIOD_MUST_HAVE_ENDED)
    result = erase(ledger_app, member, "consent_withdrawn")
    assert (result["reason"], result["sealed_streams"]) == ("consent_withdrawn", 1)
    rejected(ledger_app, lambda: erase(ledger_app, member), "member", Rule.MEMBER_IS_ERASED_ONCE)
    assert reveal_member(ledger_app.app, member) == [] and sealed_values(ledger_app, claim) == {}
    assert ledger_app.app.ledger_recorder.select_vault_key(member) is None
    # a claim for a diagnosis before leaving needs the age at joining, which is gone with the data key
    rejected(ledger_app, lambda: file(ledger_app, member, day(ledger_app, -9)), "member",
             Rule.MEMBER_MUST_NOT_BE_ERASED)
    assert [r.field for r in reveal_member(ledger_app.app, other)] == ["age_years"]  # sealed at joining only
    ledger_app.execute(Exit(command_id=cid(), member=other))
    advance(ledger_app, days=ledger_app.settings.retention_days)
    assert erase(ledger_app, other, "retention_ended")["sealed_streams"] == 0


MARKER = "2026-04-05"
"""The diagnosis date planted for the erasure scan: no event happens on that day, so the bytes can only come from
the sealed value."""


def history_with_a_paid_claim(app: Ledger) -> tuple[str, str, str]:
    """A prepaid plan through one settled, disclosed period whose only case (diagnosed on MARKER) is paid; the
    claimant then leaves. Returns (claimant, claim, period)."""
    plan = create_plan(app, prepaid_rules(notice_days=3))
    rich, poor = join(app, plan, age=37), join(app, plan)
    app.execute(Deposit(command_id=cid(), member=rich, amount_fen=10_000, reference=cid("bank")))
    app.execute(Deposit(command_id=cid(), member=poor, amount_fen=10_000, reference=cid("bank")))
    advance(app, days=100)
    assert day(app) == "2026-04-11"
    claim = file(app, rich, MARKER, age=37)
    investigate(app, claim)
    app.execute(NoticeClaim(command_id=cid(), claim=claim))
    advance(app, days=3)
    app.execute(DecideClaim(command_id=cid(), claim=claim))
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    at_local(app, "2026-04-28", 9)
    app.execute(CollectPeriod(command_id=cid(), period=period))
    app.execute(SettlePeriod(command_id=cid(), period=period))
    app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))
    app.execute(PublishDisclosure(command_id=cid(), period=period))
    app.execute(Exit(command_id=cid(), member=rich))
    return rich, claim, period


def scan(app: Ledger, root: Path, needles: list[bytes], topic_payloads: list[bytes]) -> list[str]:
    """Where any needle is found: every file under `root` (the data directories of every party, exports,
    bundles), every table of the store (PostgreSQL: each row of each table of the ledger's schema) and every Kafka
    payload given."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {needle!r}" for needle in needles if needle in data]
    if app.settings.database_url is not None:
        datastore = app.app.ledger_recorder.datastore
        schema = getattr(datastore, "schema")  # noqa: B009  (PostgreSQL's datastore only)
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))
            tables = [row["table_name"] for row in cursor.fetchall()]
            for table in tables:
                cursor.execute(f'SELECT * FROM "{schema}"."{table}"')
                for row in cursor.fetchall():
                    data = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                                    for v in row.values())
                    found += [f"table {table}: {needle!r}" for needle in needles if needle in data]
    for payload in topic_payloads:
        found += [f"kafka payload: {needle!r}" for needle in needles if needle in payload]
    return found


def topic_payloads(app: Ledger, bootstrap: str) -> list[bytes]:
    """Publish the log to a new topic (as the relay does) and read every payload back."""
    topic = f"privacy-{uuid4().hex[:8]}"
    relay = Relay(app.app, bootstrap, topic, 2)
    relay.publish_pending()
    relay.close()
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    reader.assign([TopicPartition(topic, p) for p in range(2)])
    reader.seek_to_beginning()
    payloads = []
    while records := reader.poll(timeout_ms=1000):
        for batch in records.values():
            payloads += [bytes(record.value) for record in batch]
    reader.close()
    return payloads


def test_an_erased_members_values_are_found_nowhere_and_every_proof_still_verifies(
        ledger_app: Ledger, tmp_path: Path, kafka_bootstrap: str) -> None:
    app = ledger_app
    member, claim, _ = history_with_a_paid_claim(app)
    assert app.execute(DisburseRefund(command_id=cid(), member=member, amount_fen=9_700 + 0, reference="back-1")
                       )["refund_outstanding_fen"] == 0
    recorder = app.app.ledger_recorder
    wrapped = recorder.select_vault_key(member)
    sealed = [row.sealed for row in recorder.select_vault_values(member=member)]
    assert wrapped is not None and len(sealed) == 5  # the age at joining and the claim's four
    needles = [MARKER.encode(), wrapped, *sealed]
    app.read_models()  # every read model caught up, in the same store
    log_key = app.checkpoints.verifier
    app.checkpoints.publish(clock_of(app).current)
    before = scan(app, tmp_path, needles, topic_payloads(app, kafka_bootstrap))
    assert MARKER.encode() not in b"".join(entries_of(app))  # never on the log, only in the vault
    assert any("vault" in place or "sqlite3" in place for place in before)  # the ciphertext is there until erasure

    assert erase(app, member)["sealed_streams"] == 1
    app.read_models()
    advance(app, days=1)
    app.checkpoints.publish(clock_of(app).current)
    export = tmp_path / "export.jsonl"
    export.write_bytes(b"".join(entry + b"\n" for entry in entries_of(app)))
    bundle = build_bundle(app.checkpoints, member)
    (tmp_path / "bundle.json").write_text(json.dumps(bundle))
    assert verify_bundle(bundle, log_key, []).member == member
    report = Auditor(anchors_of(app), log_key).run(entries_of(app), [c.note for c in app.checkpoints.all()])
    assert report.ok, report.failures[:3]
    assert report.needs_sealed_values == {"11 claim (plan maximum)": 1, "13 sealed (filing)": 1,
                                          "13 sealed (joining)": 2, "8 period (locked set by age)": 1}
    journal = app.read_models().journal
    assert journal.trial_balance() == 0 and journal.custody_gap() == 0
    assert scan(app, tmp_path, needles, topic_payloads(app, kafka_bootstrap)) == []
    assert reveal_member(app.app, member) == [] and reveal_claim(app.app, claim) == []


# -- the command line ---------------------------------------------------------------------------------------


def cli(data: Path, *args: str) -> Result:
    """Run the command line on a data directory."""
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)


def test_reveal_check_and_audit_with_values_and_erase_on_the_command_line(tmp_path: Path) -> None:
    app = new_ledger(tmp_path / "parties", None)
    plan = create_plan(app)
    member, other = join(app, plan), join(app, plan)
    advance(app, days=100)
    claim = file(app, member, day(app, -1))
    app.close()
    data = app.settings.data_dir
    regulator = json.loads((tmp_path / "parties" / "regulator" / "keys" / "regulator.json").read_text())["key_id"]
    out = tmp_path / "revealed.json"
    refused = cli(data, "member", "reveal", member, "--for", app.signers.load("operator").key_id)
    assert refused.exit_code == 3
    assert "sealed_values_are_revealed_only_to_the_member_the_custodian_or_the_regulator" in refused.output
    assert cli(data, "member", "reveal", member, "--for", regulator, "--out", str(out)).exit_code == 0
    records = json.loads(out.read_text())["records"]
    assert {(r["stream"], r["field"]) for r in records} == {(member, "age_years")} | {
        (claim, f) for f in ("member", "diagnosed_on", "age_at_diagnosis", "joined_at")}
    assert cli(data, "audit", "check-revealed", str(out)).exit_code == 0
    blind = json.loads(cli(data, "--json", "audit", "verify").output)
    assert blind["ok"] and blind["needs_sealed_values"] == {"13 sealed (joining)": 2, "13 sealed (filing)": 1}
    assert any("give --revealed" in note for note in blind["notes"])
    seeing = json.loads(cli(data, "--json", "audit", "verify", "--revealed", str(out)).output)
    assert seeing["ok"] and seeing["needs_sealed_values"] == {"13 sealed (joining)": 1}  # the other member's
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({"records": [{**r, "value": 31} if r["field"] == "age_at_diagnosis" else r
                                              for r in records]}))
    wrong = cli(data, "audit", "check-revealed", str(forged))
    assert wrong.exit_code == 3 and "revealed_record_must_open_its_commitment" in wrong.output
    assert cli(data, "--json", "audit", "verify", "--revealed", str(forged)).exit_code == 3
    garbage = tmp_path / "garbage.json"
    garbage.write_text(json.dumps({"records": [{"stream": claim, "salt": "00"}]}))
    bad = cli(data, "audit", "check-revealed", str(garbage))
    assert bad.exit_code == 2 and "revealed: revealed_file_must_hold_revealed_records" in bad.output
    def erase_cli(target: str) -> Result:
        return cli(data, "member", "erase", "--command-id", cid(), "--member", target, "--reason", "left")

    early = erase_cli(member)
    assert early.exit_code == 2 and "member_must_have_left_before_erasure" in early.output
    assert cli(data, "member", "exit", "--command-id", cid(), "--member", member).exit_code == 0
    still_open = erase_cli(member)
    assert still_open.exit_code == 2 and "member_has_an_open_claim" in still_open.output
    reopened = reopen(app, clock_of(app))  # the investigation firm's key is in its own directory
    investigate(reopened, claim, reason="fraud")
    reopened.execute(NoticeClaim(command_id=cid(), claim=claim))
    advance(reopened, days=10)
    reopened.execute(DecideClaim(command_id=cid(), claim=claim))
    reopened.close()
    assert erase_cli(member).exit_code == 0
    assert json.loads(cli(data, "--json", "member", "reveal", member, "--for", regulator).output)["records"] == []
    # records handed out before the erasure are copies erasure cannot reach: they still open their commitments
    assert json.loads(cli(data, "--json", "audit", "verify", "--revealed", str(out)).output)["ok"]
    assert json.loads(cli(data, "--json", "audit", "check-revealed", str(out)).output)["ok"]
    assert cli(data, "--json", "audit", "verify").exit_code == 0
    before = json.loads(cli(data, "--json", "member", "reveal", other, "--for", regulator).output)["records"]
    assert json.loads(cli(data, "--json", "vault", "rotate-key").output) == {"rewrapped": 1}  # the erased have none
    assert json.loads(cli(data, "--json", "member", "reveal", other, "--for", regulator).output)["records"] == before


def test_an_age_sealed_within_the_band_but_beyond_the_age_at_joining_is_caught_with_the_values(
        ledger_app: Ledger, plan: str, monkeypatch: pytest.MonkeyPatch) -> None:
    member = join(ledger_app, plan, age=30)
    advance(ledger_app, days=100)
    seal_another(monkeypatch, "age_at_diagnosis", 34)  # the same 5-year band as the 30 checked
    file(ledger_app, member, day(ledger_app, -1), age=30)
    monkeypatch.undo()
    assert Auditor(anchors_of(ledger_app)).run(entries_of(ledger_app)).ok
    report = Auditor(anchors_of(ledger_app), revealed=reveal_member(ledger_app.app, member)).run(
        entries_of(ledger_app))
    assert [(f.check, f.found) for f in report.failures] == [("13 sealed (age at diagnosis)", "34")]


def test_the_retention_period_is_configured_in_whole_days() -> None:
    from ledger.config import DEFAULT_RETENTION_DAYS, Settings
    from ledger.errors import ConfigError

    assert Settings.from_env({}).retention_days == DEFAULT_RETENTION_DAYS == 1826
    assert Settings.from_env({"LEDGER_RETENTION_DAYS": "30"}).retention_days == 30
    for bad in ("-1", "1.5", "36501", "five years"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({"LEDGER_RETENTION_DAYS": bad})
        assert (caught.value.field, caught.value.rule) == (
            "LEDGER_RETENTION_DAYS", Rule.MUST_BE_A_WHOLE_NUMBER_IN_RANGE)
