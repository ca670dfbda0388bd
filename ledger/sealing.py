"""The sealed-field contract: how a personal value is written on the log without being readable there.

A sealed field of an event body holds a *commitment*: the lowercase hex of SHA-256 over a fresh 32-byte random salt
followed by the RFC 8785 (JCS) bytes of the value — `sha256(salt || jcs(value))`. The value and its salt live
outside the log, in the operator's encrypted vault (`ledger.vault`); whoever may see the value receives both
(a *revealed record*) and checks them against the commitment on the signed event with `check_revealed`. Beside
a sealed field, the body carries the coarse value the plan's public disclosure shows (a 5-year age band, a
`YYYY-MM` month), which `check_revealed` also checks against the value. docs/privacy.md states this contract for
outside verifiers, with a known-answer vector that tests/test_privacy.py checks.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.envelope import parse_at

SALT_BYTES = 32


def commitment(salt: bytes, value: Any) -> str:
    """The commitment to `value` under `salt`: hex SHA-256 of the salt followed by the value's RFC 8785 bytes."""
    assert len(salt) == SALT_BYTES, "a salt is 32 bytes"
    return hashlib.sha256(salt + canonical_bytes(value)).hexdigest()


def new_salt() -> bytes:
    """A fresh random salt (one per sealed field of each event)."""
    return secrets.token_bytes(SALT_BYTES)


def age_band(age_years: int) -> str:
    """The 5-year band an age falls in, as the disclosure shows it: 42 → `"40-44"`."""
    low = age_years - age_years % 5
    return f"{low}-{low + 4}"


def month_of(iso_date_or_instant: str) -> str:
    """The `YYYY-MM` month of an ISO date (or of an instant's UTC date)."""
    return iso_date_or_instant[:7]


def plan_month(joined_at: str, utc_offset_minutes: int) -> str:
    """The month of an instant in the plan's civil time (the joining month a card shows)."""
    return (parse_at(joined_at) + timedelta(minutes=utc_offset_minutes)).date().isoformat()[:7]


@dataclass(frozen=True)
class SealedField:
    """One sealed field of a body version: the value's name, the body field holding its commitment, the body field
    holding its public coarse value (if any) and how that coarse value follows from the value."""

    name: str
    commitment_field: str
    coarse_field: str | None = None
    coarse: Callable[[Any], str] | None = None


SEALED_FIELDS: dict[tuple[str, int], tuple[SealedField, ...]] = {
    ("claim.filed", 2): (
        SealedField("member", "member_sealed"),
        SealedField("diagnosed_on", "diagnosed_on_sealed", "diagnosed_month", month_of),
        SealedField("age_at_diagnosis", "age_at_diagnosis_sealed", "age_band", age_band),
        SealedField("joined_at", "joined_at_sealed"),
    ),
    ("member.excluded", 2): (
        SealedField("diagnosed_on", "diagnosed_on_sealed", "diagnosed_month", month_of),
    ),
    ("member.joined", 2): (
        SealedField("age_years", "age_years_sealed", "age_band", age_band),
    ),
    ("member.juror_qualified", 2): (
        SealedField("age_years", "age_years_sealed", "age_band", age_band),
    ),
    ("member.fraud_recorded", 2): (
        SealedField("claim", "claim_sealed"),
    ),
}
"""Every sealed field by event `(type, schema)`. The joining month of `claim.filed` v2 is in the plan's civil time,
so it is checked by the audit with the plan's rules rather than here."""

_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_VALUE_SHAPES: dict[str, re.Pattern[str] | type] = {
    "member": _ID,
    "claim": _ID,
    "diagnosed_on": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "joined_at": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"),
    "age_at_diagnosis": int,
    "age_years": int,
}
_NULLABLE = frozenset({"claim"})
"""Sealed fields whose value may be JSON null (a fraud finding that concerns no claim): sealed all the same, so the
body does not show whether there is one."""


def sealed_fields(event_type: str, schema: int) -> tuple[SealedField, ...]:
    """The sealed fields of a body version (none for most)."""
    return SEALED_FIELDS.get((event_type, schema), ())


@dataclass(frozen=True)
class Revealed:
    """A sealed value with its salt: what the vault gives to whoever may see it, and what they check."""

    stream: str
    seq: int
    field: str
    value: Any
    salt: bytes

    def json_value(self) -> dict[str, Any]:
        """The record's JSON form (salt in lowercase hex)."""
        return {"stream": self.stream, "seq": self.seq, "field": self.field, "value": self.value,
                "salt": self.salt.hex()}

    @classmethod
    def from_json_value(cls, data: Mapping[str, Any]) -> Revealed:
        """Parse a record's JSON form; raises ValueError naming what is wrong."""
        try:
            salt = bytes.fromhex(data["salt"])
            record = cls(str(data["stream"]), int(data["seq"]), str(data["field"]), data["value"], salt)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a revealed record: {error}") from None
        if len(salt) != SALT_BYTES:
            raise ValueError("salt must be 32 bytes")
        return record


def check_revealed(event_type: str, schema: int, body: Mapping[str, Any], record: Revealed) -> str | None:
    """Why a revealed record does not open the sealed field it names in this event body, or None when it does:
    the field must be sealed in this body version, the value of its shape, the commitment must match, and the
    coarse value beside it must follow from the value."""
    spec = next((f for f in sealed_fields(event_type, schema) if f.name == record.field), None)
    if spec is None:
        return f"{event_type} v{schema} seals no field {record.field}"
    shape = _VALUE_SHAPES[spec.name]
    if record.value is None and spec.name in _NULLABLE:
        pass
    elif isinstance(shape, re.Pattern):
        if not (isinstance(record.value, str) and shape.fullmatch(record.value)):
            return f"{record.field} is not of its shape"
    elif not (isinstance(record.value, int) and not isinstance(record.value, bool)):
        return f"{record.field} must be an integer"
    if len(record.salt) != SALT_BYTES:
        return "salt must be 32 bytes"
    if not hmac.compare_digest(commitment(record.salt, record.value), str(body.get(spec.commitment_field))):
        return f"{record.field} does not match its commitment {spec.commitment_field}"
    if spec.coarse_field is not None and spec.coarse is not None and (
            body.get(spec.coarse_field) != spec.coarse(record.value)):
        return f"{record.field} does not fall in the public {spec.coarse_field} {body.get(spec.coarse_field)}"
    return None


def iso_date(text: str) -> date:
    """A revealed date value as a date (checked for shape by `check_revealed`)."""
    return date.fromisoformat(text)
