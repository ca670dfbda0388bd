"""Handler of the disclosure command."""

from __future__ import annotations

from uuid import UUID

from ledger.aggregates.disclosure import Disclosure, disclosure_id
from ledger.aggregates.sharing_period import SharingPeriod
from ledger.canonical import document_digest
from ledger.errors import check
from ledger.rules import Rule
from ledger.unit_of_work import Outcome, UnitOfWork, handles
from schemas.commands.disclosure import PublishDisclosure
from schemas.events import DisclosurePublishedV2


@handles(PublishDisclosure)
def publish_disclosure(uow: UnitOfWork, command: PublishDisclosure) -> Outcome:
    """A settled period's document, built from the read models, is pinned by its hash, once."""
    period = uow.get(UUID(command.period), SharingPeriod, "period")
    check(period.status == "settled", "period", Rule.PERIOD_MUST_BE_SETTLED_TO_BE_DISCLOSED, period.status)
    check(uow.find(disclosure_id(command.period), Disclosure) is None, "period", Rule.PERIOD_IS_DISCLOSED_ONCE,
          command.period)
    document = uow.documents.disclosure(command.period)
    digest, size = document_digest(document)
    body = DisclosurePublishedV2(plan=period.plan, period=command.period, number=period.number,
                                 document_hash=digest, document_bytes=size, format=document["format"])
    uow.add(Disclosure.publish(uow.at, uow.actor("operator"), body), "period")
    return Outcome({"disclosure": str(disclosure_id(command.period)), "period": command.period,
                    "document_hash": body.document_hash})
