"""Configuration, read from the environment in this one place (DESIGN.md, "Running it")."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from ledger.log.note import COSIGNATURE_V1, NoteError, Verifier

DEFAULT_DATA_DIR = "ledger-data"
DEFAULT_TOPIC = "mutual-ledger.events"
DEFAULT_PARTITIONS = 4
MAX_PARTITIONS = 1024
DEFAULT_ORIGIN = "mutual-ledger.local/log"


class ConfigError(ValueError):
    """A configuration value is malformed; the message names the variable."""


def default_workers() -> int:
    """One signing worker per core beyond the first (none on a single core)."""
    return max(0, (os.cpu_count() or 1) - 1)


def _signing_workers(text: str | None) -> int:
    """`LEDGER_SIGNING_WORKERS`: a whole number from 0 to 64; unset, one per core beyond the first."""
    if not text:
        return default_workers()
    if not (text.isascii() and text.isdigit()) or int(text) > 64:
        raise ConfigError("LEDGER_SIGNING_WORKERS: must be a whole number from 0 to 64")
    return int(text)


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log pushes its checkpoints to: its cosignature verifier key and its submission URL prefix
    (C2SP tlog-witness: `<url>/add-checkpoint`)."""

    verifier: Verifier
    url: str


_WITNESS_ENTRY = re.compile(r"(?P<key>[^\s+]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44})=(?P<url>https?://[^\s,]+)")
"""`<verifier key>=<url>`: a cosignature key is `name+8 hex+44 base64` (33 bytes, so no padding), which makes the
first `=` after it the separator even when the name holds one."""


def witness_endpoints(text: str | None) -> tuple[WitnessEndpoint, ...]:
    """`LEDGER_WITNESSES`: comma-separated `<verifier key>=<url>` entries, each a witness's cosignature verifier key
    (type 0x04) and the URL prefix of its tlog-witness service; every key at most once."""
    endpoints: list[WitnessEndpoint] = []
    for number, item in enumerate((text or "").split(","), start=1):
        if not item.strip():
            continue
        match = _WITNESS_ENTRY.fullmatch(item.strip())
        if match is None:
            raise ConfigError(f"LEDGER_WITNESSES: entry {number} must be <verifier key>=<http(s) URL>")
        try:
            verifier = Verifier.parse(match["key"])
        except NoteError as error:
            raise ConfigError(f"LEDGER_WITNESSES: entry {number}: {error}") from None
        if verifier.kind != COSIGNATURE_V1:
            raise ConfigError(f"LEDGER_WITNESSES: entry {number} must be a cosignature key (type 0x04)")
        if any(endpoint.verifier == verifier for endpoint in endpoints):
            raise ConfigError(f"LEDGER_WITNESSES: entry {number} names a witness already listed")
        endpoints.append(WitnessEndpoint(verifier, match["url"].rstrip("/")))
    return tuple(endpoints)


@dataclass(frozen=True)
class Settings:
    """Where the ledger keeps its data and which services it talks to."""

    data_dir: Path
    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    kafka_topic: str = DEFAULT_TOPIC
    kafka_partitions: int = DEFAULT_PARTITIONS
    """How many partitions the topic has: the relay creates it so and refuses one with another count."""
    views_url: str | None = None
    key_passphrase: bytes | None = None
    log_origin: str = DEFAULT_ORIGIN
    signing_workers: int = field(default_factory=default_workers)
    """Worker processes that sign the events of large batches (`ledger.signing`); 0 signs in this process."""
    witnesses: tuple[WitnessEndpoint, ...] = ()
    """The witnesses every new checkpoint is pushed to (`LEDGER_WITNESSES`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> Settings:
        """Read `LEDGER_*` variables; `data_dir` (the CLI's `--data-dir`) overrides `LEDGER_DATA_DIR`."""
        env = os.environ if env is None else env
        passphrase = env.get("LEDGER_KEY_PASSPHRASE")
        database_url = env.get("LEDGER_DATABASE_URL") or None
        if database_url is not None and not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("LEDGER_DATABASE_URL: must be a postgresql:// URL (SQLite is the default)")
        return cls(
            data_dir=data_dir or Path(env.get("LEDGER_DATA_DIR") or DEFAULT_DATA_DIR),
            database_url=database_url,
            kafka_bootstrap_servers=env.get("LEDGER_KAFKA_BOOTSTRAP_SERVERS") or None,
            kafka_topic=env.get("LEDGER_KAFKA_TOPIC") or DEFAULT_TOPIC,
            kafka_partitions=partition_count(env.get("LEDGER_KAFKA_PARTITIONS") or str(DEFAULT_PARTITIONS)),
            views_url=env.get("LEDGER_VIEWS_URL") or None,
            key_passphrase=passphrase.encode("utf-8") if passphrase else None,
            log_origin=env.get("LEDGER_LOG_ORIGIN") or DEFAULT_ORIGIN,
            signing_workers=_signing_workers(env.get("LEDGER_SIGNING_WORKERS")),
            witnesses=witness_endpoints(env.get("LEDGER_WITNESSES")),
        )

    @property
    def key_dir(self) -> Path:
        """The directory of private keys."""
        return self.data_dir / "keys"

    @property
    def sqlite_path(self) -> Path:
        """The embedded default's database file."""
        return self.data_dir / "ledger.sqlite3"

    def eventsourcing_env(self) -> dict[str, str]:
        """The `eventsourcing` environment for this configuration."""
        if self.database_url is None:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "ledger.store:SQLiteLedgerRecorder",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "ledger.store:PostgresLedgerRecorder",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            **postgres_env(self.database_url),
        }


def partition_count(text: str) -> int:
    """`LEDGER_KAFKA_PARTITIONS`: a whole number from 1 to 1,024."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PARTITIONS):
        raise ConfigError(f"LEDGER_KAFKA_PARTITIONS: must be a whole number from 1 to {MAX_PARTITIONS} ({text})")
    return int(text)


def postgres_env(url: str) -> dict[str, str]:
    """Translate a `postgresql://user:password@host:port/db?schema=s` URL into `eventsourcing` variables."""
    parsed = urlparse(url)
    if not parsed.hostname or not parsed.path.strip("/"):
        raise ConfigError("LEDGER_DATABASE_URL: needs a host and a database name")
    env = {
        "POSTGRES_HOST": parsed.hostname,
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_DBNAME": unquote(parsed.path.strip("/")),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
    }
    schema = parse_qs(parsed.query).get("schema")
    if schema:
        env["POSTGRES_SCHEMA"] = schema[0]
    return env
