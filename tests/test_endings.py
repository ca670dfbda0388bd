"""The end of a plan (docs/plans.md, "The end of a plan"): the operator funds its announced final periods and the
tail periods after the end (members charged 0), tail claims are funded and paid after termination, and the audit
recomputes who funds each period and rejects an altered one."""

from __future__ import annotations

from datetime import date, timedelta

from ledger.aggregates.sharing_period import plan_midnight
from ledger.bootstrap import Ledger
from ledger.envelope import format_at
from ledger.store import decode_entry
from schemas.commands.claim import PayClaim
from schemas.commands.membership import AcceptConversion, Deposit, DisburseRefund, Exit, RecordDebitFailure
from schemas.commands.period import AssessPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod, WindDown
from schemas.commands.plan import AmendRules, AnnounceClosing, TerminatePlan
from sim.fixtures import rules
from tests.support import advance, cid, clock_of, create_plan, join, prepaid_rules, rejected
from tests.test_audit import audit, resign_and_audit
from tests.test_claim import file, investigate, notice
from tests.test_period import approved_claim, at_local, member_of, period_of


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
    second_period = assess(app, plan, 2)
    second = period_of(app, second_period).require_assessment()
    assert (second.funded_by, second.share_fen) == ("operator", 0)  # type: ignore[attr-defined]
    rejected(app, lambda: app.execute(RecordDebitFailure(command_id=cid(), member=members[2], period=second_period)),
             "period", "a_zero_share_cannot_fail")  # members were charged nothing: no debit can fail
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


def test_a_wind_down_from_the_announcement_ends_every_membership(ledger_app: Ledger) -> None:
    """水滴-style: balances refunded within five days of the announcement, a conversion offered and taken, every
    membership ended (family, zero balance, postpaid), cover kept for diagnoses before the end, books at zero."""
    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    postpaid = create_plan(app, rules(), name="Postpaid plan")
    payer, other, empty, leaver = (join(app, plan) for _ in range(4))
    child = join(app, plan, age=5, payer=payer)
    postpaid_members = [join(app, postpaid) for _ in range(2)]
    for member, amount in ((payer, 900), (other, 300), (leaver, 200)):
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=amount, reference=cid("bank")))
    advance(app, days=100)
    app.execute(Exit(command_id=cid(), member=leaver))
    rejected(app, lambda: app.execute(WindDown(command_id=cid(), plan=plan)), "plan",
             "wind_down_follows_the_closing_announcement")
    rejected(app, lambda: app.execute(AcceptConversion(command_id=cid(), member=other)), "member",
             "conversion_must_be_offered")
    now = clock_of(app).current
    offer = "free one-year critical illness policy"
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(now + timedelta(days=5)),
                                refund_deadline=format_at(now + timedelta(days=5)), claim_tail_days=180,
                                conversion_offer=offer))
    result = app.execute(WindDown(command_id=cid(), plan=plan))  # at the announcement, before the end
    assert (result["refunds_due"], result["memberships_ended"]) == (2, 4)
    assert app.execute(WindDown(command_id=cid(), plan=plan))["refunds_due"] == 0
    statuses = {m: member_of(app, m).status for m in (payer, other, empty, child, leaver)}
    assert statuses == {payer: "wound_down", other: "wound_down", empty: "wound_down", child: "wound_down",
                        leaver: "exited"}
    assert app.execute(AcceptConversion(command_id=cid(), member=other))["offer"] == offer
    rejected(app, lambda: app.execute(AcceptConversion(command_id=cid(), member=other)), "member",
             "conversion_is_accepted_once")
    rejected(app, lambda: app.execute(AcceptConversion(command_id=cid(), member=leaver)), "member",
             "conversion_is_for_members_at_the_closing")
    claim = file(app, other, now.date().isoformat())  # wound down, still covered for diagnoses before the end
    assert claim
    advance(app, days=2)
    for member, amount in ((payer, 900), (other, 300), (leaver, 200)):
        app.execute(DisburseRefund(command_id=cid(), member=member, amount_fen=amount, reference=cid("out")))
    app.execute(AnnounceClosing(command_id=cid(), plan=postpaid, ends_at=format_at(now + timedelta(days=5)),
                                refund_deadline=format_at(now + timedelta(days=5)), claim_tail_days=180,
                                operator_pays_final_periods=3))
    assert app.execute(WindDown(command_id=cid(), plan=postpaid))["memberships_ended"] == 2
    assert {member_of(app, m).status for m in postpaid_members} == {"wound_down"}
    advance(app, days=4)
    app.execute(TerminatePlan(command_id=cid(), plan=plan))
    books = app.read_models().journal.balances()
    assert (books["member_balances"], books["refunds_payable"] + books["refunds_paid"]) == (0, 0)
    assert audit(app).ok, audit(app).failures[:3]


def test_a_refund_paid_after_its_deadline_is_caught(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, prepaid_rules())
    member = join(app, plan)
    app.execute(Deposit(command_id=cid(), member=member, amount_fen=500, reference=cid("bank")))
    now = clock_of(app).current
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(now + timedelta(days=5)),
                                refund_deadline=format_at(now + timedelta(days=5)), claim_tail_days=180))
    app.execute(WindDown(command_id=cid(), plan=plan))
    advance(app, days=3)
    app.execute(DisburseRefund(command_id=cid(), member=member, amount_fen=400, reference="out-1"))
    advance(app, days=3)
    app.execute(DisburseRefund(command_id=cid(), member=member, amount_fen=100, reference="out-2"))
    assert [f.check for f in audit(app).failures] == ["10 money (wind-down refund by its deadline)"]


