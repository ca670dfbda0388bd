"""Checkpoints and witnesses on both backends: signing, refusing forks, cosigning, evidence, and policy."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger
from ledger.log.checkpoints import CheckpointLog, InconsistentLogError
from ledger.log.merkle import ProofError, verify_consistency
from ledger.log.note import Checkpoint, NoteError, Signer, sign_note, split_note, verify_cosignature, verify_note
from ledger.log.tree import TransparencyLog
from ledger.log.witness import ForkError, Witness, WitnessPolicy, WitnessRefusedError
from sim.fixtures import START
from tests.support import INITIAL, create_plan, join, signer_of


def checkpoints(app: Ledger) -> CheckpointLog:
    return app.checkpoints


def witness(app: Ledger, role: str, tmp_path: Path) -> Witness:
    return Witness(Signer(f"{role}.witness", app.signers.load(role).private_key), tmp_path / f"{role}.sqlite3",
                   tmp_path / f"{role}-evidence.json")


def test_publish_signs_the_current_tree_once(ledger_app: Ledger) -> None:
    log = checkpoints(ledger_app)
    first = log.publish(START)
    text = verify_note(first.note, log.verifier)
    checkpoint = Checkpoint.parse(text)
    assert (checkpoint.origin, checkpoint.size) == (ledger_app.settings.log_origin, INITIAL)
    assert checkpoint.root == log.log.root(INITIAL)
    assert log.publish(START).note == first.note
    create_plan(ledger_app)
    assert log.publish(START).size == INITIAL + 1
    assert [c.size for c in log.all()] == [INITIAL, INITIAL + 1]


def test_publication_is_bounded_by_age_and_by_entries(ledger_app: Ledger) -> None:
    log = checkpoints(ledger_app)
    log.publish(START)
    plan = create_plan(ledger_app)
    assert log.publish_if_due(START + timedelta(seconds=10), max_age_seconds=60, max_entries=3) is None
    stored = log.publish_if_due(START + timedelta(seconds=61), max_age_seconds=60, max_entries=3)
    assert stored is not None and stored.size == INITIAL + 1
    for _ in range(3):
        join(ledger_app, plan)
    stored = log.publish_if_due(START + timedelta(seconds=62), max_age_seconds=60, max_entries=3)
    assert stored is not None and stored.size == INITIAL + 4


def test_the_log_refuses_to_sign_a_checkpoint_inconsistent_with_one_it_signed(ledger_app: Ledger) -> None:
    log = checkpoints(ledger_app)
    log.publish(START)
    create_plan(ledger_app)
    log.log.integrate()
    with log.log.sql.transaction() as cursor:  # storage rewritten under the log: entry 4's hash replaced
        row = cursor.execute(f"SELECT hashes FROM {log.log.tiles} WHERE level = 0 AND idx = 0").fetchone()
        assert row is not None
        hashes = bytes(row[0])
        forged = hashes[:4 * 32] + hashlib.sha256(b"forged").digest() + hashes[5 * 32:]
        cursor.execute(f"UPDATE {log.log.tiles} SET hashes = ? WHERE level = 0 AND idx = 0", (forged,))
    fresh = CheckpointLog(TransparencyLog(ledger_app.app), signer_of(log))  # another process: nothing cached
    with pytest.raises(InconsistentLogError):
        fresh.publish(START)
    assert [c.size for c in fresh.all()] == [INITIAL]


def test_witnesses_cosign_after_checking_consistency(ledger_app: Ledger, tmp_path: Path) -> None:
    log = checkpoints(ledger_app)
    custodian, regulator = witness(ledger_app, "custodian", tmp_path), witness(ledger_app, "regulator", tmp_path)
    policy = WitnessPolicy((custodian.verifier, regulator.verifier), threshold=2)
    first = log.publish(START)
    for w in (custodian, regulator):
        log.add_cosignature(first.size, w.cosign(first.note, log.verifier, log.log.consistency_proof, 1), w.verifier)
    plan = create_plan(ledger_app)
    join(ledger_app, plan)
    second = log.publish(START)
    result = policy.evaluate(second.note)
    assert (result.present, result.satisfied) == ((), False)
    cosigned = custodian.cosign(second.note, log.verifier, log.log.consistency_proof, 2)
    stored = log.add_cosignature(second.size, cosigned, custodian.verifier)
    result = policy.evaluate(stored.note)
    assert (result.present, result.missing, result.satisfied) == (("custodian.witness",), ("regulator.witness",),
                                                                   False)
    stored = log.add_cosignature(second.size, regulator.cosign(second.note, log.verifier,
                                                               log.log.consistency_proof, 3), regulator.verifier)
    assert policy.evaluate(stored.note).satisfied
    assert verify_cosignature(stored.note, regulator.verifier) == 3
    with pytest.raises(NoteError):
        verify_cosignature(stored.note.replace(f"\n{second.size}\n", "\n99\n"), regulator.verifier)


def test_a_witness_refuses_a_fork_and_keeps_the_evidence(ledger_app: Ledger, tmp_path: Path) -> None:
    log = checkpoints(ledger_app)
    custodian = witness(ledger_app, "custodian", tmp_path)
    first = log.publish(START)
    custodian.cosign(first.note, log.verifier, log.log.consistency_proof, 1)
    create_plan(ledger_app)
    honest = log.publish(START)
    forked = sign_note(Checkpoint(ledger_app.settings.log_origin, honest.size, hashlib.sha256(b"other").digest()
                                  ).text(), signer_of(log))  # the operator equivocates with its own key
    with pytest.raises(ForkError):
        custodian.cosign(forked, log.verifier, log.log.consistency_proof, 2)
    assert custodian.evidence_path is not None
    evidence = json.loads(custodian.evidence_path.read_text())
    old = Checkpoint.parse(verify_note(evidence["older_checkpoint"], log.verifier))
    new = Checkpoint.parse(verify_note(evidence["newer_checkpoint"], log.verifier))
    import base64

    proof = [base64.b64decode(p) for p in evidence["consistency_proof"]]
    with pytest.raises(ProofError):
        verify_consistency(old.size, new.size, old.root, new.root, proof)
    latest = custodian.latest(ledger_app.settings.log_origin)
    assert latest is not None and latest.size == first.size  # state unchanged
    custodian.cosign(honest.note, log.verifier, log.log.consistency_proof, 3)  # the honest one is fine


def test_a_witness_refuses_a_bad_signature_and_a_shrinking_tree(ledger_app: Ledger,
                                                                tmp_path: Path) -> None:
    log = checkpoints(ledger_app)
    custodian = witness(ledger_app, "custodian", tmp_path)
    create_plan(ledger_app)
    second = log.publish(START)
    custodian.cosign(second.note, log.verifier, log.log.consistency_proof, 1)
    stranger = Signer(ledger_app.settings.log_origin, Ed25519PrivateKey.generate())
    with pytest.raises(WitnessRefusedError):
        custodian.cosign(sign_note(split_note(second.note)[0], stranger), log.verifier, log.log.consistency_proof, 2)
    smaller = sign_note(Checkpoint(ledger_app.settings.log_origin, 3, log.log.root(3)).text(), signer_of(log))
    with pytest.raises(WitnessRefusedError):
        custodian.cosign(smaller, log.verifier, log.log.consistency_proof, 2)


def test_two_logs_sharing_a_prefix_are_caught_by_a_witness(tmp_path: Path) -> None:
    """The operator copies its store and grows the copy differently: both histories are signed with the log key."""
    import shutil

    from ledger.bootstrap import bootstrap
    from ledger.config import Settings
    from ledger.service import party_key_directories
    from tests.support import new_ledger

    main = new_ledger(tmp_path / "a", None)
    create_plan(main)
    main.close()
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # the shared prefix
    main = bootstrap(Settings(data_dir=tmp_path / "a" / "operator"), clock=SimulatedClock(START),
                     key_directories=party_key_directories(tmp_path / "a"))
    copy = bootstrap(Settings(data_dir=tmp_path / "b" / "operator"), clock=SimulatedClock(START),
                     key_directories=party_key_directories(tmp_path / "b"))
    custodian = witness(main, "custodian", tmp_path)
    honest, forked = checkpoints(main), checkpoints(copy)
    create_plan(main)
    first = honest.publish(START)
    custodian.cosign(first.note, honest.verifier, honest.log.consistency_proof, 1)
    create_plan(copy, name="Other")
    create_plan(copy, name="Another")
    other = forked.publish(START)
    assert honest.verifier == forked.verifier and other.size > first.size
    with pytest.raises(ForkError):
        custodian.cosign(other.note, forked.verifier, forked.log.consistency_proof, 2)
    assert custodian.evidence_path is not None
    evidence = json.loads(custodian.evidence_path.read_text())
    assert evidence["older_checkpoint"] == first.note and evidence["newer_checkpoint"] == other.note
    main.close()
    copy.close()


def test_a_reader_without_the_log_key_reads_checkpoints_but_cannot_publish(ledger_app: Ledger) -> None:
    from ledger.errors import InputError

    published = ledger_app.checkpoints.publish(START)
    reader = CheckpointLog(ledger_app.log, None, ledger_app.checkpoints.verifier)
    assert reader.latest() == published and reader.verifier == ledger_app.checkpoints.verifier
    create_plan(ledger_app)
    with pytest.raises(InputError, match="key_must_exist"):
        reader.publish(START + timedelta(hours=1))



def test_a_witness_asked_twice_cosigns_once_and_the_stored_note_keeps_one_line_per_witness(
        ledger_app: Ledger, tmp_path: Path) -> None:
    from ledger.log.checkpoints import cosigners

    log = checkpoints(ledger_app)
    custodian = witness(ledger_app, "custodian", tmp_path)
    stored = log.publish(START)
    for timestamp in (1, 2):  # the second time at a later instant: still the first cosignature
        note = log.latest()
        assert note is not None
        cosigned = custodian.cosign(note.note, log.verifier, log.log.consistency_proof, timestamp)
        log.add_cosignature(stored.size, cosigned, custodian.verifier)
    latest = log.latest()
    assert latest is not None and len(split_note(latest.note)[1]) == 2
    assert verify_cosignature(latest.note, custodian.verifier) == 1
    assert cosigners(latest.note, log.verifier) == (f"custodian.witness+{custodian.verifier.hash.hex()}",)
    other = Witness(Signer("custodian.witness", Ed25519PrivateKey.generate()), tmp_path / "other.sqlite3")
    log.add_cosignature(stored.size, other.cosign(stored.note, log.verifier, log.log.consistency_proof, 3),
                        other.verifier)  # the same name under another key: another witness
    latest = log.latest()
    assert latest is not None and len(cosigners(latest.note, log.verifier)) == 2


def test_a_cosigned_note_carrying_foreign_lines_adds_only_the_witness_own(ledger_app: Ledger,
                                                                          tmp_path: Path) -> None:
    log = checkpoints(ledger_app)
    custodian = witness(ledger_app, "custodian", tmp_path)
    stored = log.publish(START)
    cosigned = custodian.cosign(stored.note, log.verifier, log.log.consistency_proof, 1)
    stranger = Signer("stranger", Ed25519PrivateKey.generate())
    from ledger.log.note import signer_line

    padded = cosigned + signer_line(stored.checkpoint.text(), stranger)
    assert log.add_cosignature(stored.size, padded, custodian.verifier).note == cosigned


def test_an_operator_key_may_not_witness(ledger_app: Ledger) -> None:
    from ledger.log.witness import WitnessKeyError, witness_signer

    for name in ("operator", "operator-root", "log"):
        with pytest.raises(WitnessKeyError, match="never to the operator"):
            witness_signer(ledger_app.signers.load(name), f"{name}.witness")
    assert witness_signer(ledger_app.signers.load("regulator"), "regulator.witness").name == "regulator.witness"


def test_a_state_file_that_is_not_a_witness_database_is_a_clear_error(ledger_app: Ledger,
                                                                       tmp_path: Path) -> None:
    from ledger.log.witness import WitnessStateError

    state = tmp_path / "custodian.json"
    state.write_text('{"checkpoint": "from an older witness", "size": 6}\n' * 200)
    with pytest.raises(WitnessStateError, match=r"^state: .*custodian\.json cannot be used"):
        Witness(Signer("custodian.witness", ledger_app.signers.load("custodian").private_key), state)
    assert state.read_text().startswith('{"checkpoint"')  # nothing the witness owns is overwritten
