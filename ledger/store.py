"""Storage: signed events in the `eventsourcing` event store, on SQLite or PostgreSQL.

`SignedEventMapper` is where domain events become signed envelopes: each stored event's `state` is the RFC 8785
bytes of the full signed envelope — exactly the transparency-log entry — and its `topic` is `type@schema`.
The recorders add one table, `command_receipts`, written in the same transaction as a command's events so that
repeating a command id returns the first result and writes nothing, and the two tables of the vault
(`ledger.vault`: `vault_keys`, one wrapped data key per member, and `vault_values`, the sealed values of events,
encrypted under their member's data key), written in that same transaction too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Identifier
from psycopg_pool import PoolTimeout, TooManyRequests

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Envelope, EnvelopeError, entry_with_signature, envelope_from_json, parse_at
from schemas.events import EVENT_BODIES


def connection_lost(error: BaseException) -> bool:
    """Whether a database error says the connection itself is gone — the server ended it (`pg_terminate_backend`, a
    restart: SQLSTATE class 57P), the connection failed (class 08), or the client found it broken (no SQLSTATE) —
    rather than that the database refused a statement. Whatever the connection was doing is then either committed or
    undone, and a new connection can carry on. The store library's errors wrap psycopg's, which are looked for in
    the chain of causes; waiting in vain for a pooled connection is not a lost one."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, psycopg.OperationalError):
            if isinstance(seen, psycopg.errors.PipelineAborted | PoolTimeout | TooManyRequests):
                return False
            return seen.sqlstate is None or seen.sqlstate.startswith(("08", "57P"))
        seen = seen.__cause__ or seen.__context__
    return False


def connection_unavailable(error: BaseException) -> bool:
    """Whether a long-running reader (the relay, a consumer) may carry on after this error by starting its work again
    from what is stored: the connection was lost (`connection_lost`), or no pooled connection came in time (a
    loaded server) — nothing was done over a connection then. A writer's command instead answers that the store is
    busy (exit 75), for its caller to retry."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, PoolTimeout | TooManyRequests):
            return True
        seen = seen.__cause__ or seen.__context__
    return connection_lost(error)


def replace_lost_connections(datastore: object) -> None:
    """After a lost connection: test the pool's idle connections and replace those that went with it (the server
    ended every session of a database at once), so that the next use does not meet them one by one."""
    if isinstance(datastore, PostgresDatastore) and not datastore.pool.closed:
        datastore.pool.check()


@dataclass(frozen=True)
class CommandReceipt:
    """The stored outcome of a command: its id, a hash of its request, and its JSON result."""

    command_id: str
    request_hash: str
    result: str


@dataclass(frozen=True)
class VaultRow:
    """One encrypted sealed value: the event field it opens, and the member whose data key encrypts it."""

    stream: str
    seq: int
    field: str
    member: str
    sealed: bytes


@dataclass
class VaultWrites:
    """What a transaction does to the vault: new members' wrapped data keys and new sealed values to add, and the
    members whose key and values to delete (erasure: with the receipts of the commands that carried their sealed
    values, `SCRUBBED_COMMANDS`)."""

    keys: dict[str, bytes]
    values: list[VaultRow]
    erase: dict[str, list[str]]
    """Member → the streams holding their values (whose receipts go too)."""

    def __bool__(self) -> bool:
        return bool(self.keys or self.values or self.erase)


SCRUBBED_COMMANDS = ("file_claim", "exclude_for_waiting_illness", "join", "qualify_juror", "record_fraud")
"""Commands whose requests carried sealed values: their receipts go when their member is erased."""


def erasure_deletions(member: str, streams: Sequence[str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The deletions of one member's erasure, as (table, condition with `?` placeholders, parameters): their data
    key, their values, and the receipts of the commands that carried those values (a receipt's result names the
    streams its command wrote)."""
    deletions: list[tuple[str, str, tuple[str, ...]]] = [
        ("vault_keys", "member = ?", (member,)), ("vault_values", "member = ?", (member,))]
    for stream in sorted({*streams, member}):
        for command in SCRUBBED_COMMANDS:
            deletions.append(("command_receipts", "result LIKE ? AND result LIKE ?",
                              (f'{{"command":"{command}",%', f"%{stream}%")))
    return deletions


VAULT_TABLES = ("vault_keys", "vault_values")


