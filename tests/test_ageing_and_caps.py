"""Ageing out and the annual cap per member (docs/plans.md, "Ageing out" and "The annual cap per member"): a member
past the plan's top age band is not locked and leaves (or moves to the elderly plan) with `plan age-out`; what a
member is charged in a plan year never exceeds the annual cap, counted from their own charges. Both are recomputed
by the audit, which rejects an altered assessment."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger.bootstrap import Ledger
from ledger.cli import main
from ledger.envelope import format_at
from ledger.projections import balances as balances_module
from schemas.commands.membership import Deposit, RecordDebitFailure
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, SettlePeriod
from schemas.commands.plan import AgeOut
from schemas.events import AidBand
from sim.fixtures import rules
from tests.support import advance, cid, create_plan, join, prepaid_rules, rejected
from tests.test_audit import audit, resign_and_audit
from tests.test_endings import assess
from tests.test_period import approved_claim, at_local, member_of, period_of


def test_a_member_pays_the_share_until_their_own_annual_cap(ledger_app: Ledger) -> None:
    """Annual cap 5 yuan, share 3 yuan: the members there since January pay 3 then 2; one who joined in April pays
    the whole 3 of the second period (a plan-wide cap charged them 2: the year's shares, not theirs)."""
    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3, per_case_cap_fen=300, annual_cap_fen=500))
    early = [join(app, plan) for _ in range(2)]
    for member in early:
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=10_000, reference=cid("bank")))
    advance(app, days=100)
    approved_claim(app, early[0])
    first = assess(app, plan, 1)
    at_local(app, period_of(app, first).collection_on.isoformat(), 9)
    app.execute(CollectPeriod(command_id=cid(), period=first))
    app.execute(SettlePeriod(command_id=cid(), period=first))
    late = join(app, plan)
    app.execute(Deposit(command_id=cid(), member=late, amount_fen=10_000, reference=cid("bank")))
    approved_claim(app, early[1])
    second = assess(app, plan, 2)
    a = period_of(app, second).require_assessment()
    assert (a.share_fen, a.locked_members) == (300, 3)
    assert (a.charged_fen, a.members_capped, a.cap_applied) == (200 + 200 + 300, 2, "per_case")  # type: ignore[attr-defined]
    balances = app.balances()
    assert [balances.charge_fen(m, second) for m in (*early, late)] == [200, 200, 300]
    assert [balances.balance_fen(m) for m in (*early, late)] == [10_000 - 500, 10_000 - 500, 10_000 - 300]
    assert [balances.shares_charged_fen(m) for m in (*early, late)] == [500, 500, 300]
    at_local(app, period_of(app, second).collection_on.isoformat(), 9)
    assert app.execute(CollectPeriod(command_id=cid(), period=second))["failed_debits"] == 0
    settled = app.execute(SettlePeriod(command_id=cid(), period=second))
    assert settled["uncollected_fen"] == 0
    assert audit(app).ok, audit(app).failures[:3]
    failures = resign_and_audit(app, "period.assessed", lambda body: body.update(charged_fen=900, members_capped=0),
                                nth=1)
    assert "8 period (charged_fen)" in failures and "8 period (members_capped)" in failures


def test_a_member_past_the_top_age_is_not_locked_and_ages_out(ledger_app: Ledger,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Joined at 59 in January 2026 under bands up to 59: on 7 January 2027 the member is 60, so the period of that
    day leaves them out of its roll (they pay nothing, no debit of theirs can fail), whether or not `plan age-out`
    ran. The candidates are read a batch at a time (at 10M members they are millions): here one a batch, and every
    batch's finds are kept."""
    monkeypatch.setattr(balances_module, "AGE_BATCH", 1)
    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    old, young = join(app, plan, age=59), join(app, plan)
    join(app, plan, age=59, payer=young)  # a family member past the top age is left out too
    at_local(app, "2026-12-20", 1)
    approved_claim(app, young)
    opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1, notice_on="2027-01-07"))
    at_local(app, "2027-01-07", 1)

    app.execute(AssessPeriod(command_id=cid(), period=str(opened["period"])))  # not refused: nobody waits on it
    period = str(opened["period"])
    a = period_of(app, period).require_assessment()
    assert (a.locked_members, a.share_fen, a.top_age_years) == (1, 10, 59)  # type: ignore[attr-defined]
    cutoff = format_at(period_of(app, period).cutoff_at)
    assert app.balances().locked_members(plan, cutoff) == [young]
    assert app.balances().charge_fen(old, period) is None
    rejected(app, lambda: app.execute(RecordDebitFailure(command_id=cid(), member=old, period=period)), "member",
             "member_must_be_locked_in_the_period")
    assert audit(app).ok, audit(app).failures[:3]
    assert "8 period (top_age_years)" in resign_and_audit(app, "period.assessed",
                                                           lambda body: body.update(top_age_years=60))


