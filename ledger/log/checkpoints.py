"""Signed checkpoints of the transparency log, stored with every cosignature they collect.

The operator's `log` key signs C2SP checkpoints (origin = `LEDGER_LOG_ORIGIN`) and nothing else: it is not in the
event keyring, and verifiers take its verifier key from the trust anchors. A checkpoint is published on
demand, and by `publish_if_due` once the last one is older than an interval or enough entries have arrived — a
bounded publication interval. The log never signs a checkpoint inconsistent with one it signed before: before
signing it recomputes, from storage, the root at the last signed size and refuses (`InconsistentLogError`) if that
root differs, or if the tree has shrunk. Reading needs no key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.envelope import format_at
from ledger.errors import InputError, VerificationError
from ledger.keys import SigningKey
from ledger.log.note import (
    COSIGNATURE_V1,
    Checkpoint,
    Signer,
    Verifier,
    add_signature,
    line_signer,
    sign_note,
    split_note,
    verify_cosignature,
)
from ledger.log.tree import TransparencyLog
from ledger.rules import Rule


class InconsistentLogError(VerificationError):
    """The stored tree no longer agrees with a checkpoint the log signed: nothing is signed."""


class NoLogKeyError(InputError):
    """Publishing a checkpoint needs the operator's log key, which this process does not hold."""


@dataclass(frozen=True)
class StoredCheckpoint:
    """A signed checkpoint note (with its cosignature lines) and when it was published."""

    size: int
    note: str
    published_at: str

    @property
    def checkpoint(self) -> Checkpoint:
        """The parsed checkpoint body."""
        return Checkpoint.parse(split_note(self.note)[0])


def log_signer(origin: str, key: SigningKey) -> Signer:
    """The checkpoint signer: the operator's log key under the log's origin."""
    return Signer(origin, key.private_key)


class CheckpointLog:
    """Publishes and stores checkpoints of one transparency log."""

    def __init__(self, log: TransparencyLog, signer: Signer | None, verifier: Verifier | None = None,
                 create: bool = True) -> None:
        self.log = log
        self.signer = signer
        """The log key under the log's origin; None for a reader, which cannot publish."""
        self._verifier = verifier or (signer.verifier() if signer else None)
        self.table = log.sql.table("log_checkpoints")
        if create:
            log.sql.create([f"CREATE TABLE IF NOT EXISTS {self.table} (size BIGINT PRIMARY KEY, note TEXT NOT NULL, "
                            "published_at TEXT NOT NULL)"])

    @property
    def verifier(self) -> Verifier:
        """The log's verifier key (published in the trust anchors for members, custodians and regulators)."""
        if self._verifier is None:
            raise NoLogKeyError("log_key", Rule.LOG_VERIFIER_KEY_MUST_BE_KNOWN,
                                "neither the log key nor trust anchors with the log's verifier key are here")
        return self._verifier

    def latest(self) -> StoredCheckpoint | None:
        """The largest checkpoint published."""
        with self.log.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT size, note, published_at FROM {self.table} ORDER BY size DESC LIMIT 1"
                                 ).fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), str(row[1]), str(row[2]))

    def get(self, size: int) -> StoredCheckpoint | None:
        """The checkpoint published at `size`."""
        with self.log.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT size, note, published_at FROM {self.table} WHERE size = ?", (size,)
                                 ).fetchone()
        return None if row is None else StoredCheckpoint(int(row[0]), str(row[1]), str(row[2]))

    def all(self) -> list[StoredCheckpoint]:
        """Every checkpoint, smallest first."""
        with self.log.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT size, note, published_at FROM {self.table} ORDER BY size").fetchall()
        return [StoredCheckpoint(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def publish(self, now: datetime) -> StoredCheckpoint:
        """Integrate, then sign a checkpoint of the current size (or return the last one if nothing is new)."""
        self.log.integrate()
        size = self.log.size()
        last = self.latest()
        if last is not None:
            previous = last.checkpoint
            if size < previous.size:
                raise InconsistentLogError(f"the tree has {size} entries but checkpoint {previous.size} was signed")
            if self.log.root(previous.size) != previous.root:
                raise InconsistentLogError(f"the stored tree's root at size {previous.size} differs from the "
                                           "signed checkpoint: refusing to sign a fork")
            if size == previous.size:
                return last
        if self.signer is None:
            raise NoLogKeyError("key", Rule.KEY_MUST_EXIST, "publishing a checkpoint needs the operator's log key")
        checkpoint = Checkpoint(self.signer.name, size, self.log.root(size))
        note = sign_note(checkpoint.text(), self.signer)
        stored = StoredCheckpoint(size, note, format_at(now))
        with self.log.sql.transaction() as cursor:
            cursor.execute(f"INSERT INTO {self.table} VALUES (?, ?, ?)", (size, note, stored.published_at))
        return stored

    def publish_if_due(self, now: datetime, max_age_seconds: float, max_entries: int) -> StoredCheckpoint | None:
        """Publish when the last checkpoint is older than `max_age_seconds` or `max_entries` entries behind."""
        self.log.integrate()
        last = self.latest()
        if last is None:
            return self.publish(now)
        from ledger.envelope import parse_at

        behind = self.log.size() - last.size
        age = (now - parse_at(last.published_at)).total_seconds()
        if behind > 0 and (age >= max_age_seconds or behind >= max_entries):
            return self.publish(now)
        return None

    def add_cosignature(self, size: int, cosigned_note: str, witness: Verifier) -> StoredCheckpoint:
        """Store a witness's cosignature on a published checkpoint, after checking it. A witness is added once: when
        the stored note already carries a line by that witness's key, it is returned unchanged."""
        cosigner = Verifier(witness.name, witness.public_key, COSIGNATURE_V1)
        verify_cosignature(cosigned_note, cosigner)
        text, lines = split_note(cosigned_note)
        line = next(line for line in lines if line_signer(line) == (cosigner.name, cosigner.hash))
        with self.log.sql.transaction() as cursor:
            lock = " FOR UPDATE" if self.log.sql.postgres else ""  # SQLite's write transaction already serializes
            row = cursor.execute(f"SELECT note, published_at FROM {self.table} WHERE size = ?{lock}", (size,)
                                 ).fetchone()
            if row is None:
                raise ValueError(f"size: no checkpoint was published at {size}")
            stored = StoredCheckpoint(size, str(row[0]), str(row[1]))
            stored_text, stored_lines = split_note(stored.note)
            if text != stored_text:
                raise ValueError("note: the cosigned checkpoint is not the published one")
            if any(line_signer(other) == (cosigner.name, cosigner.hash) for other in stored_lines):
                return stored
            stored = StoredCheckpoint(size, add_signature(stored.note, line), stored.published_at)
            cursor.execute(f"UPDATE {self.table} SET note = ? WHERE size = ?", (stored.note, size))
        return stored


def cosigners(note: str, log_key: Verifier) -> tuple[str, ...]:
    """The distinct witnesses whose cosignature lines a stored checkpoint carries (`name+key hash`, sorted): every
    signer but the log itself, each key counted once however many lines it has."""
    signers = {line_signer(line) for line in split_note(note)[1]}
    signers.discard((log_key.name, log_key.hash))
    return tuple(sorted(f"{name}+{key_hash.hex()}" for name, key_hash in signers))
