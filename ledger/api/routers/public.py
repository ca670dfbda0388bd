"""The public routes: plans, periods with every term of their assessment, each settled period's 公示 with its
published hash and the inclusion proof of its `disclosure.published` event, case cards once on public notice,
regulator metrics, a plan's share history, and the log as far as the latest published checkpoint (entries and
proofs). No key is needed; nothing here reads personal data (the events hold none)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ledger.api.dependencies import DEFAULT_PAGE, MAX_PAGE, paginate, service
from ledger.api.problem import problem_responses
from ledger.api.state import ServiceState
from ledger.canonical import document_digest
from ledger.cli.base import date_range
from ledger.cli.refs import period_ref, plan_ref
from ledger.errors import InputError
from ledger.projections.cases import disclosure_document, mask
from ledger.projections.metrics import metrics
from ledger.rules import Rule
from schemas.api import (
    CaseCard,
    Checkpoint,
    ConsistencyProof,
    Disclosure,
    InclusionProof,
    LogEntry,
    Metrics,
    Page,
    Period,
    PeriodSummary,
    Plan,
    SharePoint,
)

router = APIRouter(tags=["public"], responses=problem_responses(400, 404))
State = Annotated[ServiceState, Depends(service)]
Cursor = Annotated[str | None, Query(description="The `next_cursor` of the previous page.", max_length=1000)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
MAX_ENTRIES_PAGE = 5000


def b64(values: list[bytes]) -> list[str]:
    """Hashes as base64 strings, in order."""
    return [base64.b64encode(value).decode() for value in values]


@router.get("/plans", response_model=Page[Plan])
def list_plans(state: State, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """Every plan, oldest first."""
    return paginate(state.models.periods.plans_list(), lambda p: (p["created_at"], p["id"]), cursor, limit)


@router.get("/plans/{plan}", response_model=Plan)
def get_plan(state: State, plan: str) -> dict[str, Any]:
    """A plan by its id or its name."""
    plan_id = plan_ref(state.models.periods, "plan", plan)
    return next(p for p in state.models.periods.plans_list() if p["id"] == plan_id)


@router.get("/plans/{plan}/periods", response_model=Page[PeriodSummary])
def list_periods(state: State, plan: str, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """A plan's periods in number order."""
    periods = state.models.periods.all(plan_ref(state.models.periods, "plan", plan))
    return paginate(periods, lambda p: (p["number"],), cursor, limit)