def test_age_out_ends_or_moves_the_members_past_the_top_age(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    elderly = create_plan(app, prepaid_rules(notice_days=3, min_age_years=50, max_age_years=70, aid_bands=(
        AidBand(up_to_age_years=70, max_aid_fen=5_000_000),)), name="Elderly plan")
    narrow = create_plan(app, prepaid_rules(notice_days=3, min_age_years=61, max_age_years=70, aid_bands=(
        AidBand(up_to_age_years=70, max_aid_fen=5_000_000),)), name="Narrow plan")
    old, moving, young = join(app, plan, age=59), join(app, plan, age=59), join(app, plan)
    app.execute(Deposit(command_id=cid(), member=old, amount_fen=4_000, reference=cid("bank")))
    assert app.execute(AgeOut(command_id=cid(), plan=plan))["aged_out"] == 0  # nobody is past 59 yet
    at_local(app, "2027-01-02", 1)
    rejected(app, lambda: app.execute(AgeOut(command_id=cid(), plan=plan, successor_plan=plan)), "successor_plan",
             "successor_must_be_another_plan")
    rejected(app, lambda: app.execute(AgeOut(command_id=cid(), plan=plan, successor_plan=narrow)), "successor_plan",
             "successor_plan_must_cover_the_members_age")
    assert member_of(app, old).status == "active"  # nothing written
    moved = app.execute(AgeOut(command_id=cid(), plan=plan, successor_plan=elderly))
    assert (moved["aged_out"], moved["moved"]) == (2, 2)
    assert member_of(app, old).status == member_of(app, moving).status == "aged_out"
    assert member_of(app, young).status == "active"
    assert member_of(app, old).refund_due_fen == 4_000  # the prepaid balance, refunded like an exit's
    successors = app.balances().active_members(elderly)
    assert len(successors) == 2
    assert {member_of(app, m).details.age_band for m in successors} == {"60-64"}  # type: ignore[union-attr]
    assert app.execute(AgeOut(command_id=cid(), plan=plan))["aged_out"] == 0  # only who is new
    assert audit(app).ok, audit(app).failures[:3]


def test_the_command_line_runs_age_out_and_refuses_a_successor_that_does_not_cover_the_age(tmp_path: Path) -> None:
    data = tmp_path / "ledger"
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)
        return result.exit_code, result.output

    assert run("init")[0] == 0
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(rules().model_dump_json())
    code, out = run("plan", "create", "--command-id", "p1", "--name", "Cancer", "--kind", "cancer", "--rules",
                    f"@{rules_file}", "--json")
    assert code == 0, out
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        before = int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])
    code, out = run("plan", "age-out", "--command-id", "a1", "--plan", "Cancer", "--successor-plan", "Cancer")
    assert code == 2 and "successor_plan: successor_must_be_another_plan" in out
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        assert int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0]) == before
    code, out = run("plan", "age-out", "--command-id", "a2", "--plan", "Cancer", "--json")
    assert code == 0 and json.loads(out)["aged_out"] == 0


def test_a_statement_counts_money_by_plan_days(ledger_app: Ledger) -> None:
    """A top-up at 20:00 UTC on 1 March is on 2 March in China: a statement from 2 March counts it, one until
    2 March does not (UTC midnights put it on the wrong side of both)."""
    from datetime import UTC, date, datetime

    from ledger.projections.statements import statement
    from tests.support import clock_of

    app = ledger_app
    plan = create_plan(app, prepaid_rules())
    member = join(app, plan)
    clock_of(app).set(datetime(2026, 3, 1, 20, tzinfo=UTC))
    app.execute(Deposit(command_id=cid(), member=member, amount_fen=1_000, reference=cid("bank")))
    models = app.read_models()
    now = clock_of(app).current
    assert statement(models, member, date(2026, 3, 2), None, now)["top_ups_fen"] == 1_000
    assert statement(models, member, None, date(2026, 3, 2), now)["top_ups_fen"] == 0


