"""Storage: signed events in the `eventsourcing` event store, on SQLite or PostgreSQL.

`SignedEventMapper` is where domain events become signed envelopes: each stored event's `state` is the RFC 8785
bytes of the full signed envelope — exactly the transparency-log entry — and its `topic` is `type@schema`.
The recorders add one table, `command_receipts`, written in the same transaction as a command's events so that
repeating a command id returns the first result and writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Envelope, EnvelopeError, entry_with_signature, envelope_from_json, parse_at
from schemas.events import EVENT_BODIES


@dataclass(frozen=True)
class CommandReceipt:
    """The stored outcome of a command: its id, a hash of its request, and its JSON result."""

    command_id: str
    request_hash: str
    result: str


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


class PostgresLedgerRecorder(PostgresApplicationRecorder):
    """The PostgreSQL event recorder plus the command receipts table, written in the same transaction.

    A command's events and receipts are written in one round trip: the statements of the transaction (take the
    table's write lock, insert the receipts, insert the events, notify) are pipelined and sent together, each
    insert one prepared statement over parallel arrays (`unnest`) however many rows it carries. The write lock makes
    notification ids commit in order, as the library's recorder does; a transaction that fails after taking ids
    from the sequence leaves a gap, which readers of the notification log skip (`consumers.relay` counts them).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.receipts_table = Identifier(self.datastore.schema, "command_receipts")
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (command_id text PRIMARY KEY, "
                "request_hash text NOT NULL, result text NOT NULL)"
            ).format(self.receipts_table)
        )
        events = Identifier(self.datastore.schema, self.events_table_name)
        self.insert_rows_statement = SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])").format(events)
        self.insert_receipts_statement = SQL(
            "INSERT INTO {} (command_id, request_hash, result) "
            "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[])").format(self.receipts_table)
        self.notify_statement = SQL("NOTIFY {}").format(Identifier(self.channel_name))

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Insert the events and the receipts (`receipts=`) in one transaction sent in one round trip (see the class
        docstring). A taken stream version or command id raises the library's `IntegrityError`; a failure another
        writer or the server caused (a serialization failure, a deadlock, a lock timeout, an aborted pipeline, a
        dropped connection) raises its `OperationalError` or `InternalError`: nothing was written either way. The
        ledger reads notification ids from the table, never from the insert, so none are returned."""
        receipts: Sequence[CommandReceipt] = kwargs.get("receipts") or ()
        with self.datastore.get_connection() as conn:
            failure: Exception | None = None
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
                except psycopg.Error as error:  # raised once the pipeline has ended, not inside it
                    failure = error
            if failure is not None:
                raise failure
        return None

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
