"""Money never goes negative (docs/plans.md, "Money held"): payouts are sized at settlement from what a period
actually holds, the surplus carried is never negative, an operator advance is explicit and signed, and the audit
recomputes every settlement and rejects an altered one.

The property test runs the arithmetic of whole plan histories — many periods, random caps, policies, failed debits,
subsidies and advances, each settlement's surplus carried into the next assessment — a thousand times per run
(`MONEY_HISTORIES=20000` for a long run)."""

from __future__ import annotations

import os
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.aggregates.sharing_period import SharingPeriod
from ledger.bootstrap import Ledger
from ledger.sharing import assess, settle
from schemas.commands.claim import PayClaim
from schemas.commands.membership import Deposit
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, ReceiveAdvance, SettlePeriod
from tests.support import advance, cid, create_plan, join, prepaid_rules, rejected
from tests.test_audit import audit, resign_and_audit
from tests.test_period import approved_claim, at_local


def test_settlement_pays_aid_before_the_fee_and_carries_what_is_left() -> None:
    full = settle([("c1", 1_000), ("c2", 500)], 120, 2_000, 0, 0, 300, 0)
    assert (full.available_fen, full.payable, full.fee_payable_fen, full.surplus_carried_fen) == (
        1_700, (("c1", 1_000), ("c2", 500)), 120, 80)
    short_fee = settle([("c1", 1_000), ("c2", 500)], 120, 2_000, 0, 0, 450, 0)
    assert (short_fee.payable, short_fee.fee_payable_fen, short_fee.shortfall_fen) == (
        (("c1", 1_000), ("c2", 500)), 50, 70)
    short_aid = settle([("c1", 1_000), ("c2", 500)], 120, 2_000, 0, 100, 1_400, 0)
    assert short_aid.available_fen == 700
    assert short_aid.payable == (("c1", 700 * 1_000 // 1_500), ("c2", 700 * 500 // 1_500)) == (("c1", 466),
                                                                                              ("c2", 233))
    assert (short_aid.fee_payable_fen, short_aid.surplus_carried_fen) == (0, 1)
    advanced = settle([("c1", 1_000), ("c2", 500)], 120, 2_000, 0, 100, 1_400, 920)
    assert (advanced.payable, advanced.fee_payable_fen, advanced.shortfall_fen) == (
        (("c1", 1_000), ("c2", 500)), 120, 0)


period_strategy = st.tuples(
    st.integers(0, 300),  # locked members
    st.lists(st.integers(1, 30_000_000), max_size=4),  # approved amounts
    st.integers(0, 2_000),  # fee bps
    st.integers(0, 5_000),  # per-case cap
    st.integers(0, 20_000),  # annual cap left
    st.sampled_from(["operator_pays", "pro_rata"]),
    st.floats(0, 1),  # share of debits that fail
    st.floats(0, 1),  # share of the shortfall the operator advances
    st.booleans(),  # settles before the next assessment
)


@settings(max_examples=int(os.environ.get("MONEY_HISTORIES", "1000")), deadline=None)
@given(st.lists(period_strategy, min_size=1, max_size=8))
def test_random_histories_never_go_negative(periods: list[tuple[int, list[int], int, int, int, str, float, float,
                                                                      bool]]) -> None:
    """Every term is non-negative, every settlement conserves money, the pool never pays out more than it
    received, and what members were charged but did not pay never funds a payout."""
    received = paid = 0
    carry_waiting: list[int] = []  # surpluses carried by settlements not yet taken into an assessment
    unsettled: list[tuple[object, int, float, float]] = []
    for locked, amounts, fee_bps, per_case, annual, policy, failing, advancing, settles_now in periods:
        surplus_in = sum(carry_waiting)
        carry_waiting.clear()
        a = assess(locked, [(f"c{i}", x) for i, x in enumerate(amounts)], fee_bps, surplus_in, per_case, annual,
                   policy)
        assert a.surplus_in_fen >= 0 and a.surplus_out_fen >= 0
        unsettled.append((a, surplus_in, failing, advancing))
        batch = unsettled if settles_now else unsettled[:-1]
        for assessment, carried_in, fail_share, advance_share in batch:
            assert isinstance(assessment, type(a))
            uncollected = int(assessment.locked_members * fail_share) * assessment.share_fen
            cases = [(c.claim, c.funded_fen) for c in assessment.cases]
            without = settle(cases, assessment.funded_fee_fen, assessment.raised_fen, assessment.subsidy_fen,
                             carried_in, uncollected, 0)
            advance_fen = int(without.shortfall_fen * advance_share)
            s = settle(cases, assessment.funded_fee_fen, assessment.raised_fen, assessment.subsidy_fen, carried_in,
                       uncollected, advance_fen)
            assert s.surplus_carried_fen >= 0 and s.fee_payable_fen >= 0
            assert all(0 <= amount <= funded for (_, amount), (_, funded) in zip(s.payable, cases, strict=True))
            assert s.available_fen == sum(amount for _, amount in s.payable) + s.fee_payable_fen + s.surplus_carried_fen
            assert s.shortfall_fen == max(0, s.owed_fen - s.available_fen)
            received += s.collected_fen + assessment.subsidy_fen + advance_fen
            paid += sum(amount for _, amount in s.payable) + s.fee_payable_fen
            carry_waiting.append(s.surplus_carried_fen)
        unsettled = [] if settles_now else unsettled[-1:]
        # the pool holds exactly the surpluses waiting for an assessment and those taken by unsettled periods
        held = sum(carry_waiting) + sum(carried_in for _, carried_in, _, _ in unsettled)
        assert received - paid == held >= 0


def prepaid_shortfall(app: Ledger) -> tuple[str, str]:
    """A prepaid period of 4 members with 1,200 fen assessed and 600 collected; returns (period, claim)."""
    plan = create_plan(app, prepaid_rules(notice_days=3))
    payer, rich, poor = join(app, plan), join(app, plan), join(app, plan)
    join(app, plan, age=4, payer=payer)
    for member, amount in ((payer, 500), (rich, 10_000), (poor, 100)):
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=amount, reference=cid("bank")))
    advance(app, days=100)
    claim = approved_claim(app, rich)
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    at_local(app, "2026-04-28", 9)
    app.execute(CollectPeriod(command_id=cid(), period=period))
    return period, claim


