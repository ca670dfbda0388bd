"""The monitor follows checkpoints over time and keeps evidence when the log forks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from audit.monitor import monitor_once
from ledger.bootstrap import Ledger
from ledger.log.merkle import ProofError, verify_consistency
from ledger.log.note import Checkpoint, sign_note, verify_note
from ledger.log.witness import CheckpointFollower
from tests.support import INITIAL, create_plan, signer_of


def test_the_monitor_accepts_a_growing_log_and_catches_a_fork(ledger_app: Ledger, tmp_path: Path) -> None:
    import base64

    import pytest

    log = ledger_app.checkpoints
    follower = CheckpointFollower(tmp_path / "monitor.json", tmp_path / "evidence.json", "monitor")
    log.publish(ledger_app.clock.now())
    create_plan(ledger_app)
    log.publish(ledger_app.clock.now())
    assert monitor_once(follower, log, log.verifier).accepted == [INITIAL, INITIAL + 1]
    assert monitor_once(follower, log, log.verifier).accepted == []
    create_plan(ledger_app)
    create_plan(ledger_app)
    log.log.integrate()
    size = INITIAL + 3
    forged = sign_note(Checkpoint(ledger_app.settings.log_origin, size, hashlib.sha256(b"elsewhere").digest()
                                  ).text(), signer_of(log))
    with log.log.sql.transaction() as cursor:
        cursor.execute(f"INSERT INTO {log.table} VALUES (?, ?, ?)", (size, forged, "2026-12-01T00:00:00.000000Z"))
    run = monitor_once(follower, log, log.verifier)
    assert run.accepted == [] and run.problem is not None and "inconsistent" in run.problem
    evidence = json.loads((tmp_path / "evidence.json").read_text())
    old = Checkpoint.parse(verify_note(evidence["older_checkpoint"], log.verifier))
    new = Checkpoint.parse(verify_note(evidence["newer_checkpoint"], log.verifier))
    with pytest.raises(ProofError):
        verify_consistency(old.size, new.size, old.root, new.root,
                           [base64.b64decode(p) for p in evidence["consistency_proof"]])
    assert json.loads((tmp_path / "monitor.json").read_text())["size"] == INITIAL + 1



def test_a_second_checkpoint_of_a_size_the_monitor_has_seen_with_another_root_is_a_fork(
        ledger_app: Ledger, tmp_path: Path) -> None:
    """The operator re-signs history at a size the monitor already saw: without growing the tree it is still a
    fork, whatever size comes after it."""
    log = ledger_app.checkpoints
    follower = CheckpointFollower(tmp_path / "monitor.json", tmp_path / "evidence.json", "monitor")
    first = log.publish(ledger_app.clock.now())
    create_plan(ledger_app)
    second = log.publish(ledger_app.clock.now())
    assert monitor_once(follower, log, log.verifier).accepted == [first.size, second.size]
    resigned = sign_note(Checkpoint(ledger_app.settings.log_origin, first.size,
                                    hashlib.sha256(b"rewritten").digest()).text(), signer_of(log))
    with log.log.sql.transaction() as cursor:  # the stored checkpoint of a size already seen, replaced
        cursor.execute(f"UPDATE {log.table} SET note = ? WHERE size = ?", (resigned, first.size))
    reopened = CheckpointFollower(tmp_path / "monitor.json", tmp_path / "evidence.json", "monitor")
    run = monitor_once(reopened, log, log.verifier)
    assert run.fork and run.accepted == [] and f"size {first.size} with different roots" in str(run.problem)
    evidence = json.loads((tmp_path / "evidence.json").read_text())
    assert (evidence["older_checkpoint"], evidence["newer_checkpoint"]) == (first.note, resigned)
    for note in (evidence["older_checkpoint"], evidence["newer_checkpoint"]):
        assert Checkpoint.parse(verify_note(note, log.verifier)).size == first.size  # both signed by the log
    assert monitor_once(reopened, log, log.verifier).fork  # and it stays a fork on every later pass


def test_a_smaller_checkpoint_the_monitor_never_saw_must_be_consistent_with_the_last(
        ledger_app: Ledger, tmp_path: Path) -> None:
    log = ledger_app.checkpoints
    follower = CheckpointFollower(tmp_path / "monitor.json", tmp_path / "evidence.json", "monitor")
    create_plan(ledger_app)
    create_plan(ledger_app)
    latest = log.publish(ledger_app.clock.now())
    assert monitor_once(follower, log, log.verifier).accepted == [latest.size]
    older = INITIAL + 1
    honest_older = sign_note(Checkpoint(ledger_app.settings.log_origin, older, log.log.root(older)).text(),
                             signer_of(log))
    forged_older = sign_note(Checkpoint(ledger_app.settings.log_origin, INITIAL, hashlib.sha256(b"x").digest()
                                        ).text(), signer_of(log))
    with log.log.sql.transaction() as cursor:  # published late, out of order
        cursor.execute(f"INSERT INTO {log.table} VALUES (?, ?, ?)", (older, honest_older,
                                                                      "2026-01-01T00:00:00.000000Z"))
    assert monitor_once(follower, log, log.verifier).accepted == [older]
    with log.log.sql.transaction() as cursor:
        cursor.execute(f"INSERT INTO {log.table} VALUES (?, ?, ?)", (INITIAL, forged_older,
                                                                      "2026-01-01T00:00:00.000000Z"))
    assert monitor_once(follower, log, log.verifier).fork
    assert json.loads((tmp_path / "monitor.json").read_text())["size"] == latest.size
