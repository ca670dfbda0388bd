"""The transparency log over the event store's global order, kept as stored subtree hashes.

Entry i (0-based, dense) is the i-th stored envelope in notification order — the JCS bytes of the full signed
envelope. The notification id is *not* the index: PostgreSQL's sequence can leave gaps, so the integrator follows
the notification log in order and assigns the next index itself (`log_leaves` keeps both).

Sequencing is the event store's (an append gets a notification id when it commits); integration is this module's:
`integrate()` extends the tree from where it stopped, storing every complete subtree hash — node (level, i) covers
leaves [i·2^level, (i+1)·2^level) — so an entry costs O(log n) hash and row writes and the tree is never held in
memory. The position and the new nodes are written in one transaction, so a crash loses nothing and repeats nothing.
Roots at any past size and proofs for any entry and any two sizes are composed from the stored nodes (RFC 9162).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from ledger.log.merkle import (
    EMPTY_ROOT,
    consistency_path,
    inclusion_path,
    leaf_hash,
    node_hash,
)
from ledger.projections.sql import SqlStore

TRACKING_NAME = "log"


class EntrySource(Protocol):
    """The store the log follows (the application)."""

    recorder: Any

    def entries(self, start: int = 1, page: int = 1000) -> Iterable[tuple[int, bytes]]:
        """(notification id, entry) in notification order from `start`."""
        ...


class TransparencyLog:
    """Integration and proofs over stored subtree hashes (see module docstring)."""

    def __init__(self, source: EntrySource) -> None:
        self.source = source
        self.sql = SqlStore(source.recorder.datastore)
        t = self.sql.table
        self.leaves, self.nodes, self.tracking = t("log_leaves"), t("log_nodes"), t("projection_tracking")
        blob = "BYTEA" if self.sql.postgres else "BLOB"
        self.sql.create([
            f"CREATE TABLE IF NOT EXISTS {self.tracking} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.leaves} (idx BIGINT PRIMARY KEY, notification_id BIGINT NOT NULL "
            "UNIQUE)",
            f"CREATE TABLE IF NOT EXISTS {self.nodes} (level INTEGER NOT NULL, idx BIGINT NOT NULL, "
            f"hash {blob} NOT NULL, PRIMARY KEY (level, idx))",
        ])
        self._cache: dict[tuple[int, int], bytes] = {}

    # -- integration -------------------------------------------------------------------------------------

    def state(self) -> tuple[int, int]:
        """(tree size, last notification id integrated)."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,)).fetchone()
            size = cursor.execute(f"SELECT COUNT(*) FROM {self.leaves}").fetchone()
        return (int(size[0]) if size else 0), (int(row[0]) if row else 0)

    def size(self) -> int:
        """Entries integrated so far."""
        return self.state()[0]

    def integrate(self, page: int = 5000) -> int:
        """Extend the tree with every stored entry after the last one integrated; return how many were added."""
        added = 0
        while True:
            size, position = self.state()
            batch: list[tuple[int, bytes]] = []
            for item in self.source.entries(position + 1, page):
                batch.append(item)
                if len(batch) == page:
                    break
            if not batch:
                return added
            leaves: list[tuple[int, int]] = []
            nodes: list[tuple[int, int, bytes]] = []
            fresh: dict[tuple[int, int], bytes] = {}
            for offset, (notification_id, entry) in enumerate(batch):
                index = size + offset
                leaves.append((index, notification_id))
                level, i, value = 0, index, leaf_hash(entry)
                while True:
                    fresh[(level, i)] = value
                    nodes.append((level, i, value))
                    if i % 2 == 0:
                        break
                    left = fresh.get((level, i - 1)) or self.node(level, i - 1)
                    level, i, value = level + 1, i // 2, node_hash(left, value)
            with self.sql.transaction() as cursor:
                cursor.executemany(f"INSERT INTO {self.leaves} VALUES (?, ?)", leaves)
                cursor.executemany(f"INSERT INTO {self.nodes} VALUES (?, ?, ?)", nodes)
                cursor.execute(f"DELETE FROM {self.tracking} WHERE name = ?", (TRACKING_NAME,))
                cursor.execute(f"INSERT INTO {self.tracking} VALUES (?, ?)", (TRACKING_NAME, batch[-1][0]))
            added += len(batch)

    # -- reading -----------------------------------------------------------------------------------------

    def node(self, level: int, index: int) -> bytes:
        """A stored complete subtree hash."""
        key = (level, index)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT hash FROM {self.nodes} WHERE level = ? AND idx = ?", key).fetchone()
        if row is None:
            raise LookupError(f"no stored subtree at level {level}, index {index}")
        value = bytes(row[0])
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = value
        return value

    def range_hash(self, lo: int, hi: int) -> bytes:
        """MTH of leaves [lo, hi): stored when complete and aligned, else composed (RFC 9162 §2.1.1)."""
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
        return EMPTY_ROOT if size == 0 else self.range_hash(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The audit path of entry `index` in the tree of `size` (RFC 9162 §2.1.3.1)."""
        self._check_size(size)
        if not 0 <= index < size:
            raise ValueError(f"index: must be below the tree size ({index} >= {size})")
        return inclusion_path(index, size, self.range_hash)

    def consistency_proof(self, old_size: int, size: int) -> list[bytes]:
        """The consistency proof between two sizes (RFC 9162 §2.1.4.1)."""
        self._check_size(size)
        if not 0 < old_size <= size:
            raise ValueError(f"old_size: must be in 1..{size} ({old_size})")
        return consistency_path(old_size, size, self.range_hash)

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of entry `index`."""
        return self.node(0, index)

    def leaf_index(self, notification_id: int) -> int | None:
        """The log index of a stored notification, once integrated."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT idx FROM {self.leaves} WHERE notification_id = ?",
                                 (notification_id,)).fetchone()
        return None if row is None else int(row[0])

    def entries(self, start: int = 0) -> Iterable[tuple[int, bytes]]:
        """(log index, entry) from `start`, for integrated entries."""
        size, _ = self.state()
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT notification_id FROM {self.leaves} WHERE idx = ?", (start,)).fetchone()
        if row is None:
            return
        index = start
        for _, entry in self.source.entries(int(row[0])):
            if index >= size:
                return
            yield index, entry
            index += 1

    def _check_size(self, size: int) -> None:
        current = self.size()
        if not 0 <= size <= current:
            raise ValueError(f"size: must be in 0..{current} ({size})")