def test_a_lapse_refunds_what_is_left_of_the_balance(ledger_app: Ledger) -> None:
    """Finding 4: a balance that cannot cover a whole share lapses, and its remainder is a refund due (schema 2 of
    member.lapsed), paid by the custodian; a family member's lapse owes nothing of its own."""
    from tests.test_money_never_negative import prepaid_shortfall

    app = ledger_app
    period, _ = prepaid_shortfall(app)
    app.execute(SettlePeriod(command_id=cid(), period=period))
    lapsed = [decode_entry(e) for _, e in app.entries() if b'"member.lapsed"' in e]
    assert sorted((e.schema, e.body["refund_due_fen"]) for e in lapsed) == [(2, 0), (2, 100)]
    poor = next(e.stream for e in lapsed if e.body["refund_due_fen"] == 100)
    assert member_of(app, poor).refund_outstanding_fen() == 100
    assert app.balances().balance_fen(poor) == 0
    app.execute(DisburseRefund(command_id=cid(), member=poor, amount_fen=100, reference="out-lapse"))
    assert member_of(app, poor).refund_outstanding_fen() == 0
    assert audit(app).ok, audit(app).failures[:3]


def test_a_switch_to_postpaid_keeps_the_balance_and_each_periods_own_model(ledger_app: Ledger) -> None:
    """Finding 5 (比邻互助 switched): after an amendment to postpaid the account keeps its balance, postpaid shares
    come from the channel, not the balance, and an exit refunds the balance."""
    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    members = [join(app, plan) for _ in range(3)]
    for member in members:
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=4_800, reference=cid("bank")))
    advance(app, days=100)
    approved_claim(app, members[0])
    app.execute(AmendRules(command_id=cid(), plan=plan, effective_from=format_at(clock_of(app).current),
                           rules=rules(notice_days=3)))
    period = assess(app, plan, 1)
    assessment = period_of(app, period).require_assessment()
    assert (assessment.payment_model, assessment.share_fen) == ("postpaid", 10)  # type: ignore[attr-defined]
    assert app.balances().balance_fen(members[1]) == 4_800  # the channel collects postpaid shares
    assert app.execute(Exit(command_id=cid(), member=members[1]))["refund_due_fen"] == 4_800
    books = app.read_models().journal.balances()
    assert books["member_balances"] == -(4_800 * 2)  # two balances held, one moved to refunds payable
    assert audit(app).ok, audit(app).failures[:3]
    failures = resign_and_audit(app, "period.assessed", lambda body: body.update(payment_model="prepaid"))
    assert "8 period (payment_model)" in failures


def test_a_terminated_plans_last_surplus_is_released_after_its_claim_tail(ledger_app: Ledger) -> None:
    """The pool of a terminated plan still holds what its last settlement carried (here the fen a pro-rata split
    rounded off); after the claim tail, every period settled, the custodian pays it out once and the books hold
    nothing. The audit recomputes the amount."""
    from schemas.commands.period import CollectPeriod
    from schemas.commands.plan import ReleaseSurplus
    from tests.test_audit import history

    app = ledger_app
    history(app)  # a prepaid plan, one period assessed, collected, settled and paid (11 April to 28 April)
    plan = app.read_models().periods.plans_list()[0]["id"]
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=china("2026-05-20"),
                                refund_deadline=china("2026-05-25"), claim_tail_days=30,
                                operator_pays_final_periods=0))
    rejected(app, lambda: app.execute(ReleaseSurplus(command_id=cid(), plan=plan, reference="out-1")), "plan",
             "surplus_is_released_after_termination")
    second = assess(app, plan, 2)  # 7 May, members still pay
    clock_of(app).set(plan_midnight(date(2026, 5, 20), rules()) + timedelta(hours=1))
    app.execute(TerminatePlan(command_id=cid(), plan=plan))
    rejected(app, lambda: app.execute(ReleaseSurplus(command_id=cid(), plan=plan, reference="out-1")), "plan",
             "surplus_is_released_after_the_claim_tail")
    at_local(app, "2026-06-20", 1)
    rejected(app, lambda: app.execute(ReleaseSurplus(command_id=cid(), plan=plan, reference="out-1")), "plan",
             "every_period_must_be_settled_first")
    app.execute(CollectPeriod(command_id=cid(), period=second))
    app.execute(SettlePeriod(command_id=cid(), period=second))
    held = app.read_models().journal.balances(plan)["surplus"]
    assert held < 0  # a credit balance: money the pool holds
    released = app.execute(ReleaseSurplus(command_id=cid(), plan=plan, reference="out-1"))
    assert released["amount_fen"] == -held
    assert app.read_models().journal.balances(plan)["surplus"] == 0
    rejected(app, lambda: app.execute(ReleaseSurplus(command_id=cid(), plan=plan, reference="out-2")), "plan",
             "surplus_is_released_once")
    empty = create_plan(app, rules(), name="Empty plan")
    soon = format_at(clock_of(app).current + timedelta(hours=1))
    app.execute(AnnounceClosing(command_id=cid(), plan=empty, ends_at=soon, refund_deadline=soon, claim_tail_days=0,
                                operator_pays_final_periods=0))
    advance(app, hours=2)
    app.execute(TerminatePlan(command_id=cid(), plan=empty))
    rejected(app, lambda: app.execute(ReleaseSurplus(command_id=cid(), plan=empty, reference="out-3")), "plan",
             "surplus_must_be_held_to_be_released")
    assert [f.check for f in audit(app).failures if not f.check.startswith("12 ")] == []
    failures = resign_and_audit(app, "plan.surplus_released", lambda body: body.update(amount_fen=body["amount_fen"]
                                                                                        + 1))
    assert "8 surplus release (amount_fen)" in failures
