"""The log's index for members' proof bundles: what `ledger.log.bundle` needs, stored, so that a bundle reads a few
rows instead of the whole log.

Kept by integration (`TransparencyLog.integrate` on the operator's log), in log order, with its own position:

- `log_stream_entries(stream, idx, nid)`: each entry's log index and notification id, by stream;
- `log_member_claims(member, claim)`: the claims each member filed;
- `log_key_entries(key_id, idx, nid)`: every `key.registered` entry;
- `log_assessments(plan, idx, nid, period, cutoff_at, share_fen, roll_size, top_age, utc_offset)`: every
  `period.assessed` entry (the top age and zone of a schema-3 one, NULL before);
- `log_memberships(member, plan, joined_at, ended_at, age_years)`: who is locked at a cutoff, as the log says so
  far; `log_left_out(period, member)`: whom a schema-3 roll left out for their age (its `left_out`);
- each assessment's roll (the members locked at its cutoff, sorted by id, as the writer signed its `roll_root`):
  `roll_chunks(period, chunk, first_member, members, groups)` — the ids in chunks of 256 (16 bytes each), to find
  a member's leaf, with the roots of each chunk's complete groups of 16 leaves (the tree's level 4) — and
  `roll_tiles(period, level, idx, hashes)`, the roll tree's hashes at levels 8, 16, … in the tiles of
  `ledger.log.tree` (leaf hashes are never stored: 18 bytes a member a period in all).

A roll proof reads the member's chunk (and the last, partial one) and two or three tiles, and hashes the member's
group of 16 leaves: a member's bundle after 48 periods reads a few hundred rows, whatever the log's size. The roll
is computed from the log's own entries when the `period.assessed` entry is indexed, never from a read model.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import Any
from uuid import UUID

import orjson

from ledger.ages import join_age_years
from ledger.log.merkle import inclusion_path, node_hash, reduce_complete, tile_levels
from ledger.projections.sql import SqlCursor, SqlStore
from ledger.sharing import roll_leaf_hashes

TRACKING_NAME = "log_index"
WIDTH = 256
HEIGHT = 8
GROUP = 16
"""Leaves under each stored node of a chunk (level 4): a proof hashes one group's leaves, not the chunk's."""
FLUSH = 10_000
"""Index rows written a statement at a time: a transaction never waits long on this process (PostgreSQL ends one
idle for `idle_in_transaction_session_timeout`)."""
ENDED = ("member.lapsed", "member.exited", "member.excluded", "member.wind_down_refund_due", "member.aged_out")
"""The events that end a membership (the first one after the join counts)."""


def index_schema(sql: SqlStore) -> list[str]:
    """The index's tables (IF NOT EXISTS), for `ledger.migrations`."""
    t, blob = sql.table, "BYTEA" if sql.postgres else "BLOB"
    return [
        f"CREATE TABLE IF NOT EXISTS {t('log_stream_entries')} (stream TEXT NOT NULL, idx BIGINT NOT NULL, "
        "nid BIGINT NOT NULL, PRIMARY KEY (stream, idx))",
        f"CREATE TABLE IF NOT EXISTS {t('log_member_claims')} (member TEXT NOT NULL, claim TEXT NOT NULL, "
        "PRIMARY KEY (member, claim))",
        f"CREATE TABLE IF NOT EXISTS {t('log_key_entries')} (key_id TEXT NOT NULL, idx BIGINT NOT NULL, "
        "nid BIGINT NOT NULL, PRIMARY KEY (key_id, idx))",
        f"CREATE INDEX IF NOT EXISTS log_key_entries_idx ON {t('log_key_entries')} (idx)",
        f"CREATE TABLE IF NOT EXISTS {t('log_assessments')} (plan TEXT NOT NULL, idx BIGINT NOT NULL, "
        "nid BIGINT NOT NULL, period TEXT NOT NULL, cutoff_at TEXT NOT NULL, share_fen BIGINT NOT NULL, "
        "roll_size BIGINT NOT NULL, top_age INTEGER, utc_offset INTEGER, PRIMARY KEY (plan, idx))",
        f"CREATE TABLE IF NOT EXISTS {t('log_memberships')} (member TEXT PRIMARY KEY, plan TEXT NOT NULL, "
        "joined_at TEXT NOT NULL, ended_at TEXT, age_years INTEGER)",
        f"CREATE INDEX IF NOT EXISTS log_memberships_plan ON {t('log_memberships')} (plan, joined_at)",
        f"CREATE TABLE IF NOT EXISTS {t('log_left_out')} (period TEXT NOT NULL, member TEXT NOT NULL, "
        "PRIMARY KEY (member, period))",
        f"CREATE TABLE IF NOT EXISTS {t('roll_chunks')} (period TEXT NOT NULL, chunk BIGINT NOT NULL, "
        f"first_member TEXT NOT NULL, members {blob} NOT NULL, groups {blob} NOT NULL, PRIMARY KEY (period, chunk))",
        f"CREATE INDEX IF NOT EXISTS roll_chunks_first ON {t('roll_chunks')} (period, first_member)",
        f"CREATE TABLE IF NOT EXISTS {t('roll_tiles')} (period TEXT NOT NULL, level INTEGER NOT NULL, "
        f"idx BIGINT NOT NULL, hashes {blob} NOT NULL, PRIMARY KEY (period, level, idx))",
    ]


