"""Regulator metrics, per plan: share trend, members locked, cases, approval and rejection rates by reason,
objections and jury outcomes, time from filing to decision and to payment (as distributions), refunds past their
deadline during a wind-down, and the custody gap — a query over the read models, never personal data."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from ledger.envelope import format_at, parse_at
from ledger.projections import ReadModels

REPORT_FORMAT = "mutual-ledger/regulator-report/v1"
"""The format tag of the regulator's report document."""


def distribution(days: list[float]) -> dict[str, float | int | None]:
    """Count, p50, p90 and max of durations in days."""
    if not days:
        return {"count": 0, "p50": None, "p90": None, "max": None}
    ordered = sorted(days)
    return {"count": len(ordered), "p50": round(ordered[len(ordered) // 2], 2),
            "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 2), "max": round(ordered[-1], 2)}


def _days(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (parse_at(end) - parse_at(start)).total_seconds() / 86_400


def plan_metrics(models: ReadModels, plan: str, since: str, until: str, now: datetime) -> dict[str, Any]:
    """One plan's metrics for periods and cases in [since, until)."""
    periods = [p for p in models.periods.all(plan) if since <= p["cutoff_at"] < until]
    cases = [c for c in models.cases.cards("plan = ?", (plan,)) if since <= c["filed_at"] < until]
    decided = [c for c in cases if c["decision"] in ("approved", "rejected")]
    approved = [c for c in decided if c["decision"] == "approved"]
    reasons = Counter(str(c["decision_reason"]) for c in decided if c["decision"] == "rejected")
    verdicts = Counter(str(c["verdict"]) for c in cases if c["verdict"])
    refunds = models.journal.refund_obligations(plan)
    moment = format_at(now)
    overdue = [r for r in refunds if r[5] is not None and (
        (r[6] < r[3] and moment > r[5]) or (r[7] is not None and r[7] > r[5]))]
    return {
        "plan": plan,
        "periods": [{"number": p["number"], "notice_on": p["notice_on"], "status": p["status"],
                     "locked_members": p["locked_members"], "cases": p["aid_fen"] is not None
                     and len((models.periods.record(p["id"]) or {"cases": []})["cases"]),
                     "share_fen": p["share_fen"], "cap_applied": p["cap_applied"], "subsidy_fen": p["subsidy_fen"],
                     "failed_debits": p["failed_debits"], "uncollected_fen": p["uncollected_fen"]} for p in periods],
        "cases": {"filed": len(cases), "decided": len(decided), "approved": len(approved),
                  "rejected": len(decided) - len(approved),
                  "approval_rate": round(len(approved) / len(decided), 4) if decided else None,
                  "rejections_by_reason": dict(sorted(reasons.items())),
                  "objections": sum(int(c["objections"]) for c in cases),
                  "objections_upheld": sum(int(c["objections_upheld"]) for c in cases),
                  "jury_requests": sum(int(c["jury_requested"]) for c in cases),
                  "jury_verdicts": dict(sorted(verdicts.items()))},
        "days_filing_to_decision": distribution([d for c in decided if (d := _days(c["filed_at"], c["decided_at"]))
                                                 is not None]),
        "days_filing_to_payment": distribution([d for c in cases if (d := _days(c["filed_at"], c["paid_at"]))
                                                is not None]),
        "refunds": {"owed": len(refunds), "due_fen": sum(int(r[3]) for r in refunds),
                    "paid_fen": sum(int(r[6]) for r in refunds),
                    "past_deadline": len(overdue), "past_deadline_fen": sum(int(r[3]) - int(r[6]) for r in overdue
                                                                             if r[6] < r[3])},
    }


def metrics(models: ReadModels, plans: list[str], since: str, until: str, now: datetime) -> dict[str, Any]:
    """Metrics of each plan, and the custody figures of the whole fund."""
    return {"plans": [plan_metrics(models, plan, since, until, now) for plan in plans],
            "custody_gap_fen": models.journal.custody_gap(), "trial_balance_fen": models.journal.trial_balance()}


def report_document(models: ReadModels, since: str, until: str, as_of: datetime) -> dict[str, Any]:
    """The regulator's report over [since, until): per plan, shares, cases, approval rates, time to decision,
    refunds overdue; and the custody gap. Facts only from the read models of the signed events."""
    plans = sorted({p["plan"] for p in models.periods.all()} | {c["plan"] for c in models.cases.cards()})
    figures = metrics(models, plans, since, until, as_of)
    return {"format": REPORT_FORMAT, "since": since, "until": until, **figures}

