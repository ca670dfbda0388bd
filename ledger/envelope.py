"""The signed-event envelope — a contract (DESIGN.md, "Signed events").

```
{"v": 1, "stream": "<uuid>", "seq": <int>, "type": "<noun.past_tense>", "schema": <int>,
 "at": "<RFC 3339 UTC, microseconds, Z>", "actor": {"role": ..., "key": ..., ["on_behalf_of": ...]},
 "prev": "<hex SHA-256 event hash of seq-1, or null>", "body": {...}, "sig": "<base64 Ed25519>"}
```

Canonical bytes are RFC 8785 of the envelope without `sig`; `event_hash = SHA-256(canonical bytes)`; the log
entry is RFC 8785 of the full envelope. Parsing is strict: exactly these keys, these types, and canonical input.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from ledger.canonical import CanonicalizationError, canonical_bytes, canonical_envelope_bytes

ENVELOPE_VERSION = 1
ROLES = ("operator", "custodian", "investigator", "juror", "member", "regulator")
"""Roles that may sign events (DESIGN.md, "Access"; the public signs nothing)."""

ENVELOPE_KEYS = frozenset(
    {"v", "stream", "seq", "type", "schema", "at", "actor", "prev", "body", "sig"}
)
_AT_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_TYPE_PATTERN = re.compile(r"[a-z][a-z_]*\.[a-z][a-z_]*")
_KEY_ID_PATTERN = re.compile(r"[0-9a-f]{16}")
_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
_SIG_PATTERN = re.compile(r"[A-Za-z0-9+/]{86}==")
_UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ACTOR_KEYS = ({"role", "key"}, {"role", "key", "on_behalf_of"})
_KEYS_RULE = f"keys must be exactly {sorted(ENVELOPE_KEYS)}"
_ROLES_RULE = f"must be one of {', '.join(ROLES)}"


class EnvelopeError(ValueError):
    """An envelope breaks the contract; the message names the field and the rule."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


@lru_cache(maxsize=1024)
def format_at(moment: datetime) -> str:
    """Format an instant as the envelope's `at`: RFC 3339, UTC, microseconds, `Z` (cached: the events of a batch
    share their instant)."""
    if moment.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


@lru_cache(maxsize=256)
def parse_at(text: str) -> datetime:
    """Parse an envelope `at` back into an aware UTC datetime (cached: a verifier parses each `at` twice)."""
    if not _AT_PATTERN.fullmatch(text):
        raise EnvelopeError("at", "must be RFC 3339 UTC with microseconds and Z")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who signed: the role, the key id, and the member an operator key acted for, if any."""

    role: str
    key: str
    on_behalf_of: str | None = None

    def to_json(self) -> dict[str, str]:
        """The actor object as it appears in the envelope (`on_behalf_of` omitted when absent)."""
        data = {"role": self.role, "key": self.key}
        if self.on_behalf_of is not None:
            data["on_behalf_of"] = self.on_behalf_of
        return data


@dataclass(frozen=True, slots=True)
class Envelope:
    """A signed event as outside verifiers see it."""

    stream: str
    seq: int
    type: str
    schema: int
    at: str
    actor: Actor
    prev: str | None
    body: dict[str, Any]
    sig: str
    unsigned_bytes: bytes | None = field(default=None, compare=False, repr=False)
    """The canonical unsigned bytes, when already computed (by `parse_entry`)."""
    body_json: bytes | None = field(default=None, compare=False, repr=False)
    """The body's canonical bytes as they appear in the entry (set by `parse_entry`)."""
    parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """The decoded entry (set by `parse_entry`), for readers that want plain JSON values."""

    def unsigned_json(self) -> dict[str, Any]:
        """The envelope without `sig`: the object whose canonical bytes are hashed and signed."""
        return {
            "v": ENVELOPE_VERSION,
            "stream": self.stream,
            "seq": self.seq,
            "type": self.type,
            "schema": self.schema,
            "at": self.at,
            "actor": self.actor.to_json(),
            "prev": self.prev,
            "body": self.body,
        }

    def to_json(self) -> dict[str, Any]:
        """The full envelope."""
        data = self.unsigned_json()
        data["sig"] = self.sig
        return data

    def canonical_unsigned(self) -> bytes:
        """RFC 8785 bytes of the envelope without `sig`."""
        return self.unsigned_bytes if self.unsigned_bytes is not None else canonical_bytes(self.unsigned_json())

    def event_hash(self) -> bytes:
        """SHA-256 of the canonical unsigned bytes."""
        return hashlib.sha256(self.canonical_unsigned()).digest()

    def entry(self) -> bytes:
        """RFC 8785 bytes of the full envelope: the transparency log entry."""
        return canonical_bytes(self.to_json())


