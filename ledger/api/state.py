"""What the HTTP service reads, wired once from the composition root's `Ledger`: the read models (the store's own,
or the views database of the distributed deployment), the keyring for signed requests, the published checkpoints
and the log's proofs, and the signed events the public follows (disclosures, reports).

Nothing here writes to the event store; the one exception, a report the regulator signed, goes through the
application (`ServiceState.publish_report`), which runs the writer's checks as for every command.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
import threading
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.aggregates.disclosure import Disclosure
from ledger.aggregates.keyring import Keyring, RegisteredKey
from ledger.aggregates.report import RegulatorReport
from ledger.bootstrap import Ledger
from ledger.httpsig import MAX_CLOCK_SKEW_SECONDS, ReplayGuard, SignatureRejectedError
from ledger.log.checkpoints import CheckpointLog, StoredCheckpoint
from ledger.log.tree import WIDTH, TransparencyLog
from ledger.projections import ReadModels
from ledger.rules import Rule

FOLLOWED = {"disclosure.published": Disclosure.Published.topic_of(),
            "report.published": RegulatorReport.Published.topic_of()}
"""The signed events the service lists and streams, by type, with the store's topic of each."""


class LockedReplayGuard(ReplayGuard):
    """The replay guard shared by the service's threads: a nonce is accepted once even when two requests carrying
    it arrive together."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def accept(self, key_id: str, nonce: str, expires: int, now: int) -> None:
        """`ReplayGuard.accept`, one request at a time."""
        with self.lock:
            super().accept(key_id, nonce, expires, now)


class SharedReplayGuard(ReplayGuard):
    """The replay guard of a service run as several worker processes (`serve --workers N`): the nonces seen, in one
    SQLite file that every worker writes, so a request replayed to another worker is refused as by the same one.
    Like the one-process guard's memory it does not outlive a restart by design (synchronous off): a nonce only
    matters for the minutes its signature is valid. Expired nonces are purged every `PURGE_EVERY` requests of a
    process; when `capacity` unexpired ones remain, new requests are refused until some expire."""

    PURGE_EVERY = 1000

    def __init__(self, path: Path, capacity: int = 100_000) -> None:
        super().__init__(capacity)
        self.path = path
        self.local = threading.local()
        self.lock = threading.Lock()
        self.accepted = 0
        self.full = False

    def _database(self) -> sqlite3.Connection:
        database: sqlite3.Connection | None = getattr(self.local, "database", None)
        if database is None:
            database = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            database.execute("PRAGMA journal_mode=WAL")
            database.execute("PRAGMA synchronous=OFF")
            database.execute("CREATE TABLE IF NOT EXISTS seen (key_id TEXT NOT NULL, nonce TEXT NOT NULL, "
                             "expires INTEGER NOT NULL, PRIMARY KEY (key_id, nonce)) WITHOUT ROWID")
            self.local.database = database
        return database

    def accept(self, key_id: str, nonce: str, expires: int, now: int) -> None:
        """Record a nonce for every worker; raise SignatureRejectedError when any worker saw it already, or when
        the guard is full."""
        database = self._database()
        with self.lock:
            self.accepted += 1
            purge = self.full or self.accepted % self.PURGE_EVERY == 1
        if purge:
            database.execute("DELETE FROM seen WHERE expires + ? < ?", (MAX_CLOCK_SKEW_SECONDS, now))
            self.full = database.execute("SELECT COUNT(*) FROM seen").fetchone()[0] >= self.capacity
        if self.full:
            seen = database.execute("SELECT 1 FROM seen WHERE key_id = ? AND nonce = ?", (key_id, nonce)).fetchone()
            raise SignatureRejectedError("nonce", Rule.SIGNATURE_NONCE_MUST_BE_NEW if seen
                                         else Rule.SIGNED_REQUESTS_MUST_FIT_THE_REPLAY_WINDOW)
        try:
            database.execute("INSERT INTO seen VALUES (?, ?, ?)", (key_id, nonce, expires))
        except sqlite3.IntegrityError:
            raise SignatureRejectedError("nonce", Rule.SIGNATURE_NONCE_MUST_BE_NEW) from None


@dataclass(frozen=True)
class FollowedEvent:
    """A followed event as stored: its notification id, its envelope (parsed) and its canonical entry."""

    notification_id: int
    envelope: dict[str, Any]
    entry: bytes


def log_index(log: TransparencyLog, notification_id: int) -> int | None:
    """The log index of the entry stored at a notification id, once integrated (the log's entry-id tiles)."""
    with log.sql.transaction(commit=False) as cursor:
        row = cursor.execute(f"SELECT idx, ids FROM {log.ids} WHERE first_id <= ? ORDER BY first_id DESC LIMIT 1",
                             (notification_id,)).fetchone()
    if row is None:
        return None
    ids = array("q")
    ids.frombytes(bytes(row[1]))
    position = bisect.bisect_left(ids, notification_id)
    if position == len(ids) or ids[position] != notification_id:
        return None
    return int(row[0]) * WIDTH + position


@dataclass
class FollowedEvents:
    """The followed events stored so far, read from the store by topic, incrementally (the first read scans the
    store once; each later one starts after the last notification id seen)."""

    ledger: Ledger
    events: dict[str, list[FollowedEvent]] = field(default_factory=lambda: {kind: [] for kind in FOLLOWED})
    position: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refresh(self) -> None:
        """Read what was stored since the last refresh."""
        with self.lock:
            recorder = self.ledger.app.recorder
            while True:
                found = recorder.select_notifications(self.position + 1, 10_000, topics=list(FOLLOWED.values()))
                for notification in found:
                    envelope = json.loads(notification.state)
                    self.events[envelope["type"]].append(
                        FollowedEvent(notification.id, envelope, notification.state))
                if len(found) < 10_000:
                    self.position = max(self.position, recorder.max_notification_id() or 0)
                    return
                self.position = found[-1].id

    def of(self, kind: str) -> list[FollowedEvent]:
        """Every followed event of a type, in log order (refreshed first)."""
        self.refresh()
        return list(self.events[kind])


class ServiceState:
    """The service's view of one ledger (see the module docstring); shared by every request."""

    def __init__(self, ledger: Ledger, models: ReadModels, replay: ReplayGuard | None = None) -> None:
        self.ledger = ledger
        self.models = models
        self.replay = replay or LockedReplayGuard()
        self.followed = FollowedEvents(ledger)
        self._indexes: dict[int, int] = {}
        self._registrations: dict[str, FollowedEvent] = {}

    @property
    def checkpoints(self) -> CheckpointLog:
        """The published checkpoints and the transparency log they sign."""
        return self.ledger.checkpoints

    @property
    def log(self) -> TransparencyLog:
        """The transparency log (its stored tiles)."""
        return self.ledger.log

    def now(self) -> datetime:
        """The service's clock (the ledger's), in UTC."""
        return self.ledger.clock.now().astimezone(UTC)

    def latest(self) -> StoredCheckpoint | None:
        """The latest published checkpoint: what the public may see of the log."""
        return self.checkpoints.latest()

    def published_size(self) -> int:
        """The size of the latest published checkpoint (0 before the first)."""
        latest = self.latest()
        return 0 if latest is None else latest.size

    def registered_key(self, key_id: str) -> RegisteredKey | None:
        """A key the keyring holds and that is valid now, or None."""
        registered = self.ledger.app.keyring().keys.get(key_id)
        return registered if registered is not None and registered.valid_at(self.now()) else None

    def public_key(self, key_id: str) -> bytes | None:
        """The raw public key of a key valid now (`ledger.httpsig.KeyLookup`)."""
        registered = self.registered_key(key_id)
        return None if registered is None else registered.public_key

    def index_of(self, notification_id: int) -> int | None:
        """The log index of a stored event once integrated (remembered: it never changes)."""
        known = self._indexes.get(notification_id)
        if known is None:
            known = log_index(self.log, notification_id)
            if known is not None:
                self._indexes[notification_id] = known
        return known

    def read_models_position(self) -> int:
        """The last notification id every read model has applied."""
        return int(min(self.models.status().values()))

    def key_registration(self, key_id: str) -> FollowedEvent | None:
        """The stored `key.registered` event of a key (what a verifier needs to check an event signed with it), or
        None; registrations are few, so a miss reads them all again."""
        known = self._registrations.get(key_id)
        if known is None:
            recorder = self.ledger.app.recorder
            for notification in recorder.select_notifications(1, 1_000_000, topics=[Keyring.Registered.topic_of()]):
                envelope = json.loads(notification.state)
                self._registrations[envelope["body"]["key_id"]] = FollowedEvent(notification.id, envelope,
                                                                                notification.state)
            known = self._registrations.get(key_id)
        return known
