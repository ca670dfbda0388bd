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

A member's roll proofs read their chunk of every roll in one statement, and what the process does not keep yet
(`RollCache`: the tiles above the chunks, the last, partial chunk) in another; each hashes the member's group of 16
leaves and the chunk's group roots. A member's roll proofs after 48 periods read about fifty rows, whatever the
log's size. The roll
is computed from the log's own entries when the `period.assessed` entry is indexed, never from a read model.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import cache
from itertools import islice
from threading import Lock
from typing import Any
from uuid import UUID

import orjson

from ledger.ages import join_age_years
from ledger.log.merkle import (
    inclusion_path,
    inclusion_proof,
    node_hash,
    reduce_complete,
    root_from_leaf_hashes,
    tile_levels,
)
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
        self.rolls = RollCache()
        """What the proofs of one roll share, kept by this process (immutable once written)."""

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
        """The member's leaf index in each assessment's roll and its inclusion proof into the roll's root. One
        statement finds the member's chunk in every roll (an index seek a roll); a second reads what the rolls'
        cache (`RollCache`) lacks — the tiles above the chunk the path meets and the last, partial chunk — often
        nothing. Then hashing: the member's group of 16 leaves, the chunk's 16 stored group roots, and the right
        edge of each roll's tree once per process. LookupError when the member is not in one of the rolls."""
        if not assessments:
            return []
        wanted = UUID(member).bytes
        found: dict[str, tuple[int, bytes, bytes]] = {}
        with self.sql.transaction(commit=False) as cursor:
            for part in _parts(list(dict.fromkeys(a.period for a in assessments)), 100):
                seek = (f"SELECT * FROM (SELECT period, chunk, members, groups FROM {self.chunks} WHERE period = ? "
                        "AND first_member <= ? ORDER BY first_member DESC LIMIT 1) AS seek")
                rows = cursor.execute(" UNION ALL ".join(f"{seek}{i}" for i in range(len(part))),
                                      [value for period in part for value in (period, member)]).fetchall()
                for period, chunk, members, groups in rows:
                    found[str(period)] = (int(chunk), bytes(members), bytes(groups))
            proofs = [_RollProof(self.rolls.roll(a), wanted, found.get(a.period)) for a in assessments]
            done: dict[int, tuple[int, list[bytes]]] = {}
            for number, proof in enumerate(proofs):  # first from what is kept: usually all of them
                with suppress(NotKeptError):
                    done[number] = proof.proof({})
            if len(done) == len(proofs):
                return [done[number] for number in range(len(proofs))]
            missing_tiles: set[tuple[str, int, int]] = set()
            missing_last: set[tuple[str, int]] = set()
            read: dict[tuple[str, int, int], bytes] = {}  # this call's tiles, whatever the cache keeps of them
            for number, proof in enumerate(proofs):
                if number not in done:
                    proof.plan(read, missing_tiles, missing_last)
            rolls = {proof.roll.assessment.period: proof.roll for proof in proofs}
            for part in _parts(sorted(missing_last), 400):
                for period, members in cursor.execute(
                        f"SELECT period, members FROM {self.chunks} WHERE "
                        + " OR ".join("(period = ? AND chunk = ?)" for _ in part),
                        [value for key in part for value in key]).fetchall():
                    rolls[str(period)].take_last(bytes(members))
            for part in _parts(sorted(missing_tiles), 300):
                for period, level, idx, hashes in cursor.execute(
                        f"SELECT period, level, idx, hashes FROM {self.tiles} WHERE "
                        + " OR ".join("(period = ? AND level = ? AND idx = ?)" for _ in part),
                        [value for key in part for value in key]).fetchall():
                    read[(str(period), int(level), int(idx))] = bytes(hashes)
        for key, blob in read.items():
            self.rolls.keep(key, blob)
        return [done[number] if number in done else proof.proof(read) for number, proof in enumerate(proofs)]


class NotKeptError(LookupError):
    """A roll proof needs a tile or a last chunk that this process has not read (or no longer keeps)."""


def _parts(values: list[Any], size: int) -> Iterator[list[Any]]:
    """`values` in lists of at most `size` (a statement's parameters are limited)."""
    for offset in range(0, len(values), size):
        yield values[offset:offset + size]


