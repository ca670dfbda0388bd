"""One small SQL layer over the event store's own database, for read models that live beside the events.

The embedded default is SQLite and the distributed one PostgreSQL; read models write the same SQL to both, with
`?` placeholders (rewritten to `%s` for PostgreSQL) and table names qualified by `table()`. Rows come back as
tuples on both.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from psycopg import IsolationLevel
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

Params = Sequence[Any]
SQLITE_CACHE = "PRAGMA cache_size = -262144"
"""256 MiB of SQLite page cache per connection (the default 2 MiB thrashes on million-row indexes)."""


_VALUE = re.compile(r"\?|NULL|'(?:[^']|'')*'|-?\d+", re.IGNORECASE)
_PLAIN_INSERT = re.compile(r"\s*INSERT\s+INTO\s+(?P<table>\S+)\s*(?P<columns>\([^()]*\))?\s*VALUES\s*"
                           r"\((?P<values>\s*(?:(?:\?|NULL|'(?:[^']|'')*'|-?\d+)\s*,\s*)*"
                           r"(?:\?|NULL|'(?:[^']|'')*'|-?\d+)\s*)\)\s*", re.IGNORECASE)
"""An insert of one row of plain values: parameters, NULL, string and integer literals."""
_PARSED_INSERTS: dict[str, tuple[str, str | None, list[tuple[bool, Any]]] | None] = {}
"""Statement → (table, column list, each value a parameter or a literal) when it is a plain insert, else None."""


class SqlCursor:
    """A cursor on either backend with `?` placeholders and tuple rows."""

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cursor = cursor
        self._postgres = postgres
        if postgres:  # tuples, not the datastore's dict rows (two unnamed columns would collide in a dict)
            cursor.row_factory = tuple_row

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    def execute(self, statement: str, params: Params = ()) -> SqlCursor:
        """Run one statement."""
        self._cursor.execute(self._sql(statement), tuple(params))
        return self

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        """Run one statement for many parameter rows. On PostgreSQL an insert of one row of plain values goes as
        one `COPY` of all the rows (`_copy_plan`): a quarter of the client's work of a statement per row, and less
        of the server's; within the transaction, the same rows or the same error."""
        if not rows:
            return
        plan = self._copy_plan(statement) if self._postgres and len(rows) > 1 else None
        if plan is None:
            self._cursor.executemany(self._sql(statement), [tuple(row) for row in rows])
            return
        copy_statement, template = plan
        with self._cursor.copy(copy_statement) as copy:
            if all(is_parameter for is_parameter, _ in template):
                for row in rows:
                    copy.write_row(row)
                return
            for row in rows:
                values = iter(row)
                copy.write_row([next(values) if is_parameter else literal for is_parameter, literal in template])

    def _copy_plan(self, statement: str) -> tuple[str, list[tuple[bool, Any]]] | None:
        """For `INSERT INTO t [(columns)] VALUES (…)` whose values are parameters and literals (`?`, NULL, a
        string, an integer) and nothing else — no conflict clause, expression or subquery: the `COPY` statement
        and, for each column, whether it takes the next parameter or the literal. None for any other statement.
        The statement is parsed once; without a column list, the table's first columns are named as they are now
        (one query), as the insert would fill them."""
        if statement not in _PARSED_INSERTS:
            found = _PLAIN_INSERT.fullmatch(statement)
            _PARSED_INSERTS[statement] = None if found is None else (found["table"], found["columns"], [
                (True, None) if item == "?" else (False, None) if item.upper() == "NULL"
                else (False, item[1:-1].replace("''", "'")) if item.startswith("'") else (False, int(item))
                for item in _VALUE.findall(found["values"])])
        parsed = _PARSED_INSERTS[statement]
        if parsed is None:
            return None
        table, columns, template = parsed
        if not columns:
            self._cursor.execute(f"SELECT * FROM {table} LIMIT 0")
            names = [column.name for column in self._cursor.description or ()]
            if len(names) < len(template):
                return None
            columns = "(" + ", ".join(f'"{name}"' for name in names[:len(template)]) + ")"
        return f"COPY {table} {columns} FROM STDIN", template

    def fetchall(self) -> list[tuple[Any, ...]]:
        """All rows of the last query, as tuples."""
        rows = self._cursor.fetchall()
        return [tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows]

    def batches(self, statement: str, params: Params = (), size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query, `size` at a time, never all of them at once in this process, read by a cursor of
        its own in this cursor's transaction, so that the caller may write between batches (PostgreSQL: a
        server-side cursor; SQLite steps its statement)."""
        if not self._postgres:
            sqlite_cursor = self._cursor.sqlite_cursor.connection.cursor()
            try:
                sqlite_cursor.execute(statement, tuple(params))
                while rows := sqlite_cursor.fetchmany(size):
                    yield rows
            finally:
                sqlite_cursor.close()
            return
        with self._cursor.connection.cursor(name="ledger_batches", row_factory=tuple_row) as cursor:
            cursor.itersize = size
            cursor.execute(self._sql(statement), tuple(params))
            while rows := cursor.fetchmany(size):
                yield rows

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last query, as a tuple."""
        row = self._cursor.fetchone()
        if row is None:
            return None
        return tuple(row.values()) if isinstance(row, dict) else tuple(row)


