"""Verify a log from its entries and public keys alone: the procedure behind `mutual-ledger verify`.

Over the entries in global order (the live store, or an `export` JSONL file), for each entry i (0-based):

1. **Envelope** — the entry is a JSON object with exactly the contract's keys and types, and its bytes are the
   RFC 8785 canonical form of that object (ledger.envelope.parse_entry).
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

A failure names the entry (global index, stream, seq), the check, and the expected and found values. Exit status
of the CLI is 0 only when every entry passes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ledger.envelope import Envelope, EnvelopeError, parse_at, parse_entry
from ledger.keys import event_signature_is_valid, key_id, public_key_from_base64
from ledger.roles import required_role_error
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

    def __str__(self) -> str:
        where = f"entry {self.index}" + (f" (stream {self.stream} seq {self.seq})" if self.stream else "")
        return f"{where}: {self.check}: expected {self.expected}, found {self.found}"


@dataclass
class Report:
    """The outcome of a verification."""

    entries: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every entry passed every check."""
        return not self.failures and self.entries > 0

    def to_json(self) -> dict[str, Any]:
        """A machine-readable report."""
        return {"ok": self.ok, "entries": self.entries, "failures": [asdict(f) for f in self.failures]}


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


@dataclass
class TrustAnchors:
    """Public keys given to the verifier out of band (`trust-anchors.json` written by `init`)."""

    root_key_id: str
    root_public_key: str
    witness_keys: dict[str, str]
    """key id → role, for custodian and regulator keys."""

    @classmethod
    def load(cls, path: Path) -> TrustAnchors:
        """Read a trust-anchors file."""
        data = json.loads(path.read_text())
        root = data["operator-root"]
        witnesses = {v["key_id"]: v["role"] for k, v in data.items() if k != "operator-root"}
        return cls(root["key_id"], root["public_key"], witnesses)


