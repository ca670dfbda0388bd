"""Handler of the disclosure command."""

from __future__ import annotations

from uuid import UUID

from ledger.aggregates.base import check
from ledger.aggregates.disclosure import Disclosure, disclosure_id
from ledger.aggregates.sharing_period import SharingPeriod
from ledger.application import Outcome, UnitOfWork, handles
from ledger.projections.cases import disclosure_document, document_bytes, document_hash
from schemas.commands.disclosure import PublishDisclosure
from schemas.events import DisclosurePublishedV1


@handles(PublishDisclosure)
def publish_disclosure(uow: UnitOfWork, command: PublishDisclosure) -> Outcome:
    """A settled period's document, built from the read models, is pinned by its hash, once."""
    period = uow.get(UUID(command.period), SharingPeriod, "period")
    check(period.status == "settled", "period", "period_must_be_settled_to_be_disclosed", period.status)
    models = uow.app.read_models()
    document = disclosure_document(command.period, models.periods, models.cases,
                                   models.balances.failed_periods())
    body = DisclosurePublishedV1(plan=period.plan, period=command.period, number=period.number,
                                 document_hash=document_hash(document), document_bytes=len(document_bytes(document)))
    uow.add(Disclosure.publish(uow.at, uow.actor("operator"), body), "period")
    return Outcome({"disclosure": str(disclosure_id(command.period)), "period": command.period,
                    "document_hash": body.document_hash})
