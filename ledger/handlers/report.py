"""Handler of the regulator's report command."""

from __future__ import annotations

from ledger.aggregates.report import RegulatorReport
from ledger.canonical import document_digest
from ledger.errors import check
from ledger.rules import Rule
from ledger.unit_of_work import Outcome, UnitOfWork, handles
from schemas.commands.report import PublishReport
from schemas.events import ReportPublishedV1


@handles(PublishReport)
def publish_report(uow: UnitOfWork, command: PublishReport) -> Outcome:
    """Build the report from the read models and pin its hash, signed by the regulator."""
    check(command.since < command.until, "until", Rule.REPORT_RANGE_MUST_NOT_BE_EMPTY)
    document = uow.documents.report(command.since, command.until, uow.at)
    digest, size = document_digest(document)
    body = ReportPublishedV1(since=command.since, until=command.until, document_hash=digest, document_bytes=size)
    report = RegulatorReport.publish(uow.at, uow.actor("regulator"), body)
    uow.add(report, "since")
    return Outcome({"report": str(report.id), "document_hash": digest, "document": document})