def test_an_operator_advance_pays_the_case_in_full(ledger_app: Ledger) -> None:
    app = ledger_app
    period, claim = prepaid_shortfall(app)
    # funded aid 1,111 + fee 88 = 1,199 owed; 600 collected: the shortfall is 599
    rejected(app, lambda: app.execute(ReceiveAdvance(command_id=cid(), period=period, amount_fen=600,
                                                     reference="adv-1")), "amount_fen",
             "advance_must_not_exceed_the_shortfall")
    rejected(app, lambda: app.execute(ReceiveAdvance(command_id=cid(), period=period, amount_fen=500,
                                                     reference="adv-1"), sign_as="operator"),
             "signer", "fund_movements_must_be_signed_by_a_custodian_key")
    app.execute(ReceiveAdvance(command_id=cid(), period=period, amount_fen=500, reference="adv-1"))
    rejected(app, lambda: app.execute(ReceiveAdvance(command_id=cid(), period=period, amount_fen=99,
                                                     reference="adv-1")), "reference",
             "advance_reference_must_be_new")
    app.execute(ReceiveAdvance(command_id=cid(), period=period, amount_fen=99, reference="adv-2"))
    settled = app.execute(SettlePeriod(command_id=cid(), period=period))
    assert (settled["shortfall_fen"], settled["surplus_carried_fen"]) == (0, 0)
    rejected(app, lambda: app.execute(ReceiveAdvance(command_id=cid(), period=period, amount_fen=1,
                                                     reference="adv-3")), "period", "advance_only_before_settlement")
    assert app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))["amount_fen"] == 1_111
    books = app.read_models().journal.balances()
    assert books["surplus"] == 0 and books["custodian_cash"] + books["member_balances"] >= 0
    assert audit(app).ok, audit(app).failures[:3]


