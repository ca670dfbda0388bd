"""The aggregates, one per module, and the registry of their event classes."""

from __future__ import annotations

from typing import cast

from ledger.aggregates.base import LedgerAggregate
from ledger.aggregates.claim import Claim
from ledger.aggregates.disclosure import Disclosure
from ledger.aggregates.keyring import Keyring
from ledger.aggregates.membership import Membership
from ledger.aggregates.plan import Plan
from ledger.aggregates.report import RegulatorReport
from ledger.aggregates.sharing_period import SharingPeriod

AGGREGATES: tuple[type[LedgerAggregate], ...] = (
    Keyring, Plan, Membership, Claim, SharingPeriod, Disclosure, RegulatorReport)

EVENT_CLASSES: dict[tuple[str, int, bool], tuple[type[LedgerAggregate.Event], type[LedgerAggregate]]] = {
    key: (cast(type[LedgerAggregate.Event], event_class), aggregate)
    for aggregate in AGGREGATES
    for key, event_class in aggregate.events_by_type.items()
}
"""Event class and aggregate by (type, schema, is the stream's first event)."""