@router.get("/plans/{plan}/shares", response_model=Page[SharePoint])
def share_history(state: State, plan: str, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """The per-person share of every assessed period of a plan, with the members locked, the cases and the cap
    (what a chart of the share over time needs)."""
    periods = state.models.periods
    assessed = [p for p in periods.all(plan_ref(periods, "plan", plan)) if p["share_fen"] is not None]
    page = paginate(assessed, lambda p: (p["number"],), cursor, limit)
    page["items"] = [{**p, "period": p["id"], "cases": len((periods.record(p["id"]) or {"cases": []})["cases"])}
                     for p in page["items"]]
    return page


@router.get("/periods/{period}", response_model=Period)
def get_period(state: State, period: str) -> dict[str, Any]:
    """Every term of a period's assessment, its collection and settlement (PERIOD: its id or `PLAN:NUMBER`, the
    plan by id or name)."""
    record = state.models.periods.record(period_ref(state.models.periods, "period", period))
    assert record is not None
    return record


@router.get("/periods/{period}/disclosure", response_model=Disclosure, response_model_exclude_unset=True)
def get_disclosure(state: State, period: str) -> dict[str, Any]:
    """A settled period's 公示 rebuilt from the events, its hash, the hash published on the log, and the
    `disclosure.published` event with its inclusion proof into the latest published checkpoint."""
    models = state.models
    period_id = period_ref(models.periods, "period", period)
    document = disclosure_document(period_id, models.periods, models.cases, models.balances.failed_periods())
    digest, _ = document_digest(document)
    published = next((e for e in state.followed.of("disclosure.published")
                      if e.envelope["body"]["period"] == period_id), None)
    published_hash = None if published is None else str(published.envelope["body"]["document_hash"])
    event = None if published is None else published_event(state, published.notification_id, published.entry)
    return {"period": period_id, "document": document, "document_hash": digest, "published_hash": published_hash,
            "matches": published_hash == digest, "event": event,
            "keys": [] if event is None or published is None else signer_keys(state, published.envelope)}


def signer_keys(state: ServiceState, envelope: dict[str, Any]) -> list[dict[str, Any]]:
    """The registrations a verifier needs for an event's signature — the root key's (entry 0) and the signer's —
    each with its inclusion proof into the latest published checkpoint."""
    keys = []
    for key_id in dict.fromkeys([state.ledger.app.keyring().root_key_id, envelope["actor"]["key"]]):
        registration = state.key_registration(key_id)
        shown = None if registration is None else published_event(state, registration.notification_id,
                                                                   registration.entry)
        if shown is not None:
            keys.append(shown)
    return keys


def published_event(state: ServiceState, notification_id: int, entry: bytes) -> dict[str, Any] | None:
    """An event with its inclusion proof into the latest published checkpoint, once one covers it."""
    latest = state.latest()
    index = state.index_of(notification_id)
    if latest is None or index is None or index >= latest.size:
        return None
    return {"index": index, "entry": entry.decode(), "proof": b64(state.log.inclusion_proof(index, latest.size)),
            "checkpoint": vars(latest)}


@router.get("/cases", response_model=Page[CaseCard])
def list_cases(state: State, plan: str | None = None, period: str | None = None, cursor: Cursor = None,
               limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """Case cards of the cases put on public notice, masked (coarse attributes only), in claim id order."""
    models = state.models
    conditions, params = ["noticed_at IS NOT NULL"], []
    if plan is not None:
        conditions.append("plan = ?")
        params.append(plan_ref(models.periods, "plan", plan))
    if period is not None:
        conditions.append("period = ?")
        params.append(period_ref(models.periods, "period", period))
    cards = models.cases.cards(" AND ".join(conditions), tuple(params))
    page = paginate(cards, lambda c: (c["claim"],), cursor, limit)
    page["items"] = [{**c, "case": c["claim"], "member": None if c["member"] is None else mask(str(c["member"])),
                      "jury_requested": bool(c["jury_requested"])} for c in page["items"]]
    return page


@router.get("/metrics", response_model=Metrics)
def get_metrics(state: State, plan: Annotated[list[str] | None, Query()] = None,
                since: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
                until: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, exclusive")] = None
                ) -> dict[str, Any]:
    """Regulator metrics per plan (shares, cases, approval rates, juries, times to decision and payment, refunds)
    and the custody figures of the whole fund."""
    models = state.models
    start, end = date_range(since, until)
    chosen = [plan_ref(models.periods, "plan", p) for p in plan or []] or [p["id"] for p in
                                                                          models.periods.plans_list()]
    data = metrics(models, chosen, start.isoformat() if start else "", end.isoformat() if end else "9999",
                   state.now())
    for plan_metrics in data["plans"]:
        for row in plan_metrics["periods"]:
            row["cases"] = None if row["cases"] is False else row["cases"]
    return data


# -- the log, as far as the latest published checkpoint ------------------------------------------------------


@router.get("/log/checkpoint", response_model=Checkpoint)
def latest_checkpoint(state: State) -> dict[str, Any]:
    """The latest published checkpoint with its witnesses' cosignatures."""
    latest = state.latest()
    if latest is None:
        raise InputError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED, "none published yet")
    return vars(latest)


@router.get("/log/checkpoints", response_model=Page[Checkpoint])
def list_checkpoints(state: State, cursor: Cursor = None, limit: Limit = DEFAULT_PAGE) -> dict[str, Any]:
    """Every published checkpoint, smallest first."""
    page = paginate(state.checkpoints.all(), lambda c: (c.size,), cursor, limit)
    page["items"] = [vars(c) for c in page["items"]]
    return page


@router.get("/log/entries", response_model=Page[LogEntry])
def list_entries(state: State, cursor: Cursor = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES_PAGE)] = 1000) -> dict[str, Any]:
    """The log's entries in order, up to the latest published checkpoint's size."""
    from ledger.api.dependencies import decode_cursor, encode_cursor

    start = 0
    if cursor is not None:
        key = decode_cursor(cursor)
        if len(key) != 1 or not isinstance(key[0], int) or key[0] < 0:
            raise InputError("cursor", Rule.CURSOR_MUST_BE_ONE_THE_SERVICE_GAVE, cursor[:80])
        start = key[0] + 1
    size = state.published_size()
    items: list[dict[str, Any]] = []
    last = start - 1
    for index, entry in state.log.entries(start):
        if index >= size or len(items) == limit:
            break
        items.append({"index": index, "entry": entry.decode()})
        last = index
    more = bool(items) and last + 1 < size
    return {"items": items, "next_cursor": encode_cursor([last]) if more else None}


def _published(state: ServiceState, field: str, size: int) -> None:
    if size > state.published_size():
        raise InputError(field, Rule.SIZE_MUST_NOT_EXCEED_THE_PUBLISHED_CHECKPOINT,
                         f"{size} > {state.published_size()}")


@router.get("/log/proofs/inclusion", response_model=InclusionProof)
def inclusion_proof(state: State, index: Annotated[int, Query(ge=0)],
                    size: Annotated[int, Query(ge=1)]) -> dict[str, Any]:
    """The inclusion proof of entry INDEX in the tree of SIZE (a published size)."""
    _published(state, "size", size)
    if index >= size:
        raise InputError("index", Rule.INDEX_MUST_BE_BELOW_THE_TREE_SIZE, f"{index} >= {size}")
    log = state.log
    return {"index": index, "size": size, "leaf_hash": b64([log.leaf_hash(index)])[0],
            "root": b64([log.root(size)])[0], "proof": b64(log.inclusion_proof(index, size))}


@router.get("/log/proofs/consistency", response_model=ConsistencyProof)
def consistency_proof(state: State, old: Annotated[int, Query(ge=1)],
                      size: Annotated[int, Query(ge=1)]) -> dict[str, Any]:
    """The consistency proof between tree sizes OLD and SIZE (published sizes)."""
    _published(state, "size", size)
    if old > size:
        raise InputError("old", Rule.OLD_SIZE_MUST_NOT_EXCEED_THE_NEW, f"{old} > {size}")
    log = state.log
    return {"old": old, "size": size, "old_root": b64([log.root(old)])[0], "root": b64([log.root(size)])[0],
            "proof": b64(log.consistency_proof(old, size))}

