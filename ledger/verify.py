"""Verify a log from its entries and public keys alone: the procedure behind `mutual-ledger verify`.

Over the entries in global order (the live store, or an `export` JSONL file), for each entry i (0-based):

1. **Envelope** — the entry is a JSON object with exactly the contract's keys and types, and its bytes are the
   RFC 8785 canonical form of that object (ledger.envelope.read_entry).
2. **Schema** — the body validates against the committed model for its (type, schema).
3. **Chain** — seq is 1 for a new stream and one more than the stream's last seq otherwise; `prev` is null for
   seq 1 and otherwise the SHA-256 event hash of the stream's previous event.
4. **Keyring** — entry 0 is the root key registering itself (signed by the key it registers; equal to the trust
   anchor's root key when anchors are given). Keys are registered and revoked only under the root key; with trust
   anchors, every custodian and regulator key the log registers must be an anchored key (the operator cannot vouch
   for the keys that check it).
5. **Key validity** — the signing key is registered for the actor's role and valid at the event's `at`
   (registered at or before it, not revoked at it).
6. **Signature** — Ed25519 over `mutual-ledger/event/v1\\n` + event hash verifies under that key.
7. **Role rules** — the signer's role suits the event (ledger.roles, the same function the application uses).

Checks 1 and 2 need nothing but the entry itself (`examine`), so they can run anywhere, in any order — `audit verify`
runs them in worker processes, with the signatures; checks 3–7 follow the global order (`Verifier.follow`).

A failure names the entry (global index, stream, seq), the check, and the expected and found values. Exit status
of the CLI is 0 only when every entry passes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ledger.anchors import TrustAnchors
from ledger.envelope import Actor, EnvelopeError, event_hash_of, parse_at, read_entry
from ledger.keys import event_signature_is_valid, key_id, public_key_from_base64
from ledger.roles import KEYRING_TYPES, anchored_key_error, required_role_error
from schemas.events import EVENT_BODIES

MAX_FAILURES = 50


@dataclass(frozen=True)
class Failure:
    """One failed check, pinpointed."""

    index: int
    stream: str | None
    seq: int | None
    check: str
    expected: str
    found: str

    @classmethod
    def of(cls, index: int, data: dict[str, Any] | None, check: str, expected: object, found: object) -> Failure:
        """A failure at entry `index`; `data` is its decoded envelope when the entry is one (for stream and seq)."""
        return cls(index, data["stream"] if data else None, data["seq"] if data else None, check, str(expected),
                   str(found))

    def __str__(self) -> str:
        where = f"entry {self.index}" + (f" (stream {self.stream} seq {self.seq})" if self.stream else "")
        return f"{where}: {self.check}: expected {self.expected}, found {self.found}"


@dataclass
class Report:
    """The outcome of a verification."""

    entries: int = 0
    failures: list[Failure] = field(default_factory=list)
    needs_sealed_values: dict[str, int] = field(default_factory=dict)
    """Checks that needed sealed values the verifier was not given, with how many events each (docs/privacy.md)."""

    @property
    def ok(self) -> bool:
        """Whether every entry passed every check."""
        return not self.failures and self.entries > 0

    def to_json(self) -> dict[str, Any]:
        """A machine-readable report."""
        return {"ok": self.ok, "entries": self.entries, "failures": [asdict(f) for f in self.failures],
                "needs_sealed_values": dict(sorted(self.needs_sealed_values.items()))}


@dataclass
class _Key:
    role: str
    public_base64: str
    valid_from: datetime
    member: str | None
    revoked_at: datetime | None = None
    loaded: bytes | None = None
    """The raw public key, decoded once."""

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.revoked_at is None or moment < self.revoked_at)

    def public(self) -> bytes:
        """The raw Ed25519 public key, decoded at the first use."""
        if self.loaded is None:
            self.loaded = public_key_from_base64(self.public_base64)
        return self.loaded


Problem = tuple[str, str, str]
"""(check, expected, found) of a failed check of checks 1–2, before the entry's place in the log is known."""



