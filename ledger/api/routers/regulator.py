"""The regulator's routes, for requests signed with a regulator key: the queries of `audit query` (cases, periods,
refunds; members masked) and the signed reports.

Publishing a report is the one write the API allows, and the regulator signs it, not the service (it never holds a
regulator's key): (1) `POST /regulator/reports/drafts` builds the report document over [from, to) from the read
models and returns it with the `report.published` envelope that pins its hash, unsigned, and the event hash;
(2) the regulator checks the document, signs the event hash with its own key and sends the envelope back with its
`sig` to `POST /regulator/reports`, which checks that it is the envelope a draft makes — signed by the key that
signs the request, recent, its signature valid — and stores it through the application, with the writer's checks.
"""

from __future__ import annotations

import json
import typing
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from audit.report import query_cases, query_periods, query_refunds
from ledger.aggregates.report import RegulatorReport, report_id
from ledger.api.dependencies import DEFAULT_PAGE, MAX_PAGE, Caller, caller, paginate, require_role, service
from ledger.api.problem import problem_responses
from ledger.api.state import ServiceState, log_index
from ledger.canonical import canonical_bytes, document_digest
from ledger.cli.base import choice, date_range
from ledger.cli.refs import plan_ref
from ledger.envelope import Actor, EnvelopeError, envelope_from_json, format_at, parse_at
from ledger.errors import InputError
from ledger.keys import event_signature_is_valid
from ledger.projections.metrics import report_document
from ledger.reveal import may_see, records_json, reveal_claim
from ledger.rules import Rule
from schemas.api import (
    Page,
    PublishedReport,
    Refund,
    RegulatorCase,
    ReportDraft,
    ReportRange,
    SignedReport,
)
from schemas.api import Period as PeriodRow
from schemas.events import RejectionReason, ReportPublishedV1

