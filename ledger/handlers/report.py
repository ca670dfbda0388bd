"""Handler of the regulator's report command."""

from __future__ import annotations

from ledger.aggregates.base import check
from ledger.aggregates.report import RegulatorReport
from ledger.application import Outcome, UnitOfWork, handles
from schemas.commands.report import PublishReport
from schemas.events import ReportPublishedV1


@handles(PublishReport)
def publish_report(uow: UnitOfWork, command: PublishReport) -> Outcome:
    """Build the report from the read models and pin its hash, signed by the regulator."""
    from audit.report import report_document, report_hash

    check(command.since < command.until, "until", "report_range_must_not_be_empty")
    document = report_document(uow.app.read_models(), command.since, command.until, uow.at)
    digest, size = report_hash(document)
    body = ReportPublishedV1(since=command.since, until=command.until, document_hash=digest, document_bytes=size)
    report = RegulatorReport.publish(uow.at, uow.actor("regulator"), body)
    uow.add(report, "since")
    return Outcome({"report": str(report.id), "document_hash": digest, "document": document})