@dataclass(frozen=True, slots=True)
class Examined:
    """What checks 1 and 2 found in one entry: its decoded envelope (None when it is not one), its event hash, and
    the checks that failed."""

    data: dict[str, Any] | None
    event_hash: bytes | None
    problems: list[Problem]


def examine(entry: bytes) -> Examined:
    """Checks 1 and 2 for one entry: strict parse, canonical form and schema need nothing but the entry's bytes."""
    try:
        data, unsigned, body = read_entry(entry)
    except EnvelopeError as error:
        return Examined(None, None, [envelope_problem(entry, error)])
    problem = schema_problem(data["type"], data["schema"], body)
    return Examined(data, event_hash_of(unsigned), [] if problem is None else [problem])


def envelope_problem(entry: bytes, error: EnvelopeError) -> Problem:
    """Check 1's failure for an entry that is not an envelope in canonical form."""
    return (f"1 envelope ({error.field})", error.rule, entry[:80].decode("utf-8", "replace"))


def schema_problem(kind: str, schema: int, body: bytes) -> Problem | None:
    """Check 2 for the body's bytes of an event of type `kind` at `schema`: what fails, or None."""
    model = EVENT_BODIES.get((kind, schema))
    if model is None:
        return ("2 schema", "a known type@schema", f"{kind}@{schema}")
    try:
        model.model_validate_json(body)  # the body's own canonical bytes, in JSON mode
    except ValidationError as error:
        first = error.errors()[0]
        return ("2 schema", ".".join(map(str, first["loc"])) + " valid", first["msg"])
    return None


@dataclass(frozen=True)
class CheckedSignatures:
    """Check 6 done ahead of the global order (in a worker process), before the keyring at each entry is known:
    each signature was checked under the candidate public key of its key id (`candidates`, key id → base64 public
    key), and `failing` holds the indexes whose signature did not verify under it. An outcome counts only when the
    keyring, at that entry, gives that very key; otherwise the signature is checked again with the key it gives."""

    candidates: dict[str, str]
    failing: frozenset[int]

    def outcome(self, index: int, key: str, public_base64: str) -> bool | None:
        """Whether the signature at `index` verified under `public_base64`; None when it was not checked under it."""
        if self.candidates.get(key) != public_base64:
            return None
        return index not in self.failing