def test_a_member_who_left_is_not_asked_to_top_up(ledger_app: Ledger) -> None:
    from ledger.projections.statements import render, statement
    from schemas.commands.membership import Exit
    from tests.support import clock_of

    app = ledger_app
    plan = create_plan(app, prepaid_rules(min_balance_fen=300))
    staying, leaving = join(app, plan), join(app, plan)
    app.execute(Exit(command_id=cid(), member=leaving))
    models = app.read_models()
    now = clock_of(app).current
    assert statement(models, staying, None, None, now)["low_balance_warning"] is True
    left = statement(models, leaving, None, None, now)
    assert left["low_balance_warning"] is False and "top up" not in render(left)


def test_every_posting_names_its_plan(ledger_app: Ledger) -> None:
    """Subsidies, advances, settlements and payouts are posted under their plan, so a plan's own books balance."""
    from tests.test_audit import history

    app = ledger_app
    history(app)
    journal = app.read_models().journal
    with journal.sql.transaction(commit=False) as cursor:
        unnamed = cursor.execute(f"SELECT event FROM {journal.postings} WHERE plan IS NULL").fetchall()
        plans = [str(row[0]) for row in cursor.execute(f"SELECT DISTINCT plan FROM {journal.postings}").fetchall()]
    assert unnamed == []
    assert plans and all(sum(journal.balances(plan).values()) == 0 for plan in plans)


def test_the_year_shortcut_of_the_age_rule_agrees_with_the_rule() -> None:
    """`past_top_age_at` skips parsing the join instant when its year shows the member cannot be past the top age:
    over random joins, cutoffs, ages and zones (both sides of New Year) it answers as `past_top_age`."""
    import random
    from datetime import UTC, datetime, timedelta

    from ledger.ages import past_top_age, past_top_age_at

    rng = random.Random(16)
    start = datetime(2024, 12, 31, 12, tzinfo=UTC)
    for _ in range(20_000):
        joined = start + timedelta(minutes=rng.randrange(0, 3 * 366 * 1440))
        at = joined + timedelta(minutes=rng.randrange(0, 3 * 366 * 1440))
        age, top, offset = rng.randrange(55, 61), rng.randrange(56, 62), rng.choice((-720, -300, 0, 480, 840))
        assert past_top_age_at(age, format_at(joined), at, top, offset) == past_top_age(age, joined, at, top, offset)


def test_the_audit_checks_the_members_left_out_against_the_ages_it_is_given(ledger_app: Ledger) -> None:
    """Ages are sealed: without them the audit recomputes the roll from the listed `left_out` and says it could not
    check the list; given the revealed ages, it catches a list that leaves out a member who is not past the top age
    (the writer re-signing a consistent lie: list, count, roll)."""
    from audit.verify import Auditor
    from ledger.anchors import TrustAnchors
    from ledger.reveal import reveal_member
    from ledger.sharing import roll_root

    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    old, young, other = join(app, plan, age=59), join(app, plan), join(app, plan)
    at_local(app, "2026-12-20", 1)
    approved_claim(app, young)
    opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1, notice_on="2027-01-07"))
    at_local(app, "2027-01-07", 1)
    app.execute(AssessPeriod(command_id=cid(), period=str(opened["period"])))
    period = str(opened["period"])
    assert period_of(app, period).require_assessment().left_out == (old,)  # type: ignore[attr-defined]
    report = audit(app)
    assert report.ok and report.needs_sealed_values.get("8 period (locked set by age)") == 1
    revealed = [r for m in (old, young, other) for r in reveal_member(app.app, m)]
    anchors = TrustAnchors.load(app.settings.data_dir / "trust-anchors.json")
    entries = [entry for _, entry in app.entries()]
    assert Auditor(anchors, revealed=revealed).run(entries).ok

    def lie(body: dict[str, Any]) -> None:  # `other` (30) listed too, the roll and count made to agree
        listed = sorted([old, other])
        body.update(left_out=listed, locked_members=1, roll_size=1,
                    roll_root=roll_root(period, [young], int(body["share_fen"])).hex())

    resign_and_audit(app, "period.assessed", lie)
    checks = [f.check for f in Auditor(anchors, revealed=revealed).run([e for _, e in app.entries()]).failures]
    assert "8 period (left_out)" in checks


