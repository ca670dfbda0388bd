"""A claim: filed → investigated → noticed → objections → jury → decided → included → paid."""

from __future__ import annotations

from ledger.aggregates.base import LedgerAggregate


class Claim(LedgerAggregate):
    """A claim for aid (being written)."""
