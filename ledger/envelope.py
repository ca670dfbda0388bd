"""The signed-event envelope — a contract (docs/design.md, "Signed events").

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
"""Roles that may sign events (docs/design.md, "Access"; the public signs nothing)."""

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
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise EnvelopeError("at", "must be a real date and time (RFC 3339)") from None


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
        return event_hash_of(self.canonical_unsigned())

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


def check_envelope_json(data: Any) -> None:
    """Check a decoded envelope against the contract; raise EnvelopeError naming the field and the rule."""
    if not isinstance(data, dict):
        raise EnvelopeError("envelope", "must be a JSON object")
    if data.keys() != ENVELOPE_KEYS:
        raise EnvelopeError("envelope", _KEYS_RULE)
    if type(data["v"]) is not int or data["v"] != ENVELOPE_VERSION:
        raise EnvelopeError("v", "must be 1")
    stream = data["stream"]
    if not isinstance(stream, str):
        raise EnvelopeError("stream", "must be a string UUID")
    if not _UUID_PATTERN.fullmatch(stream):
        raise EnvelopeError("stream", "must be a lowercase hyphenated UUID")
    seq = data["seq"]
    if type(seq) is not int or seq < 1:
        raise EnvelopeError("seq", "must be an integer >= 1")
    if not isinstance(data["type"], str) or not _TYPE_PATTERN.fullmatch(data["type"]):
        raise EnvelopeError("type", "must be <noun>.<past_tense> in lowercase")
    if type(data["schema"]) is not int or data["schema"] < 1:
        raise EnvelopeError("schema", "must be an integer >= 1")
    if not isinstance(data["at"], str):
        raise EnvelopeError("at", "must be a string")
    parse_at(data["at"])
    actor = data["actor"]
    if not isinstance(actor, dict):
        raise EnvelopeError("actor", "must be an object")
    if actor.keys() not in _ACTOR_KEYS:
        raise EnvelopeError("actor", "keys must be role, key and optionally on_behalf_of")
    if actor["role"] not in ROLES:
        raise EnvelopeError("actor.role", _ROLES_RULE)
    if not isinstance(actor["key"], str) or not _KEY_ID_PATTERN.fullmatch(actor["key"]):
        raise EnvelopeError("actor.key", "must be a 16-hex-character key id")
    on_behalf_of = actor.get("on_behalf_of")
    if on_behalf_of is not None and not isinstance(on_behalf_of, str):
        raise EnvelopeError("actor.on_behalf_of", "must be a member id string")
    prev = data["prev"]
    if seq == 1:
        if prev is not None:
            raise EnvelopeError("prev", "must be null for seq 1")
    elif not isinstance(prev, str) or not _HASH_PATTERN.fullmatch(prev):
        raise EnvelopeError("prev", "must be the lowercase hex SHA-256 event hash of seq-1")
    if not isinstance(data["body"], dict):
        raise EnvelopeError("body", "must be an object")
    if not isinstance(data["sig"], str) or not _SIG_PATTERN.fullmatch(data["sig"]):
        raise EnvelopeError("sig", "must be base64 of a 64-byte Ed25519 signature")


def _envelope(data: dict[str, Any], unsigned: bytes | None = None, body: bytes | None = None) -> Envelope:
    """The Envelope of a decoded envelope that passed `check_envelope_json`."""
    actor = data["actor"]
    return Envelope(stream=data["stream"], seq=data["seq"], type=data["type"], schema=data["schema"], at=data["at"],
                    actor=Actor(actor["role"], actor["key"], actor.get("on_behalf_of")), prev=data["prev"],
                    body=data["body"], sig=data["sig"], unsigned_bytes=unsigned, body_json=body,
                    parsed=None if unsigned is None else data)


def envelope_from_json(data: Any) -> Envelope:
    """Check a decoded envelope against the contract and return it; raise EnvelopeError naming the field."""
    check_envelope_json(data)
    return _envelope(data)


def read_entry(entry: bytes) -> tuple[dict[str, Any], bytes, bytes]:
    """Parse a log entry strictly — exactly the contract's keys and types, in RFC 8785 canonical form — into its
    decoded envelope, its canonical unsigned bytes (what the event hash covers) and its body's bytes (what the
    schema validates); raise EnvelopeError naming the field and the rule."""
    data = read_envelope(entry)
    return (data, *split_entry(entry, data["sig"]))


def read_envelope(entry: bytes) -> dict[str, Any]:
    """The decoded envelope of a log entry, parsed strictly (`read_entry` without the slices); raise EnvelopeError
    naming the field and the rule."""
    try:
        data: dict[str, Any] = orjson.loads(entry)
    except orjson.JSONDecodeError as error:
        raise EnvelopeError("envelope", f"is not valid JSON: {error}") from None
    check_envelope_json(data)
    try:
        canonical = canonical_envelope_bytes(data)
    except CanonicalizationError as error:
        raise EnvelopeError("envelope", f"has no canonical form: {error}") from None
    if canonical != entry:
        raise EnvelopeError("envelope", "is not in RFC 8785 canonical form")
    return data


def split_entry(entry: bytes, sig: str) -> tuple[bytes, bytes]:
    """The canonical unsigned bytes and the body's bytes of an entry in canonical form whose signature is `sig`,
    cut from the entry's bytes (for an entry not in that form, meaningless: `read_envelope` rejects it)."""
    # Canonical, so the members sit in JCS order with no whitespace, and a `,"name":` outside a string is a key:
    # the last `,"sig":"` is the top-level signature (only a UUID, a type and 1 follow it), the first `,"body":`
    # follows `actor` and `at`, and the last `,"prev":` closes the body.
    cut = entry.rindex(b',"sig":"')
    unsigned = entry[:cut] + entry[cut + 9 + len(sig):]
    body = entry[entry.index(b',"body":') + 8:entry.rindex(b',"prev":')]
    return unsigned, body


def cut_entry(entry: bytes) -> tuple[bytes, bytes, str, str, int]:
    """What `split_entry` cuts, and the signature, type and schema, all read from where canonical form puts them,
    without decoding the entry: (unsigned bytes, body's bytes, sig, type, schema). For an entry not in that form the
    values are meaningless (or ValueError): a caller uses them only for entries `read_envelope` accepts."""
    # The top-level `,"sig":"` is the last (see `split_entry`); 88 characters of base64 and a quote follow it, then
    # `,"stream":"` and 36 characters of UUID and a quote, `,"type":"`, the type, and `","v":1}`.
    cut = entry.rindex(b',"sig":"')
    sig = entry[cut + 8:cut + 96].decode("ascii")
    unsigned = entry[:cut] + entry[cut + 97:]
    body = entry[entry.index(b',"body":') + 8:entry.rindex(b',"prev":', 0, cut)]
    at = entry.rindex(b',"schema":', 0, cut)
    schema = int(entry[at + 10:entry.index(b',"seq":', at)])
    return unsigned, body, sig, entry[cut + 154:-8].decode("ascii"), schema


def parse_entry(entry: bytes) -> Envelope:
    """Parse a log entry (`read_entry`) into an Envelope that keeps its unsigned bytes, body bytes and decoded
    form; reject anything not in canonical form."""
    return _envelope(*read_entry(entry))


def event_hash_of(canonical_unsigned: bytes) -> bytes:
    """SHA-256 of an envelope's canonical unsigned bytes: the event hash its signature covers and `prev` names."""
    return hashlib.sha256(canonical_unsigned).digest()