def test_the_age_rule_opens_sealed_ages_in_bulk_and_finds_what_opening_them_one_by_one_finds(
        ledger_app: Ledger) -> None:
    """`left_out_for_age` loads no membership and opens the candidates' sealed ages in one pass over the vault; it
    finds exactly the members that loading every member and opening their age (`UnitOfWork.age_at_joining`) finds:
    over sealed (v2) and plain (v1) joins on both sides of the 55-59 band's edges, joined on several days (29 February
    among them), at instants around the anniversaries of joining in several zones and for several top ages; and an
    erased member whose age is needed is refused the same way by both."""
    from datetime import UTC, datetime, timedelta
    from uuid import UUID, uuid4

    from ledger.ages import past_top_age
    from ledger.aggregates.membership import Membership
    from ledger.errors import DomainRuleError
    from ledger.handlers.period import left_out_for_age
    from ledger.rules import Rule
    from ledger.unit_of_work import UnitOfWork
    from schemas.commands.membership import EraseMember, Exit
    from schemas.events import MemberJoinedV1
    from sim.fixtures import commitment
    from tests.support import clock_of

    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    inner = app.app

    def plain_join(age: int) -> str:  # a join written before ages were sealed: its age is public
        membership = Membership.start(Membership.Joined, uuid4(), clock_of(app).now(), inner.actor_for("operator"),
                                      MemberJoinedV1(plan=plan, rules_version=1, age_years=age, sex="m",
                                                     province="zj", payer=None, family_order=0,
                                                     consent_commitment=commitment("consent"),
                                                     health_declaration_commitment=commitment("health")))
        inner._save_aggregates([membership], [])
        return str(membership.id)

    joined_days = ["2026-01-01", "2026-06-30", "2027-02-28", "2028-02-29"]
    for day in joined_days:
        at_local(app, day, 23)
        for age in (53, 54, 55, 57, 58, 59):
            join(app, plan, age=age)
        for age in (54, 58, 59):
            plain_join(age)
    erased = join(app, plan, age=59)

    def one_by_one(uow: UnitOfWork, of: str, at: datetime, top: int, offset: int) -> list[str]:
        """The rule with nothing narrowed: every member of the plan then loaded, their age opened alone."""
        found = []
        for member in app.balances().locked_members(of, format_at(at)):
            membership = uow.get(UUID(member), Membership, "member")
            if past_top_age(uow.age_at_joining(membership), membership.joined_at, at, top, offset):
                found.append(member)
        return sorted(found)

    def both(at: datetime, top: int, offset: int) -> tuple[list[str], list[str]]:
        inner.read_side.refresh()
        bulk = UnitOfWork(inner, inner.read_side, at)
        found = left_out_for_age(bulk, plan, at, top, offset)
        assert bulk.loaded == {}  # no membership loaded
        return found, one_by_one(UnitOfWork(inner, inner.read_side, at), plan, at, top, offset)

    sizes = set()
    for day in joined_days:
        start = datetime.fromisoformat(day).replace(tzinfo=UTC)
        for years in (1, 2, 5):
            anniversary = start.replace(year=start.year + years, day=28 if start.day == 29 else start.day)
            for hours in (-9, -1, 1, 17, 30):
                at = anniversary + timedelta(hours=hours)
                for top, offset in ((59, 480), (60, 0), (61, -300), (58, 840)):
                    bulk, reference = both(at, top, offset)
                    assert bulk == reference, (at, top, offset)
                    sizes.add(len(bulk))
    assert len(sizes) > 10 and 0 in sizes  # the instants fall on both sides of many members' edges

    advance(app, days=500)
    app.execute(Exit(command_id=cid(), member=erased))
    app.execute(EraseMember(command_id=cid(), member=erased, reason="left"))
    while_in = clock_of(app).now() - timedelta(days=10)  # past 59 then, still a member: the age is needed
    inner.read_side.refresh()
    for run in (left_out_for_age, one_by_one):
        with pytest.raises(DomainRuleError) as caught:
            run(UnitOfWork(inner, inner.read_side, while_in), plan, while_in, 59, 480)
        assert (caught.value.field, caught.value.rule, caught.value.detail) == (
            "member", Rule.MEMBER_MUST_NOT_BE_ERASED, erased)
    bulk, reference = both(clock_of(app).now(), 59, 480)  # once they left, nobody needs their age
    assert bulk == reference and erased not in bulk
