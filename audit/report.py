"""Regulator queries and the regulator's report — over the read models, never beyond what docs/domain.md allows:
coarse attributes only (no names exist in the events); a case row names no member and shows the month of diagnosis
and the 5-year age band, never the exact date or age (docs/privacy.md: exact values are revealed per case, to the
regulator's key, through the service)."""

from __future__ import annotations

import csv
import io
from typing import Any

from ledger.projections import ReadModels
from ledger.projections.cases import mask
from ledger.projections.periods import COLUMNS

CASE_FIELDS = ("claim", "plan", "category", "condition", "diagnosed_month", "age_band", "sex", "province",
               "filed_at", "decision", "decision_reason", "decision_basis", "verdict", "approved_fen",
               "period_number", "paid_fen", "paid_at")
PERIOD_FIELDS = COLUMNS
REFUND_FIELDS = ("member", "plan", "reason", "due_fen", "due_at", "deadline", "paid_fen", "paid_at", "status")


def query_cases(models: ReadModels, plan: str | None = None, since: str = "", until: str = "9999",
                category: str | None = None, reason: str | None = None,
                jury: str | None = None) -> list[dict[str, Any]]:
    """Case rows filtered by plan, filing range, category, decision reason and jury outcome; no member named."""
    rows = []
    for card in models.cases.cards():
        if (plan and card["plan"] != plan) or not since <= card["filed_at"] < until:
            continue
        if (category and card["category"] != category) or (reason and card["decision_reason"] != reason):
            continue
        if jury and card["verdict"] != jury:
            continue
        rows.append({k: card[k] for k in CASE_FIELDS})
    return rows


def query_periods(models: ReadModels, plan: str | None = None, since: str = "", until: str = "9999"
                  ) -> list[dict[str, Any]]:
    """Period records whose notice day falls in [since, until)."""
    return [p for p in models.periods.all(plan) if since <= p["notice_on"] < until]


def query_refunds(models: ReadModels, plan: str | None, now: str, status: str | None = None) -> list[dict[str, Any]]:
    """Refund obligations (wind-down status): outstanding, paid, or overdue; members masked."""
    rows = []
    for member, plan_id, reason, due, due_at, deadline, paid, paid_at in models.journal.refund_obligations(plan):
        overdue = deadline is not None and (
            (paid < due and now > deadline) or (paid_at is not None and paid_at > deadline))
        state = "overdue" if overdue else "paid" if paid >= due else "outstanding"
        if status and state != status:
            continue
        rows.append({"member": mask(member), "plan": plan_id, "reason": reason, "due_fen": due, "due_at": due_at,
                     "deadline": deadline, "paid_fen": paid, "paid_at": paid_at, "status": state})
    return rows


def to_csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    """Rows as CSV with a header row, also when there is no row."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()