def entry_with_signature(canonical_unsigned: bytes, sig: str) -> bytes:
    """Insert `"sig"` into canonical unsigned bytes, giving the canonical full envelope.

    JCS orders top-level keys `..., "seq", "sig", "stream", "type", "v"`, and the values after `"stream"` are
    a UUID, a type name and `1`, which contain no quote; so the last `,"stream":` is the top-level key.
    """
    cut = canonical_unsigned.rindex(b',"stream":')
    return b"%s,\"sig\":\"%s\"%s" % (canonical_unsigned[:cut], sig.encode("ascii"), canonical_unsigned[cut:])


def _require(condition: bool, field: str, rule: str) -> None:
    if not condition:
        raise EnvelopeError(field, rule)


def envelope_from_json(data: Any) -> Envelope:
    """Check a decoded envelope against the contract and return it; raise EnvelopeError naming the field."""
    _require(isinstance(data, dict), "envelope", "must be a JSON object")
    _require(data.keys() == ENVELOPE_KEYS, "envelope", _KEYS_RULE)
    _require(type(data["v"]) is int and data["v"] == ENVELOPE_VERSION, "v", "must be 1")
    stream = data["stream"]
    _require(isinstance(stream, str), "stream", "must be a string UUID")
    _require(bool(_UUID_PATTERN.fullmatch(stream)), "stream", "must be a lowercase hyphenated UUID")
    seq = data["seq"]
    _require(type(seq) is int and seq >= 1, "seq", "must be an integer >= 1")
    _require(isinstance(data["type"], str) and bool(_TYPE_PATTERN.fullmatch(data["type"])),
             "type", "must be <noun>.<past_tense> in lowercase")
    _require(type(data["schema"]) is int and data["schema"] >= 1, "schema", "must be an integer >= 1")
    _require(isinstance(data["at"], str), "at", "must be a string")
    parse_at(data["at"])
    actor = data["actor"]
    _require(isinstance(actor, dict), "actor", "must be an object")
    _require(actor.keys() in _ACTOR_KEYS, "actor", "keys must be role, key and optionally on_behalf_of")
    _require(actor["role"] in ROLES, "actor.role", _ROLES_RULE)
    _require(isinstance(actor["key"], str) and bool(_KEY_ID_PATTERN.fullmatch(actor["key"])),
             "actor.key", "must be a 16-hex-character key id")
    on_behalf_of = actor.get("on_behalf_of")
    _require(on_behalf_of is None or isinstance(on_behalf_of, str),
             "actor.on_behalf_of", "must be a member id string")
    prev = data["prev"]
    if seq == 1:
        _require(prev is None, "prev", "must be null for seq 1")
    else:
        _require(isinstance(prev, str) and bool(_HASH_PATTERN.fullmatch(prev)),
                 "prev", "must be the lowercase hex SHA-256 event hash of seq-1")
    _require(isinstance(data["body"], dict), "body", "must be an object")
    _require(isinstance(data["sig"], str) and bool(_SIG_PATTERN.fullmatch(data["sig"])),
             "sig", "must be base64 of a 64-byte Ed25519 signature")
    return Envelope(
        stream=stream,
        seq=seq,
        type=data["type"],
        schema=data["schema"],
        at=data["at"],
        actor=Actor(actor["role"], actor["key"], on_behalf_of),
        prev=prev,
        body=data["body"],
        sig=data["sig"],
    )


def parse_entry(entry: bytes) -> Envelope:
    """Parse a log entry (canonical envelope bytes); reject anything not in canonical form."""
    try:
        data = orjson.loads(entry)
    except orjson.JSONDecodeError as error:
        raise EnvelopeError("envelope", f"is not valid JSON: {error}") from None
    envelope = envelope_from_json(data)
    try:
        canonical = canonical_envelope_bytes(data)
    except CanonicalizationError as error:
        raise EnvelopeError("envelope", f"has no canonical form: {error}") from None
    _require(canonical == entry, "envelope", "is not in RFC 8785 canonical form")
    # Canonical, so the members sit in JCS order with no whitespace, and a `,"name":` outside a string is a key:
    # the last `,"sig":"` is the top-level signature (only a UUID, a type and 1 follow it), the first `,"body":`
    # follows `actor` and `at`, and the last `,"prev":` closes the body.
    cut = entry.rindex(b',"sig":"')
    unsigned = entry[:cut] + entry[cut + 9 + len(envelope.sig):]
    body = entry[entry.index(b',"body":') + 8:entry.rindex(b',"prev":')]
    for name, value in (("unsigned_bytes", unsigned), ("body_json", body), ("parsed", data)):
        object.__setattr__(envelope, name, value)  # caches on a frozen value
    return envelope
