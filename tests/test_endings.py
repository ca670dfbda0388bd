"""The end of a plan (docs/plans.md, "The end of a plan"): the operator funds its announced final periods and the
tail periods after the end (members charged 0), tail claims are funded and paid after termination, and the audit
recomputes who funds each period and rejects an altered one."""

from __future__ import annotations

from datetime import date, timedelta

from ledger.aggregates.sharing_period import plan_midnight
from ledger.bootstrap import Ledger
from ledger.envelope import format_at
from schemas.commands.claim import PayClaim
from schemas.commands.period import AssessPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod
from schemas.commands.plan import AnnounceClosing, TerminatePlan
from tests.support import advance, cid, clock_of, create_plan, join, rejected, rules
from tests.test_audit import audit, resign_and_audit
from tests.test_claim import file, investigate, notice
from tests.test_period import approved_claim, at_local, period_of


def china(day: str) -> str:
    """00:00 Beijing time on a day, as an instant."""
    return format_at(plan_midnight(date.fromisoformat(day), rules()))


def assess(app: Ledger, plan: str, number: int) -> str:
    opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=number))
    at_local(app, str(opened["notice_on"]), 1)
    app.execute(AssessPeriod(command_id=cid(), period=str(opened["period"])))
    return str(opened["period"])


def test_the_operator_pays_the_announced_final_periods(ledger_app: Ledger) -> None:
    """Closing announced on 14 April for 22 May with the last two periods paid: of the notice days 21 April,
    7 May and 21 May, members pay the first; the operator pays the others in full."""
    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    members = [join(app, plan) for _ in range(6)]
    advance(app, days=100)
    approved_claim(app, members[0])
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=china("2026-05-22"),
                                refund_deadline=china("2026-05-27"), claim_tail_days=180,
                                operator_pays_final_periods=2))
    first = period_of(app, assess(app, plan, 1)).require_assessment()
    assert (first.funded_by, first.share_fen, first.cap_applied) == ("members", 10, "per_case")  # type: ignore[attr-defined]
    approved_claim(app, members[1])
    second = period_of(app, assess(app, plan, 2)).require_assessment()
    assert (second.funded_by, second.share_fen) == ("operator", 0)  # type: ignore[attr-defined]
    assert second.subsidy_fen == second.need_fen == 30_000_000 + 2_400_000 - second.surplus_in_fen
    assert second.funded_aid_fen == 30_000_000 and second.surplus_out_fen == 0
    assert second.uncapped_share_fen > 0  # what members would have paid
    assert audit(app).ok, audit(app).failures[:3]
    failures = resign_and_audit(app, "period.assessed", lambda body: body.update(funded_by="members"), nth=1)
    assert "8 period (funded_by)" in failures


def test_members_keep_paying_without_an_announcement_before_the_cutoff(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    members = [join(app, plan) for _ in range(4)]
    advance(app, days=100)
    approved_claim(app, members[0])
    period = assess(app, plan, 1)
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=china("2026-05-01"),
                                refund_deadline=china("2026-05-06"), claim_tail_days=180,
                                operator_pays_final_periods=3))
    assert period_of(app, period).require_assessment().funded_by == "members"  # type: ignore[attr-defined]
    failures = resign_and_audit(app, "period.assessed", lambda body: body.update(funded_by="operator"))
    assert failures == ["8 period (funded_by)"]


def test_a_tail_claim_is_funded_by_the_operator_and_paid_after_termination(ledger_app: Ledger) -> None:
    """Diagnosed on 15 April, before the end on 20 April; filed, approved, funded by a tail period and paid in
    May, after termination."""
    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    claimant, *others = [join(app, plan) for _ in range(4)]
    advance(app, days=100)  # 11 April
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=china("2026-04-20"),
                                refund_deadline=china("2026-04-25"), claim_tail_days=180,
                                operator_pays_final_periods=3))
    clock_of(app).set(plan_midnight(date(2026, 4, 20), rules()) + timedelta(hours=1))
    app.execute(TerminatePlan(command_id=cid(), plan=plan))
    rejected(app, lambda: app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1)), "plan",
             "tail_period_needs_an_approved_claim")
    advance(app, days=2)
    rejected(app, lambda: file(app, others[0], "2026-04-21"), "diagnosed_on", "diagnosis_must_precede_the_plan_end")
    claim = file(app, claimant, "2026-04-15")
    investigate(app, claim)
    notice(app, claim)
    advance(app, days=3)
    from tests.test_claim import decide

    assert decide(app, claim)["decision"] == "approved"
    period = assess(app, plan, 1)
    a = period_of(app, period).require_assessment()
    assert (a.funded_by, a.share_fen, a.subsidy_fen) == ("operator", 0, 32_400_000)  # type: ignore[attr-defined]
    app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=a.subsidy_fen, reference="op-tail"))
    at_local(app, "2026-05-26", 1)  # grace ends two days before the next collection day
    settled = app.execute(SettlePeriod(command_id=cid(), period=period))
    assert (settled["shortfall_fen"], settled["surplus_carried_fen"]) == (0, 0)
    assert app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-tail"))["amount_fen"] == 30_000_000
    assert audit(app).ok, audit(app).failures[:3]
    failures = resign_and_audit(app, "period.assessed", lambda body: body.update(subsidy_fen=32_399_999))
    assert "8 period (subsidy_fen)" in failures