router = APIRouter(prefix="/regulator", tags=["regulator"], responses=problem_responses(400, 401, 403, 404))
State = Annotated[ServiceState, Depends(service)]
Signed = Annotated[Caller, Depends(caller)]
Cursor = Annotated[str | None, Query(max_length=1000)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Since = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")]
Until = Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, exclusive")]
DRAFT_VALIDITY = timedelta(minutes=10)
"""How long a drafted report may take to come back signed."""
CLOCK_SKEW = timedelta(seconds=30)
REASONS = typing.get_args(RejectionReason)


def _bounds(since: str | None, until: str | None) -> tuple[str, str]:
    start, end = date_range(since, until)
    return start.isoformat() if start else "", end.isoformat() if end else "9999"


def _plan(state: ServiceState, plan: str | None) -> str | None:
    return plan_ref(state.models.periods, "plan", plan) if plan else None


ROW_REVEALED_FIELDS = ("diagnosed_on", "age_at_diagnosis")
"""The sealed fields a regulator's case row reveals."""


def revealed_for(state: ServiceState, who: Caller, claim: str) -> dict[str, Any]:
    """Sealed values of a case opened for a regulator's key — the exact diagnosis date and age the amounts and
    windows depend on, each checked against its commitment before it leaves the vault (`ledger.reveal`) — but not
    who the claimant is, nor the joining instant, which is the instant of the claimant's `member.joined` and would
    name them: a case row names no member (docs/privacy.md; the operator hands the claimant's records over with
    `member reveal --for` when a regulator asks for a member). None for a case filed before sealing (its values are
    on the log) or after its claimant's erasure."""
    may_see(state.ledger.app, who.key_id, None)
    return {"records": records_json(r for r in reveal_claim(state.ledger.app, claim)
                                    if r.field in ROW_REVEALED_FIELDS)}



@router.get("/cases", response_model=Page[RegulatorCase])
def cases(state: State, who: Signed, plan: str | None = None, since: Since = None, until: Until = None,
          category: Annotated[str | None, Query(pattern="^(illness|accident)$")] = None,
          reason: str | None = None, jury: Annotated[str | None, Query(pattern="^(approve|reject|no_quorum)$")] = None,
          cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """Cases filed in [from, to), by plan, category, rejection reason and jury outcome; members masked."""
    require_role(who, "regulator")
    choice("reason", reason, REASONS)
    low, high = _bounds(since, until)
    rows = query_cases(state.models, _plan(state, plan), low, high, category, reason, jury)
    page = paginate(rows, lambda r: (r["claim"],), cursor, limit)
    page["items"] = [{**r, "revealed": revealed_for(state, who, r["claim"])} for r in page["items"]]
    return page


@router.get("/periods", response_model=Page[PeriodRow])
def periods(state: State, who: Signed, plan: str | None = None, since: Since = None, until: Until = None,
            cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """Every term of the periods whose notice day falls in [from, to)."""
    require_role(who, "regulator")
    low, high = _bounds(since, until)
    rows = query_periods(state.models, _plan(state, plan), low, high)
    page = paginate(rows, lambda r: (r["plan"], r["number"]), cursor, limit)
    page["items"] = [state.models.periods.record(r["id"]) for r in page["items"]]
    return page


@router.get("/refunds", response_model=Page[Refund])
def refunds(state: State, who: Signed, plan: str | None = None,
            status: Annotated[str | None, Query(pattern="^(outstanding|paid|overdue)$")] = None,
            cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """Refunds owed (wind-down, waiting-period exclusions) and their status; members masked."""
    require_role(who, "regulator")
    rows = query_refunds(state.models, _plan(state, plan), format_at(state.now()), status)
    return paginate(rows, lambda r: (r["member"], r["reason"], r["plan"], r["due_at"]), cursor, limit)


@router.get("/reports", response_model=Page[PublishedReport])
def reports(state: State, who: Signed, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """Every report published on the log: its range, document hash, the regulator key that signed it, and its log
    index once integrated."""
    require_role(who, "regulator")
    page = paginate(state.followed.of("report.published"), lambda e: (e.notification_id,), cursor, limit)
    page["items"] = [_published(state, e.notification_id, e.envelope) for e in page["items"]]
    return page


def _published(state: ServiceState, notification_id: int | None, envelope: dict[str, Any]) -> dict[str, Any]:
    body = envelope["body"]
    index = None if notification_id is None else log_index(state.log, notification_id)
    return {"report": envelope["stream"], "since": body["since"], "until": body["until"],
            "document_hash": body["document_hash"], "document_bytes": body["document_bytes"],
            "key": envelope["actor"]["key"], "published_at": envelope["at"], "index": index}


@router.post("/reports/drafts", response_model=ReportDraft)
def draft_report(state: State, who: Signed, report_range: ReportRange) -> dict[str, Any]:
    """A report over [from, to) ready for the regulator to sign: the document from the read models, and the
    `report.published` envelope pinning its hash, without signature. Nothing is written."""
    require_role(who, "regulator")
    start, end = date_range(report_range.since, report_range.until)
    assert start is not None and end is not None
    now = state.now()
    document = report_document(state.models, start.isoformat(), end.isoformat(), now)
    digest, size = document_digest(document)
    body = ReportPublishedV1(since=start.isoformat(), until=end.isoformat(), document_hash=digest,
                             document_bytes=size)
    event = RegulatorReport.publish(now, Actor("regulator", who.key_id), body).pending_events[0]
    assert isinstance(event, RegulatorReport.Published)
    return {"document": json.loads(canonical_bytes(document)), "envelope": json.loads(event.canonical_unsigned()),
            "event_hash": event.event_hash().hex()}


@router.post("/reports", response_model=PublishedReport, status_code=201)
def publish_report(state: State, who: Signed, signed: SignedReport) -> dict[str, Any]:
    """Store a drafted report's envelope signed by the regulator whose key signs this request."""
    require_role(who, "regulator")
    try:
        envelope = envelope_from_json(signed.envelope)
    except EnvelopeError as error:
        raise InputError(f"envelope.{error.field}", Rule.REPORT_ENVELOPE_MUST_BE_A_DRAFTED_ONE,
                         error.rule) from None
    if envelope.type != "report.published" or envelope.schema != 1 or envelope.seq != 1:
        raise InputError("envelope.type", Rule.REPORT_ENVELOPE_MUST_BE_A_DRAFTED_ONE,
                         f"{envelope.type}@{envelope.schema}#{envelope.seq}")
    if envelope.actor != Actor("regulator", who.key_id):
        raise InputError("envelope.actor", Rule.REPORT_MUST_BE_SIGNED_BY_THE_REQUESTING_KEY, envelope.actor.key)
    at = parse_at(envelope.at)
    now = state.now()
    if not now - DRAFT_VALIDITY <= at <= now + CLOCK_SKEW:
        raise InputError("envelope.at", Rule.REPORT_DRAFT_MUST_BE_RECENT, envelope.at)
    try:
        body = ReportPublishedV1.from_json_value(envelope.body)
    except ValueError as error:
        raise InputError("envelope.body", Rule.REPORT_ENVELOPE_MUST_BE_A_DRAFTED_ONE, str(error)) from None
    report = RegulatorReport.publish(at, envelope.actor, body)
    event = report.pending_events[0]
    assert isinstance(event, RegulatorReport.Published)
    if envelope.stream != str(report_id(body.since, body.until, body.document_hash)) or (
            event.canonical_unsigned() != envelope.canonical_unsigned()):
        raise InputError("envelope", Rule.REPORT_ENVELOPE_MUST_BE_A_DRAFTED_ONE, "not the envelope a draft makes")
    public_key = state.public_key(who.key_id)
    if public_key is None or not event_signature_is_valid(public_key, event.event_hash(), envelope.sig):
        raise InputError("envelope.sig", Rule.EVENT_SIGNATURE_MUST_VERIFY, "by the regulator's key")
    if not state.ledger.app.stream_exists(UUID(envelope.stream)):
        state.ledger.app.save_signed(report, {event.event_hash(): envelope.sig})
    return _published(state, None, envelope.to_json())
