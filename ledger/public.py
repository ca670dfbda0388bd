"""What an outsider reads: a ledger's store opened read-only, with no key — its entries in global order and the
checkpoints the operator published — and the outsider's own material beside it (trust anchors, the checkpoints it
accepted as a monitor or cosigned as a witness).

Outsiders (members, custodians, regulators, witnesses) run `audit …`, `witness …` and `log proof …` with this:
nothing here signs, integrates or writes, and nothing needs a private key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.utils import Environment

from ledger.config import Settings
from ledger.errors import InputError
from ledger.log.checkpoints import CheckpointLog, StoredCheckpoint
from ledger.log.note import Verifier
from ledger.log.tree import TransparencyLog
from ledger.log.witness import STATE_FILE
from ledger.projections.sql import SqlStore
from ledger.rules import Rule


class PublicStore:
    """A ledger's store, read only (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        if settings.database_url is None and not settings.sqlite_path.exists():
            raise InputError("ledger", Rule.LEDGER_MUST_BE_INITIALIZED,
                             f"{settings.data_dir} holds no ledger (give --ledger the operator's data directory "
                             "or set LEDGER_DATABASE_URL)")
        self.settings = settings
        factory = InfrastructureFactory.construct(Environment("Ledger", settings.eventsourcing_env(read_only=True)))
        self.factory = factory
        self.recorder: ApplicationRecorder = factory.application_recorder()
        """The store's recorder (read only); it has a `datastore`, as the log and the read models expect."""

    def entries(self, start: int = 1, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """Every stored entry in global order, as (notification id, canonical envelope bytes)."""
        position = start
        while True:
            notifications = self.recorder.select_notifications(position, page)
            if not notifications:
                return
            for notification in notifications:
                yield notification.id, notification.state
            position = notifications[-1].id + 1

    def checkpoints(self, verifier: Verifier | None) -> CheckpointLog:
        """The operator's published checkpoints and its log's stored tiles, to read (no key: it cannot publish)."""
        return CheckpointLog(TransparencyLog(self, create=False, index=True), None, verifier, create=False)

    def published_checkpoints(self) -> list[StoredCheckpoint]:
        """Every checkpoint the operator published, smallest first (none when it never published one)."""
        if not SqlStore(self.recorder.datastore).has_table("log_checkpoints"):  # type: ignore[attr-defined]
            return []
        return self.checkpoints(None).all()

    def close(self) -> None:
        """Close the connection."""
        self.factory.close()


def accepted_checkpoints(directory: Path) -> list[str]:
    """The checkpoint notes an outsider holds in its own directory: every one its monitor accepted
    (`monitor-state.json`) and the latest its witness cosigned for each log (`witness.sqlite3`)."""
    notes: list[str] = []
    monitor = directory / "monitor-state.json"
    if monitor.exists():
        try:
            state = json.loads(monitor.read_text())
            notes += [str(note) for note in state.get("seen", {}).values()]
        except (OSError, ValueError, AttributeError, TypeError):
            raise InputError("state", Rule.STATE_FILE_MUST_BE_VALID, str(monitor)) from None
    cosigned = directory / STATE_FILE
    if cosigned.exists():
        try:
            with closing(sqlite3.connect(f"file:{cosigned.resolve()}?mode=ro", uri=True)) as db:
                notes += [str(row[0]) for row in db.execute("SELECT note FROM latest ORDER BY origin")]
        except sqlite3.Error as error:
            raise InputError("state", Rule.STATE_FILE_MUST_BE_VALID, f"{cosigned}: {error}") from None
    return notes