def test_the_audit_recomputes_every_settlement_and_payout(ledger_app: Ledger) -> None:
    app = ledger_app
    period, claim = prepaid_shortfall(app)
    app.execute(SettlePeriod(command_id=cid(), period=period))
    assert app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))["amount_fen"] == 600
    assert audit(app).ok, audit(app).failures[:3]

    def pay_the_funded_amount(body: dict[str, object]) -> None:
        body["cases"] = [{**case, "payable_fen": case["funded_fen"]} for case in body["cases"]]  # type: ignore[attr-defined]
        body["shortfall_fen"] = 0

    failures = resign_and_audit(app, "period.settled", pay_the_funded_amount)
    assert "8 settlement (cases)" in failures and "8 settlement (shortfall_fen)" in failures
    assert "11 claim (amount)" in failures  # the payout no longer matches either


def test_an_altered_payout_or_carried_surplus_is_caught(ledger_app: Ledger) -> None:
    app = ledger_app
    period, claim = prepaid_shortfall(app)
    app.execute(SettlePeriod(command_id=cid(), period=period))
    app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))
    failures = resign_and_audit(app, "claim.paid", lambda body: body.update(amount_fen=1_111))
    assert "11 claim (amount)" in failures
    failures = resign_and_audit(app, "period.settled", lambda body: body.update(surplus_carried_fen=5))
    assert "8 settlement (surplus_carried_fen)" in failures


@st.composite
def ledger_history(draw: st.DrawFn) -> dict[str, object]:
    """A small prepaid plan's history: members and family, deposits, claims, exits, top-ups over a few periods,
    then (sometimes) a closing and its wind-down."""
    members = draw(st.integers(3, 7))
    return {
        "deposits": draw(st.lists(st.sampled_from([0, 100, 300, 900, 2_000]), min_size=members, max_size=members)),
        "family": draw(st.lists(st.integers(0, members - 1), max_size=2)),
        "periods": draw(st.lists(st.tuples(st.integers(0, 2), st.lists(st.integers(0, members - 1), max_size=2),
                                           st.lists(st.integers(0, members - 1), max_size=2),
                                           st.lists(st.tuples(st.integers(0, members - 1),
                                                              st.sampled_from([50, 200, 400])), max_size=2)),
                                 min_size=1, max_size=3)),
        "advance": draw(st.booleans()),
        "wind_down": draw(st.booleans()),
    }


