"""Configuration, read from the environment in this one place (docs/design.md, "Configuration")."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from ledger.errors import ConfigError
from ledger.log.note import COSIGNATURE_V1, NoteError, Verifier
from ledger.rules import Rule

DEFAULT_DATA_DIR = "ledger-data"
DEFAULT_TOPIC = "mutual-ledger.events"
DEFAULT_PARTITIONS = 4
MAX_PARTITIONS = 1024
DEFAULT_ORIGIN = "mutual-ledger.local/log"
DEFAULT_CHECKPOINT_INTERVAL_SECONDS = 60.0
DEFAULT_RETENTION_DAYS = 1826
"""Five years after a member leaves, their sealed values may be erased for the end of retention (docs/privacy.md)."""


def default_workers() -> int:
    """One signing worker per core beyond the first (none on a single core)."""
    return max(0, (os.cpu_count() or 1) - 1)


def _signing_workers(text: str | None) -> int:
    """`LEDGER_SIGNING_WORKERS`: a whole number from 0 to 64; unset, one per core beyond the first."""
    if not text:
        return default_workers()
    if not (text.isascii() and text.isdigit()) or int(text) > 64:
        raise ConfigError("LEDGER_SIGNING_WORKERS", Rule.MUST_BE_A_WHOLE_NUMBER_IN_RANGE, f"0 to 64 ({text})")
    return int(text)


def _checkpoint_interval(text: str | None) -> float:
    """`LEDGER_CHECKPOINT_INTERVAL`: seconds, from 0.1 to 86,400; unset, a minute."""
    if not text:
        return DEFAULT_CHECKPOINT_INTERVAL_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not (text.isascii() and 0.1 <= seconds <= 86_400):
        raise ConfigError("LEDGER_CHECKPOINT_INTERVAL", Rule.MUST_BE_A_NUMBER_OF_SECONDS_IN_RANGE,
                          f"0.1 to 86400 ({text})")
    return seconds


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
            raise ConfigError("LEDGER_WITNESSES", Rule.WITNESS_ENTRY_MUST_BE_A_VERIFIER_KEY_AND_A_URL,
                              f"entry {number}: <verifier key>=<http(s) URL>")
        try:
            verifier = Verifier.parse(match["key"])
        except NoteError as error:
            raise ConfigError("LEDGER_WITNESSES", Rule.WITNESS_ENTRY_MUST_BE_A_VERIFIER_KEY_AND_A_URL,
                              f"entry {number}: {error}") from None
        if verifier.kind != COSIGNATURE_V1:
            raise ConfigError("LEDGER_WITNESSES", Rule.WITNESS_KEY_MUST_BE_A_COSIGNATURE_KEY,
                              f"entry {number}: type 0x04")
        if any(endpoint.verifier == verifier for endpoint in endpoints):
            raise ConfigError("LEDGER_WITNESSES", Rule.WITNESS_MUST_BE_LISTED_ONCE, f"entry {number}")
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
    checkpoint_interval_seconds: float = DEFAULT_CHECKPOINT_INTERVAL_SECONDS
    """The service publishes a checkpoint at least this often when the tree grew (`LEDGER_CHECKPOINT_INTERVAL`)."""
    store_dir: Path | None = None
    """Where the embedded default's database is, when it is not this party's own data directory (`--ledger DIR`:
    a custodian, regulator or member working on the operator's ledger with keys of its own)."""
    witnesses: tuple[WitnessEndpoint, ...] = ()
    """The witnesses every new checkpoint is pushed to (`LEDGER_WITNESSES`)."""
    retention_days: int = DEFAULT_RETENTION_DAYS
    """Days after leaving after which `member erase --reason retention_ended` may erase a member
    (`LEDGER_RETENTION_DAYS`)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, data_dir: Path | None = None) -> Settings:
        """Read `LEDGER_*` variables; `data_dir` (the CLI's `--data-dir`) overrides `LEDGER_DATA_DIR`."""
        env = os.environ if env is None else env
        passphrase = env.get("LEDGER_KEY_PASSPHRASE")
        database_url = env.get("LEDGER_DATABASE_URL") or None
        if database_url is not None and not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("LEDGER_DATABASE_URL", Rule.DATABASE_URL_MUST_BE_POSTGRESQL,
                              "a postgresql:// URL; unset, the embedded SQLite default is used")
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
            checkpoint_interval_seconds=_checkpoint_interval(env.get("LEDGER_CHECKPOINT_INTERVAL")),
            retention_days=retention_days(env.get("LEDGER_RETENTION_DAYS")),
        )

    @property
    def key_dir(self) -> Path:
        """The directory of private keys."""
        return self.data_dir / "keys"

    @property
    def sqlite_path(self) -> Path:
        """The embedded default's database file."""
        return (self.store_dir or self.data_dir) / "ledger.sqlite3"

    def on_ledger(self, location: str | None) -> Settings:
        """These settings working on the ledger at `location` (`--ledger`): a data directory, or a postgresql://
        URL; None keeps the configured store."""
        if location is None:
            return self
        if location.startswith(("postgresql://", "postgres://")):
            return replace(self, database_url=location, store_dir=None)
        return replace(self, database_url=None, store_dir=Path(location))

    def eventsourcing_env(self, read_only: bool = False) -> dict[str, str]:
        """The `eventsourcing` environment for this configuration; `read_only` opens the store as outsiders do
        (SQLite in read-only mode). No process creates tables when it opens the store: `ledger.migrations` does,
        once."""
        if self.database_url is None:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": (f"file:{self.sqlite_path.resolve()}?mode=ro" if read_only
                                  else str(self.sqlite_path)),
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "ledger.store:SQLiteLedgerRecorder",
                "CREATE_TABLE": "n",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": "ledger.store:PostgresLedgerRecorder",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            **postgres_env(self.database_url),
            "CREATE_TABLE": "n",
        }


def retention_days(text: str | None) -> int:
    """`LEDGER_RETENTION_DAYS`: a whole number of days from 0 to 36,500; unset, five years (1,826 days)."""
    if not text:
        return DEFAULT_RETENTION_DAYS
    if not (text.isascii() and text.isdigit() and int(text) <= 36_500):
        raise ConfigError("LEDGER_RETENTION_DAYS", Rule.MUST_BE_A_WHOLE_NUMBER_IN_RANGE, f"0 to 36500 ({text})")
    return int(text)


def partition_count(text: str) -> int:
    """`LEDGER_KAFKA_PARTITIONS`: a whole number from 1 to 1,024."""
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_PARTITIONS):
        raise ConfigError("LEDGER_KAFKA_PARTITIONS", Rule.MUST_BE_A_WHOLE_NUMBER_IN_RANGE,
                          f"1 to {MAX_PARTITIONS} ({text})")
    return int(text)


def postgres_env(url: str) -> dict[str, str]:
    """Translate a `postgresql://user:password@host:port/db?schema=s` URL into `eventsourcing` variables."""
    parsed = urlparse(url)
    if not parsed.hostname or not parsed.path.strip("/"):
        raise ConfigError("LEDGER_DATABASE_URL", Rule.DATABASE_URL_MUST_BE_POSTGRESQL, "needs a host and a database")
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
