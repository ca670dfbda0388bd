"""RFC 8785 (JCS) canonical bytes for the ledger's JSON values.

The contract is RFC 8785; the `rfc8785` package is the reference implementation. Ledger values are restricted
to objects with ASCII keys, arrays, strings, booleans, null and integers of magnitude below 2^53 (docs/design.md:
no floats, money in integer fen). For exactly that domain, RFC 8785 output is identical to a JSON encoder with
sorted keys, no whitespace and UTF-8 output (orjson with OPT_SORT_KEYS, the fast path): keys compare the same
by UTF-16 code units and by code points when they are ASCII, integers print the same, and both escape only
`"`, `\\` and control characters (with the same short forms and lowercase `\\u00xx`). The fast path is taken only after
`is_ledger_value` confirms the domain; everything else goes to `rfc8785`, which rejects what JCS cannot
represent. `tests/test_canonical.py` checks the two agree on the RFC vectors and on generated values.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import rfc8785

MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer that RFC 8785 (via IEEE 754 doubles) represents exactly."""

class CanonicalizationError(ValueError):
    """A value has no RFC 8785 canonical form in the ledger's value domain."""


def is_ledger_value(value: Any) -> bool:
    """Whether `value` lies in the ledger's JSON domain (see module docstring); iterative, as it runs per event."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            return False
    return True


_FLAT_TYPES = frozenset({str, int, bool, type(None)})


def is_flat_ascii_object(value: Any) -> bool:
    """Whether `value` is an object of ASCII keys whose values are strings, integers, booleans or nulls: in the
    ledger's domain but for the size of its integers (which an encoding with `OPT_STRICT_INTEGER` refuses), told
    without a walk — most event bodies are such objects."""
    try:
        return type(value) is dict and _FLAT_TYPES.issuperset(map(type, value.values())) and "".join(value).isascii()
    except TypeError:  # a key that is not a string
        return False


def canonical_bytes(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of `value`."""
    if is_ledger_value(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError as error:  # lone surrogates have no UTF-8 form
            raise CanonicalizationError(f"string is not valid Unicode: {error}") from None
    try:
        return bytes(rfc8785.dumps(value))
    except Exception as error:  # rfc8785 raises its own error family; one error type for callers
        raise CanonicalizationError(str(error)) from None


def document_digest(document: Any) -> tuple[str, int]:
    """The hex SHA-256 and the size of a published document's canonical bytes: what a `disclosure.published` or
    `report.published` event pins."""
    data = canonical_bytes(document)
    return hashlib.sha256(data).hexdigest(), len(data)


def canonical_envelope_bytes(data: dict[str, Any], body_in_domain: bool = False) -> bytes:
    """`canonical_bytes` of an envelope whose top-level members are known to be in the domain (ASCII keys;
    strings, null, an actor object of strings, integers): one decoded and checked by
    `ledger.envelope.envelope_from_json`, or one built from an event's typed fields. Only the body needs the
    domain walk — none when `body_in_domain` (a typed body whose field types keep it there, see
    `schemas.common.Frozen.dumps_in_ledger_domain`) or when it is a flat object of ASCII keys
    (`is_flat_ascii_object`) — and an integer beyond 2^53 anywhere makes orjson refuse, so that the general path
    decides."""
    body = data.get("body")
    if body_in_domain or is_flat_ascii_object(body) or is_ledger_value(body):
        try:
            return orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER)
        except orjson.JSONEncodeError:
            pass
    return canonical_bytes(data)