class StreamHeads:
    """Stream → (last seq, last event hash), for checks 3: at most `limit` streams in memory, and — once given a
    directory (`spill_to`) — the rest in an on-disk SQLite table, so that a verifier's memory does not grow with
    the members. A caller that knows which streams come next asks for them together (`prefetch`: one query for a
    chunk of entries rather than one per entry)."""

    def __init__(self, limit: int = 400_000) -> None:
        self.limit = limit
        self._memory: dict[str, tuple[int, bytes]] = {}
        self._disk: sqlite3.Connection | None = None
        self._absent: set[str] = set()
        """Streams the last prefetch found nowhere (new streams: no query for them)."""
        self._spilled = False
        """Whether any head was written to disk yet (until then a prefetch has nothing to read)."""

    def spill_to(self, directory: Path) -> None:
        """Keep what exceeds the limit in `directory` (a scratch directory the caller removes)."""
        self._disk = sqlite3.connect(directory / "stream-heads.sqlite3", isolation_level=None)
        self._disk.execute("PRAGMA journal_mode = OFF")
        self._disk.execute("PRAGMA synchronous = OFF")
        self._disk.execute("CREATE TABLE heads (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash BLOB NOT NULL) "
                           "WITHOUT ROWID")

    def get(self, stream: str) -> tuple[int, bytes] | None:
        """The stream's head, or None for a stream not seen yet."""
        found = self._memory.get(stream)
        if found is not None or self._disk is None or not self._spilled or stream in self._absent:
            return found
        row = self._disk.execute("SELECT seq, hash FROM heads WHERE stream = ?", (stream,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def __setitem__(self, stream: str, head: tuple[int, bytes]) -> None:
        self._memory[stream] = head
        if self._disk is not None and len(self._memory) > self.limit:
            self._disk.execute("BEGIN")
            self._disk.executemany("INSERT OR REPLACE INTO heads VALUES (?, ?, ?)",
                                   ((k, v[0], v[1]) for k, v in self._memory.items()))
            self._disk.execute("COMMIT")
            self._memory.clear()
            self._spilled = True

    def prefetch(self, streams: Iterable[str]) -> None:
        """Bring these streams' heads into memory with one query per 500 (the next entries' streams)."""
        if self._disk is None or not self._spilled:
            return
        missing = [stream for stream in set(streams) if stream not in self._memory]
        self._absent = set(missing)
        for offset in range(0, len(missing), 500):
            chunk = missing[offset:offset + 500]
            for stream, seq, head in self._disk.execute(
                    f"SELECT stream, seq, hash FROM heads WHERE stream IN ({','.join('?' * len(chunk))})", chunk):
                self._memory[stream] = (int(seq), bytes(head))
                self._absent.discard(stream)

    def close(self) -> None:
        """Close the on-disk part."""
        if self._disk is not None:
            self._disk.close()
            self._disk = None


class Verifier:
    """Runs the numbered procedure over entries in order (see module docstring)."""

    def __init__(self, anchors: TrustAnchors | None = None) -> None:
        self.anchors = anchors
        self.report = Report()
        self.keys: dict[str, _Key] = {}
        self.root_key_id: str | None = None
        self.streams = StreamHeads()
        """Stream → its last seq and event hash (raw bytes: half the memory of hex, for millions of streams)."""

    def fail(self, index: int, data: dict[str, Any] | None, check: str, expected: object, found: object) -> None:
        """Record a failure (`data`: the decoded envelope, when the entry is one)."""
        if len(self.report.failures) < MAX_FAILURES:
            self.report.failures.append(Failure.of(index, data, check, expected, found))

    def run(self, entries: Iterable[bytes]) -> Report:
        """Verify every entry."""
        for index, entry in enumerate(entries):
            self.report.entries += 1
            self.entry(index, entry)
        if self.report.entries == 0:
            self.fail(0, None, "log", "at least one entry", "an empty log")
        return self.report

    def entry(self, index: int, entry: bytes) -> dict[str, Any] | None:
        """Checks 1–7 for one entry; its decoded envelope, or None when it is not one."""
        examined = examine(entry)
        for check, expected, found in examined.problems:
            self.fail(index, examined.data, check, expected, found)
        if examined.data is None or examined.event_hash is None:
            return None
        self.follow(index, examined.data, examined.event_hash)
        return examined.data

    def follow(self, index: int, data: dict[str, Any], event_hash: bytes,
               signatures: CheckedSignatures | None = None) -> None:
        """Checks 3–7 for the entry at `index`, in global order: `data` is its decoded envelope (it passed check 1)
        and `signatures` the outcomes of check 6 when it was done ahead."""
        stream, seq, prev = data["stream"], data["seq"], data["prev"]
        last = self.streams.get(stream)
        expected_seq, expected_prev = (1, None) if last is None else (last[0] + 1, last[1].hex())
        if seq != expected_seq:
            self.fail(index, data, "3 chain (seq)", expected_seq, seq)
        if prev != expected_prev:
            self.fail(index, data, "3 chain (prev)", expected_prev, prev)
        self.streams[stream] = (seq, event_hash)
        at = parse_at(data["at"])
        if index == 0:
            self.first_entry(data, at)
        self.signature(index, data, at, event_hash, signatures)
        if index > 0 and data["type"] in KEYRING_TYPES:
            self.keyring_change(index, data, at)

    def first_entry(self, data: dict[str, Any], at: datetime) -> None:
        """Entry 0: the root key registers itself."""
        body, signer = data["body"], data["actor"]["key"]
        if data["type"] != "key.registered" or signer != body.get("key_id"):
            self.fail(0, data, "4 keyring (root)", "the root key registering itself",
                      f"{data['type']} signed by {signer}")
            return
        if self.anchors is not None and body.get("key_id") != self.anchors.root_key_id:
            self.fail(0, data, "4 keyring (trust anchor)", self.anchors.root_key_id, body.get("key_id"))
            return
        if _key_id_of(body.get("public_key")) != body.get("key_id"):
            self.fail(0, data, "4 keyring (key id)", "key id = SHA-256(public key)[:16]", body.get("key_id"))
            return
        self.root_key_id = str(body["key_id"])
        self.keys[self.root_key_id] = _Key("operator", str(body["public_key"]), at, None)

    def keyring_change(self, index: int, data: dict[str, Any], at: datetime) -> None:
        """Apply a later key registration or revocation (signed by the root key)."""
        if data["actor"]["key"] != self.root_key_id:
            self.fail(index, data, "4 keyring (signer)", f"the root key {self.root_key_id}", data["actor"]["key"])
            return
        body = data["body"]
        if data["type"] == "key.registered":
            kid, public = str(body.get("key_id")), str(body.get("public_key"))
            if _key_id_of(public) != kid:
                self.fail(index, data, "4 keyring (key id)", "key id = SHA-256(public key)[:16]", kid)
                return
            valid_from = _instant_or_none(body.get("valid_from"))
            if valid_from is None:
                self.fail(index, data, "4 keyring (valid_from)", "an RFC 3339 instant", body.get("valid_from"))
                return
            role = str(body.get("role"))
            if self.anchors is not None and anchored_key_error(data["type"], body, self.anchors) is not None:
                self.fail(index, data, "4 keyring (trust anchor)", f"an anchored {role} key", kid)
            self.keys[kid] = _Key(role, public, valid_from, body.get("member"))
        else:
            key = self.keys.get(str(body.get("key_id")))
            revoked_at = _instant_or_none(body.get("revoked_at"))
            if revoked_at is None:
                self.fail(index, data, "4 keyring (revoked_at)", "an RFC 3339 instant", body.get("revoked_at"))
            elif key is not None:
                key.revoked_at = revoked_at

    def signature(self, index: int, data: dict[str, Any], at: datetime, event_hash: bytes,
                  signatures: CheckedSignatures | None) -> None:
        """Checks 5–7."""
        actor = data["actor"]
        key = self.keys.get(actor["key"])
        if key is None:
            self.fail(index, data, "5 key validity", "a registered key", actor["key"])
            return
        if key.role != actor["role"]:
            self.fail(index, data, "5 key validity (role)", key.role, actor["role"])
        if not key.valid_at(at):
            self.fail(index, data, "5 key validity (time)", f"valid from {key.valid_from}"
                      + (f" until {key.revoked_at}" if key.revoked_at else ""), data["at"])
        valid = None if signatures is None else signatures.outcome(index, actor["key"], key.public_base64)
        if valid is None:
            valid = event_signature_is_valid(key.public(), event_hash, data["sig"])
        if not valid:
            self.fail(index, data, "6 signature", f"Ed25519 by {actor['key']}", "a signature that fails")
        signer = Actor(actor["role"], actor["key"], actor.get("on_behalf_of"))
        error = required_role_error(data["type"], signer, data["stream"], data["body"], key.member,
                                    self.root_key_id)
        if error is not None:
            self.fail(index, data, "7 role rules", error, f"{actor['role']} key {actor['key']}")


def _key_id_of(public_key: object) -> str | None:
    """The key id of a base64 raw public key as a key event carries it, or None when it is not one (a tampered
    body is reported, never a crash)."""
    try:
        return key_id(public_key_from_base64(str(public_key)))
    except ValueError:
        return None


def _instant_or_none(text: object) -> datetime | None:
    """An instant of a key event's body, or None when it is not one."""
    try:
        return parse_at(str(text))
    except EnvelopeError:
        return None


def verify_entries(entries: Iterable[bytes], anchors: TrustAnchors | None = None) -> Report:
    """Verify entries in global order."""
    return Verifier(anchors).run(entries)


def read_export(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    """Entries of an `export` file, one per line (read a block at a time and cut at the newlines: a line at a time
    costs more than a verifier's cheaper checks)."""
    with path.open("rb") as file:
        rest = b""
        while data := file.read(block):
            lines = (rest + data).split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest

