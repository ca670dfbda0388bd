"""The one way read models are built: a projection applies envelopes to its own tables and records the position
it has applied up to in the same transaction.

A projection does not care where its envelopes come from: `catch_up()` follows the event store's notification log
in order (SQLite cannot subscribe), and a Kafka consumer calls `apply_batch()` with what it read from a topic. Its
`digest()` is a SHA-256 over its tables' rows in a fixed order, so a live read model and a rebuild from scratch —
or one fed by Kafka and one fed in-process — can be compared with one line each.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, ClassVar, Protocol

import orjson

from ledger.memory import paused_gc
from ledger.projections.sql import BufferedCursor, SqlCursor, SqlStore

Applier = Callable[[SqlCursor, dict[str, Any]], None]
Entry = bytes | dict[str, Any]
"""An envelope as projections are given it: its canonical bytes, or those bytes already decoded (by a verifier that
decoded them for its own checks: a second decoding would cost as much)."""


class EntrySource(Protocol):
    """Where a projection reads events from when it follows the store: the application."""

    recorder: Any

    def entries(self, start: int = 1, page: int = 1000) -> Iterable[tuple[int, bytes]]:
        """(notification id, canonical envelope bytes) in global order."""
        ...


class EntriesInMemory:
    """Entries held in memory as an EntrySource (notification id = index + 1), with a scratch database, for
    verifiers that rebuild read models from an export."""

    def __init__(self, entries: Sequence[bytes], sql: SqlStore) -> None:
        self._entries = entries
        self.recorder = type("Recorder", (), {"datastore": sql.datastore})()

    def entries(self, start: int = 1, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """(index + 1, entry) from `start`."""
        for index in range(start - 1, len(self._entries)):
            yield index + 1, self._entries[index]


class Projection:
    """Base of every read model (see module docstring). Subclasses set NAME and TABLES and implement `schema`
    and `appliers`."""

    NAME: ClassVar[str]
    TABLES: ClassVar[tuple[str, ...]]
    """Base names of the tables this projection owns (digested and cleared on rebuild)."""
    STREAM_LOCAL: ClassVar[bool] = False
    """True when every applier writes only rows keyed by the event's own stream and reads nothing: then the
    streams can be split among consumers (the partitions of the topic, each with its own position) that apply
    their parts in parallel into one database, and the union of their rows equals one consumer's."""

    def __init__(self, source: EntrySource, sql: SqlStore | None = None, tracking_name: str | None = None,
                 create: bool = True) -> None:
        self.source = source
        self.tracking_name = tracking_name or self.NAME
        """The key of this projection's position (each partition of a stream-local one records its own)."""
        self.sql = sql or SqlStore(source.recorder.datastore)
        self.tracking = self.sql.table("projection_tracking")
        self._schema = self.schema()
        if create:  # the ledger's own store is made by `ledger.migrations`; a database of views by its consumers
            self.sql.create([f"CREATE TABLE IF NOT EXISTS {self.tracking} (name TEXT PRIMARY KEY, "
                             "position BIGINT NOT NULL)", *self._schema])
        self._appliers = self.appliers()

    def schema(self) -> list[str]:
        """CREATE statements of this projection's tables and indexes (IF NOT EXISTS)."""
        raise NotImplementedError

    def appliers(self) -> dict[str, Applier]:
        """The function applying each event type this projection reads."""
        raise NotImplementedError

    def t(self, name: str) -> str:
        """A table name, qualified for the database."""
        return self.sql.table(name)

    # -- following events --------------------------------------------------------------------------------

    def position(self) -> int:
        """The last notification id applied (0 before the first)."""
        with self.sql.transaction(commit=False) as cursor:
            return self.position_in(cursor)

    def position_in(self, cursor: SqlCursor) -> int:
        """The recorded position, read in the caller's transaction."""
        row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (self.tracking_name,)).fetchone()
        return int(row[0]) if row else 0

    def apply_batch(self, batch: Sequence[tuple[int, bytes]], through: int = 0) -> None:
        """Apply envelopes (notification id, bytes) in order and record the last position (or `through`, when the
        caller read further than what it passes), in one transaction. Entries at or before the recorded position
        are skipped, so a repeated delivery has no effect."""
        with paused_gc(), self.sql.transaction() as cursor:
            apply_together(cursor, (self,), batch, through)

    def record_in(self, cursor: SqlCursor, position: int) -> None:
        """Record the position applied up to, in the caller's transaction."""
        cursor.execute(f"DELETE FROM {self.tracking} WHERE name = ?", (self.tracking_name,))
        cursor.execute(f"INSERT INTO {self.tracking} VALUES (?, ?)", (self.tracking_name, position))

    def apply(self, cursor: SqlCursor, envelope: dict[str, Any]) -> None:
        """Apply one envelope (already verified by whoever stored or delivered it)."""
        applier = self._appliers.get(envelope["type"])
        if applier is not None:
            applier(cursor, envelope)

    def catch_up(self, page: int = 5000) -> int:
        """Apply every stored event after the recorded position; return how many were read."""
        read = 0
        while True:
            batch = list(islice(self.source.entries(self.position() + 1), page))
            if not batch:
                return read
            self.apply_batch(batch)
            read += len(batch)

    def reset(self) -> None:
        """Forget everything (tables and position), for a rebuild."""
        with self.sql.transaction() as cursor:
            for table in self.TABLES:
                cursor.execute(f"DELETE FROM {self.t(table)}")
            cursor.execute(f"DELETE FROM {self.tracking} WHERE name = ?", (self.tracking_name,))

    def rebuild(self) -> int:
        """Reset, then apply every stored event."""
        self.reset()
        self.drop_indexes()
        try:
            return self.catch_up()
        finally:
            self.create_indexes()

    def _indexes(self) -> list[str]:
        return [statement for statement in self._schema if statement.startswith("CREATE INDEX")]

    def drop_indexes(self) -> None:
        """Drop the secondary indexes (a bulk rebuild is faster without them)."""
        with self.sql.transaction() as cursor:
            for statement in self._indexes():
                name = statement.split()[5]
                cursor.execute(f"DROP INDEX IF EXISTS {self.t(name)}")

    def create_indexes(self) -> None:
        """Create the secondary indexes again."""
        self.sql.create(self._indexes())

    def digest(self) -> str:
        """SHA-256 over every row of this projection's tables, rows sorted, values normalized."""
        digest = hashlib.sha256()
        with self.sql.transaction(commit=False) as cursor:
            for table in self.TABLES:
                rows = [json.dumps([v.hex() if isinstance(v, bytes | memoryview) and not isinstance(v, str)
                                    else v for v in (bytes(x) if isinstance(x, memoryview) else x for x in row)],
                                   sort_keys=True, default=str)
                        for row in cursor.execute(f"SELECT * FROM {self.t(table)}").fetchall()]
                digest.update(table.encode() + b"\n")
                for row in sorted(rows):
                    digest.update(row.encode() + b"\n")
        return digest.hexdigest()