class StoredEntryError(ValueError):
    """A stored event does not decode into a valid envelope of a known type (the store was altered)."""


class SignedEventMapper(Mapper[UUID]):
    """Maps domain events to signed envelopes and back.

    On the way in it stores the event with the signature `signature_for` gives it (by the key named by the
    event's actor: see `LedgerApplication.signature_for`). On the way out it checks that the envelope
    belongs to the row it was stored in (stream and seq) and that its body matches its schema; signature and
    key-validity checks over the whole log belong to `ledger.verify`, which an outsider can run.
    """

    def __init__(
        self,
        transcoder: Transcoder,
        signature_for: Callable[[LedgerAggregate.Event], str],
        event_classes: dict[
            tuple[str, int, bool], tuple[type[LedgerAggregate.Event], type[LedgerAggregate]]
        ],
    ) -> None:
        super().__init__(transcoder=transcoder)
        self.signature_for = signature_for
        self.event_classes = event_classes
        self._aggregate_topics = {
            aggregate: get_topic(aggregate) for _, aggregate in event_classes.values()
        }

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        """Sign the event and store the canonical signed envelope."""
        assert isinstance(domain_event, LedgerAggregate.Event), type(domain_event)
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=domain_event.topic(),
            state=entry_with_signature(domain_event.canonical_unsigned(), self.signature_for(domain_event)),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        """Rebuild the domain event from its envelope."""
        envelope = decode_entry(stored_event.state)
        if envelope.stream != str(stored_event.originator_id) or (
            envelope.seq != stored_event.originator_version
        ):
            raise StoredEntryError(
                f"envelope {envelope.stream}#{envelope.seq} is stored as "
                f"{stored_event.originator_id}#{stored_event.originator_version}"
            )
        return self.domain_event(envelope)

    def domain_event(self, envelope: Envelope) -> LedgerAggregate.Event:
        """Build the domain event object that an envelope records."""
        try:
            event_class, aggregate_class = self.event_classes[
                (envelope.type, envelope.schema, envelope.seq == 1)
            ]
        except KeyError:
            raise StoredEntryError(f"unknown event type {envelope.type}@{envelope.schema}") from None
        state: dict[str, Any] = {
            "originator_id": UUID(envelope.stream),
            "originator_version": envelope.seq,
            "timestamp": parse_at(envelope.at),
            "actor": envelope.actor,
            "prev": envelope.prev,
            "body": EVENT_BODIES[(envelope.type, envelope.schema)].from_json_value(envelope.body),
        }
        if issubclass(event_class, LedgerAggregate.Created):
            state["originator_topic"] = self._aggregate_topics[aggregate_class]
        return event_class.build(state)


def decode_entry(entry: bytes) -> Envelope:
    """Decode a stored entry into an envelope, raising StoredEntryError when it is not one."""
    try:
        return envelope_from_json(json.loads(entry))
    except (ValueError, EnvelopeError) as error:
        raise StoredEntryError(f"stored entry is not a valid envelope: {error}") from None


