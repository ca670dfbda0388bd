"""The custodian's routes, for requests signed with a custodian key: the fund's double-entry journal, the trial
balance and the custody check, and the reconciliation of the custodian's own bank statement (the CSV documented in
`audit/reconcile.py`) against the ledger's fund movements. Reconciling reads; it writes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from audit.reconcile import read_statement, reconcile
from ledger.api.dependencies import Caller, caller, require_role, service
from ledger.api.problem import problem_responses
from ledger.api.state import ServiceState
from ledger.cli.base import parse_date
from ledger.cli.refs import plan_ref
from ledger.errors import InputError
from ledger.rules import Rule
from schemas.api import Journal, Reconciliation, TrialBalance

router = APIRouter(prefix="/custodian", tags=["custodian"], responses=problem_responses(400, 401, 403, 404))
State = Annotated[ServiceState, Depends(service)]
Signed = Annotated[Caller, Depends(caller)]
CSV = "text/csv"
STATEMENT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {CSV: {"schema": {
    "type": "string", "description": "The bank statement: CSV with the header "
                                     "date,reference,direction,amount_fen,counterparty (audit/reconcile.py)."}}}}}


@router.get("/journal", response_model=Journal)
def journal(state: State, who: Signed, plan: str | None = None,
            until: Annotated[str | None, Query(description="YYYY-MM-DD: postings up to the end of that day")] = None
            ) -> dict[str, Any]:
    """The fund's accounts (debit balances positive), for one plan or all, up to a day or now; with the trial
    balance and the custody gap of the whole fund."""
    require_role(who, "custodian")
    models = state.models
    plan_id = plan_ref(models.periods, "plan", plan) if plan else None
    day = parse_date("until", until)
    accounts = models.journal.balances(plan_id, f"{day.isoformat()}T23:59:59.999999Z" if day else None)
    return {"accounts": accounts, "trial_balance_fen": models.journal.trial_balance(),
            "custody_gap_fen": models.journal.custody_gap()}


@router.get("/trial-balance", response_model=TrialBalance)
def trial_balance(state: State, who: Signed) -> dict[str, Any]:
    """The trial balance (zero when the books balance) and the custody gap (zero when custody is complete)."""
    require_role(who, "custodian")
    journal = state.models.journal
    total, gap = journal.trial_balance(), journal.custody_gap()
    return {"trial_balance_fen": total, "custody_gap_fen": gap, "balanced": total == 0 and gap == 0}


@router.post("/reconciliation", response_model=Reconciliation, openapi_extra=STATEMENT_BODY)
async def reconciliation(state: State, who: Signed, request: Request,
                         window_days: Annotated[int, Query(ge=0, le=366)] = 3) -> dict[str, Any]:
    """Match the custodian's bank statement (the request's body, `text/csv`) against the ledger's fund movements:
    every finding (missing on either side, amount or direction mismatch, duplicate, outside the booking window)
    and the custody gap. The same as `mutual-ledger audit reconcile`."""
    require_role(who, "custodian")
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != CSV:
        raise InputError("Content-Type", Rule.STATEMENT_MUST_BE_SENT_AS_CSV, "send the statement as text/csv")
    try:
        movements = read_statement((await request.body()).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError("statement", Rule.STATEMENT_MUST_FOLLOW_THE_FORMAT, str(error)) from None

    def run() -> dict[str, Any]:
        entries = [entry for _, entry in state.ledger.entries()]
        return reconcile(entries, movements, window_days).to_json()

    return await run_in_threadpool(run)