ROLL_CACHE_BYTES = 64 << 20
"""What a process keeps of the rolls' stored tiles: all of them for 48 periods of a million members (13 MB)."""


class RollCache:
    """What every member's proof in a roll shares, kept by the reading process: the roll tree's stored tiles, the
    root of its last, partial chunk and the hashes composed along its right edge. None of it changes once the roll
    is written (with its assessment, in one transaction: a roll is never written again), so nothing is invalidated;
    the tiles are bounded in bytes, least recently used out first, and the rolls in number. A wrong value here makes
    a proof that does not reach the roll's signed `roll_root`: the bundle's checker rejects it."""

    def __init__(self, limit: int = ROLL_CACHE_BYTES, rolls: int = 10_000) -> None:
        self.limit, self.most = limit, rolls
        self.tiles: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self.held = 0
        self.rolls: OrderedDict[tuple[str, int, int], Roll] = OrderedDict()
        self._lock = Lock()  # the service builds bundles in several threads

    def roll(self, assessment: Assessment) -> Roll:
        """The roll of an assessment, kept (by its period, log index and size)."""
        key = (assessment.period, assessment.index, assessment.roll_size)
        with self._lock:
            found = self.rolls.get(key)
            if found is None:
                found = self.rolls[key] = Roll(self, assessment)
                if len(self.rolls) > self.most:
                    self.rolls.popitem(last=False)
            else:
                self.rolls.move_to_end(key)
            return found

    def tile(self, key: tuple[str, int, int]) -> bytes | None:
        """A stored roll tile's blob (period, level, index), when kept."""
        with self._lock:
            found = self.tiles.get(key)
            if found is not None:
                self.tiles.move_to_end(key)
            return found

    def keep(self, key: tuple[str, int, int], blob: bytes) -> None:
        """Keep a tile read from the index, dropping the least recently used beyond the limit."""
        with self._lock:
            if key not in self.tiles:
                self.tiles[key] = blob
                self.held += len(blob)
            while self.held > self.limit and len(self.tiles) > 1:
                self.held -= len(self.tiles.popitem(last=False)[1])

    def clear(self) -> None:
        """Forget everything kept."""
        with self._lock:
            self.tiles.clear()
            self.rolls.clear()
            self.held = 0


