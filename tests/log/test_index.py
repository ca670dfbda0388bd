"""The log's index for bundles: a roll's stored tree gives, for every member, the leaf index and the inclusion proof
that the roll computed in memory gives — at roll sizes around each tile boundary, where the proof composes chunks
recomputed from member ids with stored tiles — and refuses a member who is not in the roll."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
from eventsourcing.sqlite import SQLiteDatastore

from ledger.bootstrap import Ledger
from ledger.log.index import ROLL_CACHE_BYTES, Assessment, LogIndex, RollCache, index_schema
from ledger.log.merkle import ProofError, inclusion_proof, root_from_leaf_hashes, verify_inclusion
from ledger.projections.sql import SqlStore
from ledger.sharing import roll_leaf_hashes

PLAN = str(uuid.UUID(int=7))
CUTOFF = "2026-03-01T00:00:00.000000Z"


def indexed_roll(tmp_path: Path, members: list[str], share: int,
                 body: dict[str, object] | None = None) -> tuple[LogIndex, Assessment]:
    sql = SqlStore(SQLiteDatastore(str(tmp_path / f"index-{len(members)}.sqlite3")))
    sql.create(["CREATE TABLE IF NOT EXISTS projection_tracking (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
                *index_schema(sql)])
    index = LogIndex(sql, lambda start: iter(()), lambda tile: [])
    period = str(uuid.uuid4())
    with sql.transaction() as cursor:
        cursor.executemany(f"INSERT INTO {index.memberships} VALUES (?, ?, ?, NULL, 40)",
                           [(m, PLAN, "2026-01-01T00:00:00.000000Z") for m in members])
        cursor.execute(f"INSERT INTO {index.memberships} VALUES (?, ?, ?, ?, 40)",  # left before the cutoff
                       (str(uuid.uuid4()), PLAN, "2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z"))
        index._index_roll(cursor, 9, 10, period, {"plan": PLAN, "cutoff_at": CUTOFF, "share_fen": share,
                                                  **(body or {})})
    [assessment] = index.plan_assessments(PLAN, 10)
    return index, assessment


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 513, 65_536, 65_537 + 300])
@pytest.mark.parametrize("cache_bytes", [ROLL_CACHE_BYTES, 0])
def test_a_stored_roll_proves_each_member_as_the_roll_in_memory_does(tmp_path: Path, size: int,
                                                                      cache_bytes: int) -> None:
    """Whatever the process keeps of the roll (everything, or no more than one tile: each proof then reads what it
    needs again), each proof is the one the roll in memory gives."""
    rng = random.Random(size)
    members = sorted(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(size))
    index, assessment = indexed_roll(tmp_path, members, 123)
    index.rolls = RollCache(cache_bytes)
    assert (assessment.roll_size, assessment.share_fen, assessment.index) == (size, 123, 9)
    hashes = roll_leaf_hashes(assessment.period, members, 123)
    root = root_from_leaf_hashes(hashes)
    for position in sorted({0, 1, size // 2, size - 257, size - 256, size - 2, size - 1} & set(range(size))):
        [(leaf, proof)] = index.roll_proofs([assessment], members[position])
        assert leaf == position and proof == inclusion_proof(position, hashes)
        verify_inclusion(position, size, hashes[position], proof, root)
        if size > 1:
            with pytest.raises(ProofError):  # the same proof for another member's leaf
                verify_inclusion(position, size, hashes[position - 1], proof, root)
    with pytest.raises(LookupError, match="not in the roll"):
        index.roll_proofs([assessment], str(uuid.uuid4()))


def test_a_schema_3_roll_leaves_out_members_past_the_top_age(tmp_path: Path) -> None:
    """Ageing out: the roll leaves out the members a schema-3 assessment lists as past the top age (`left_out`, which
    the writer found with their exact ages), and the index remembers it for the member's bundle."""
    members = sorted(str(uuid.uuid4()) for _ in range(3))
    old = str(uuid.uuid4())
    for top, expected in ((59, members), (60, sorted([*members, old]))):
        (tmp_path / str(top)).mkdir()
        index, _ = indexed_roll(tmp_path / str(top), members, 10)
        with index.sql.transaction() as cursor:  # the roll is made again with the old member in the plan
            cursor.execute(f"INSERT INTO {index.memberships} VALUES (?, ?, ?, NULL, 59)",
                           (old, PLAN, "2025-02-19T17:00:00.000000Z"))  # 01:00 on 20 February in China
            cursor.execute(f"DELETE FROM {index.assessments}")
            index._index_roll(cursor, 19, 20, str(uuid.uuid4()), {
                "plan": PLAN, "cutoff_at": "2026-02-28T16:00:00.000000Z", "share_fen": 10, "top_age_years": top,
                "utc_offset_minutes": 480, "left_out": [old] if top == 59 else []})
        [assessment] = index.plan_assessments(PLAN, 30)
        assert assessment.roll_size == len(expected)
        assert index.left_out_of(old) == ({assessment.period} if top == 59 else set())
        placed = [leaf for leaf, _ in index.roll_proofs([assessment], old)] if old in expected else []
        assert placed == ([expected.index(old)] if old in expected else [])
        if old not in expected:
            with pytest.raises(LookupError, match="not in the roll"):
                index.roll_proofs([assessment], old)


def test_a_roll_streamed_from_either_store_is_the_roll_in_memory(ledger_app: Ledger) -> None:
    """The index streams a roll from the event store's database a batch at a time (PostgreSQL: a server-side cursor,
    in code-point order whatever the database's collation) and writes its chunks as they fill: the stored tree
    proves each member as the roll in memory does, on both stores."""
    index = ledger_app.checkpoints.log.index
    assert index is not None
    rng = random.Random(11)
    members = sorted(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2 * 256 + 3))
    period = str(uuid.uuid4())
    with index.sql.transaction() as cursor:
        cursor.executemany(f"INSERT INTO {index.memberships} VALUES (?, ?, ?, NULL, 40)",
                           [(m, PLAN, "2026-01-01T00:00:00.000000Z") for m in members])
        index._index_roll(cursor, 9, 10, period, {"plan": PLAN, "cutoff_at": CUTOFF, "share_fen": 5})
    [assessment] = index.plan_assessments(PLAN, 10)
    assert assessment.roll_size == len(members)
    hashes = roll_leaf_hashes(period, members, 5)
    for position in (0, 255, 256, 511, 512, len(members) - 1):
        [(leaf, proof)] = index.roll_proofs([assessment], members[position])
        assert leaf == position and proof == inclusion_proof(position, hashes)
