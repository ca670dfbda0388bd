"""Member statements (爱心账单): what a member paid and whom it helped, for a date range or a year.

A query over the read models, all of them projections of the signed events: days in the plan, the periods the
member paid into (locked at the cutoff and not failed), the total shared, the people helped (the cases of those
periods), top-ups and refunds, the balance (never negative) and what is due or in arrears, the low-balance warning,
and the member's own claims.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from ledger.envelope import format_at, parse_at
from ledger.errors import InputError
from ledger.plan_days import day_start
from ledger.projections import ReadModels
from ledger.rules import Rule


def statement(models: ReadModels, member: str, since: date | None, until: date | None,
              as_of: datetime, sealed_claims: Iterable[str] = ()) -> dict[str, Any]:
    """The statement of `member` for [since, until): the periods whose notice day (the period's date, a plan day)
    falls in the range; open ends mean the whole membership. A sealed claim names no member on the log: the
    operator passes the member's sealed claims from its vault (`Vault.streams_of`). Its queries run in one snapshot
    (one connection and one transaction for all of them, every figure from the same state), one query per figure
    whatever the number of periods: a fixed number of round trips to the database."""
    with models.balances.sql.snapshot():
        return _statement(models, member, since, until, as_of, sealed_claims)


def _statement(models: ReadModels, member: str, since: date | None, until: date | None,
               as_of: datetime, sealed_claims: Iterable[str]) -> dict[str, Any]:
    """The statement (`statement`), its queries answered by the caller's snapshot."""
    row = models.balances.member(member)
    if row is None:
        raise InputError("member", Rule.MEMBERSHIP_MUST_EXIST, member)
    start = since.isoformat() if since else ""
    end = until.isoformat() if until else "9999"
    debits = models.balances.outstanding_debits_of(member)
    failed = {period for period, _ in debits}
    ended_at = row["ended_at"] or "9999"
    charged = models.balances.charges_of(member)  # the share, or less under their annual cap; none if left out
    charges = {}
    for p in models.periods.all(row["plan"]):
        if p["share_fen"] is not None and start <= p["notice_on"] < end and row["joined_at"] <= p["cutoff_at"] < (
                ended_at) and p["id"] not in failed and p["id"] in charged:
            charges[p["id"]] = (p, charged[p["id"]])
    paid_into = [p for p, _ in charges.values()]
    counts = models.periods.case_counts(row["plan"])
    cases = {p["id"]: counts.get(p["id"], 0) for p in paid_into}
    zone = models.balances.plan_zone(row["plan"])  # the range's days are plan days: they start at 00:00 plan time
    movements = models.journal.member_movements(
        member, None if since is None else format_at(day_start(since, zone)),
        None if until is None else format_at(day_start(until, zone)))
    account = row["payer"] or member
    position, warning = models.balances.account_state(account)
    ended = parse_at(row["ended_at"]) if row["ended_at"] else None
    stop = min(x for x in (as_of, ended, day_start(until, zone) if until else None) if x)
    return {
        "member": member, "plan": row["plan"], "status": row["status"], "payer": row["payer"],
        "from": since.isoformat() if since else None, "to": until.isoformat() if until else None,
        "days_in_plan": max(0, (stop - parse_at(row["joined_at"])).days),
        "periods_paid_into": len(paid_into),
        "shared_fen": sum(charged for _, charged in charges.values()),
        "people_helped": sum(cases.values()),
        "periods": [{"period": p["id"], "number": p["number"], "notice_on": p["notice_on"],
                     "share_fen": p["share_fen"], "charged_fen": charged, "cases": cases[p["id"]]}
                    for p, charged in charges.values()],
        "top_ups_fen": -movements.get("member.deposit_received", 0),
        "refunds_paid_fen": movements.get("member.refund_disbursed", 0),
        "account": account, "balance_fen": max(0, position), "due_fen": max(0, -position),  # `balance_fen`, `due_fen`
        "arrears_fen": sum(amount for _, amount in debits),
        "low_balance_warning": warning,
        "claims": [{"claim": c["claim"], "condition": c["condition"],
                    "diagnosed_month": c["diagnosed_month"], "decision": c["decision"],
                    "approved_fen": c["approved_fen"], "paid_fen": c["paid_fen"]}
                   for c in _claims_of(models, member, sealed_claims)],
    }


def _claims_of(models: ReadModels, member: str, sealed_claims: Iterable[str]) -> list[dict[str, Any]]:
    """The member's case cards, in one query: plain ones by their member column, sealed ones by the ids given."""
    sealed = tuple(sorted(set(sealed_claims)))
    where = "member = ?" + (f" OR claim IN ({', '.join('?' * len(sealed))})" if sealed else "")
    return models.cases.cards(where, (member, *sealed))  # one card a claim, in claim order


def render(s: dict[str, Any]) -> str:
    """The statement as the member reads it."""
    span = f"{s['from'] or 'joining'} to {s['to'] or 'today'}"
    lines = [f"爱心账单 — member {s['member']} ({s['status']}), {span}",
             f"  {s['days_in_plan']} days in the plan; paid into {s['periods_paid_into']} periods, shared "
             f"{s['shared_fen'] / 100:.2f} yuan and helped {s['people_helped']} people",
             f"  top-ups {s['top_ups_fen'] / 100:.2f} yuan, refunds {s['refunds_paid_fen'] / 100:.2f} yuan, "
             f"balance {s['balance_fen'] / 100:.2f} yuan" + (f", due {s['due_fen'] / 100:.2f} yuan"
                                                               if s["due_fen"] else "")
             + (f", arrears {s['arrears_fen'] / 100:.2f} yuan" if s["arrears_fen"] else "")
             + (" — below the plan's minimum: please top up" if s["low_balance_warning"] else "")]
    lines += [f"  claim {c['claim'][:8]} {c['condition']} ({c['diagnosed_month']}): {c['decision']}"
              + (f", paid {c['paid_fen'] / 100:.2f} yuan" if c["paid_fen"] else "") for c in s["claims"]]
    return "\n".join(lines)
