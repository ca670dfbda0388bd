"""Privacy by construction (docs/privacy.md): sealed fields and their contract, the vault and its tampering, keyed
ids, the signer of sealed requests, reveal, the audit with and without sealed values, and erasure."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from ledger.bootstrap import Ledger
from ledger.errors import KeyDirectoryError, VerificationError
from ledger.rules import Rule
from ledger.sealing import Revealed, age_band, check_revealed, commitment
from ledger.store import decode_entry
from ledger.vault import VAULT_KEY_FILE, Vault
from schemas.commands.claim import FileClaim
from tests.support import (
    START,
    advance,
    cid,
    clock_of,
    create_plan,
    join,
    member_key,
    new_ledger,
    rejected,
    sealed_values,
)
from tests.support import commitment as document_commitment

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
    assert {r.field for r in vault.values_of(other)} == {"member", "diagnosed_on", "age_at_diagnosis", "joined_at"}
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
