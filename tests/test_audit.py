"""Tamper evidence on both backends: the stored data is changed behind the ledger's back, and `audit verify`
catches and pinpoints each change (global index, stream, seq, the check)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from audit.verify import Auditor
from ledger.anchors import TrustAnchors
from ledger.bootstrap import Ledger
from ledger.keys import SigningKey
from ledger.log.checkpoints import CheckpointLog
from ledger.log.merkle import mth
from ledger.log.note import Checkpoint, sign_note
from ledger.projections.sql import SqlStore
from ledger.verify import Report, verify_entries
from schemas.commands.claim import PayClaim
from schemas.commands.disclosure import PublishDisclosure
from schemas.commands.keys import RevokeKey
from schemas.commands.membership import Deposit
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, SettlePeriod
from tests.support import advance, cid, create_plan, join, prepaid_rules, signer_of
from tests.test_period import approved_claim, at_local

PREFIX = b"mutual-ledger/event/v1\n"


def history(app: Ledger) -> None:
    """A prepaid plan through a settled, disclosed period with a paid claim, and a checkpoint."""
    plan = create_plan(app, prepaid_rules(notice_days=3))
    members = [join(app, plan) for _ in range(4)]
    for m in members:
        app.execute(Deposit(command_id=cid(), member=m, amount_fen=5_000, reference=cid("bank")))
    advance(app, days=100)
    claim = approved_claim(app, members[0])
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    at_local(app, "2026-04-28", 9)
    app.execute(CollectPeriod(command_id=cid(), period=period))
    app.execute(SettlePeriod(command_id=cid(), period=period))
    app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))
    app.execute(PublishDisclosure(command_id=cid(), period=period))
    checkpoints(app).publish(app.clock.now())


def checkpoints(app: Ledger) -> CheckpointLog:
    return app.checkpoints


def audit(app: Ledger) -> Report:
    log = checkpoints(app)
    anchors = TrustAnchors.load(app.settings.data_dir / "trust-anchors.json")
    return Auditor(anchors, log.verifier).run([e for _, e in app.entries()], [c.note for c in log.all()])


class Store:
    """Direct access to the stored events, as someone with database access would have."""

    def __init__(self, app: Ledger) -> None:
        recorder = app.app.ledger_recorder
        self.sql = SqlStore(recorder.datastore)
        self.table = self.sql.table(recorder.events_table_name)
        self.id = "notification_id" if self.sql.postgres else "rowid"  # SQLite numbers notifications by rowid

    def rows(self) -> list[tuple[int, str, int, bytes]]:
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT {self.id}, originator_id, originator_version, state FROM "
                                  f"{self.table} ORDER BY {self.id}").fetchall()
        return [(int(n), str(o), int(v), bytes(s)) for n, o, v, s in rows]

    def find(self, event_type: str, nth: int = 0) -> tuple[int, int, dict[str, Any]]:
        """(global index, notification id, envelope) of the nth event of a type."""
        found = [(i, row[0], json.loads(row[3])) for i, row in enumerate(self.rows())
                 if json.loads(row[3])["type"] == event_type]
        return found[nth]

    def set_state(self, notification_id: int, state: bytes) -> None:
        with self.sql.transaction() as cursor:
            cursor.execute(f"UPDATE {self.table} SET state = ? WHERE {self.id} = ?", (state, notification_id))

    def delete(self, notification_id: int) -> None:
        with self.sql.transaction() as cursor:
            cursor.execute(f"DELETE FROM {self.table} WHERE {self.id} = ?", (notification_id,))

    def insert(self, envelope: dict[str, Any]) -> None:
        with self.sql.transaction() as cursor:
            cursor.execute(f"INSERT INTO {self.table} (originator_id, originator_version, topic, state) "
                           "VALUES (?, ?, ?, ?)", (UUID(envelope["stream"]) if self.sql.postgres else
                                                    envelope["stream"], envelope["seq"],
                                                    f"{envelope['type']}@1", canonical(envelope)))


def canonical(envelope: dict[str, Any]) -> bytes:
    import rfc8785

    return bytes(rfc8785.dumps(envelope))


def resign(envelope: dict[str, Any], key: SigningKey) -> bytes:
    actor = {"role": key.role, "key": key.key_id}
    if "on_behalf_of" in envelope.get("actor", {}) and key.role == envelope["actor"]["role"]:
        actor["on_behalf_of"] = envelope["actor"]["on_behalf_of"]
    envelope = {**envelope, "actor": actor}
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    envelope["sig"] = base64.b64encode(key.private_key.sign(PREFIX + hashlib.sha256(canonical(unsigned)).digest())
                                       ).decode()
    return canonical(envelope)


def resign_and_audit(app: Ledger, event_type: str, change: Callable[[dict[str, Any]], object], nth: int = 0
                     ) -> list[str]:
    """Change the body of the nth event of a type, re-sign it with a key of its signer's role (so only the domain
    checks can object), audit, and return the checks that failed."""
    store = Store(app)
    _, nid, envelope = store.find(event_type, nth)
    change(envelope["body"])
    store.set_state(nid, resign(envelope, app.signers.load(envelope["actor"]["role"])))
    return [failure.check for failure in audit(app).failures]


def first(report: Report) -> tuple[int, str]:
    assert not report.ok
    return report.failures[0].index, report.failures[0].check


@pytest.fixture
def ledger(ledger_app: Ledger) -> Ledger:
    history(ledger_app)
    report = audit(ledger_app)
    assert report.ok, report.failures[:3]
    return ledger_app


Tamper = Callable[[Ledger, Store], tuple[int, str]]


def flip_a_byte(app: Ledger, store: Store) -> tuple[int, str]:
    index, nid, _ = store.find("member.deposit_received", 1)
    state = store.rows()[index][3].replace(b'"amount_fen":5000', b'"amount_fen":5001')
    store.set_state(nid, state)
    return index, "6 signature"


def delete_one(app: Ledger, store: Store) -> tuple[int, str]:
    index, nid, envelope = store.find("claim.investigated")
    store.delete(nid)
    rows = store.rows()
    following = next(i for i in range(index, len(rows)) if json.loads(rows[i][3])["stream"] == envelope["stream"])
    return following, "3 chain (seq)"


def reorder_two(app: Ledger, store: Store) -> tuple[int, str]:
    index, nid, envelope = store.find("claim.investigated")
    rows = store.rows()
    later = next(i for i in range(index + 1, len(rows)) if json.loads(rows[i][3])["stream"] == envelope["stream"])
    store.set_state(nid, rows[later][3])
    store.set_state(rows[later][0], rows[index][3])
    return index, "3 chain (seq)"


def insert_a_forgery(app: Ledger, store: Store) -> tuple[int, str]:
    _, _, envelope = store.find("member.deposit_received")
    forger = SigningKey.generate("forger", "custodian")
    forged = json.loads(resign({**envelope, "stream": "00000000-0000-4000-8000-0000000000aa", "seq": 1,
                                "prev": None}, forger))
    store.insert(forged)
    return len(store.rows()) - 1, "5 key validity"


def resign_with_a_revoked_key(app: Ledger, store: Store) -> tuple[int, str]:
    custodian = app.signers.load("custodian")
    advance(app, hours=1)
    app.execute(RevokeKey(command_id=cid(), key_id=custodian.key_id))
    _, _, envelope = store.find("member.deposit_received")
    late = {**envelope, "stream": "00000000-0000-4000-8000-0000000000bb", "seq": 1, "prev": None,
            "at": "2027-01-01T00:00:00.000000Z"}
    store.insert(json.loads(resign(late, custodian)))
    return len(store.rows()) - 1, "5 key validity (time)"


def payout_signed_by_the_operator(app: Ledger, store: Store) -> tuple[int, str]:
    index, nid, envelope = store.find("claim.paid")
    store.set_state(nid, resign(envelope, app.signers.load("operator")))
    return index, "7 role rules"


def edit_an_assessed_share(app: Ledger, store: Store) -> tuple[int, str]:
    index, nid, envelope = store.find("period.assessed")
    envelope["body"]["share_fen"] += 1  # re-signed with the operator's own key: the signature is valid
    store.set_state(nid, resign(envelope, app.signers.load("operator")))
    return index, "8 period (share_fen)"


def publish_an_inconsistent_checkpoint(app: Ledger, store: Store) -> tuple[int, str]:
    log = checkpoints(app)
    size = len(store.rows()) - 1
    note = sign_note(Checkpoint(app.settings.log_origin, size, hashlib.sha256(b"other history").digest()).text(),
                     signer_of(log))
    with log.log.sql.transaction() as cursor:
        cursor.execute(f"INSERT INTO {log.table} VALUES (?, ?, ?)", (size, note, "2026-12-01T00:00:00.000000Z"))
    return size - 1, f"12 checkpoint {size} (root)"


@pytest.mark.parametrize("tamper", [flip_a_byte, delete_one, reorder_two, insert_a_forgery,
                                    resign_with_a_revoked_key, payout_signed_by_the_operator,
                                    edit_an_assessed_share, publish_an_inconsistent_checkpoint],
                         ids=lambda f: f.__name__)
def test_each_tampering_is_caught_and_pinpointed(ledger: Ledger, tamper: Tamper) -> None:
    expected = tamper(ledger, Store(ledger))
    report = audit(ledger)
    assert expected in [(f.index, f.check) for f in report.failures], report.failures[:5]
    if not expected[1].startswith("12"):
        assert first(report) == expected


def where(report: Report) -> list[tuple[int, str | None, int | None, str]]:
    return [(f.index, f.stream, f.seq, f.check) for f in report.failures]


def nth(entries: list[bytes], event_type: str, n: int = 0) -> int:
    return [i for i, entry in enumerate(entries) if json.loads(entry)["type"] == event_type][n]


def test_failures_found_ahead_in_workers_keep_their_global_index_stream_and_seq(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.verify.CHUNK", 5)  # many chunks, shared by the workers
    entries = [e for _, e in ledger.entries()]
    anchors = TrustAnchors.load(ledger.settings.data_dir / "trust-anchors.json")
    joined, deposit, paid = nth(entries, "member.joined", 2), nth(entries, "member.deposit_received", 3), nth(
        entries, "claim.paid")
    entries[joined] = json.dumps(json.loads(entries[joined]), indent=1).encode()  # not canonical: check 1
    negative = json.loads(entries[deposit])
    negative["body"]["amount_fen"] = -1  # validly signed, against the schema: check 2
    entries[deposit] = resign(negative, ledger.signers.load("custodian"))
    forged = json.loads(entries[paid])
    forged["sig"] = ("B" if forged["sig"][0] == "A" else "A") + forged["sig"][1:]  # check 6
    entries[paid] = canonical(forged)
    in_workers = Auditor(anchors).run(entries, workers=2)
    found = where(in_workers)
    assert (joined, None, None, "1 envelope (envelope)") in found
    assert (deposit, negative["stream"], negative["seq"], "2 schema") in found
    assert (paid, forged["stream"], forged["seq"], "6 signature") in found
    assert found == where(Auditor(anchors).run(entries, workers=1))  # the same as checking everything in order
    assert [f for f in found if int(f[3].split()[0]) <= 7] == where(verify_entries(entries, anchors))


def test_what_the_workers_cut_from_an_entry_not_in_canonical_form_counts_for_nothing(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.verify.CHUNK", 5)
    entries = [e for _, e in ledger.entries()]
    anchors = TrustAnchors.load(ledger.settings.data_dir / "trust-anchors.json")
    spaced, cut_off, garbage = (nth(entries, "member.joined", n) for n in (1, 2, 3))
    entries[spaced] = entries[spaced][:-1] + b" }"  # the workers cut it as if canonical: same hash, good signature
    entries[cut_off] = entries[cut_off][:entries[cut_off].rindex(b',"prev":')] + b"}"  # nothing the workers can cut
    entries[garbage] = b"not an entry"
    found = where(Auditor(anchors).run(entries, workers=2))
    assert [f for f in found if f[0] in (spaced, cut_off, garbage)] == [
        (spaced, None, None, "1 envelope (envelope)"), (cut_off, None, None, "1 envelope (envelope)"),
        (garbage, None, None, "1 envelope (envelope)")]
    assert found == where(Auditor(anchors).run(entries, workers=1))
    assert [f for f in found if int(f[3].split()[0]) <= 7] == where(verify_entries(entries, anchors))


def test_a_signature_checked_ahead_under_a_key_the_keyring_never_held_is_checked_again(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.verify.CHUNK", 5)
    entries = [e for _, e in ledger.entries()]
    anchors = TrustAnchors.load(ledger.settings.data_dir / "trust-anchors.json")
    custodian = ledger.signers.load("custodian")
    impostor = SigningKey.generate("impostor", "custodian")  # registered under the custodian's key id below
    first_deposit = nth(entries, "member.deposit_received")
    registration = {"v": 1, "stream": "00000000-0000-4000-8000-0000000000cc", "seq": 1, "type": "key.registered",
                    "schema": 1, "at": json.loads(entries[first_deposit])["at"], "prev": None,
                    "body": {"key_id": custodian.key_id, "role": "custodian", "public_key": impostor.public_base64,
                             "valid_from": "2026-01-01T00:00:00.000000Z", "member": None}}
    entries.insert(first_deposit, resign(registration, ledger.signers.load("operator-root")))
    report = Auditor(anchors).run(entries, workers=2)
    # the keyring refuses the registration; every later custodian signature, checked ahead under the impostor's key,
    # is checked again under the custodian's own and holds
    assert where(report) == [(first_deposit, registration["stream"], 1, "4 keyring (key id)")]


def test_checkpoints_of_any_size_are_checked_against_the_root_taken_as_the_entries_stream_by(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.verify.CHUNK", 5)
    entries = [e for _, e in ledger.entries()]
    log = checkpoints(ledger)
    anchors = TrustAnchors.load(ledger.settings.data_dir / "trust-anchors.json")
    sizes = [0, 1, 5, 7, 11, len(entries) - 1, len(entries)]
    notes = [sign_note(Checkpoint(ledger.settings.log_origin, n, mth(entries[:n])).text(), signer_of(log))
             for n in sizes]
    assert Auditor(anchors, log.verifier).run(iter(entries), notes).ok
    notes[3] = sign_note(Checkpoint(ledger.settings.log_origin, 7, mth(entries[:6])).text(), signer_of(log))
    report = Auditor(anchors, log.verifier).run(iter(entries), notes)
    assert where(report) == [(6, None, None, "12 checkpoint 7 (root)")]


def test_the_state_that_grows_with_members_is_kept_on_disk_and_finds_what_memory_finds(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("audit.verify.CHUNK", 5)
    monkeypatch.setattr("audit.verify.BOOKS_BATCH", 3)  # the members written to disk every few joins
    entries = [e for _, e in ledger.entries()]
    anchors = TrustAnchors.load(ledger.settings.data_dir / "trust-anchors.json")
    deposit = nth(entries, "member.deposit_received", 2)
    broken = json.loads(entries[deposit])
    broken["prev"] = "00" * 32  # validly signed, off its stream's chain: check 3
    entries[deposit] = resign(broken, ledger.signers.load("custodian"))
    assessed = nth(entries, "period.assessed")
    late = json.loads(entries[assessed])
    late["body"]["roll_size"] += 1  # a roll over one member more than were locked: check 8
    entries[assessed] = resign(late, ledger.signers.load("operator"))

    def audited(heads_in_memory: int) -> Report:
        auditor = Auditor(anchors)
        auditor.events.streams.limit = heads_in_memory
        return auditor.run(entries, workers=1)

    spilled, held = audited(2), audited(1_000_000)
    assert where(spilled) == where(held)
    assert (deposit, broken["stream"], broken["seq"], "3 chain (prev)") in where(spilled)
    assert (assessed, late["stream"], late["seq"], "8 period (roll)") in where(spilled)
    assert spilled.entries == len(entries)
