"""The transparency log over the event store's global order, kept as stored hash tiles.

Entry i (0-based, dense) is the i-th stored envelope in notification order — the JCS bytes of the full signed
envelope. The notification id is *not* the index: PostgreSQL's sequence can leave gaps, so the integrator follows
the notification log in order and assigns the next index itself (each level-0 tile also records the notification
ids of its entries).

Storage follows the tiling of Go's sumdb/tlog: the tree's hashes at levels 0, 8, 16, … are stored in tiles of 256
consecutive hashes (one row each: `log_tiles(level, idx, hashes)`, the last tile of a level partial). A node at
any other level is recomputed from at most 128 stored hashes below it. Integration (`integrate()`) extends the
rightmost tiles from where it stopped — O(1) amortized hashing per entry, never the whole tree in memory — and
writes the changed tiles and its position in one transaction, so a crash loses nothing and repeats nothing.
Integrators of one log in several processes (the service's, a command's) take turns: each writes only once it has
the turn (a PostgreSQL advisory lock; SQLite's write lock) and finds the position it started from, and a tile cached
while incomplete is read again once the tree has grown.
Roots at any past size, inclusion proofs for any entry at any size, and consistency proofs between any two sizes
are composed from the stored tiles (RFC 9162), reading what a proof needs in one query.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, Protocol

from ledger.log.index import LogIndex
from ledger.log.merkle import EMPTY_ROOT, consistency_path, inclusion_path, node_hash, reduce_complete, tile_levels
from ledger.projections.sql import SqlStore

TRACKING_NAME = "log"
HEIGHT = 8
WIDTH = 1 << HEIGHT
"""Hashes per tile."""


class EntrySource(Protocol):
    """The store the log follows (the application)."""

    recorder: Any

    def entries(self, start: int = 1, page: int = 1000) -> Iterable[tuple[int, bytes]]:
        """(notification id, entry) in notification order from `start`."""
        ...


FULL_TILE = (2 * WIDTH - 2) * 32
"""Bytes of a complete stored tile: its 256 bottom hashes and the 254 hashes of its levels 1..7."""
PROVED = 100_000
"""Range hashes a log keeps for its inclusion proofs (about 15 MB)."""


def _section(level: int) -> int:
    """Where level `level` (1..7) of a complete tile starts, in hashes."""
    return 2 * WIDTH - (2 * WIDTH >> level)


def _split(blob: bytes) -> list[bytes]:
    return [blob[i:i + 32] for i in range(0, len(blob), 32)]


class TransparencyLog:
    """Integration and proofs over stored hash tiles (see module docstring)."""

    def __init__(self, source: EntrySource, create: bool = True, index: bool = False) -> None:
        self.source = source
        self.sql = SqlStore(source.recorder.datastore)
        self.index = LogIndex(self.sql, self.entries, self._entry_ids) if index else None
        """The bundles' index over a ledger's log (`ledger.log.index`), kept by `integrate()`; None for a log of
        other entries."""
        t = self.sql.table
        self.tiles, self.ids, self.tracking = t("log_tiles"), t("log_entry_ids"), t("projection_tracking")
        blob = "BYTEA" if self.sql.postgres else "BLOB"
        if create:
            self._create(blob)
        self._cache: dict[tuple[int, int], bytes] = {}
        self._partial: set[tuple[int, int]] = set()
        """The cached tiles that are not complete: another process integrating the same log extends them."""
        self._seen_size = 0
        self._proved: dict[tuple[int, int], bytes] = {}
        """Range hashes `inclusion_proofs` found, by (lo, hi): at most `PROVED`."""

    def _create(self, blob: str) -> None:
        """The log's tables, for the operator (a reader of someone else's store creates nothing)."""
        self.sql.create([
            f"CREATE TABLE IF NOT EXISTS {self.tracking} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.tiles} (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
            f"hashes {blob} NOT NULL, PRIMARY KEY (level, idx))",
            f"CREATE TABLE IF NOT EXISTS {self.ids} (idx BIGINT PRIMARY KEY, first_id BIGINT NOT NULL, "
            f"ids {blob} NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS log_entry_ids_first ON {self.ids} (first_id)",
        ])

    # -- integration -------------------------------------------------------------------------------------

    def state(self) -> tuple[int, int]:
        """(tree size, last notification id integrated)."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,)).fetchone()
            last = cursor.execute(f"SELECT idx, hashes FROM {self.tiles} WHERE level = 0 ORDER BY idx DESC LIMIT 1"
                                  ).fetchone()
        size = 0 if last is None else int(last[0]) * WIDTH + min(WIDTH, len(last[1]) // 32)
        if size != self._seen_size:  # grown here or by another process: the partial tiles remembered may be stale
            for key in self._partial:
                self._cache.pop(key, None)
            self._partial.clear()
            self._seen_size = size
        return size, (int(row[0]) if row else 0)

    def size(self) -> int:
        """Entries integrated so far."""
        return self.state()[0]

    def _tile(self, level: int, index: int) -> bytes:
        """A stored tile's hashes (empty when absent)."""
        key = (level, index)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT hashes FROM {self.tiles} WHERE level = ? AND idx = ?", key).fetchone()
        value = b"" if row is None else bytes(row[0])
        self._remember(key, value)
        return value

    def _remember(self, key: tuple[int, int], value: bytes) -> None:
        if len(self._cache) > 20_000:
            self._cache.clear()
            self._partial.clear()
        self._cache[key] = value
        if len(value) != FULL_TILE:
            self._partial.add(key)

    def integrate(self, page: int = 100_000) -> int:
        """Extend the tree with every stored entry after the last one integrated, then the index when there is
        one; return how many were added."""
        added = self._integrate(page)
        if self.index is not None:
            self.index.catch_up(self.size())
        return added

    def _integrate(self, page: int) -> int:
        added = 0
        while True:
            size, position = self.state()
            items = list(islice(self.source.entries(position + 1, page), page))
            sha256 = hashlib.sha256
            batch_ids = [notification_id for notification_id, _ in items]
            batch_hashes = [sha256(b"\x00" + entry).digest() for _, entry in items]
            del items
            if not batch_ids:
                return added
            changed: dict[tuple[int, int], bytes] = {}
            self._append(0, size, batch_hashes, changed)
            id_rows = self._id_rows(size, batch_ids)
            with self.sql.transaction() as cursor:
                self.sql.serialize(cursor, TRACKING_NAME)  # integrators of one log (the service, a command) take turns
                row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,)
                                     ).fetchone()
                if (int(row[0]) if row else 0) != position:
                    continue  # another integrator got there first: start again from where it stopped
                for level, index in changed:
                    cursor.execute(f"DELETE FROM {self.tiles} WHERE level = ? AND idx = ?", (level, index))
                for tile_index, _, _ in id_rows:
                    cursor.execute(f"DELETE FROM {self.ids} WHERE idx = ?", (tile_index,))
                cursor.executemany(f"INSERT INTO {self.tiles} VALUES (?, ?, ?)",
                                   [(level, index, hashes) for (level, index), hashes in changed.items()])
                cursor.executemany(f"INSERT INTO {self.ids} VALUES (?, ?, ?)", id_rows)
                cursor.execute(f"DELETE FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,))
                cursor.execute(f"INSERT INTO {self.tracking} VALUES (?, ?)", (TRACKING_NAME, batch_ids[-1]))
            for key, hashes in changed.items():
                self._remember(key, hashes)
            added += len(batch_ids)

    def _append(self, tile_level: int, count: int, hashes: list[bytes], changed: dict[tuple[int, int], bytes]) -> None:
        """Append hashes to the bottom row of tile level `tile_level`, which holds `count` hashes so far; every
        tile completed adds its root to the tile level above."""
        if not hashes:
            return
        first_tile = count // WIDTH
        row = _split(self._tile(tile_level, first_tile)) if count % WIDTH else []
        row.extend(hashes)
        completed: list[bytes] = []
        for offset in range(0, len(row), WIDTH):
            tile = row[offset:offset + WIDTH]
            if len(tile) == WIDTH:
                inner = tile_levels(tile)
                changed[(tile_level, first_tile + offset // WIDTH)] = b"".join(tile) + b"".join(inner)
                completed.append(node_hash(inner[-2], inner[-1]))
            else:
                changed[(tile_level, first_tile + offset // WIDTH)] = b"".join(tile)
        # the level above holds one hash per complete tile of this level: every tile before `first_tile`
        self._append(tile_level + 1, first_tile, completed, changed)

    def _id_rows(self, size: int, ids: list[int]) -> list[tuple[int, int, bytes]]:
        """Rows of (level-0 tile index, first notification id, packed notification ids) for the new entries."""
        first_tile = size // WIDTH
        existing = array("q")
        if size % WIDTH:
            existing.frombytes(self._ids_of(first_tile))
        existing.extend(ids)
        rows = []
        for offset in range(0, len(existing), WIDTH):
            chunk = existing[offset:offset + WIDTH]
            rows.append((first_tile + offset // WIDTH, int(chunk[0]), chunk.tobytes()))
        return rows

    def _entry_ids(self, tile: int) -> array[int]:
        """The notification ids of level-0 tile `tile`'s entries."""
        ids = array("q")
        ids.frombytes(self._ids_of(tile))
        return ids

    def _ids_of(self, tile: int) -> bytes:
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT ids FROM {self.ids} WHERE idx = ?", (tile,)).fetchone()
        return b"" if row is None else bytes(row[0])

    # -- reading -----------------------------------------------------------------------------------------

    def node(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree at (level, index): covers leaves [index·2^level, (index+1)·2^level)."""
        tile_level, within = divmod(level, HEIGHT)
        first = index << within
        tile, offset = divmod(first, WIDTH)
        blob = self._tile(tile_level, tile)
        if within and len(blob) == FULL_TILE:
            at = (_section(within) + (offset >> within)) * 32
            return blob[at:at + 32]
        bottom = _split(blob[offset * 32:(offset + (1 << within)) * 32])
        if len(bottom) != 1 << within:
            raise LookupError(f"no stored subtree at level {level}, index {index}")
        return reduce_complete(bottom)

    def range_hash(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi): a stored complete aligned subtree, else composed (RFC 9162 §2.1.1)."""
        size = hi - lo
        assert size > 0
        if size & (size - 1) == 0 and lo % size == 0:
            return self.node(size.bit_length() - 1, lo // size)
        k = 1 << ((size - 1).bit_length() - 1)
        return node_hash(self.range_hash(lo, lo + k), self.range_hash(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        """The root hash at `size` (default: the integrated size)."""
        size = self.size() if size is None else size
        self._check_size(size)
        if size == 0:
            return EMPTY_ROOT
        self._prefetch(lambda record: record(0, size))
        return self.range_hash(0, size)

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of entry `index`."""
        return self.node(0, index)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of entry `index` in the tree of `size` (RFC 9162 §2.1.3.1), read in one query."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"index: must be below the tree size ({index} >= {size})")
        self._prefetch(lambda record: inclusion_path(index, size, record))
        return inclusion_path(index, size, self.range_hash)

    def consistency_proof(self, old_size: int, size: int) -> list[bytes]:
        """The consistency proof between two sizes (RFC 9162 §2.1.4.1), read in one query."""
        self._check_size(size)
        if not 0 < old_size <= size:
            raise ValueError(f"old_size: must be in 1..{size} ({old_size})")
        self._prefetch(lambda record: consistency_path(old_size, size, record))
        return consistency_path(old_size, size, self.range_hash)

    def inclusion_proofs(self, indexes: Iterable[int], size: int) -> dict[int, list[bytes]]:
        """The audit paths of many entries in the tree of `size`, reading every tile they need in one query. The
        hashes they compose (and those of complete subtrees in partial tiles, reduced from their bottom rows) are
        kept for the next call (`_proved`): a range's hash never changes once its leaves are integrated, and every
        bundle's paths meet the same right edge of the tree. Checkpoints never read them (`root`)."""
        self._check_size(size)
        wanted = sorted(set(indexes))
        if any(not 0 <= index < size for index in wanted):
            raise ValueError(f"index: must be below the tree size ({wanted[-1]} >= {size})")
        known = self._proved
        self._prefetch(lambda record: [inclusion_path(index, size, lambda lo, hi: known.get((lo, hi)) or record(lo, hi))
                                       for index in wanted])

        def range_hash(lo: int, hi: int) -> bytes:
            found = known.get((lo, hi))
            if found is None:
                width = hi - lo
                if width & (width - 1) == 0 and lo % width == 0:
                    found = self.node(width.bit_length() - 1, lo // width)
                else:
                    k = 1 << ((width - 1).bit_length() - 1)
                    found = node_hash(range_hash(lo, lo + k), range_hash(lo + k, hi))
                if len(known) >= PROVED:
                    known.clear()
                known[(lo, hi)] = found
            return found

        return {index: inclusion_path(index, size, range_hash) for index in wanted}

    def _prefetch(self, walk: Callable[[Callable[[int, int], bytes]], object]) -> None:
        """Load every tile a computation will need with one query: `walk` is run once to record the ranges."""
        ranges: list[tuple[int, int]] = []

        def record(lo: int, hi: int) -> bytes:
            ranges.append((lo, hi))
            return EMPTY_ROOT

        walk(record)
        wanted = sorted({_tile_of(level, index) for lo, hi in ranges for level, index in _aligned(lo, hi)}
                        - self._cache.keys())
        if not wanted:
            return
        condition = " OR ".join("(level = ? AND idx = ?)" for _ in wanted)
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT level, idx, hashes FROM {self.tiles} WHERE {condition}",
                                  [value for key in wanted for value in key]).fetchall()
        for level, index, hashes in rows:
            self._remember((int(level), int(index)), bytes(hashes))

    def entries(self, start: int = 0) -> Iterable[tuple[int, bytes]]:
        """(log index, entry) from `start`, for integrated entries."""
        size = self.size()
        if not 0 <= start < size:
            return
        ids = array("q")
        ids.frombytes(self._ids_of(start // WIDTH))
        index = start
        for _, entry in self.source.entries(int(ids[start % WIDTH])):
            if index >= size:
                return
            yield index, entry
            index += 1

    def stored_tile(self, level: int, index: int) -> bytes:
        """The bottom row of stored tile (`level`, `index`): the tree's hashes at level 8·`level`, as many as are
        integrated (at most 256). Read from storage without caching, so that serving many tiles keeps no more than
        one in memory."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT hashes FROM {self.tiles} WHERE level = ? AND idx = ?", (level, index)
                                 ).fetchone()
        return b"" if row is None else bytes(row[0])[:WIDTH * 32]

    def tile_entries(self, tile: int, count: int) -> list[bytes]:
        """The first `count` entries of level-0 tile `tile` (log indexes 256·`tile` onwards), read through the
        store's paging from the notification ids integration recorded for that tile."""
        ids = array("q")
        ids.frombytes(self._ids_of(tile))
        if not 0 < count <= len(ids):
            raise LookupError(f"tile {tile}: {len(ids)} entries integrated, {count} asked")
        wanted = set(ids[:count])
        entries: list[bytes] = []
        for notification_id, entry in self.source.entries(int(ids[0]), count):
            if notification_id in wanted:  # a notification id committed late (a sequence gap filled) is not ours
                entries.append(entry)
                if len(entries) == count:
                    break
        if len(entries) != count:
            raise LookupError(f"tile {tile}: the store holds {len(entries)} of its {count} entries")
        return entries

    def clear_cache(self) -> None:
        """Forget cached tiles (the next reads come from storage)."""
        self._cache.clear()
        self._partial.clear()

    def _check_size(self, size: int) -> None:
        current = self.size()
        if not 0 <= size <= current:
            raise ValueError(f"size: must be in 0..{current} ({size})")


def _tile_of(level: int, index: int) -> tuple[int, int]:
    """The tile holding the bottom hashes of node (level, index)."""
    tile_level, within = divmod(level, HEIGHT)
    return tile_level, (index << within) // WIDTH


def _aligned(lo: int, hi: int) -> list[tuple[int, int]]:
    """The complete aligned subtrees whose hashes compose MTH of leaves [lo, hi)."""
    size = hi - lo
    if size & (size - 1) == 0 and lo % size == 0:
        return [(size.bit_length() - 1, lo // size)]
    k = 1 << ((size - 1).bit_length() - 1)
    return _aligned(lo, lo + k) + _aligned(lo + k, hi)
