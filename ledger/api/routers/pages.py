"""The pages people read, on the service's own origin: the public ones drawn on the server from the read models —
the plans, a plan's rules and the share of every period as a chart, each period's 公示 with its case cards — and the
member's, custodian's and regulator's pages, whose data the browser fetches with requests signed by the person's
own key and checks itself (`ledger/web/static/js/pages/`). Chinese first, English with `?lang=en`.

A plan or period that does not exist is an HTML page saying so (404), never a traceback; the JSON API answers the
same questions under /api/v1 for programs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from starlette.responses import FileResponse, HTMLResponse

from ledger.aggregates.plan import Plan
from ledger.anchors import TRUST_ANCHORS_FILE, TrustAnchors
from ledger.api.charts import Point, share_chart
from ledger.api.dependencies import service
from ledger.api.render import WEB, catalog, language_of, render
from ledger.api.routers.regulator import REASONS
from ledger.api.state import ServiceState
from ledger.cli.refs import period_ref, plan_ref
from ledger.errors import InputError
from ledger.projections.cases import disclosure_document

router = APIRouter(include_in_schema=False)
State = Annotated[ServiceState, Depends(service)]
Lang = Annotated[str | None, Query(alias="lang", max_length=10)]
CARD_FIELDS = ("category", "condition", "age_at_diagnosis", "age_band", "sex", "province", "diagnosed_on",
               "diagnosis_month", "joined_month",
               "investigation_firm", "investigator", "days_in_plan_at_diagnosis", "decision_basis", "objections",
               "jury_verdict", "jury_votes", "jury_support", "votes", "support", "approved_fen", "aid_fen",
               "payable_fen", "helped_people", "shared_fen")
"""The card fields the page names, in the order shown; any other field a document carries is shown after them,
under its own name (a later document format's fields appear without a change here)."""
HIDDEN_CARD_FIELDS = ("case", "member")


def shown(value: Any, language: str) -> Any:
    """A card value as the page shows it: a province by its name in the page's language (format v2 carries both),
    an investigation firm by its public name (or its key id when it registered none)."""
    if isinstance(value, dict) and "zh-CN" in value:
        return value["zh-CN" if language == "zh-CN" else "en"]
    if isinstance(value, dict) and "key_id" in value:
        return value.get("name") or f"key {value['key_id']}"
    return value


def trust_anchors(state: ServiceState) -> dict[str, Any] | None:
    """The service's published trust anchors (what the browser checks against: the log's key and the witness
    policy), checked as every verifier reads them, or None when the service publishes none."""
    path = state.ledger.settings.data_dir / TRUST_ANCHORS_FILE
    return TrustAnchors.load(path).entries if path.is_file() else None


def not_found(language: str, what: str) -> HTMLResponse:
    """The page for a plan or period that does not exist."""
    return render("not_found.html", language, status=404, what=what)


@router.get("/", response_class=HTMLResponse)
def plans_page(state: State, lang: Lang = None) -> HTMLResponse:
    """Every plan, with its latest share."""
    language = language_of(lang)
    periods = state.models.periods
    plans = []
    for plan in periods.plans_list():
        assessed = [p for p in periods.all(plan["id"]) if p["share_fen"] is not None]
        plans.append({**plan, "periods": len(assessed), "latest": assessed[-1] if assessed else None})
    return render("plans.html", language, plans=plans)


@router.get("/plans/{plan}", response_class=HTMLResponse)
def plan_page(state: State, plan: str, lang: Lang = None) -> HTMLResponse:
    """A plan's rules, every version, and the share of each assessed period as a chart and a table."""
    language = language_of(lang)
    periods = state.models.periods
    try:
        plan_id = plan_ref(periods, "plan", plan)
    except InputError:
        return not_found(language, plan)
    row = next(p for p in periods.plans_list() if p["id"] == plan_id)
    aggregate = state.ledger.app.read(UUID(plan_id), Plan)
    assert aggregate is not None, "a plan of the read models is stored"
    versions = [{"version": v.version, "effective_from": v.effective_from.date().isoformat(),
                 "rules": v.rules.model_dump(mode="json")} for v in aggregate.versions]
    counts = periods.case_counts(plan_id)
    rows = [{**period, "cases": counts.get(str(period["id"]), 0)} for period in periods.all(plan_id)]
    assessed = [r for r in rows if r["share_fen"] is not None]
    messages = catalog(language)
    chart = share_chart([Point(str(r["number"]), int(r["share_fen"])) for r in assessed],
                        messages["chart_title"], messages["chart_unit"])
    return render("plan.html", language, plan=row, versions=versions, periods=rows, chart=chart)


@router.get("/periods/{period}", response_class=HTMLResponse)
def period_page(state: State, period: str, lang: Lang = None) -> HTMLResponse:
    """A period's terms and, once settled, its 公示: the case cards and the control that verifies the document in
    the browser against the signed `disclosure.published` event and the checkpoint."""
    language = language_of(lang)
    models = state.models
    try:
        period_id = period_ref(models.periods, "period", period)
    except InputError:
        return not_found(language, period)
    record = models.periods.record(period_id)
    assert record is not None
    plan = next(p for p in models.periods.plans_list() if p["id"] == record["plan"])
    document = None
    if record["status"] == "settled":
        document = disclosure_document(period_id, models.periods, models.cases, models.balances.failed_periods())
    published = next((e for e in state.followed.of("disclosure.published")
                      if e.envelope["body"]["period"] == period_id), None)
    index = None if published is None else state.index_of(published.notification_id)
    verifiable = index is not None and index < state.published_size()  # a checkpoint covers the event
    cards = []
    for card in (document or {"cases": []})["cases"]:
        named = [(name, shown(card[name], language)) for name in CARD_FIELDS if name in card]
        named += [(name, shown(value, language)) for name, value in card.items()
                  if name not in CARD_FIELDS and name not in HIDDEN_CARD_FIELDS]
        cards.append({"case": card.get("case"), "member": card.get("member"), "fields": named})
    return render("period.html", language, script="period", period=record, plan=plan, document=document,
                  cards=cards, verifiable=verifiable,
                  data={"period": period_id, "anchors": trust_anchors(state)})


def signed_page(template: str, script: str, state: ServiceState, lang: str | None, **context: Any) -> HTMLResponse:
    """A page whose data the browser fetches with requests signed by the reader's own key."""
    return render(template, language_of(lang), script=script, data={"anchors": trust_anchors(state)}, **context)


@router.get("/member", response_class=HTMLResponse)
def member_page(state: State, lang: Lang = None) -> HTMLResponse:
    """The member's page: signing in with their key file, the 爱心账单 and "Verify my history"."""
    return signed_page("member.html", "member", state, lang)


@router.get("/custodian", response_class=HTMLResponse)
def custodian_page(state: State, lang: Lang = None) -> HTMLResponse:
    """The custodian's page: the journal, the trial balance, reconciling a bank statement, the witnesses'
    cosignatures."""
    return signed_page("custodian.html", "custodian", state, lang)


@router.get("/regulator", response_class=HTMLResponse)
def regulator_page(state: State, lang: Lang = None) -> HTMLResponse:
    """The regulator's page: the queries with filters and CSV, the metrics as charts, publishing a signed report."""
    return signed_page("regulator.html", "regulator", state, lang, reasons=REASONS)


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    """The site's icon (browsers ask for it whatever the page says)."""
    return FileResponse(Path(WEB / "static" / "icon.svg"), media_type="image/svg+xml")

