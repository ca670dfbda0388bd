"""The views database: where Kafka-fed read models live (`LEDGER_VIEWS_URL`), separate from the event store."""

from __future__ import annotations

from pathlib import Path

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from ledger.config import Settings, postgres_env
from ledger.errors import ConfigError
from ledger.projections.sql import SqlStore
from ledger.rules import Rule
from ledger.store import without_jit


def views_store(settings: Settings) -> SqlStore:
    """The configured views database: `postgresql://…[?schema=]` or `sqlite:///path`; default `views.sqlite3` in the
    data directory."""
    url = settings.views_url
    if url is None:
        return SqlStore(SQLiteDatastore(str(settings.data_dir / "views.sqlite3")))
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        return SqlStore(SQLiteDatastore(url[len("sqlite:///"):]))
    if url.startswith(("postgresql://", "postgres://")):
        env = postgres_env(url)
        return SqlStore(without_jit(PostgresDatastore(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"], schema=env.get("POSTGRES_SCHEMA", ""),
            pool_size=2, max_overflow=2, pre_ping=True)))  # a connection the server dropped is replaced, not used
    raise ConfigError("LEDGER_VIEWS_URL", Rule.VIEWS_URL_MUST_BE_POSTGRESQL_OR_SQLITE, url)
