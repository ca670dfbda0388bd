"""A sharing period of a plan: opened, locked at the cutoff, assessed, collected and settled."""

from __future__ import annotations

from ledger.aggregates.base import LedgerAggregate


class SharingPeriod(LedgerAggregate):
    """A sharing period (being written)."""
