"""Batch signing in worker processes: the same signatures as signing here, every stored event verifies, and a
failing worker costs nothing but speed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ledger.anchors import TrustAnchors
from ledger.config import Settings
from ledger.errors import ConfigError
from ledger.keys import SigningKey, event_signature_is_valid
from ledger.signing import CHUNK_EVENTS, BatchSigner
from ledger.verify import verify_entries
from schemas.commands.membership import Join
from sim.fixtures import commitment
from tests.support import cid, create_plan, new_ledger
from tests.test_verify import independent_verify


def hashes(count: int) -> list[bytes]:
    """Distinct event hashes."""
    return [hashlib.sha256(str(i).encode()).digest() for i in range(count)]


def test_a_worker_makes_exactly_the_signatures_made_here() -> None:
    operator, custodian = SigningKey.generate("operator", "operator"), SigningKey.generate("custodian", "custodian")
    signer = BatchSigner(workers=1)
    try:
        items = [(i, operator if i % 3 else custodian, h) for i, h in enumerate(hashes(3 * CHUNK_EVENTS + 5))]
        signer.begin()
        for event_id, key, event_hash in items:
            signer.submit(event_id, key, event_hash)
        signer.finish()
        assert signer._workers, "no worker was started for a batch of several chunks"
        for event_id, key, event_hash in items:
            signature = signer.signature(event_id)
            assert signature == key.sign(event_hash)
            assert event_signature_is_valid(key.public_raw, event_hash, signature)
        assert signer.signature(0) is None, "a signature is handed out once"
    finally:
        signer.close()


def test_a_batch_abandoned_half_way_leaves_nothing_for_the_next() -> None:
    key = SigningKey.generate("operator", "operator")
    signer = BatchSigner(workers=1)
    try:
        signer.begin()
        for event_id, event_hash in enumerate(hashes(2 * CHUNK_EVENTS)):
            signer.submit(event_id, key, event_hash)
        signer.begin()  # the batch failed: its answers are read and dropped
        fresh = hashes(CHUNK_EVENTS + 1)[::-1]
        for event_id, event_hash in enumerate(fresh):
            signer.submit(event_id, key, event_hash)
        signer.finish()
        assert [signer.signature(i) for i in range(len(fresh))] == [key.sign(h) for h in fresh]
    finally:
        signer.close()


def test_when_a_worker_dies_the_missing_signatures_are_made_here() -> None:
    key = SigningKey.generate("operator", "operator")
    signer = BatchSigner(workers=1)
    try:
        signer.begin()
        items = list(enumerate(hashes(4 * CHUNK_EVENTS)))
        for event_id, event_hash in items[:CHUNK_EVENTS]:
            signer.submit(event_id, key, event_hash)
        signer._workers[0].process.kill()
        signer._workers[0].process.wait()
        for event_id, event_hash in items[CHUNK_EVENTS:]:
            signer.submit(event_id, key, event_hash)
        signer.finish()
        made = {event_id: signer.signature(event_id) for event_id, _ in items}
        assert signer.worker_count == 0, "a broken worker must not be used again"
        for event_id, event_hash in items:
            assert made[event_id] in (None, key.sign(event_hash))
    finally:
        signer.close()


def joins(plan: str, count: int) -> list[Join]:
    """Join commands for `count` members."""
    return [Join(command_id=cid("join"), plan=plan, age_years=20 + i % 39, sex="f", province="zj",
                 consent_commitment=commitment("consent"), health_declaration_commitment=commitment("health"))
            for i in range(count)]


@pytest.mark.parametrize("workers", [0, 1])
def test_every_event_of_a_large_batch_verifies_with_or_without_workers(tmp_path: Path, workers: int) -> None:
    app = new_ledger(tmp_path, None, signing_workers=workers)
    try:
        plan = create_plan(app)
        app.execute_many(joins(plan, 5 * CHUNK_EVENTS + 7))
        assert bool(app.app._batch_signer._workers) == (workers > 0)
        entries = [entry for _, entry in app.entries()]
    finally:
        app.close()
    assert independent_verify(entries) == len(entries)
    report = verify_entries(entries, TrustAnchors.load(tmp_path / "operator" / "trust-anchors.json"))
    assert report.ok, report.failures[:3]


def test_a_worker_failing_mid_batch_still_saves_a_batch_that_verifies(tmp_path: Path) -> None:
    app = new_ledger(tmp_path, None, signing_workers=1)
    try:
        plan = create_plan(app)
        app.execute_many(joins(plan, 2 * CHUNK_EVENTS))  # starts the worker
        app.app._batch_signer._workers[0].process.kill()
        app.execute_many(joins(plan, 3 * CHUNK_EVENTS))
        entries = [entry for _, entry in app.entries()]
    finally:
        app.close()
    assert independent_verify(entries) == len(entries)


def test_the_number_of_signing_workers_is_read_from_the_environment() -> None:
    assert Settings.from_env({"LEDGER_SIGNING_WORKERS": "0"}).signing_workers == 0
    assert Settings.from_env({"LEDGER_SIGNING_WORKERS": "3"}).signing_workers == 3
    for bad in ("-1", "two", "65", "²", " 1"):
        with pytest.raises(ConfigError, match="LEDGER_SIGNING_WORKERS"):
            Settings.from_env({"LEDGER_SIGNING_WORKERS": bad})
