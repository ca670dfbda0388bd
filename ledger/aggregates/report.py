"""A regulator's report: a document over a date range, pinned on the log by its hash and the regulator's key."""

from __future__ import annotations

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Actor
from schemas.events import ReportPublishedV1


def report_id(since: str, until: str, document_hash: str) -> UUID:
    """The stream id of a report (the same range and document publish once)."""
    return uuid5(NAMESPACE_URL, f"mutual-ledger:report:{since}:{until}:{document_hash}")


class RegulatorReport(LedgerAggregate):
    """A published report."""

    def __init__(self) -> None:
        self.published: ReportPublishedV1 | None = None

    class Published(LedgerAggregate.Created):
        """The report's hash is on the log."""

        TYPE = "report.published"
        body: ReportPublishedV1

        def apply(self, aggregate: RegulatorReport) -> None:
            aggregate.published = self.body

    @classmethod
    def publish(cls, at: datetime, actor: Actor, body: ReportPublishedV1) -> RegulatorReport:
        """Publish a report."""
        return cls.start(cls.Published, report_id(body.since, body.until, body.document_hash), at, actor, body)