@dataclass(frozen=True)
class Assessment:
    """An indexed `period.assessed` entry."""

    index: int
    nid: int
    period: str
    cutoff_at: str
    share_fen: int
    roll_size: int
    top_age_years: int | None = None
    """Schema 3: members older than this at the cutoff are not in the roll (`ledger.ages`)."""
    utc_offset_minutes: int | None = None



class LogIndex:
    """The index over a transparency log (see the module docstring)."""

    def __init__(self, sql: SqlStore, entries: Callable[[int], Iterable[tuple[int, bytes]]],
                 ids_of: Callable[[int], Sequence[int]]) -> None:
        self.sql = sql
        self._entries = entries
        """(log index, entry) from a log index, for integrated entries."""
        self._ids_of = ids_of
        """The notification ids of level-0 tile `t`'s entries."""
        t = sql.table
        self.streams, self.claims, self.keys = t("log_stream_entries"), t("log_member_claims"), t("log_key_entries")
        self.assessments, self.memberships = t("log_assessments"), t("log_memberships")
        self.chunks, self.tiles, self.tracking = t("roll_chunks"), t("roll_tiles"), t("projection_tracking")
        self.left_out = t("log_left_out")
        self.last_chunks: dict[str, _Chunk] = {}
        """Each roll's last, partial chunk's leaf hashes, once read (every proof in that roll needs them)."""

    # -- keeping it ----------------------------------------------------------------------------------------

    def position(self) -> int:
        """How many log entries are indexed."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,)).fetchone()
        return int(row[0]) if row else 0

    def catch_up(self, size: int, page: int = 100_000) -> int:
        """Index the entries from the indexed position to `size` (the integrated tree's); return how many. Two
        processes indexing the same log take turns, each batch checked against the position once it has the turn."""
        done = 0
        while (position := self.position()) < size:
            batch = list(islice(self._entries(position), min(page, size - position)))
            if not batch:
                return done
            # the entries' notification ids, read before the write transaction: a second connection asked for
            # while holding the writer waits on a pool another integrator may hold while it waits for the writer
            ids = {tile: self._ids_of(tile) for tile in range(batch[0][0] // WIDTH, batch[-1][0] // WIDTH + 1)}
            with self.sql.transaction() as cursor:
                self.sql.serialize(cursor, TRACKING_NAME)  # indexers of one log (the service, a command) take turns
                row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,)
                                     ).fetchone()
                if (int(row[0]) if row else 0) != position:
                    continue  # another indexer got there first: go on from where it stopped
                self._apply(cursor, batch, ids)
                cursor.execute(f"DELETE FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,))
                cursor.execute(f"INSERT INTO {self.tracking} VALUES (?, ?)", (TRACKING_NAME, batch[-1][0] + 1))
            done += len(batch)
        return done

    @staticmethod
    def _nid(index: int, ids: dict[int, Sequence[int]]) -> int:
        return int(ids[index // WIDTH][index % WIDTH])

    def _apply(self, cursor: SqlCursor, batch: list[tuple[int, bytes]], ids: dict[int, Sequence[int]]) -> None:
        streams: list[tuple[str, int, int]] = []
        claims: list[tuple[str, str]] = []
        keys: list[tuple[str, int, int]] = []
        joined: list[tuple[str, str, str, int | None]] = []
        ended: list[tuple[str, str]] = []

        def flush() -> None:
            cursor.executemany(f"INSERT INTO {self.streams} VALUES (?, ?, ?)", streams)
            cursor.executemany(f"INSERT INTO {self.claims} VALUES (?, ?)", claims)
            cursor.executemany(f"INSERT INTO {self.keys} VALUES (?, ?, ?)", keys)
            cursor.executemany(f"INSERT INTO {self.memberships} (member, plan, joined_at, ended_at, age_years) "
                               "VALUES (?, ?, ?, NULL, ?)", joined)
            cursor.executemany(f"UPDATE {self.memberships} SET ended_at = ? WHERE member = ? AND ended_at IS NULL",
                               ended)
            for rows in (streams, claims, keys, joined, ended):
                rows.clear()

        for index, entry in batch:
            envelope = orjson.loads(entry)
            kind, stream, body = envelope["type"], envelope["stream"], envelope["body"]
            nid = self._nid(index, ids)
            streams.append((stream, index, nid))
            if kind == "key.registered":
                keys.append((body["key_id"], index, nid))
            elif kind == "member.joined":
                joined.append((stream, body["plan"], envelope["at"], join_age_years(body)))
            elif kind in ENDED:
                ended.append((envelope["at"], stream))
            elif kind == "claim.filed" and body.get("member") is not None:  # a sealed claim names no member
                claims.append((body["member"], stream))
            elif kind == "period.assessed":
                flush()  # the memberships so far decide the roll
                self._index_roll(cursor, index, nid, stream, body)
            if len(streams) >= FLUSH:
                flush()
        flush()

    def _index_roll(self, cursor: SqlCursor, index: int, nid: int, period: str, body: dict[str, Any]) -> None:
        """Store the assessment and its roll: the members of the plan active at the cutoff, in code-point order.
        They are streamed from the database and written a chunk at a time; only each full chunk's root (one hash in
        256 members) is held, so a roll of millions neither fills memory nor leaves the transaction idle for long."""
        cutoff, share = body["cutoff_at"], int(body["share_fen"])
        top, offset = body.get("top_age_years"), body.get("utc_offset_minutes")
        left_out = set(body.get("left_out", ()))  # schema 3: past the top age, as the writer found them
        cursor.executemany(f"INSERT INTO {self.left_out} VALUES (?, ?)", [(period, m) for m in sorted(left_out)])
        collation = ' COLLATE "C"' if self.sql.postgres else ""  # code points, as the writer signed the roll
        roots: list[bytes] = []
        chunks: list[tuple[str, int, str, bytes, bytes]] = []
        members: list[str] = []
        count, last = 0, ""

        def chunk() -> None:
            hashes = roll_leaf_hashes(period, members, share)
            groups = [reduce_complete(hashes[g:g + GROUP]) for g in range(0, len(hashes) - GROUP + 1, GROUP)]
            if len(members) == WIDTH:
                roots.append(reduce_complete(groups))
            chunks.append((period, (count - 1) // WIDTH, members[0], bytes.fromhex("".join(members).replace("-", "")),
                           b"".join(groups)))
            members.clear()
            if len(chunks) >= 512:
                cursor.executemany(f"INSERT INTO {self.chunks} VALUES (?, ?, ?, ?, ?)", chunks)
                chunks.clear()

        for rows in cursor.batches(f"SELECT member FROM {self.memberships} WHERE plan = ? AND joined_at <= ? AND "
                                   f"(ended_at IS NULL OR ended_at > ?) ORDER BY member{collation}",
                                   (body["plan"], cutoff, cutoff)):
            for (member,) in rows:
                if member in left_out:
                    continue
                assert last < member, "the roll is in code-point order"
                last = member
                members.append(member)
                count += 1
                if len(members) == WIDTH:
                    chunk()
        if members:
            chunk()
        cursor.executemany(f"INSERT INTO {self.chunks} VALUES (?, ?, ?, ?, ?)", chunks)
        cursor.execute(f"INSERT INTO {self.assessments} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (body["plan"], index, nid, period, cutoff, share, count, top, offset))
        tiles: list[tuple[str, int, int, bytes]] = []
        level, hashes = (1, roots) if count >= WIDTH else (0, [])
        while len(hashes) >= WIDTH:
            above: list[bytes] = []
            for number, first in enumerate(range(0, len(hashes), WIDTH)):
                bottom = hashes[first:first + WIDTH]
                if len(bottom) == WIDTH:
                    inner = tile_levels(bottom)
                    above.append(node_hash(inner[-2], inner[-1]))
                tiles.append((period, level, number, _tile_blob(bottom)))
            level, hashes = level + 1, above
        if level and hashes:  # the top level's one partial tile
            tiles.append((period, level, 0, _tile_blob(hashes)))
        cursor.executemany(f"INSERT INTO {self.tiles} VALUES (?, ?, ?, ?)", tiles)

    # -- reading ---------------------------------------------------------------------------------------------

    def stream_entries(self, streams: Sequence[str], size: int) -> list[tuple[int, int]]:
        """(log index, notification id) of every entry of these streams below `size`."""
        found: list[tuple[int, int]] = []
        with self.sql.transaction(commit=False) as cursor:
            for stream in streams:
                found += [(int(r[0]), int(r[1])) for r in cursor.execute(
                    f"SELECT idx, nid FROM {self.streams} WHERE stream = ? AND idx < ?", (stream, size)).fetchall()]
        return found

    def member_claims(self, member: str) -> list[str]:
        """The claims the member filed."""
        with self.sql.transaction(commit=False) as cursor:
            return [str(r[0]) for r in cursor.execute(f"SELECT claim FROM {self.claims} WHERE member = ?",
                                                      (member,)).fetchall()]

    def key_registrations(self, key_ids: Iterable[str], size: int) -> list[tuple[int, int]]:
        """(log index, notification id) of entry 0 and of the last registration below `size` of each key."""
        found: set[tuple[int, int]] = set()
        with self.sql.transaction(commit=False) as cursor:
            first = cursor.execute(f"SELECT idx, nid FROM {self.keys} WHERE idx = 0").fetchone()
            if first is not None:
                found.add((int(first[0]), int(first[1])))
            for key_id in key_ids:
                row = cursor.execute(f"SELECT idx, nid FROM {self.keys} WHERE key_id = ? AND idx < ? "
                                     "ORDER BY idx DESC LIMIT 1", (key_id, size)).fetchone()
                if row is not None:
                    found.add((int(row[0]), int(row[1])))
        return sorted(found)

    def plan_assessments(self, plan: str, size: int) -> list[Assessment]:
        """The plan's assessments below `size`, in log order."""
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT idx, nid, period, cutoff_at, share_fen, roll_size, top_age, utc_offset "
                                  f"FROM {self.assessments} WHERE plan = ? AND idx < ? ORDER BY idx",
                                  (plan, size)).fetchall()
        return [Assessment(int(r[0]), int(r[1]), str(r[2]), str(r[3]), int(r[4]), int(r[5]),
                           None if r[6] is None else int(r[6]), None if r[7] is None else int(r[7])) for r in rows]

    def left_out_of(self, member: str) -> set[str]:
        """The periods whose roll left the member out for their age (schema 3's `left_out`)."""
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT period FROM {self.left_out} WHERE member = ?", (member,)).fetchall()
        return {str(row[0]) for row in rows}

    def roll_proofs(self, assessments: Sequence[Assessment], member: str) -> list[tuple[int, list[bytes]]]:
        """The member's leaf index in each assessment's roll and its inclusion proof into the roll's root, read in one
        transaction (the member's chunk of each roll by one index seek; the last, partial chunks not read before and
        the tiles above both, in batches), then hashing. LookupError when the member is not in
        one of the rolls."""
        trees = [RollTree(self, assessment) for assessment in assessments]
        if not trees:
            return []
        by_period = {tree.assessment.period: tree for tree in trees}
        with self.sql.transaction(commit=False) as cursor:
            for period, tree in by_period.items():  # one index seek a period (a correlated MAX scans every chunk)
                row = cursor.execute(
                    f"SELECT chunk, members, groups FROM {self.chunks} WHERE period = ? AND first_member <= ? "
                    "ORDER BY first_member DESC LIMIT 1", (period, member)).fetchone()
                if row is not None:
                    tree.place(int(row[0]), bytes(row[1]), bytes(row[2]), member)
            wanted = [(tree.assessment.period, tree.last) for tree in trees if tree.needs_last()]
            for part in _parts(wanted, 400):
                for period, members, groups in cursor.execute(
                        f"SELECT period, members, groups FROM {self.chunks} WHERE "
                        + " OR ".join("(period = ? AND chunk = ?)" for _ in part),
                        [value for key in part for value in key]).fetchall():
                    self.last_chunks[str(period)] = _Chunk(_unpack(bytes(members)), bytes(groups), {})
            keys = [(tree.assessment.period, *key) for tree in trees for key in tree.tile_keys()]
            for part in _parts(keys, 300):
                for period, level, idx, hashes in cursor.execute(
                        f"SELECT period, level, idx, hashes FROM {self.tiles} WHERE "
                        + " OR ".join("(period = ? AND level = ? AND idx = ?)" for _ in part),
                        [value for key in part for value in key]).fetchall():
                    by_period[str(period)].tiles[(int(level), int(idx))] = bytes(hashes)
        return [tree.proof() for tree in trees]