class Roll:
    """One assessment's roll as the proofs see it: chunks of 256 leaves, whose roots are the leaves of the tree
    above them (stored as tiles from level 8 up; the last chunk, partial when the size is not a multiple of 256,
    is rooted as RFC 9162 splits it). Ranges here are in chunks."""

    def __init__(self, cache: RollCache, assessment: Assessment) -> None:
        self.cache = cache
        self.assessment = assessment
        size = assessment.roll_size
        self.full = size // WIDTH
        """Complete chunks."""
        self.chunks = -(-size // WIDTH)
        self.last = self.chunks - 1
        self.edge: dict[tuple[int, int], bytes] = {}
        """Hashes of ranges that are no stored node (those ending at the roll's end), and the last chunk's root."""

    def leaves(self, ids: bytes) -> list[bytes]:
        """The leaf hashes of packed member ids."""
        h = ids.hex()
        members = [f"{h[a:a + 8]}-{h[a + 8:a + 12]}-{h[a + 12:a + 16]}-{h[a + 16:a + 20]}-{h[a + 20:a + 32]}"
                   for a in range(0, len(h), 32)]
        return roll_leaf_hashes(self.assessment.period, members, self.assessment.share_fen)

    def take_last(self, ids: bytes) -> None:
        """The last, partial chunk read: keep its root."""
        self.edge[(self.last, self.chunks)] = root_from_leaf_hashes(self.leaves(ids))

    def upper(self, lo: int, hi: int, read: dict[tuple[str, int, int], bytes],
              missing: tuple[set[tuple[str, int, int]], set[tuple[str, int]]] | None = None) -> bytes:
        """MTH of chunks [lo, hi): a stored node when complete and aligned (from the tiles kept or just `read`),
        else composed (and kept). With `missing`, only note the tiles and the last chunk it would need and that are
        not kept (returning a stand-in)."""
        size = hi - lo
        if hi <= self.full and size & (size - 1) == 0 and lo % size == 0:
            tile_level, within = divmod(HEIGHT + size.bit_length() - 1, HEIGHT)
            tile, offset = divmod(lo // size << within, WIDTH)
            key = (self.assessment.period, tile_level, tile)
            blob = read.get(key) or self.cache.tile(key)
            if blob is None:
                if missing is None:
                    raise NotKeptError(f"roll tile {key}")
                missing[0].add(key)
                return b""
            read[key] = blob  # held for this call, whatever the cache drops meanwhile
            count = _bottom_count(len(blob) // 32)
            at = _level_start(count, within) + (offset >> within)
            assert offset >> within < count >> within, "a complete subtree's node is stored"
            return blob[at * 32:at * 32 + 32]
        found = self.edge.get((lo, hi))
        if found is not None:
            return found
        if size == 1:  # the last, partial chunk
            if missing is None:
                raise NotKeptError(f"the last chunk of {self.assessment.period}")
            missing[1].add((self.assessment.period, lo))
            return b""
        k = 1 << ((size - 1).bit_length() - 1)
        left, right = self.upper(lo, lo + k, read, missing), self.upper(lo + k, hi, read, missing)
        if missing is not None:
            return b""
        found = self.edge[(lo, hi)] = node_hash(left, right)
        return found


class _RollProof:
    """One member's proof in one roll: their chunk as the seek found it, and what it needs of the roll."""

    def __init__(self, roll: Roll, wanted: bytes, chunk: tuple[int, bytes, bytes] | None) -> None:
        self.roll = roll
        self.position = -1
        if chunk is not None:
            number, ids, self.groups = chunk
            offset = _find(ids, wanted)
            if offset >= 0:
                self.chunk, self.ids, self.offset = number, ids, offset
                self.position = number * WIDTH + offset

    def plan(self, read: dict[tuple[str, int, int], bytes], tiles: set[tuple[str, int, int]],
             last: set[tuple[str, int]]) -> None:
        """Note what the proof needs that the cache lacks, and hold in `read` the tiles it has."""
        if self.position >= 0 and self.roll.chunks > 1:
            inclusion_path(self.chunk, self.roll.chunks, lambda lo, hi: self.roll.upper(lo, hi, read, (tiles, last)))

    def proof(self, read: dict[tuple[str, int, int], bytes]) -> tuple[int, list[bytes]]:
        """(leaf index, inclusion proof) of the member, with the roll tiles just `read`; LookupError when they are
        not in the roll."""
        if self.position < 0:
            raise LookupError(f"the member is not in the roll of {self.roll.assessment.period}")
        if self.chunk < self.roll.full:  # a complete chunk: the member's group, then the chunk's groups
            group = self.offset // GROUP
            leaves = self.roll.leaves(self.ids[group * GROUP * 16:(group + 1) * GROUP * 16])
            roots = [self.groups[at:at + 32] for at in range(0, WIDTH // GROUP * 32, 32)]
            path = _complete_path(leaves, self.offset % GROUP) + _complete_path(roots, group)
        else:  # the last, partial chunk: its leaves (and its root, for the other members' proofs)
            leaves = self.roll.leaves(self.ids)
            self.roll.edge.setdefault((self.roll.last, self.roll.chunks), root_from_leaf_hashes(leaves))
            path = inclusion_proof(self.offset, leaves)
        if self.roll.chunks > 1:
            path += inclusion_path(self.chunk, self.roll.chunks, lambda lo, hi: self.roll.upper(lo, hi, read))
        return self.position, path


def _find(ids: bytes, wanted: bytes) -> int:
    """Where `wanted` is among packed sorted ids (16 bytes each), or -1."""
    lo, hi = 0, len(ids) // 16
    while lo < hi:
        middle = (lo + hi) // 2
        if ids[middle * 16:middle * 16 + 16] < wanted:
            lo = middle + 1
        else:
            hi = middle
    return lo if ids[lo * 16:lo * 16 + 16] == wanted else -1


def _complete_path(row: list[bytes], index: int) -> list[bytes]:
    """The inclusion path of `index` in the complete subtree over `row` (2^k hashes), leaf to root: each sibling
    subtree reduced, the subtree holding `index` never."""
    path, size = [], 1
    while size < len(row):
        sibling = (index // size) ^ 1
        path.append(reduce_complete(row[sibling * size:(sibling + 1) * size]))
        size *= 2
    return path


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