def apply_together(cursor: SqlCursor, projections: Sequence[Projection], batch: Sequence[tuple[int, Entry]],
                   through: int = 0) -> None:
    """Apply envelopes (notification id, canonical bytes or their decoding) to several projections in the caller's
    transaction, each from after its own recorded position, and record each one's new position: the last
    envelope's, or `through` when that is further on. Projections at the same position (the usual case) share one
    pass over the batch that parses each envelope and looks its type up once; each keeps its own buffer of writes, in
    event order. An envelope given as bytes is parsed as it is applied and dropped after it (a batch held parsed
    costs more to build and to free than the parse itself); one given decoded, by a caller that decoded it for its
    own checks, is applied as it is. Each position is read after the writers of it were serialized
    (`SqlStore.serialize`), so two processes applying the same events apply them once."""
    groups: dict[int, list[Projection]] = {}
    slices: dict[int, Sequence[tuple[int, Entry]]] = {}
    for projection in projections:
        projection.sql.serialize(cursor, f"{projection.tracking} {projection.tracking_name}")
        position = projection.position_in(cursor)
        fresh = batch if batch and batch[0][0] > position else [(nid, entry) for nid, entry in batch
                                                                if nid > position]
        if fresh:
            groups.setdefault(fresh[0][0], []).append(projection)
            slices[fresh[0][0]] = fresh
        elif through > position:
            projection.record_in(cursor, through)
    for first, members in groups.items():
        fresh = slices[first]
        buffers = [BufferedCursor(cursor) for _ in members]
        dispatch: dict[str, list[tuple[Applier, BufferedCursor]]] = {}
        for projection, buffer in zip(members, buffers, strict=True):
            for kind, applier in projection._appliers.items():
                dispatch.setdefault(kind, []).append((applier, buffer))
        nothing: list[tuple[Applier, BufferedCursor]] = []
        for _, entry in fresh:
            envelope = orjson.loads(entry) if isinstance(entry, bytes) else entry
            for applier, buffer in dispatch.get(envelope["type"], nothing):
                applier(buffer, envelope)
        for projection, buffer in zip(members, buffers, strict=True):
            buffer.flush()
            projection.record_in(cursor, max(fresh[-1][0], through))
