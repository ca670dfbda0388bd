"""Helpers shared by the command handlers."""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from uuid import UUID

from ledger.errors import DomainRuleError
from ledger.rules import Rule


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