def _parts(values: list[Any], size: int) -> Iterator[list[Any]]:
    """`values` in lists of at most `size` (a statement's parameters are limited)."""
    for offset in range(0, len(values), size):
        yield values[offset:offset + size]


class RollTree:
    """One assessment's stored roll tree, read for one member's proof: the member's chunk and the last, chunks of
    member ids with their groups' roots, and the tiles at levels 8, 16, … above them."""

    def __init__(self, index: LogIndex, assessment: Assessment) -> None:
        self.index = index
        self.assessment = assessment
        self.last = (assessment.roll_size - 1) // WIDTH
        self.position = -1
        self._chunks: dict[int, _Chunk] = {}
        self.tiles: dict[tuple[int, int], bytes] = {}
        self._known: dict[tuple[int, int], bytes] = {}

    def place(self, chunk: int, members: bytes, groups: bytes, member: str) -> None:
        """Take the chunk where the member would be; find the member's leaf in it."""
        ids, wanted = _unpack(members), UUID(member).bytes
        offset = bisect_left(ids, wanted)
        if offset < len(ids) and ids[offset] == wanted:
            self._chunks[chunk] = _Chunk(ids, groups, {})
            self.position = chunk * WIDTH + offset

    def needs_last(self) -> bool:
        """Whether the roll's last, partial chunk must be read (every path composes its leaves)."""
        return (self.position >= 0 and bool(self.assessment.roll_size % WIDTH)
                and self.last != self.position // WIDTH and self.assessment.period not in self.index.last_chunks)

    def tile_keys(self) -> list[tuple[int, int]]:
        """The stored tiles a path from the member's leaf can touch: at each level, those above the member's leaf and
        above the last leaf (every subtree an inclusion path composes lies under one of them)."""
        size = self.assessment.roll_size
        if self.position < 0:
            return []
        return sorted({(level, leaf // WIDTH ** (level + 1)) for level in range(1, 8) if WIDTH ** level <= size
                       for leaf in (self.position, size - 1)})

    def proof(self) -> tuple[int, list[bytes]]:
        """(leaf index, inclusion proof) of the member placed; LookupError when it is not in the roll."""
        period, size = self.assessment.period, self.assessment.roll_size
        if self.position < 0:
            raise LookupError(f"the member is not in the roll of {period}")
        if size % WIDTH and self.last not in self._chunks:
            self._chunks[self.last] = self.index.last_chunks[period]
        return self.position, inclusion_path(self.position, size, self._range_hash)

    def _leaves(self, ids: list[bytes]) -> list[bytes]:
        members = []
        for raw in ids:
            h = raw.hex()
            members.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
        return roll_leaf_hashes(self.assessment.period, members, self.assessment.share_fen)

    def _chunk_node(self, chunk: _Chunk, within: int, offset: int) -> bytes:
        """A node at level `within` (below 8) of a chunk, its first leaf at `offset`: from the stored group roots
        at level 4 and above, else from the leaves of its group, hashed once."""
        if within >= 4:  # a complete subtree: its groups are complete, and stored
            first = offset // GROUP * 32
            stored = chunk.groups[first:first + (32 << (within - 4))]
            assert len(stored) == 32 << (within - 4), "complete groups are stored"
            return reduce_complete([stored[i:i + 32] for i in range(0, len(stored), 32)])
        group = offset // GROUP
        if group not in chunk.leaves:
            chunk.leaves[group] = self._leaves(chunk.ids[group * GROUP:(group + 1) * GROUP])
        start = offset - group * GROUP
        return reduce_complete(chunk.leaves[group][start:start + (1 << within)])

    def _node(self, level: int, index: int) -> bytes:
        tile_level, within = divmod(level, HEIGHT)
        first = index << within
        tile, offset = divmod(first, WIDTH)
        if tile_level == 0:
            return self._chunk_node(self._chunks[tile], within, offset)
        blob = self.tiles[(tile_level, tile)]
        count = _bottom_count(len(blob) // 32)
        at = _level_start(count, within) + (offset >> within)
        assert offset >> within < count >> within, "a complete subtree's node is stored"
        return blob[at * 32:at * 32 + 32]

    def _range_hash(self, lo: int, hi: int) -> bytes:
        found = self._known.get((lo, hi))
        if found is not None:
            return found
        size = hi - lo
        if size & (size - 1) == 0 and lo % size == 0:
            found = self._node(size.bit_length() - 1, lo // size)
        else:
            k = 1 << ((size - 1).bit_length() - 1)
            found = node_hash(self._range_hash(lo, lo + k), self._range_hash(lo + k, hi))
        self._known[(lo, hi)] = found
        return found


def _tile_blob(bottom: list[bytes]) -> bytes:
    """A roll tile: its bottom row, then each level above it up to 7 with the nodes of its complete pairs — the
    layout of a full tile of `ledger.log.tree`, kept for a partial one too (a stored roll never grows)."""
    rows, row = [bottom], bottom
    for _ in range(HEIGHT - 1):
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]
        rows.append(row)
    return b"".join(b"".join(r) for r in rows)


@cache
def _bottom_count(hashes: int) -> int:
    """How many bottom hashes a roll tile of `hashes` hashes has (the inverse of `_tile_blob`'s layout)."""
    low, high = 1, WIDTH
    while low < high:
        middle = (low + high) // 2
        if sum(middle >> level for level in range(HEIGHT)) < hashes:
            low = middle + 1
        else:
            high = middle
    return low


@cache
def _level_start(count: int, level: int) -> int:
    """Where level `level` starts, in hashes, in a roll tile of `count` bottom hashes."""
    return sum(count >> below for below in range(level))


@dataclass
class _Chunk:
    """A roll chunk as read: its member ids, its stored group roots, and the leaf hashes of the groups hashed."""

    ids: list[bytes]
    groups: bytes
    leaves: dict[int, list[bytes]]


def _unpack(packed: bytes) -> list[bytes]:
    """A chunk's member ids (16 bytes each), in order."""
    return [packed[i:i + 16] for i in range(0, len(packed), 16)]