class Snapshot:
    """The queries of one `SqlStore.snapshot`: `execute` for small answers, `batches` for a large one."""

    def __init__(self, cursor: SqlCursor) -> None:
        self.cursor = cursor

    def execute(self, statement: str, params: Params = ()) -> SqlCursor:
        """Run one query."""
        return self.cursor.execute(statement, params)

    def batches(self, statement: str, params: Params = (), size: int = 50_000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query, `size` at a time, never all of them at once in this process."""
        return self.cursor.batches(statement, params, size)


_OPEN_SNAPSHOT: ContextVar[tuple[Any, SqlCursor] | None] = ContextVar("ledger_open_snapshot", default=None)
"""(datastore, cursor) of the snapshot open in this thread or task (`SqlStore.snapshot`), if any."""


class SqlStore:
    """Transactions and table names on the database that holds the events."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)
        self.schema = datastore.schema if isinstance(datastore, PostgresDatastore) else ""

    def table(self, name: str) -> str:
        """A table name, qualified by the PostgreSQL schema when there is one."""
        return f'"{self.schema}".{name}' if self.schema else name

    @contextmanager
    def transaction(self, commit: bool = True) -> Iterator[SqlCursor]:
        """A transaction; committed on success when `commit`, rolled back on error. Inside a `snapshot` of the same
        database (in this thread), a read-only one (not `commit`) is the snapshot itself, and a writing one is
        refused: the snapshot would not see what it writes."""
        joined = self._open_snapshot()
        if joined is not None:
            if commit:
                raise RuntimeError("a write inside a snapshot of the same database: the snapshot would not see it")
            yield joined
            return
        with self.datastore.transaction(commit=commit) as cursor:
            if not self.postgres:
                if commit:  # take the write lock now, waiting for it: several consumer processes may write here,
                    cursor.execute("ROLLBACK")  # and a deferred transaction that read first cannot wait to write
                    cursor.execute("BEGIN IMMEDIATE")
                cursor.execute(SQLITE_CACHE)  # read models index random ids: a page cache that holds them
            yield SqlCursor(cursor, self.postgres)

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """A read-only transaction whose queries all see the same state (PostgreSQL: repeatable read; SQLite: one
        read transaction), and which can stream a large result in batches instead of holding it (`Snapshot.batches`):
        what a question about millions of rows asks. Until it ends, the read-only transactions this thread opens on
        the same database (the read models' queries, `transaction(commit=False)`) are this one: a question of many
        queries (a member's statement) takes one connection from the pool and one BEGIN for all of them, not one
        each, and answers from one state. A snapshot opened inside one is the same snapshot."""
        joined = self._open_snapshot()
        if joined is not None:
            yield Snapshot(joined)
            return
        if not self.postgres:
            with self.transaction(commit=False) as cursor, self._opened(cursor):
                yield Snapshot(cursor)
            return
        assert isinstance(self.datastore, PostgresDatastore)
        with self.datastore.get_connection() as conn:
            conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True  # in the BEGIN: no round trip
            try:  # ended by a COMMIT (it is read-only): psycopg forgets its prepared statements at a ROLLBACK
                with conn.transaction(), conn.cursor() as raw:
                    cursor = SqlCursor(raw, True)
                    with self._opened(cursor):
                        yield Snapshot(cursor)
            finally:  # the pool's next user gets the connection as it was (a broken one is not given again)
                if conn.info.transaction_status == TransactionStatus.IDLE:
                    conn.isolation_level, conn.read_only = None, None

    def _open_snapshot(self) -> SqlCursor | None:
        """The cursor of the snapshot this thread has open on this database, if any."""
        found = _OPEN_SNAPSHOT.get()
        return found[1] if found is not None and found[0] is self.datastore else None

    @contextmanager
    def _opened(self, cursor: SqlCursor) -> Iterator[None]:
        """Mark a snapshot open on this database in this thread while the block runs."""
        token = _OPEN_SNAPSHOT.set((self.datastore, cursor))
        try:
            yield
        finally:
            _OPEN_SNAPSHOT.reset(token)

    def serialize(self, cursor: SqlCursor, name: str) -> None:
        """Make writers of `name` (a projection's position) take turns until the caller's transaction ends, so two
        processes applying after the same position cannot both apply: a PostgreSQL transaction-scoped advisory
        lock; on SQLite nothing more is needed (a write transaction holds the database's write lock)."""
        if self.postgres:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))

    def has_table(self, name: str) -> bool:
        """Whether a table of that name exists (in the PostgreSQL schema, when there is one)."""
        return self._exists("table", name)

    def has_index(self, name: str) -> bool:
        """Whether an index of that name exists (in the PostgreSQL schema, when there is one)."""
        return self._exists("index", name)

    def _exists(self, kind: str, name: str) -> bool:
        """Whether a table or index (`kind`) of that name exists: `to_regclass` on PostgreSQL, `sqlite_master`."""
        with self.transaction(commit=False) as cursor:
            if self.postgres:
                row = cursor.execute("SELECT to_regclass(?)", (self.table(name),)).fetchone()
                return row is not None and row[0] is not None
            return cursor.execute("SELECT 1 FROM sqlite_master WHERE type = ? AND name = ?",
                                  (kind, name)).fetchone() is not None

    def create(self, statements: Sequence[str]) -> None:
        """Create tables and indexes (statements use IF NOT EXISTS). On PostgreSQL creators take turns (an advisory
        lock): two sessions racing to create the same table fail with `tuple concurrently updated`. And only what is
        missing is created: `CREATE INDEX IF NOT EXISTS` takes its table's SHARE lock before it finds the index, so a
        reader opening a read model while consumers apply to it would deadlock with them."""
        if self.postgres:
            statements = self._missing(statements)
            if not statements:
                return
        with self.transaction() as cursor:
            if self.postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended('mutual-ledger:create', 0))")
            for statement in statements:
                cursor.execute(statement)


    def _missing(self, statements: Sequence[str]) -> list[str]:
        """The statements whose table or index does not exist yet (`to_regclass` takes no lock); any other
        statement is kept."""
        missing = []
        with self.transaction(commit=False) as cursor:
            for statement in statements:
                found = _CREATES.match(statement)
                if found is None:
                    missing.append(statement)
                    continue
                name = found["name"] if "." in found["name"] else self.table(found["name"])
                row = cursor.execute("SELECT to_regclass(?)", (name,)).fetchone()
                if row is None or row[0] is None:
                    missing.append(statement)
        return missing


