"""The store's schema, made once by a versioned migration rather than by every process that starts.

`migrate(settings)` brings the configured store (SQLite or PostgreSQL) to `SCHEMA_VERSION`: it runs, in order,
each step after the version the store records in `ledger_schema`, and records each one. `init` and `demo` run it,
and so does `mutual-ledger migrate` (after an upgrade); every other process only reads the recorded version and
refuses a store that is behind (`check_schema`). Concurrent `CREATE TABLE IF NOT EXISTS` on PostgreSQL is not
safe — two sessions racing on the catalog fail with `tuple concurrently updated` — so migrations take turns under
a session advisory lock, and nothing else creates tables in the store. Steps are idempotent (`IF NOT EXISTS`): a
migration interrupted half-way is run again whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.utils import Environment

from ledger.config import Settings
from ledger.errors import InputError
from ledger.log.checkpoints import CheckpointLog
from ledger.log.index import index_schema
from ledger.log.tree import TransparencyLog
from ledger.projections import ReadModels
from ledger.projections.sql import SqlStore
from ledger.rules import Rule

VERSION_TABLE = "ledger_schema"
MIGRATION_LOCK = "mutual-ledger:migrate"


class _Store:
    """The store's recorder as the read models and the log expect their source (it has a `recorder`)."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder

    def entries(self, start: int = 1, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """No entries are read while migrating."""
        return iter(())


def _events_and_receipts(store: _Store, sql: SqlStore) -> None:
    """The events table (with its notification-id index) and the command receipts, as the recorder defines them."""
    store.recorder.create_table()


def _read_models_and_log(store: _Store, sql: SqlStore) -> None:
    """The read models' tables, the transparency log's tiles and entry ids, and the published checkpoints."""
    ReadModels.open(store, sql, create=True)
    CheckpointLog(TransparencyLog(store, create=True), None, None, create=True)


def _vault(store: _Store, sql: SqlStore) -> None:
    """The vault of sealed values (`ledger.vault`): wrapped data keys and encrypted values. A store made before it
    also needs `projections rebuild`: the case cards and the roster's claims gained coarse columns (docs/privacy.md)."""
    store.recorder.create_vault_tables()


def _log_index(store: _Store, sql: SqlStore) -> None:
    """The log's index for members' bundles (`ledger.log.index`); the next integration fills it from the start."""
    sql.create(index_schema(sql))


def _roster_without_exact_age(store: _Store, sql: SqlStore) -> None:
    """The roster keeps no exact age: the age at joining is sealed from `member.joined` v2 on (docs/privacy.md), so
    the column that held it goes (from a store made before; a new one never had it)."""
    table = sql.table("roster_members")
    with sql.transaction() as cursor:
        if sql.postgres:
            cursor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS age_years")
        elif any(row[1] == "age_years" for row in cursor.execute(f"PRAGMA table_info({table})").fetchall()):
            cursor.execute(f"ALTER TABLE {table} DROP COLUMN age_years")


def _ages_and_charges(store: _Store, sql: SqlStore) -> None:
    """Schema-3 assessments (members past the top age left out, the annual cap per member), the case cards' firm
    and the postings' plans: every read model and the log's index are made again with their new columns and tables
    (dropped here, filled from the start by the next catch-up and integration)."""
    from ledger.projections import PROJECTIONS

    t = sql.table
    names = [name for projection in PROJECTIONS for name in projection.TABLES]
    names += ["log_stream_entries", "log_member_claims", "log_key_entries", "log_assessments", "log_memberships",
              "log_left_out", "roll_chunks", "roll_tiles"]
    with sql.transaction() as cursor:
        for name in names:
            cursor.execute(f"DROP TABLE IF EXISTS {t(name)}")
        if sql.has_table("projection_tracking"):
            cursor.execute(f"DELETE FROM {t('projection_tracking')}")
    sql.create(index_schema(sql))
    ReadModels.open(store, sql, create=True)


def _roster_sealed_ages_and_receivables(store: _Store, sql: SqlStore) -> None:
    """The roster says which members' age bound is a sealed join's band (`age_sealed`), so that the age rule opens
    those ages in bulk and reads a v1 join's as it is; the journal books what an account cannot cover as the members'
    receivables (`journal_accounts`, schema-4 assessments): both read models' tables are made again (dropped here,
    filled from the start by the next catch-up)."""
    from ledger.projections.balances import Balances
    from ledger.projections.journal import Journal

    t = sql.table
    with sql.transaction() as cursor:
        for projection in (Balances, Journal):
            for name in projection.TABLES:
                cursor.execute(f"DROP TABLE IF EXISTS {t(name)}")
            if sql.has_table("projection_tracking"):
                cursor.execute(f"DELETE FROM {t('projection_tracking')} WHERE name = ? OR name LIKE ?",
                               (projection.NAME, f"{projection.NAME} partition %"))
    ReadModels.open(store, sql, create=True)


def _statement_indexes(store: _Store, sql: SqlStore) -> None:
    """The roster's failed debits are found by member (a member's arrears, a statement, an account's position) with
    an index of their own, not by a scan of every period's debits: the read models' missing indexes are made."""
    ReadModels.open(store, sql, create=True)


def _roll_index(store: _Store, sql: SqlStore) -> None:
    """The period's locked set is read from an index in the roll's order that holds what its filter reads (plan,
    id, joined and ended): no sort of every member (which spilled to disk at 10M members) and no table row read.
    It replaces the index by plan and joining instant, which no query needs besides it."""
    with sql.transaction() as cursor:
        cursor.execute(f"DROP INDEX IF EXISTS {sql.table('roster_members_plan')}")
    ReadModels.open(store, sql, create=True)


STEPS: dict[int, tuple[Callable[[_Store, SqlStore], None], ...]] = {
    1: (_events_and_receipts, _read_models_and_log),
    2: (_vault,),
    3: (_log_index,),
    4: (_roster_without_exact_age,),
    5: (_ages_and_charges,),
    6: (_roster_sealed_ages_and_receivables,),
    7: (_statement_indexes,),
    8: (_roll_index,),
}
"""Each version's steps; a new version adds an entry (and never changes an old one)."""
SCHEMA_VERSION = max(STEPS)


def schema_version(sql: SqlStore) -> int:
    """The version the store records (0 for a store no migration ran on)."""
    if not sql.has_table(VERSION_TABLE):
        return 0
    with sql.transaction(commit=False) as cursor:
        row = cursor.execute(f"SELECT MAX(version) FROM {sql.table(VERSION_TABLE)}").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def check_schema(sql: SqlStore, field: str) -> None:
    """Refuse a store whose schema is not the current version, naming the command that migrates it."""
    found = schema_version(sql)
    if found != SCHEMA_VERSION:
        raise InputError(field, Rule.STORE_SCHEMA_MUST_BE_CURRENT,
                         f"the store's schema is version {found}, this program's {SCHEMA_VERSION}: run "
                         "`mutual-ledger migrate` (or `init` for a new ledger)" if found < SCHEMA_VERSION else
                         f"the store's schema is version {found}, newer than this program's {SCHEMA_VERSION}")


@contextmanager
def _turn(sql: SqlStore) -> Iterator[None]:
    """One migration at a time: a PostgreSQL session advisory lock held on a connection of its own; on SQLite each
    step's transaction holds the database's write lock, and every step is idempotent."""
    if not isinstance(sql.datastore, PostgresDatastore):
        yield
        return
    with sql.datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (MIGRATION_LOCK,))
        conn.commit()
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (MIGRATION_LOCK,))
            conn.commit()


