"""A period's disclosure: published once, its document pinned by hash (stream id = uuid5 of the period)."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Actor
from schemas.events import DisclosurePublishedV1, DisclosurePublishedV2


def disclosure_id(period: str) -> UUID:
    """The stream id of a period's disclosure."""
    return uuid5(NAMESPACE_URL, f"mutual-ledger:disclosure:{period}")


class Disclosure(LedgerAggregate):
    """A published disclosure."""

    def __init__(self) -> None:
        self.published: DisclosurePublishedV1 | None = None

    class Published(LedgerAggregate.Created):
        """The document's hash is on the log."""

        TYPE = "disclosure.published"
        body: DisclosurePublishedV1

        def apply(self, aggregate: Disclosure) -> None:
            aggregate.published = self.body

    class PublishedV2(Published):
        """Schema 2: the document's format is named."""

        SCHEMA = 2
        body: DisclosurePublishedV2

    @classmethod
    def publish(cls, at: datetime, actor: Actor, body: DisclosurePublishedV2) -> Disclosure:
        """Publish (the handler checks the period is settled; the stream id makes it once per period)."""
        return cls.start(cls.PublishedV2, disclosure_id(body.period), at, actor, body)
