"""The stored log on both backends: incremental, restart-safe integration; roots and proofs from storage."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from ledger.application import LedgerApplication
from ledger.log.merkle import leaf_hash, mth, root_from_leaf_hashes, verify_consistency, verify_inclusion
from ledger.log.tree import TransparencyLog
from tests.support import create_plan, join


def grow(app: LedgerApplication, members: int) -> None:
    plan = create_plan(app)
    for _ in range(members):
        join(app, plan)


def test_roots_and_proofs_at_every_size(ledger_app: LedgerApplication) -> None:
    grow(ledger_app, 30)
    log = TransparencyLog(ledger_app)
    entries = [entry for _, entry in ledger_app.entries()]
    assert log.integrate(page=7) == len(entries) == log.size()
    hashes = [leaf_hash(e) for e in entries]
    for size in range(1, len(entries) + 1):
        root = log.root(size)
        assert root == mth(entries[:size])
        for index in range(size):
            verify_inclusion(index, size, hashes[index], log.inclusion_proof(index, size), root)
        for old in range(1, size + 1):
            verify_consistency(old, size, log.root(old), root, log.consistency_proof(old, size))
    with pytest.raises(ValueError, match="size"):
        log.root(len(entries) + 1)


def test_integration_is_incremental_and_survives_a_restart(ledger_app: LedgerApplication) -> None:
    grow(ledger_app, 10)
    first = TransparencyLog(ledger_app)
    assert first.integrate() == 17
    grow(ledger_app, 5)
    restarted = TransparencyLog(ledger_app)
    assert restarted.integrate() == 6
    assert restarted.integrate() == 0
    entries = [entry for _, entry in ledger_app.entries()]
    assert restarted.root() == root_from_leaf_hashes([leaf_hash(e) for e in entries])
    assert [e for _, e in restarted.entries(3)] == entries[3:]


def test_a_crash_during_integration_leaves_nothing_half_written(ledger_app: LedgerApplication,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    grow(ledger_app, 12)
    log = TransparencyLog(ledger_app)
    log.integrate(page=5)
    grow(ledger_app, 3)
    original = log.sql.transaction
    size_before = log.size()

    @contextmanager
    def crashing(commit: bool = True) -> Iterator[Any]:
        with original(commit) as cursor:
            real = cursor.executemany

            def fail_on_nodes(statement: str, rows: Any) -> None:
                real(statement, rows)
                if "log_nodes" in statement:
                    raise RuntimeError("power cut after the leaves and nodes were written, before commit")

            cursor.executemany = fail_on_nodes  # type: ignore[method-assign]
            yield cursor

    monkeypatch.setattr(log.sql, "transaction", crashing)
    with pytest.raises(RuntimeError):
        log.integrate()
    monkeypatch.setattr(log.sql, "transaction", original)
    assert log.size() == size_before  # rolled back with the position
    assert log.integrate() > 0
    entries = [entry for _, entry in ledger_app.entries()]
    assert log.size() == len(entries) > size_before
    assert log.root() == mth(entries)
    rng = random.Random(1)
    for _ in range(20):
        size = rng.randint(1, len(entries))
        index = rng.randrange(size)
        verify_inclusion(index, size, leaf_hash(entries[index]), log.inclusion_proof(index, size), log.root(size))