@settings(max_examples=int(os.environ.get("LEDGER_HISTORIES", "6")), deadline=None)
@given(ledger_history())
def test_random_ledger_histories_keep_every_balance_and_the_cash_whole(history: dict[str, object]) -> None:
    """Whole ledgers (SQLite) through random histories with failed debits, lapses, exits, top-ups (between an
    assessment and its collection too), advances and a wind-down: after every command no member balance is negative
    and the journal's `member_balances` is their sum (never a debit) and its `member_receivables` what the accounts
    owe, the cash covers every balance; after every settlement the pool's surplus is never negative; at the end the
    audit passes and, after a wind-down, the books are zero."""
    import tempfile
    from datetime import timedelta as days
    from pathlib import Path

    from ledger.envelope import format_at
    from schemas.commands.membership import DisburseRefund, Exit
    from schemas.commands.period import WindDown
    from schemas.commands.plan import AnnounceClosing
    from tests.support import clock_of, new_ledger

    with tempfile.TemporaryDirectory() as directory:
        app = new_ledger(Path(directory), None)
        try:
            plan = create_plan(app, prepaid_rules(notice_days=3))
            deposits = history["deposits"]
            assert isinstance(deposits, list)
            people = [join(app, plan) for _ in deposits]
            family = history["family"]
            assert isinstance(family, list)
            for payer in family:
                people.append(join(app, plan, age=6, payer=people[payer]))
            for person, amount in zip(people, deposits, strict=False):
                if amount:
                    app.execute(Deposit(command_id=cid(), member=person, amount_fen=amount, reference=cid("b")))
                    check_money(app, plan, people)
            advance(app, days=100)
            gone: set[str] = set()
            periods = history["periods"]
            assert isinstance(periods, list)
            for number, (claims, leaving, topping, early) in enumerate(periods, start=1):
                balances = app.balances()
                active = set(balances.active_members(plan))
                adults = people[:len(deposits)]  # joined at 30; the family members are children
                claimants = [p for p in adults if p in active and not balances.open_claims(p)][:claims]
                approved = [approved_claim(app, p) for p in claimants]
                opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=number))
                at_local(app, str(opened["notice_on"]), 1)
                period = str(opened["period"])
                app.execute(AssessPeriod(command_id=cid(), period=period))
                check_money(app, plan, people, settled=False)
                for index, amount in early:  # a top-up before the collection pays what the account owes first
                    person = people[index]
                    if index < len(deposits) and person in app.balances().active_members(plan):
                        app.execute(Deposit(command_id=cid(), member=person, amount_fen=amount, reference=cid("b")))
                        check_money(app, plan, people, settled=False)
                at_local(app, str(opened["collection_on"]), 9)
                app.execute(CollectPeriod(command_id=cid(), period=period))
                check_money(app, plan, people, settled=False)
                if history["advance"]:
                    stored = app.read(UUID(period), SharingPeriod)
                    assert stored is not None
                    short = stored.settlement_for(sum(a for _, a in balances.outstanding_debits(period))).shortfall_fen
                    if short:
                        app.execute(ReceiveAdvance(command_id=cid(), period=period, amount_fen=short,
                                                   reference=cid("adv")))
                app.execute(SettlePeriod(command_id=cid(), period=period))
                settled = app.read(UUID(period), SharingPeriod)
                assert settled is not None
                for claim in approved:
                    if settled.payable_fen(claim) > 0:  # a case the settlement left nothing for is not paid
                        app.execute(PayClaim(command_id=cid(), claim=claim, reference=cid("aid")))
                check_money(app, plan, people)
                for index in leaving:
                    person = people[index]
                    if person in app.balances().active_members(plan) and not app.balances().active_family(person):
                        app.execute(Exit(command_id=cid(), member=person))
                        gone.add(person)
                        check_money(app, plan, people)
                for index in topping:
                    person = people[index]
                    if index < len(deposits) and person in app.balances().active_members(plan):
                        app.execute(Deposit(command_id=cid(), member=person, amount_fen=500, reference=cid("b")))
                        check_money(app, plan, people)
            if history["wind_down"]:
                now = clock_of(app).current
                app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(now + days(days=5)),
                                            refund_deadline=format_at(now + days(days=5)), claim_tail_days=180))
                app.execute(WindDown(command_id=cid(), plan=plan))
                check_money(app, plan, people)
                journal = app.read_models().journal
                for row in journal.refund_obligations(plan):
                    if int(row[3]) > int(row[6]):
                        app.execute(DisburseRefund(command_id=cid(), member=str(row[0]),
                                                   amount_fen=int(row[3]) - int(row[6]), reference=cid("out")))
                        check_money(app, plan, people)
                books = app.read_models().journal.balances()
                assert books["member_balances"] == 0 and books["refunds_payable"] + books["refunds_paid"] == 0
                assert set(app.balances().active_members(plan)) == set()
            report = audit(app)
            assert report.ok, report.failures[:3]
        finally:
            app.close()


def check_money(app: Ledger, plan: str, people: list[str], settled: bool = True) -> None:
    """No member balance below zero, and the journal agrees: its `member_balances` is the sum of the balances (never
    a debit), its `member_receivables` the sum of what the accounts owe; the books balance and the cash covers every
    balance and refund owed; once the periods are settled, no deficit (until then a failed debit is charged to the
    surplus)."""
    balances = app.balances()
    accounts = [p for p in people if (balances.member(p) or {}).get("payer") is None]
    positions = [balances.position_fen(p) for p in accounts]
    assert all(balances.balance_fen(p) == max(0, x) and balances.due_fen(p) == max(0, -x)
               for p, x in zip(accounts, positions, strict=True))
    journal = app.read_models().journal
    assert journal.trial_balance() == 0 and journal.custody_gap() == 0
    books = journal.balances()
    assert books["member_balances"] == -sum(max(0, x) for x in positions) <= 0
    assert books["member_receivables"] == sum(max(0, -x) for x in positions) >= 0
    assert not settled or books["surplus"] <= 0  # a credit balance: money held for the next period, never a deficit
    owed = -(books["member_balances"] + books["refunds_payable"] + books["refunds_paid"])
    assert books["custodian_cash"] >= owed >= 0