_CREATES = re.compile(r"\s*CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(?P<name>\S+)", re.IGNORECASE)


class BufferedCursor(SqlCursor):
    """A cursor that sends runs of the same write statement with one `executemany` (a bulk apply of thousands of
    events is mostly such runs). Order is kept: a different statement, a read, or `flush()` sends the run first."""

    def __init__(self, cursor: SqlCursor) -> None:
        self._inner = cursor
        self._statement: str | None = None
        self._rows: list[Params] = []

    def execute(self, statement: str, params: Params = ()) -> SqlCursor:
        """Queue a write (or run a read after sending what is queued)."""
        if statement == self._statement:  # another row of the queued run (never a read)
            self._rows.append(params)
            return self
        self.flush()
        if statement.lstrip()[:6].upper() == "SELECT":
            return self._inner.execute(statement, params)
        self._statement = statement
        self._rows.append(params)
        return self

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        """Queue many writes of one statement."""
        if statement != self._statement:
            self.flush()
            self._statement = statement
        self._rows.extend(rows)

    def flush(self) -> None:
        """Send the queued run. A run of inserts goes in key order (ids are random: in order, the index pages they
        land on are written once, not once per row); the order of inserts does not change what they write."""
        if self._statement is not None and self._rows:
            if self._statement.lstrip()[:6].upper() == "INSERT":
                self._rows.sort(key=lambda row: str(row[0]))
            self._inner.executemany(self._statement, self._rows)
        self._statement, self._rows = None, []

    def fetchall(self) -> list[tuple[Any, ...]]:
        """Rows of the last read."""
        return self._inner.fetchall()

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row of the last read."""
        return self._inner.fetchone()