class SQLiteLedgerRecorder(SQLiteApplicationRecorder):
    """The SQLite event recorder plus the command receipts table, written in the same transaction."""

    def construct_create_table_statements(self) -> list[str]:
        statements = super().construct_create_table_statements()
        statements.append(
            "CREATE TABLE IF NOT EXISTS command_receipts ("
            "command_id TEXT PRIMARY KEY, request_hash TEXT NOT NULL, result TEXT NOT NULL)"
        )
        return statements

    def create_vault_tables(self) -> None:
        """The vault's tables (`ledger.migrations`, version 2)."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("CREATE TABLE IF NOT EXISTS vault_keys (member TEXT PRIMARY KEY, wrapped BLOB NOT NULL)")
            c.execute("CREATE TABLE IF NOT EXISTS vault_values (stream TEXT NOT NULL, seq INTEGER NOT NULL, "
                      "field TEXT NOT NULL, member TEXT NOT NULL, sealed BLOB NOT NULL, "
                      "PRIMARY KEY (stream, seq, field))")
            c.execute("CREATE INDEX IF NOT EXISTS vault_values_member ON vault_values (member)")

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the receipts and the events with one `executemany` each.

        The library inserts an application's events one statement at a time to return their notification ids;
        the ledger reads notifications from the table, never from the insert, so it returns none.
        """
        receipts: Sequence[CommandReceipt] = kwargs.get("receipts") or ()
        if receipts:
            c.executemany(
                "INSERT INTO command_receipts VALUES (?,?,?)",
                [(r.command_id, r.request_hash, r.result) for r in receipts],
            )
        vault: VaultWrites | None = kwargs.get("vault")
        if vault is not None:
            c.executemany("INSERT INTO vault_keys VALUES (?,?)", list(vault.keys.items()))
            c.executemany("INSERT INTO vault_values VALUES (?,?,?,?,?)",
                          [(v.stream, v.seq, v.field, v.member, v.sealed) for v in vault.values])
            if vault.erase:
                c.execute("PRAGMA secure_delete = ON")  # deleted rows are overwritten with zeros, not just unlinked
            for member, streams in vault.erase.items():
                for table, condition, parameters in erasure_deletions(member, streams):
                    c.execute(f"DELETE FROM {table} WHERE {condition}", parameters)
        c.executemany(
            self.insert_events_statement,
            [(s.originator_id.hex if isinstance(s.originator_id, UUID) else s.originator_id, s.originator_version,
              s.topic, s.state) for s in stored_events],
        )
        return None

    def select_identities(self, notification_ids: Sequence[int]) -> dict[int, tuple[UUID, int]]:
        """Stream and seq of the events stored at these notification ids (one indexed query per 500 ids; no
        event bytes are read)."""
        rows = self._select_in(f"SELECT rowid, originator_id, originator_version FROM {self.events_table_name} "
                               "WHERE rowid", notification_ids)
        return {row[0]: (UUID(row[1]), row[2]) for row in rows}

    def select_entries(self, notification_ids: Sequence[int]) -> dict[int, bytes]:
        """The stored entries at these notification ids (one indexed query per 500 ids)."""
        rows = self._select_in(f"SELECT rowid, state FROM {self.events_table_name} WHERE rowid", notification_ids)
        return {int(row[0]): bytes(row[1]) for row in rows}

    def select_receipts(self, command_ids: Sequence[str]) -> dict[str, CommandReceipt]:
        """The stored receipts of those command ids that already ran (one query per 500 ids)."""
        rows = self._select_in("SELECT * FROM command_receipts WHERE command_id", command_ids)
        return {row[0]: CommandReceipt(row[0], row[1], row[2]) for row in rows}

    def select_vault_key(self, member: str) -> bytes | None:
        """A member's wrapped data key, or None (never made, or erased)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT wrapped FROM vault_keys WHERE member = ?", (member,))
            row = c.fetchone()
        return None if row is None else bytes(row[0])

    def select_vault_values(self, *, member: str | None = None, stream: str | None = None) -> list[VaultRow]:
        """The sealed values of a member, or of a stream."""
        column, value = ("member", member) if member is not None else ("stream", stream)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT stream, seq, field, member, sealed FROM vault_values WHERE {column} = ? "
                      "ORDER BY stream, seq, field", (value,))
            rows = c.fetchall()
        return [VaultRow(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def select_vault_field(self, streams: Sequence[str], seq: int, name: str) -> Iterator[tuple[VaultRow, bytes]]:
        """The sealed value of field `name` of event `stream#seq` for each of `streams` that has one, with its owner's
        wrapped data key (none of an erased owner): one statement per 500 streams (SQLite limits a statement's
        parameters), each chunk's rows handed on before the next is read."""
        for offset in range(0, len(streams), 500):
            chunk = list(streams[offset:offset + 500])
            with self.datastore.transaction(commit=False) as c:
                c.execute("SELECT v.stream, v.seq, v.field, v.member, v.sealed, k.wrapped FROM vault_values v "
                          "JOIN vault_keys k ON k.member = v.member WHERE v.seq = ? AND v.field = ? "
                          f"AND v.stream IN ({','.join('?' * len(chunk))})", [seq, name, *chunk])
                rows = c.fetchall()
            yield from ((VaultRow(r[0], r[1], r[2], r[3], bytes(r[4])), bytes(r[5])) for r in rows)

    def select_any_vault_key(self) -> tuple[str, bytes] | None:
        """One member's wrapped data key (the first by member id), or None when the vault holds none."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT member, wrapped FROM vault_keys ORDER BY member LIMIT 1")
            row = c.fetchone()
        return None if row is None else (str(row[0]), bytes(row[1]))

    def rewrap_vault_keys(self, rewrap: Callable[[str, bytes], bytes]) -> int:
        """Replace every wrapped data key by `rewrap(member, wrapped)`, all in one transaction (a vault key
        rotation); how many."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("SELECT member, wrapped FROM vault_keys ORDER BY member")
            rows = [(str(r[0]), bytes(r[1])) for r in c.fetchall()]
            c.executemany("UPDATE vault_keys SET wrapped = ? WHERE member = ?",
                          [(rewrap(member, wrapped), member) for member, wrapped in rows])
        return len(rows)

    def compact_vault(self) -> None:
        """After an erasure: move every change into the database file and empty the write-ahead log, so no
        earlier page of the erased rows stays in it."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _select_in(self, query: str, values: Sequence[Any]) -> list[Any]:
        """The rows of `query` + ` IN (values)`, in one read transaction, one statement per 500 values (SQLite
        limits a statement's parameters)."""
        rows: list[Any] = []
        with self.datastore.transaction(commit=False) as c:
            for offset in range(0, len(values), 500):
                chunk = list(values[offset:offset + 500])
                c.execute(f"{query} IN ({','.join('?' * len(chunk))})", chunk)
                rows.extend(c.fetchall())
        return rows


def pipeline_cause(failures: Sequence[psycopg.Error]) -> psycopg.Error:
    """The error that made a pipelined transaction fail: the first one raised that is not `PipelineAborted`.

    Once a statement of a pipeline fails, the server skips the rest up to the next sync and psycopg reports each
    skipped one as "pipeline aborted". Which error reaches the caller first depends on timing (whether the failed
    statement's result was read while later statements were still being sent, or only at the end), so the cause is
    picked out of all of them: a unique violation (a lost race) stays an integrity error, whatever the timing."""
    return next((error for error in failures if not isinstance(error, psycopg.errors.PipelineAborted)), failures[0])


def without_jit(datastore: PostgresDatastore) -> PostgresDatastore:
    """Open every connection of the datastore's pool with PostgreSQL's JIT compilation off (`-c jit=off`). The
    ledger's queries are indexed lookups and short scans; the planner's estimate for a lookup by a column of many
    NULLs (an account's family, by `payer`) passes `jit_above_cost` at millions of members, and compiling the plan
    took 0.9 s of a statement that runs in 1 ms (measured at 10,000,000 members)."""
    kwargs = datastore.pool.kwargs  # read by every connection the pool opens: called before it opens the first
    if isinstance(kwargs, dict) and "jit=off" not in (kwargs.get("options") or ""):
        kwargs["options"] = f"{kwargs.get('options') or ''} -c jit=off".strip()
    return datastore


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    """The PostgreSQL event recorder plus the command receipts table, written in the same transaction.

    A command's events and receipts are written in one round trip: the statements of the transaction (take the
    table's write lock, insert the receipts, insert the events, notify) are pipelined and sent together, each
    insert one prepared statement over parallel arrays (`unnest`) however many rows it carries. The write lock makes
    notification ids commit in order, as the library's recorder does; a transaction that fails after taking ids
    from the sequence leaves a gap, which readers of the notification log skip (`consumers.relay` counts them).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        without_jit(args[0] if args else kwargs["datastore"])  # before the library's first connection
        super().__init__(*args, **kwargs)
        self.receipts_table = Identifier(self.datastore.schema, "command_receipts")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, "
                "request_hash text NOT NULL, result text NOT NULL)"
            ).format(self.receipts_table)
        )
        self.vault_keys_table = Identifier(self.datastore.schema, "vault_keys")
        self.vault_values_table = Identifier(self.datastore.schema, "vault_values")
        events = Identifier(self.datastore.schema, self.events_table_name)
        self.insert_rows_statement = SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])").format(events)
        self.insert_receipts_statement = SQL(
            "INSERT INTO {} (command_id, request_hash, result) "
            "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[])").format(self.receipts_table)
        self.notify_statement = SQL("NOTIFY {}").format(Identifier(self.channel_name))
        self.insert_vault_keys_statement = SQL(
            "INSERT INTO {} (member, wrapped) SELECT * FROM unnest(%b::text[], %b::bytea[])").format(
            self.vault_keys_table)
        self.insert_vault_values_statement = SQL(
            "INSERT INTO {} (stream, seq, field, member, sealed) "
            "SELECT * FROM unnest(%b::text[], %b::integer[], %b::text[], %b::text[], %b::bytea[])").format(
            self.vault_values_table)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Insert the events and the receipts (`receipts=`) in one transaction sent in one round trip (see the class
        docstring). A taken stream version or command id raises the library's `IntegrityError`; a failure another
        writer or the server caused (a serialization failure, a deadlock, a lock timeout, a dropped connection)
        raises its `OperationalError` or `InternalError`: nothing was written either way. The statements the server
        skipped after the failed one are not the cause (`pipeline_cause`). The
        ledger reads notification ids from the table, never from the insert, so none are returned."""
        receipts: Sequence[CommandReceipt] = kwargs.get("receipts") or ()
        vault: VaultWrites | None = kwargs.get("vault")
        with self.datastore.get_connection() as conn:
            failures: list[psycopg.Error] = []
            try:
                with conn.pipeline(), conn.transaction(), conn.cursor() as curs:
                    try:
                        for statement in self.lock_table_statements:
                            curs.execute(statement, prepare=True)
                        if receipts:
                            curs.execute(self.insert_receipts_statement,
                                         ([r.command_id for r in receipts], [r.request_hash for r in receipts],
                                          [r.result for r in receipts]), prepare=True)
                        if stored_events:
                            curs.execute(self.insert_rows_statement,
                                         ([e.originator_id for e in stored_events],
                                          [e.originator_version for e in stored_events],
                                          [e.topic for e in stored_events], [e.state for e in stored_events]),
                                         prepare=True)
                            curs.execute(self.notify_statement)
                        if vault is not None:
                            self._write_vault(curs, vault)
                    except psycopg.Error as error:  # the transaction rolls back; the pipeline is drained on exit
                        failures.append(error)
                        raise
            except psycopg.Error as error:
                failures.append(error)
            if failures:
                raise pipeline_cause(failures)
        return None

    def create_vault_tables(self) -> None:
        """The vault's tables (`ledger.migrations`, version 2)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE TABLE IF NOT EXISTS {} (member text PRIMARY KEY, wrapped bytea NOT NULL)").format(
                self.vault_keys_table))
            curs.execute(SQL("CREATE TABLE IF NOT EXISTS {} (stream text NOT NULL, seq integer NOT NULL, "
                             "field text NOT NULL, member text NOT NULL, sealed bytea NOT NULL, "
                             "PRIMARY KEY (stream, seq, field))").format(self.vault_values_table))
            curs.execute(SQL("CREATE INDEX IF NOT EXISTS vault_values_member ON {} (member)").format(
                self.vault_values_table))

    def _write_vault(self, curs: Cursor[DictRow], vault: VaultWrites) -> None:
        """The vault's part of the transaction (`VaultWrites`), pipelined with the events."""
        if vault.keys:
            curs.execute(self.insert_vault_keys_statement, (list(vault.keys), list(vault.keys.values())),
                         prepare=True)
        if vault.values:
            curs.execute(self.insert_vault_values_statement,
                         ([v.stream for v in vault.values], [v.seq for v in vault.values],
                          [v.field for v in vault.values], [v.member for v in vault.values],
                          [v.sealed for v in vault.values]), prepare=True)
        for member, streams in vault.erase.items():
            for table, condition, parameters in erasure_deletions(member, streams):
                curs.execute(SQL("DELETE FROM {} WHERE " + condition.replace("?", "%s")).format(
                    Identifier(self.datastore.schema, table)), parameters)

    def compact_vault(self) -> None:
        """After an erasure: vacuum the vault and receipt tables, so the space of the deleted rows is reclaimed
        (docs/privacy.md says what PostgreSQL may still hold until it is reused)."""
        with self.datastore.get_connection() as conn:  # the pool's connections are in autocommit mode
            conn.execute(SQL("VACUUM {}, {}, {}").format(self.vault_keys_table, self.vault_values_table,
                                                         self.receipts_table))

    def select_any_vault_key(self) -> tuple[str, bytes] | None:
        """One member's wrapped data key (the first by member id), or None when the vault holds none."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT member, wrapped FROM {} ORDER BY member LIMIT 1").format(self.vault_keys_table))
            row = curs.fetchone()
        return None if row is None else (str(row["member"]), bytes(row["wrapped"]))

    def rewrap_vault_keys(self, rewrap: Callable[[str, bytes], bytes]) -> int:
        """Replace every wrapped data key by `rewrap(member, wrapped)`, all in one transaction that holds the
        table against writers (a vault key rotation); how many."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self.vault_keys_table))
            curs.execute(SQL("SELECT member, wrapped FROM {} ORDER BY member").format(self.vault_keys_table))
            rows = [(str(r["member"]), bytes(r["wrapped"])) for r in curs.fetchall()]
            for member, wrapped in rows:
                curs.execute(SQL("UPDATE {} SET wrapped = %s WHERE member = %s").format(self.vault_keys_table),
                             (rewrap(member, wrapped), member))
        return len(rows)

    def select_vault_key(self, member: str) -> bytes | None:
        """A member's wrapped data key, or None (never made, or erased)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT wrapped FROM {} WHERE member = %s").format(self.vault_keys_table), (member,))
            row = curs.fetchone()
        return None if row is None else bytes(row["wrapped"])

    def select_vault_values(self, *, member: str | None = None, stream: str | None = None) -> list[VaultRow]:
        """The sealed values of a member, or of a stream."""
        column, value = ("member", member) if member is not None else ("stream", stream)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT stream, seq, field, member, sealed FROM {} WHERE {} = %s "
                             "ORDER BY stream, seq, field").format(self.vault_values_table, Identifier(column)),
                         (value,))
            rows = curs.fetchall()
        return [VaultRow(r["stream"], r["seq"], r["field"], r["member"], bytes(r["sealed"])) for r in rows]

    def select_vault_field(self, streams: Sequence[str], seq: int, name: str) -> Iterator[tuple[VaultRow, bytes]]:
        """The sealed value of field `name` of event `stream#seq` for each of `streams` that has one, with its owner's
        wrapped data key (none of an erased owner): one query over all of them (the streams an array parameter, so
        the tables are read once however many there are), its rows streamed by a server-side cursor."""
        if not streams:
            return
        query = SQL("SELECT v.stream, v.seq, v.field, v.member, v.sealed, k.wrapped FROM {} v JOIN {} k "
                    "ON k.member = v.member WHERE v.stream = ANY(%s) AND v.seq = %s AND v.field = %s").format(
                        self.vault_values_table, self.vault_keys_table)
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor(
                name="vault_field", row_factory=tuple_row) as curs:
            curs.itersize = 10_000
            curs.execute(query, (list(streams), seq, name))
            while rows := curs.fetchmany(10_000):
                yield from ((VaultRow(r[0], r[1], r[2], r[3], bytes(r[4])), bytes(r[5])) for r in rows)

    def select_identities(self, notification_ids: Sequence[int]) -> dict[int, tuple[UUID, int]]:
        """Stream and seq of the events stored at these notification ids (one indexed query; no event bytes
        are read)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT notification_id, originator_id, originator_version FROM {} "
                    "WHERE notification_id = ANY(%s)").format(
                    Identifier(self.datastore.schema, self.events_table_name)),
                (list(notification_ids),),
            )
            rows = curs.fetchall()
        return {row["notification_id"]: (row["originator_id"], row["originator_version"]) for row in rows}

    def select_entries(self, notification_ids: Sequence[int]) -> dict[int, bytes]:
        """The stored entries at these notification ids (one indexed query)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT notification_id, state FROM {} WHERE notification_id = ANY(%s)").format(
                    Identifier(self.datastore.schema, self.events_table_name)),
                (list(notification_ids),),
            )
            rows = curs.fetchall()
        return {int(row["notification_id"]): bytes(row["state"]) for row in rows}

    def select_receipts(self, command_ids: Sequence[str]) -> dict[str, CommandReceipt]:
        """The stored receipts of those command ids that already ran (one query)."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("SELECT * FROM {} WHERE command_id = ANY(%s)").format(self.receipts_table),
                (list(command_ids),),
            )
            rows = curs.fetchall()
        return {
            row["command_id"]: CommandReceipt(row["command_id"], row["request_hash"], row["result"])
            for row in rows
        }