def migrate(settings: Settings) -> dict[str, int]:
    """Bring the store to the current schema version (see the module docstring): {"from": v0, "to": v1}."""
    if settings.database_url is None:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**settings.eventsourcing_env(), "CREATE_TABLE": "n"}
    factory = InfrastructureFactory.construct(Environment("Ledger", env))
    try:
        recorder = factory.application_recorder()
        store = _Store(recorder)
        sql = SqlStore(recorder.datastore)  # type: ignore[attr-defined]
        with _turn(sql):
            before = schema_version(sql)
            for version in range(before + 1, SCHEMA_VERSION + 1):
                sql.create([f"CREATE TABLE IF NOT EXISTS {sql.table(VERSION_TABLE)} (version INTEGER PRIMARY KEY, "
                            "applied_at TEXT NOT NULL)"])
                for step in STEPS[version]:
                    step(store, sql)
                with sql.transaction() as cursor:
                    cursor.execute(f"INSERT INTO {sql.table(VERSION_TABLE)} (version, applied_at) SELECT ?, ? "
                                   f"WHERE NOT EXISTS (SELECT 1 FROM {sql.table(VERSION_TABLE)} WHERE version = ?)",
                                   (version, datetime.now(UTC).isoformat(), version))
        return {"from": before, "to": max(before, SCHEMA_VERSION)}
    finally:
        factory.close()
