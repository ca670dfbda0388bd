"""Helpers shared by the command handlers."""

from __future__ import annotations

import hashlib
from datetime import date
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID

from ledger.errors import DomainRuleError
from ledger.rules import Rule


def new_stream_id(kind: str, command_id: str, given: str | None) -> UUID:
    """The id of a stream a command creates: the one given, or one derived from the command id.

    Deriving it from the command id makes a repeated command name the same stream.
    """
    if given is not None:
        return UUID(given)
    # uuid5(NAMESPACE_URL, name) — RFC 4122 §4.3, SHA-1 — with the namespace's bytes computed once
    digest = hashlib.sha1(_URL_NAMESPACE + f"mutual-ledger:{kind}:{command_id}".encode(), usedforsecurity=False)
    return UUID(bytes=digest.digest()[:16], version=5)


_URL_NAMESPACE = NAMESPACE_URL.bytes


@lru_cache(maxsize=256)
def plan_id(text: str) -> UUID:
    """A plan's id from its (schema-checked) text; cached, as every join of a batch names the same plan."""
    return UUID(text)


def date_arg(field: str, text: str) -> date:
    """Parse a (schema-validated) ISO date field."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DomainRuleError(field, Rule.MUST_BE_A_DATE, text) from None
