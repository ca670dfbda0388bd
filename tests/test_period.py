"""Sharing periods end to end on both plan types and both backends: open, assess (one signed event with the roll
root), collect, subsidy, payouts, settlement with lapses and the deficit carried on — and each rule broken."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from ledger.aggregates.membership import Membership
from ledger.aggregates.sharing_period import SharingPeriod, plan_midnight
from ledger.bootstrap import Ledger
from ledger.sharing import roll_root
from ledger.store import decode_entry
from schemas.commands.claim import DecideClaim, NoticeClaim, PayClaim
from schemas.commands.membership import Deposit, RecordDebitFailure
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod
from sim.fixtures import START, rules
from tests.support import advance, cid, clock_of, create_plan, join, prepaid_rules, rejected
from tests.test_claim import file, investigate, today


def approved_claim(app: Ledger, member: str, age: int = 30) -> str:
    """A claim filed, investigated, noticed and approved (the clock moves 3 days)."""
    claim = file(app, member, today(app, -1), age=age)
    investigate(app, claim, amount=30_000_000 if age <= 39 else 10_000_000)
    app.execute(NoticeClaim(command_id=cid(), claim=claim))
    advance(app, days=3)
    app.execute(DecideClaim(command_id=cid(), claim=claim))
    return claim


def period_of(app: Ledger, period: str) -> SharingPeriod:
    found = app.read(UUID(period), SharingPeriod)
    assert found is not None
    return found


def member_of(app: Ledger, member: str) -> Membership:
    found = app.read(UUID(member), Membership)
    assert found is not None
    return found


def at_local(app: Ledger, day: str, hours: int = 0) -> None:
    """Move the clock to a plan-time day (China) plus hours."""
    from datetime import date

    target = plan_midnight(date.fromisoformat(day), rules()) + timedelta(hours=hours)
    clock_of(app).set(target)


def test_postpaid_cycle(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    members = [join(app, plan, age=30) for _ in range(5)]
    claimant, late_payer = members[0], members[1]
    advance(app, days=100)  # 2026-04-11
    claim = approved_claim(app, claimant)
    opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))
    assert (opened["notice_on"], opened["collection_on"]) == ("2026-04-21", "2026-04-28")
    assert opened["cutoff_at"] == "2026-04-20T16:00:00.000000Z"
    period = str(opened["period"])
    rejected(app, lambda: app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1)), "number",
             "stream_id_must_be_new")
    rejected(app, lambda: app.execute(OpenPeriod(command_id=cid(), plan=plan, number=2)), "number",
             "previous_period_must_be_assessed_first")
    rejected(app, lambda: app.execute(OpenPeriod(command_id=cid(), plan=plan, number=3)), "number",
             "previous_period_must_exist")
    rejected(app, lambda: app.execute(AssessPeriod(command_id=cid(), period=period)), "period",
             "period_cannot_be_assessed_before_its_cutoff")
    late_joiner = join(app, plan)  # before the cutoff: locked too
    at_local(app, "2026-04-21", 1)
    after_cutoff = join(app, plan)  # after it: not locked
    result = app.execute(AssessPeriod(command_id=cid(), period=period))
    assessment = period_of(app, period).require_assessment()
    locked = sorted([*members, late_joiner])
    assert after_cutoff not in locked
    assert (assessment.locked_members, assessment.aid_fen, assessment.fee_fen) == (6, 30_000_000, 2_400_000)
    assert (assessment.uncapped_share_fen, assessment.share_fen, assessment.cap_applied) == (5_400_000, 10, "per_case")
    assert assessment.subsidy_fen == 32_400_000 - 60
    assert assessment.roll_root == roll_root(period, locked, 10).hex() == result["roll_root"]
    assert [c.claim for c in assessment.cases] == [claim]
    assessed_events = [decode_entry(e) for _, e in app.entries() if b'"period.assessed"' in e]
    assert len(assessed_events) == 1
    rejected(app, lambda: app.execute(AssessPeriod(command_id=cid(), period=period)), "period",
             "period_is_assessed_once")
    rejected(app, lambda: app.execute(CollectPeriod(command_id=cid(), period=period)), "period",
             "collection_from_balances_is_only_for_prepaid_plans")
    at_local(app, "2026-04-28", 9)
    app.execute(RecordDebitFailure(command_id=cid(), member=late_payer, period=period))
    rejected(app, lambda: app.execute(RecordDebitFailure(command_id=cid(), member=late_payer, period=period)),
             "period", "debit_can_fail_once_per_period")
    rejected(app, lambda: app.execute(RecordDebitFailure(command_id=cid(), member=after_cutoff, period=period)),
             "member", "member_must_be_locked_in_the_period")
    rejected(app, lambda: app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1")), "claim",
             "claim_is_paid_after_its_period_settles")  # only money collected is paid out
    rejected(app, lambda: app.execute(SettlePeriod(command_id=cid(), period=period)), "period",
             "period_cannot_settle_before_collection_and_grace_end")
    rejected(app, lambda: app.execute(ReceiveSubsidy(command_id=cid(), period=period,
                                                     amount_fen=assessment.subsidy_fen + 1, reference="op-1")),
             "amount_fen", "subsidy_must_not_exceed_the_assessed_subsidy")
    rejected(app, lambda: app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=100,
                                                     reference="op-1"), sign_as="operator"),
             "signer", "fund_movements_must_be_signed_by_a_custodian_key")
    app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=100, reference="op-1"))
    second = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=2))
    assert second["notice_on"] == "2026-05-07"
    at_local(app, "2026-05-07", 1)
    app.execute(AssessPeriod(command_id=cid(), period=str(second["period"])))
    at_local(app, "2026-05-12", 1)  # grace: two days before the next collection day (the 14th)
    rejected(app, lambda: app.execute(SettlePeriod(command_id=cid(), period=period)), "period",
             "subsidy_must_be_received_before_settlement")
    app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=assessment.subsidy_fen - 100,
                               reference="op-2"))
    settled = app.execute(SettlePeriod(command_id=cid(), period=period))
    # 10 fen uncollected: the fee absorbs the shortfall before any aid, and the surplus carried is 0, not -10
    assert (settled["uncollected_fen"], settled["lapsed"], settled["shortfall_fen"],
            settled["surplus_carried_fen"]) == (10, 1, 10, 0)
    assert member_of(app, late_payer).status == "lapsed"
    rejected(app, lambda: app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"), sign_as="operator"),
             "signer", "fund_movements_must_be_signed_by_a_custodian_key")
    paid = app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))
    assert (paid["amount_fen"], paid["arrears_deducted_fen"]) == (30_000_000, 0)
    rejected(app, lambda: app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-2")), "claim",
             "claim_is_paid_at_most_once")
    third = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=3))
    at_local(app, str(third["notice_on"]), 1)
    app.execute(AssessPeriod(command_id=cid(), period=str(third["period"])))
    third_assessment = period_of(app, str(third["period"])).require_assessment()
    second_assessment = period_of(app, str(second["period"])).require_assessment()
    assert second_assessment.surplus_in_fen == 0  # period 1 had not settled when period 2 was assessed
    assert third_assessment.surplus_in_fen == 0  # what period 1's settlement carried: money held only
    assert third_assessment.locked_members == 6  # the lapsed payer left, the late joiner is in


def test_prepaid_cycle_with_pro_rata_and_an_exhausted_balance(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    payer, rich, poor = join(app, plan), join(app, plan), join(app, plan)
    child = join(app, plan, age=4, payer=payer)
    for member, amount in ((payer, 500), (rich, 10_000), (poor, 100)):
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=amount, reference=cid("bank")))
    advance(app, days=100)
    claim = approved_claim(app, rich)
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    a = period_of(app, period).require_assessment()
    assert (a.locked_members, a.share_fen, a.cap_applied, a.subsidy_fen) == (4, 300, "per_case", 0)
    assert a.cases[0].funded_fen == 1_200 * 30_000_000 // 32_400_000 == 1_111
    assert a.funded_fee_fen == 1_200 * 2_400_000 // 32_400_000 == 88
    assert a.surplus_out_fen == 1
    rejected(app, lambda: app.execute(CollectPeriod(command_id=cid(), period=period)), "period",
             "collection_starts_on_the_collection_day")
    at_local(app, "2026-04-28", 9)
    assert app.execute(CollectPeriod(command_id=cid(), period=period))["failed_debits"] == 2
    assert app.execute(CollectPeriod(command_id=cid(), period=period))["failed_debits"] == 0
    failed = {decode_entry(e).stream for _, e in app.entries() if b'"member.debit_failed"' in e}
    assert failed == {child, poor}  # the payer's own share first, then the family in join order
    balances = app.balances()
    assert (balances.balance_fen(payer), balances.balance_fen(poor), balances.balance_fen(rich)) == (200, 100, 9_700)
    settled = app.execute(SettlePeriod(command_id=cid(), period=period))
    # 600 of the 1,200 assessed were collected: the case is paid those 600 (aid before the fee), not the 1,111 it
    # was funded for, which only member balances could have paid
    assert (settled["uncollected_fen"], settled["lapsed"], settled["shortfall_fen"]) == (600, 2, 1_199 - 600)
    assert settled["surplus_carried_fen"] == 0
    assert {m: member_of(app, m).status for m in (payer, child, poor, rich)} == {
        payer: "active", child: "lapsed", poor: "lapsed", rich: "active"}
    assert app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))["amount_fen"] == 600


def test_notice_day_must_be_in_the_calendar(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    rejected(ledger_app, lambda: ledger_app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1,
                                                               notice_on="2026-01-08")),
             "notice_on", "notice_day_must_be_in_the_plan_calendar")
    rejected(ledger_app, lambda: ledger_app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1,
                                                               notice_on="2025-12-21")),
             "notice_on", "notice_day_must_follow_the_previous_period_and_today")
    assert START.date().isoformat() == "2026-01-01"


def test_wind_down_makes_every_balance_a_refund_due_by_the_deadline(ledger_app: Ledger) -> None:
    from ledger.envelope import format_at
    from schemas.commands.membership import DisburseRefund
    from schemas.commands.period import WindDown
    from schemas.commands.plan import AnnounceClosing, TerminatePlan

    app = ledger_app
    plan = create_plan(app, prepaid_rules())
    payer, child, other = join(app, plan), None, join(app, plan)
    child = join(app, plan, age=5, payer=payer)
    app.execute(Deposit(command_id=cid(), member=payer, amount_fen=900, reference="b-1"))
    app.execute(Deposit(command_id=cid(), member=other, amount_fen=300, reference="b-2"))
    now = clock_of(app).current
    rejected(app, lambda: app.execute(WindDown(command_id=cid(), plan=plan)), "plan",
             "wind_down_follows_the_closing_announcement")
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(now + timedelta(days=5)),
                                refund_deadline=format_at(now + timedelta(days=10)), claim_tail_days=180))
    advance(app, days=5)
    app.execute(TerminatePlan(command_id=cid(), plan=plan))
    assert app.execute(WindDown(command_id=cid(), plan=plan))["refunds_due"] == 2
    assert app.execute(WindDown(command_id=cid(), plan=plan))["refunds_due"] == 0
    assert member_of(app, payer).refund_outstanding_fen() == 900
    assert member_of(app, child).status == "wound_down"  # family members end too, with nothing of their own due
    app.execute(DisburseRefund(command_id=cid(), member=payer, amount_fen=900, reference="out-1"))
    assert member_of(app, payer).refund_outstanding_fen() == 0
    assert app.balances().balance_fen(payer) == 0


def test_prepaid_collection_comes_before_settlement_and_the_next_assessment(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    payer, poor, rich = join(app, plan), join(app, plan), join(app, plan)
    join(app, plan, age=4, payer=payer)
    for member, amount in ((payer, 700), (rich, 10_000), (poor, 100)):
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=amount, reference=cid("bank")))
    advance(app, days=100)
    approved_claim(app, rich)
    first = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    rejected(app, lambda: app.execute(CollectPeriod(command_id=cid(), period=first)), "period",
             "only_an_assessed_unsettled_period_is_collected")
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=first))
    assert period_of(app, first).require_assessment().share_fen == 300
    at_local(app, "2026-04-28", 9)
    rejected(app, lambda: app.execute(SettlePeriod(command_id=cid(), period=first)), "period",
             "prepaid_period_must_be_collected_before_settlement")
    second = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=2))["period"])
    at_local(app, "2026-05-07", 1)
    rejected(app, lambda: app.execute(AssessPeriod(command_id=cid(), period=second)), "period",
             "previous_period_must_be_collected_first")
    # payer 700: own 300, child 300, 100 left; poor 100 cannot pay 300
    assert app.execute(CollectPeriod(command_id=cid(), period=first))["failed_debits"] == 1
    assert app.balances().balance_fen(payer) == 100
    app.execute(AssessPeriod(command_id=cid(), period=second))
    rejected(app, lambda: app.execute(CollectPeriod(command_id=cid(), period=first)), "period",
             "collection_precedes_the_next_assessment")
    settled = app.execute(SettlePeriod(command_id=cid(), period=first))
    assert (settled["uncollected_fen"], settled["lapsed"]) == (300, 1)
    assert member_of(app, poor).status == "lapsed"
    rejected(app, lambda: app.execute(SettlePeriod(command_id=cid(), period=first)), "period",
             "period_is_settled_once")
    rejected(app, lambda: app.execute(CollectPeriod(command_id=cid(), period=first)), "period",
             "only_an_assessed_unsettled_period_is_collected")


def test_subsidy_rules_and_a_terminated_plan(ledger_app: Ledger) -> None:
    from ledger.envelope import format_at
    from schemas.commands.plan import AnnounceClosing, TerminatePlan

    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    members = [join(app, plan) for _ in range(3)]
    advance(app, days=100)
    approved_claim(app, members[0])
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    rejected(app, lambda: app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=100,
                                                     reference="op-1")), "period", "period_must_be_assessed")
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=100, reference="op-1"))
    rejected(app, lambda: app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=100,
                                                     reference="op-1")), "reference", "subsidy_reference_must_be_new")
    now = clock_of(app).current
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(now + timedelta(days=1)),
                                refund_deadline=format_at(now + timedelta(days=5)), claim_tail_days=180))
    advance(app, days=1)
    app.execute(TerminatePlan(command_id=cid(), plan=plan))
    rejected(app, lambda: app.execute(OpenPeriod(command_id=cid(), plan=plan, number=2)), "plan",
             "tail_period_needs_an_approved_claim")


def test_a_period_opens_before_its_cutoff() -> None:
    from datetime import date

    from ledger.envelope import Actor
    from ledger.errors import DomainRuleError

    cutoff = plan_midnight(date(2026, 1, 7), rules())
    with pytest.raises(DomainRuleError) as caught:
        SharingPeriod.open("00000000-0000-4000-8000-000000000001", 1, cutoff, Actor("operator", "k"),
                           date(2026, 1, 7), date(2026, 1, 14), rules())
    assert (caught.value.field, caught.value.rule) == ("notice_on", "period_must_open_before_its_cutoff")
    opened = SharingPeriod.open("00000000-0000-4000-8000-000000000001", 1, cutoff - timedelta(microseconds=1),
                                Actor("operator", "k"), date(2026, 1, 7), date(2026, 1, 14), rules())
    assert opened.cutoff_at == cutoff
