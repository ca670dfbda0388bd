"""Helpers shared by the command handlers."""

from __future__ import annotations

from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.aggregates.base import DomainRuleError


def new_stream_id(kind: str, command_id: str, given: str | None) -> UUID:
    """The id of a stream a command creates: the one given, or one derived from the command id.

    Deriving it from the command id makes a repeated command name the same stream.
    """
    return UUID(given) if given is not None else uuid5(NAMESPACE_URL, f"mutual-ledger:{kind}:{command_id}")


def date_arg(field: str, text: str) -> date:
    """Parse a (schema-validated) ISO date field."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DomainRuleError(field, "must_be_a_date", text) from None