class Verifier:
    """Runs the numbered procedure over entries in order (see module docstring)."""

    def __init__(self, anchors: TrustAnchors | None = None) -> None:
        self.anchors = anchors
        self.report = Report()
        self.keys: dict[str, _Key] = {}
        self.root_key_id: str | None = None
        self.streams: dict[str, tuple[int, str]] = {}
        self.deferred: list[SignatureCheck] | None = None
        """When a list, signatures are collected here to be checked in parallel (`check_signatures`)."""

    def fail(self, index: int, envelope: Envelope | None, check: str, expected: object, found: object) -> None:
        """Record a failure."""
        if len(self.report.failures) < MAX_FAILURES:
            self.report.failures.append(Failure(index, envelope.stream if envelope else None,
                                                envelope.seq if envelope else None, check, str(expected), str(found)))

    def run(self, entries: Iterable[bytes]) -> Report:
        """Verify every entry."""
        for index, entry in enumerate(entries):
            self.report.entries += 1
            self.entry(index, entry)
        if self.report.entries == 0:
            self.fail(0, None, "log", "at least one entry", "an empty log")
        return self.report

    def entry(self, index: int, entry: bytes) -> Envelope | None:
        """Checks 1–7 for one entry; the parsed envelope, or None when it is not one."""
        try:
            envelope = parse_entry(entry)
        except EnvelopeError as error:
            self.fail(index, None, f"1 envelope ({error.field})", error.rule, entry[:80].decode("utf-8", "replace"))
            return None
        model = EVENT_BODIES.get((envelope.type, envelope.schema))
        if model is None:
            self.fail(index, envelope, "2 schema", "a known type@schema", f"{envelope.type}@{envelope.schema}")
        else:
            try:
                if envelope.body_json is not None:  # the body's own canonical bytes, validated in JSON mode
                    model.model_validate_json(envelope.body_json)
                else:
                    model.from_json_value(envelope.body)
            except ValidationError as error:
                first = error.errors()[0]
                self.fail(index, envelope, "2 schema", ".".join(map(str, first["loc"])) + " valid",
                          first["msg"])
        event_hash = envelope.event_hash()
        last = self.streams.get(envelope.stream)
        expected_seq, expected_prev = (1, None) if last is None else (last[0] + 1, last[1])
        if envelope.seq != expected_seq:
            self.fail(index, envelope, "3 chain (seq)", expected_seq, envelope.seq)
        if envelope.prev != expected_prev:
            self.fail(index, envelope, "3 chain (prev)", expected_prev, envelope.prev)
        self.streams[envelope.stream] = (envelope.seq, event_hash.hex())
        at = parse_at(envelope.at)
        if index == 0:
            self.first_entry(envelope, at)
        self.signature(index, envelope, at, event_hash)
        if index > 0 and envelope.type in ("key.registered", "key.revoked"):
            self.keyring_change(index, envelope, at)
        return envelope

    def first_entry(self, envelope: Envelope, at: datetime) -> None:
        """Entry 0: the root key registers itself."""
        body = envelope.body
        if envelope.type != "key.registered" or envelope.actor.key != body.get("key_id"):
            self.fail(0, envelope, "4 keyring (root)", "the root key registering itself",
                      f"{envelope.type} signed by {envelope.actor.key}")
            return
        if self.anchors is not None and body.get("key_id") != self.anchors.root_key_id:
            self.fail(0, envelope, "4 keyring (trust anchor)", self.anchors.root_key_id, body.get("key_id"))
            return
        if key_id(base64.b64decode(str(body.get("public_key")))) != body.get("key_id"):
            self.fail(0, envelope, "4 keyring (key id)", "key id = SHA-256(public key)[:16]", body.get("key_id"))
            return
        self.root_key_id = str(body["key_id"])
        self.keys[self.root_key_id] = _Key("operator", str(body["public_key"]), at, None)

    def keyring_change(self, index: int, envelope: Envelope, at: datetime) -> None:
        """Apply a later key registration or revocation (signed by the root key)."""
        if envelope.actor.key != self.root_key_id:
            self.fail(index, envelope, "4 keyring (signer)", f"the root key {self.root_key_id}", envelope.actor.key)
            return
        body = envelope.body
        if envelope.type == "key.registered":
            kid, public = str(body.get("key_id")), str(body.get("public_key"))
            if key_id(base64.b64decode(public)) != kid:
                self.fail(index, envelope, "4 keyring (key id)", "key id = SHA-256(public key)[:16]", kid)
                return
            role = str(body.get("role"))
            if self.anchors is not None and role in ("custodian", "regulator") and (
                    self.anchors.witness_keys.get(kid) != role):
                self.fail(index, envelope, "4 keyring (trust anchor)", f"an anchored {role} key", kid)
            self.keys[kid] = _Key(role, public, parse_at(str(body.get("valid_from"))), body.get("member"))
        else:
            key = self.keys.get(str(body.get("key_id")))
            if key is not None:
                key.revoked_at = parse_at(str(body.get("revoked_at")))

    def signature(self, index: int, envelope: Envelope, at: datetime, event_hash: bytes) -> None:
        """Checks 5–7."""
        key = self.keys.get(envelope.actor.key)
        if key is None:
            self.fail(index, envelope, "5 key validity", "a registered key", envelope.actor.key)
            return
        if key.role != envelope.actor.role:
            self.fail(index, envelope, "5 key validity (role)", key.role, envelope.actor.role)
        if not key.valid_at(at):
            self.fail(index, envelope, "5 key validity (time)", f"valid from {key.valid_from}"
                      + (f" until {key.revoked_at}" if key.revoked_at else ""), envelope.at)
        if self.deferred is not None:
            self.deferred.append((index, key.public_base64, event_hash, envelope.sig))
        elif not event_signature_is_valid(key.public(), event_hash, envelope.sig):
            self.fail(index, envelope, "6 signature", f"Ed25519 by {envelope.actor.key}", "a signature that fails")
        error = required_role_error(envelope.type, envelope.actor, envelope.stream, envelope.body, key.member)
        if error is not None:
            self.fail(index, envelope, "7 role rules", error, f"{envelope.actor.role} key {envelope.actor.key}")


SignatureCheck = tuple[int, str, bytes, str]
"""(index, base64 public key, event hash, base64 signature) of a deferred signature check: only what the check
needs, as it crosses to a worker process (the entry at the index names the stream, seq and key)."""


def failing_signatures(checks: list[SignatureCheck]) -> list[SignatureCheck]:
    """The checks whose Ed25519 signature does not verify (run in worker processes)."""
    keys: dict[str, bytes] = {}
    failing = []
    for check in checks:
        public = keys.get(check[1])
        if public is None:
            public = keys[check[1]] = public_key_from_base64(check[1])
        if not event_signature_is_valid(public, check[2], check[3]):
            failing.append(check)
    return failing


def verify_entries(entries: Iterable[bytes], anchors: TrustAnchors | None = None) -> Report:
    """Verify entries in global order."""
    return Verifier(anchors).run(entries)


def read_export(path: Path) -> Iterator[bytes]:
    """Entries of an `export` file, one per line."""
    with path.open("rb") as lines:
        for line in lines:
            yield line.rstrip(b"\n")

