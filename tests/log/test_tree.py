"""The stored log on both backends: incremental, restart-safe integration; roots and proofs from storage."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from ledger.bootstrap import Ledger
from ledger.log.merkle import leaf_hash, mth, root_from_leaf_hashes, verify_consistency, verify_inclusion
from ledger.log.tree import TransparencyLog
from tests.support import INITIAL, create_plan, join


def grow(app: Ledger, members: int) -> None:
    plan = create_plan(app)
    for _ in range(members):
        join(app, plan)


def test_roots_and_proofs_at_every_size(ledger_app: Ledger) -> None:
    grow(ledger_app, 30)
    log = ledger_app.log
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


def test_integration_is_incremental_and_survives_a_restart(ledger_app: Ledger) -> None:
    grow(ledger_app, 10)
    first = ledger_app.log
    assert first.integrate() == INITIAL + 11
    grow(ledger_app, 5)
    restarted = ledger_app.log
    assert restarted.integrate() == 6
    assert restarted.integrate() == 0
    entries = [entry for _, entry in ledger_app.entries()]
    assert restarted.root() == root_from_leaf_hashes([leaf_hash(e) for e in entries])
    assert [e for _, e in restarted.entries(3)] == entries[3:]


def test_a_crash_during_integration_leaves_nothing_half_written(ledger_app: Ledger,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    grow(ledger_app, 12)
    log = ledger_app.log
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
                if "log_tiles" in statement:
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


class Synthetic:
    """A store of `count` synthetic entries (the tree does not care what entries are)."""

    def __init__(self, path: Path, count: int) -> None:
        from eventsourcing.sqlite import SQLiteDatastore

        self.recorder = type("Recorder", (), {"datastore": SQLiteDatastore(str(path))})()
        self.count = count

    def entries(self, start: int = 1, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        for number in range((start + 2) // 3, self.count + 1):
            yield number * 3, b"entry %d" % number  # notification ids with gaps, as PostgreSQL may leave


def test_a_tree_spanning_three_tile_levels(tmp_path: Path) -> None:
    count = 70_000  # more than 256 * 256: hashes stored at levels 0, 8 and 16
    source = Synthetic(tmp_path / "big.sqlite3", count)
    hashes = [leaf_hash(b"entry %d" % i) for i in range(1, count + 1)]
    log = TransparencyLog(source)
    source.count = 65_537
    log.integrate(page=9_999)
    source.count = count
    log = TransparencyLog(source)  # a restart
    log.integrate(page=7_777)
    assert log.size() == count
    rng = random.Random(3)
    for size in [1, 255, 256, 257, 65_535, 65_536, 65_537, count, *(rng.randint(1, count) for _ in range(5))]:
        root = root_from_leaf_hashes(hashes[:size])
        log.clear_cache()
        assert log.root(size) == root
        index = rng.randrange(size)
        verify_inclusion(index, size, hashes[index], log.inclusion_proof(index, size), root)
        old = rng.randint(1, size)
        verify_consistency(old, size, root_from_leaf_hashes(hashes[:old]), root, log.consistency_proof(old, size))
    assert [e for _, e in log.entries(65_535)][:3] == [b"entry 65536", b"entry 65537", b"entry 65538"]


def test_a_log_integrated_by_two_processes_in_turn_is_extended_from_its_stored_tiles(ledger_app: Ledger) -> None:
    """A process that had integrated the log, then another that extended it (the service's integrator and a
    command, or the fault simulation's checker), then the first again: the first must extend the stored partial tile,
    not the one it remembered."""
    grow(ledger_app, 5)
    first, other = (TransparencyLog(ledger_app.app, create=False, index=True) for _ in range(2))
    first.integrate()
    grow(ledger_app, 3)
    other.integrate()
    grow(ledger_app, 4)
    first.integrate()
    entries = [entry for _, entry in ledger_app.entries()]
    root = root_from_leaf_hashes([leaf_hash(e) for e in entries])
    assert first.root() == other.root() == root
    size = len(entries)
    for index in (0, size - 5, size - 1):
        verify_inclusion(index, size, leaf_hash(entries[index]), other.inclusion_proof(index, size), root)


def integrate_at_once(log: TransparencyLog, start: threading.Barrier, failures: list[Exception]) -> None:
    """Integrate once every integrator is ready; keep what it raised."""
    start.wait()
    try:
        log.integrate(page=3)
    except Exception as error:
        failures.append(error)


def test_two_processes_integrating_one_log_at_once_take_turns(ledger_app: Ledger) -> None:
    """Seed 135 of the fault simulation on PostgreSQL (`python -m sim --seed 135 --steps 25`): the checker
    integrated the log while the service's integrator did, and failed with `duplicate key value violates unique
    constraint "log_stream_entries_pkey"` — both had read the same position. Integrators of one log now take turns,
    each batch checked against the position once it has the turn."""
    grow(ledger_app, 40)
    for _ in range(3):
        grow(ledger_app, 10)
        logs = [TransparencyLog(ledger_app.app, create=False, index=True) for _ in range(2)]
        start = threading.Barrier(len(logs))
        failures: list[Exception] = []
        threads = [threading.Thread(target=integrate_at_once, args=(log, start, failures)) for log in logs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not failures, failures
        entries = [entry for _, entry in ledger_app.entries()]
        root = root_from_leaf_hashes([leaf_hash(e) for e in entries])
        assert [log.size() for log in logs] == [len(entries)] * 2 and logs[0].root() == logs[1].root() == root
        index = logs[0].index
        assert index is not None and index.position() == len(entries)
