"""Read models on both backends: postings per event, books that balance, money conserved under random command
sequences, statements, disclosures pinned by hash, wind-down metrics, and live equal to a rebuild."""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger
from ledger.canonical import document_digest
from ledger.envelope import format_at
from ledger.errors import DomainRuleError, InputError
from ledger.projections import PROJECTIONS, ReadModels
from ledger.projections.cases import disclosure_document
from ledger.projections.metrics import metrics
from ledger.projections.sql import SqlCursor, SqlStore
from ledger.projections.statements import render, statement
from ledger.rules import Rule
from schemas.commands.disclosure import PublishDisclosure
from schemas.commands.membership import Deposit, DisburseRefund, Exit, RecordDebitFailure
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod, WindDown
from schemas.commands.plan import AnnounceClosing, TerminatePlan
from sim.fixtures import START, rules
from tests.support import (
    advance,
    cid,
    clock_of,
    create_plan,
    demo_ledger,
    join,
    new_ledger,
    prepaid_rules,
    rejected,
    reopen,
)
from tests.test_audit import audit, resign_and_audit
from tests.test_claim import file, investigate
from tests.test_period import approved_claim, at_local


def books(app: Ledger) -> dict[str, int]:
    journal = app.read_models().journal
    assert journal.trial_balance() == 0
    assert journal.custody_gap() == 0
    return journal.balances()


def fresh_digests(app: Ledger, tmp: Path) -> dict[str, str]:
    """Digests of a rebuild from scratch into another database."""
    from eventsourcing.sqlite import SQLiteDatastore

    sql = SqlStore(SQLiteDatastore(str(tmp / "fresh.sqlite3")))
    digests = {}
    for projection_class in PROJECTIONS:
        projection = projection_class(app.app, sql)
        projection.catch_up(page=7)
        digests[projection.NAME] = projection.digest()
    return digests


def prepaid_period(app: Ledger) -> tuple[str, str, str, str]:
    """A prepaid plan through one settled period: (plan, period, rich member, poor member)."""
    plan = create_plan(app, prepaid_rules(notice_days=3))
    rich, poor = join(app, plan), join(app, plan)
    app.execute(Deposit(command_id=cid(), member=rich, amount_fen=10_000, reference=cid("bank")))
    app.execute(Deposit(command_id=cid(), member=poor, amount_fen=100, reference=cid("bank")))
    advance(app, days=100)
    claim = approved_claim(app, rich)
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    at_local(app, "2026-04-28", 9)
    app.execute(CollectPeriod(command_id=cid(), period=period))
    app.execute(SettlePeriod(command_id=cid(), period=period))
    from schemas.commands.claim import PayClaim

    app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))
    return plan, period, rich, poor


def test_postings_balance_and_custody_holds(ledger_app: Ledger) -> None:
    _, _, rich, _ = prepaid_period(ledger_app)
    b = books(ledger_app)
    # 10,100 deposited; 2 x 300 assessed and funded pro rata: aid floor(600 x 30,000,000 / 32,400,000) = 555,
    # fee floor(600 x 2,400,000 / 32,400,000) = 44, surplus 1; then the poor member's 300 could not be taken, so
    # the settlement pays the case the 300 collected, the fee nothing, and carries 0: no deficit, no member's
    # balance pays a claim
    assert b["custodian_cash"] == 10_100 - 300
    assert b["member_balances"] == -(10_000 - 300)
    assert b["refunds_payable"] == -100  # the poor member lapsed: their 100 left is refunded, not kept
    assert (b["aid_paid"], b["aid_payable"], b["fee_income"]) == (300, -300, 0)
    assert b["surplus"] == 0
    assert b["custodian_cash"] + b["member_balances"] + b["refunds_payable"] == 0  # the cash covers every balance
    journal = ledger_app.read_models().journal
    assert journal.member_movements(rich) == {"member.deposit_received": -10_000}


def balances_and_dues(app: Ledger, plan: str, accounts: list[str]) -> dict[str, tuple[int, int]]:
    """(balance, due) of each account by the balances read model, checked against the journal: no balance below
    zero, the plan's `member_balances` the sum of the balances (never a debit) and its `member_receivables` the sum
    of what is due."""
    read = app.balances()
    found = {a: (read.balance_fen(a), read.due_fen(a)) for a in accounts}
    assert all(balance >= 0 and due >= 0 and balance - due == read.position_fen(a)
               for a, (balance, due) in found.items())
    plan_books = app.read_models().journal.balances(plan)
    assert plan_books["member_balances"] == -sum(balance for balance, _ in found.values()) <= 0
    assert plan_books["member_receivables"] == sum(due for _, due in found.values())
    books(app)  # the trial balance is zero and custody complete
    return found


def test_a_prepaid_share_the_balance_cannot_cover_is_owed_not_taken(ledger_app: Ledger) -> None:
    """Between an assessment and its collection, the part of an account's charges its balance cannot cover is owed
    by its holder (a receivable), never a negative balance; a deposit pays it first; the collection fails the
    shares still uncovered and gives what the account held back to its balance; a prepaid debit is recovered only
    from a balance that covers it; the settlement lapses the member and refunds the rest."""
    from schemas.commands.membership import RecoverDebit

    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    payer, rich, poor, late = (join(app, plan) for _ in range(4))
    child = join(app, plan, age=4, payer=payer)
    for member, amount in ((payer, 500), (rich, 10_000), (poor, 100)):
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=amount, reference=cid("bank")))
    accounts = [payer, rich, poor, late]
    advance(app, days=100)
    approved_claim(app, rich)
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    assessed = app.execute(AssessPeriod(command_id=cid(), period=period))
    assert assessed["share_fen"] == 300
    entries = [json.loads(entry) for _, entry in app.entries()]
    at = next(i for i, e in enumerate(entries) if e["type"] == "period.assessed")
    assessment, listing = entries[at], entries[at + 1]  # the listing is the very next entry, on the period's stream
    assert assessment["body"]["uncovered_fen"] == 600 and "uncovered" not in assessment["body"]
    assert not any(account in json.dumps(assessment) for account in accounts)  # it names the claims it funds
    assert (listing["type"], listing["stream"]) == ("period.uncovered_listed", assessment["stream"])
    assert listing["body"]["uncovered"] == sorted(
        [{"account": poor, "amount_fen": 200}, {"account": payer, "amount_fen": 100},
         {"account": late, "amount_fen": 300}], key=lambda u: str(u["account"]))
    assert listing["body"]["uncovered_fen"] == 600
    assert balances_and_dues(app, plan, accounts) == {payer: (0, 100), rich: (9_700, 0), poor: (0, 200),
                                                       late: (0, 300)}
    s = statement(app.read_models(), poor, None, None, clock_of(app).current)
    assert (s["balance_fen"], s["due_fen"], s["arrears_fen"]) == (0, 200, 0)
    assert "due 2.00 yuan" in render(s)

    app.execute(Deposit(command_id=cid(), member=late, amount_fen=400, reference=cid("bank")))  # pays its 300 first
    app.execute(Deposit(command_id=cid(), member=poor, amount_fen=150, reference=cid("bank")))  # 150 of its 200
    assert balances_and_dues(app, plan, accounts) == {payer: (0, 100), rich: (9_700, 0), poor: (0, 50),
                                                       late: (100, 0)}
    assert app.read_models().journal.member_movements(late) == {"member.deposit_received": -400}

    at_local(app, "2026-04-28", 9)
    assert app.execute(CollectPeriod(command_id=cid(), period=period))["failed_debits"] == 2  # poor's and child's
    assert balances_and_dues(app, plan, accounts) == {payer: (200, 0), rich: (9_700, 0), poor: (250, 0),
                                                       late: (100, 0)}
    rejected(app, lambda: app.execute(RecoverDebit(command_id=cid(), member=poor, period=period)), "period",
             "prepaid_debit_is_recovered_only_from_a_balance_that_covers_it")
    app.execute(Deposit(command_id=cid(), member=payer, amount_fen=1_000, reference=cid("bank")))
    assert balances_and_dues(app, plan, accounts)[payer] == (1_200, 0)
    app.execute(RecoverDebit(command_id=cid(), member=child, period=period))
    assert balances_and_dues(app, plan, accounts)[payer] == (900, 0)

    settled = app.execute(SettlePeriod(command_id=cid(), period=period))
    assert settled["lapsed"] == 1
    assert balances_and_dues(app, plan, accounts) == {payer: (900, 0), rich: (9_700, 0), poor: (0, 0),
                                                       late: (100, 0)}
    assert app.read_models().journal.balances(plan)["refunds_payable"] == -250  # what the poor member held
    report = audit(app)
    assert report.ok, report.failures[:3]

    def owe_less(body: dict[str, Any]) -> None:  # the same sum, moved from one account to another
        shares = body["uncovered"]
        shares[0]["amount_fen"] -= 50
        shares[1]["amount_fen"] += 50

    assert "8 period (uncovered)" in resign_and_audit(app, "period.uncovered_listed", owe_less)
    assert "8 period (uncovered_fen)" in resign_and_audit(app, "period.uncovered_listed",
                                                          lambda body: body.update(uncovered_fen=599))
    assert "8 period (uncovered_fen)" in resign_and_audit(app, "period.assessed",
                                                          lambda body: body.update(uncovered_fen=0))


def test_a_payout_deducts_only_postpaid_arrears(ledger_app: Ledger) -> None:
    """A prepaid claimant whose debit of a later period failed is paid in full: the failed prepaid share is not taken
    from the payout (nor, then, from a balance that cannot cover it); the member lapses at that period's settlement."""
    from schemas.commands.claim import PayClaim

    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    rich, poor, other = join(app, plan), join(app, plan), join(app, plan)
    for member, amount in ((rich, 10_000), (poor, 100), (other, 10_000)):
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=amount, reference=cid("bank")))
    accounts = [rich, poor, other]
    advance(app, days=100)
    claim = approved_claim(app, poor)
    opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))
    at_local(app, str(opened["notice_on"]), 1)
    first = app.execute(AssessPeriod(command_id=cid(), period=str(opened["period"])))
    app.execute(Deposit(command_id=cid(), member=poor, amount_fen=first["share_fen"], reference=cid("bank")))
    at_local(app, str(opened["collection_on"]), 9)
    assert app.execute(CollectPeriod(command_id=cid(), period=str(opened["period"])))["failed_debits"] == 0
    app.execute(SettlePeriod(command_id=cid(), period=str(opened["period"])))
    assert balances_and_dues(app, plan, accounts)[poor] == (100, 0)
    approved_claim(app, other)
    second = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=2))
    at_local(app, str(second["notice_on"]), 1)
    share = app.execute(AssessPeriod(command_id=cid(), period=str(second["period"])))["share_fen"]
    assert share > 100
    assert balances_and_dues(app, plan, accounts)[poor] == (0, share - 100)
    at_local(app, str(second["collection_on"]), 9)
    assert app.execute(CollectPeriod(command_id=cid(), period=str(second["period"])))["failed_debits"] == 1
    paid = app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))
    assert paid["arrears_deducted_fen"] == 0
    assert balances_and_dues(app, plan, accounts)[poor] == (100, 0)
    assert app.execute(SettlePeriod(command_id=cid(), period=str(second["period"])))["lapsed"] == 1
    assert balances_and_dues(app, plan, accounts)[poor] == (0, 0)
    report = audit(app)
    assert report.ok, report.failures[:3]


def test_statement_of_a_member(ledger_app: Ledger) -> None:
    _, _, rich, poor = prepaid_period(ledger_app)
    now = clock_of(ledger_app).current
    s = statement(ledger_app.read_models(), rich, None, None, now, ledger_app.app.vault.streams_of(rich))
    assert (s["periods_paid_into"], s["shared_fen"], s["people_helped"]) == (1, 300, 1)
    assert (s["top_ups_fen"], s["balance_fen"], s["status"]) == (10_000, 9_700, "active")
    assert [c["decision"] for c in s["claims"]] == ["approved"]
    p = statement(ledger_app.read_models(), poor, None, None, now)
    assert (p["periods_paid_into"], p["shared_fen"], p["status"], p["arrears_fen"]) == (0, 0, "lapsed", 300)
    year = statement(ledger_app.read_models(), rich, START.date().replace(year=2025),
                     START.date(), now)
    assert year["periods_paid_into"] == 0


def test_a_statement_reads_in_one_snapshot(ledger_app: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every query of a statement runs in one read transaction, on one pooled connection: it takes from the store
    what one empty snapshot takes, whatever the number of its queries. A read inside a snapshot is the snapshot; a
    write inside one is refused (the snapshot would not see it)."""
    _, _, rich, _ = prepaid_period(ledger_app)
    models = ledger_app.read_models()
    sql, now, sealed = models.balances.sql, clock_of(ledger_app).current, ledger_app.app.vault.streams_of(rich)
    datastore = sql.datastore
    taken: list[str] = []

    def counted(name: str, method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            taken.append(name)
            return method(*args, **kwargs)
        return call

    for name in ("transaction", "get_connection"):
        monkeypatch.setattr(datastore, name, counted(name, getattr(datastore, name)))
    with sql.snapshot() as snapshot:
        with sql.transaction(commit=False) as cursor:
            assert cursor is snapshot.cursor
        with pytest.raises(RuntimeError, match="inside a snapshot"), sql.transaction():
            pass
    one_snapshot, taken[:] = list(taken), []
    expected = statement(models, rich, None, None, now, sealed)
    assert taken == one_snapshot and one_snapshot and expected["claims"]
    with sql.snapshot():  # a statement inside a snapshot is the same statement, read in it
        assert statement(models, rich, None, None, now, sealed) == expected


def test_migration_7_indexes_the_failed_debits_by_member(ledger_app: Ledger) -> None:
    """A store at schema version 6 finds a member's failed debits by a scan of every period's: it is refused until
    migrated, and step 7 makes the index."""
    from ledger.migrations import VERSION_TABLE

    app = ledger_app
    sql = app.read_models().balances.sql
    assert sql.has_index("roster_debits_member")
    with sql.transaction() as cursor:  # as a version-6 store is
        cursor.execute(f"DROP INDEX {sql.table('roster_debits_member')}")
        cursor.execute(f"DELETE FROM {sql.table(VERSION_TABLE)} WHERE version >= 7")
    again = refused_until_migrated(app, 6)
    try:
        assert again.read_models().balances.sql.has_index("roster_debits_member")
    finally:
        again.close()


def refused_until_migrated(app: Ledger, version: int, clock: SimulatedClock | None = None) -> Ledger:
    """Close a ledger whose store was set back to schema `version`: it is refused, then migrated to the current
    version, and reopened (returned, on `clock`)."""
    from ledger.bootstrap import bootstrap
    from ledger.migrations import SCHEMA_VERSION, migrate

    settings = app.settings
    app.close()
    with pytest.raises(InputError) as refused:
        bootstrap(settings)
    assert refused.value.rule == Rule.STORE_SCHEMA_MUST_BE_CURRENT
    assert migrate(settings) == {"from": version, "to": SCHEMA_VERSION}
    return reopen(app, clock)


def test_migration_8_reads_the_locked_set_in_roll_order_from_a_covering_index(ledger_app: Ledger) -> None:
    """A store at schema version 7 finds the locked set by plan and joining instant, then sorts every member for
    the roll (a sort that spilled to disk at 10M members): it is refused until migrated, and step 8 replaces that
    index with `roster_members_roll`, from which the roll's own query reads in order, sorting nothing."""
    from ledger.migrations import VERSION_TABLE

    app = ledger_app
    prepaid_period(app)

    def roll_plan(ledger: Ledger) -> str:
        """The roll query's plan as the database would run it (PostgreSQL told to avoid sorts and table scans,
        which on a few rows it would otherwise prefer: the index must be able to serve the order)."""
        balances = ledger.read_models().balances
        sql = balances.sql
        with sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT plan, MAX(joined_at) FROM {balances.members} GROUP BY plan").fetchone()
        assert row is not None
        plan, cutoff = str(row[0]), str(row[1])
        with balances.locked_set(plan, cutoff) as locked:
            if sql.postgres:
                locked.snapshot.execute("SET LOCAL enable_seqscan = off")
                locked.snapshot.execute("SET LOCAL enable_sort = off")
            explain = "EXPLAIN (COSTS OFF)" if sql.postgres else "EXPLAIN QUERY PLAN"
            rows = locked.snapshot.execute(f"{explain} {locked.roll_query}", (plan, cutoff, cutoff)).fetchall()
        return "\n".join(str(r[-1]) for r in rows)

    sql = app.read_models().balances.sql
    assert sql.has_index("roster_members_roll") and not sql.has_index("roster_members_plan")
    found = roll_plan(app)
    assert "roster_members_roll" in found and "Sort" not in found and "TEMP B-TREE" not in found, found
    if not sql.postgres:
        assert "COVERING INDEX" in found, found
    with sql.transaction() as cursor:  # as a version-7 store is
        cursor.execute(f"DROP INDEX {sql.table('roster_members_roll')}")
        cursor.execute(f"CREATE INDEX roster_members_plan ON {sql.table('roster_members')} (plan, joined_at)")
        cursor.execute(f"DELETE FROM {sql.table(VERSION_TABLE)} WHERE version >= 8")
    before = roll_plan(app)
    assert ("Sort" if sql.postgres else "TEMP B-TREE") in before, before
    again = refused_until_migrated(app, 7)
    try:
        sql = again.read_models().balances.sql
        assert sql.has_index("roster_members_roll") and not sql.has_index("roster_members_plan")
        assert roll_plan(again) == found
    finally:
        again.close()


def test_a_disclosure_is_pinned_by_hash_and_rebuilt_byte_for_byte(ledger_app: Ledger,
                                                                  tmp_path: Path) -> None:
    _, period, rich, _ = prepaid_period(ledger_app)
    result = ledger_app.execute(PublishDisclosure(command_id=cid(), period=period))
    rejected(ledger_app, lambda: ledger_app.execute(PublishDisclosure(command_id=cid(), period=period)), "period",
             "period_is_disclosed_once")
    models = ledger_app.read_models()
    document = disclosure_document(period, models.periods, models.cases, models.balances.failed_periods())
    assert document_digest(document)[0] == result["document_hash"]
    assert document["patients_helped"] == 1 and document["per_person_share_fen"] == 300
    card = document["cases"][0]  # a sealed claim: no member, no exact date or age on the card
    assert card["member"] is None and rich not in json.dumps(document)
    assert set(card) >= {"age_band", "diagnosis_month", "joined_month"} and "age_at_diagnosis" not in card
    rebuilt = ReadModels.open(ledger_app.app)
    for projection in rebuilt.all():
        projection.rebuild()
    again = disclosure_document(period, rebuilt.periods, rebuilt.cases, rebuilt.balances.failed_periods())
    assert document_digest(again)[0] == result["document_hash"]


def test_only_a_settled_period_is_disclosed(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    join(ledger_app, plan)
    period = str(ledger_app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    rejected(ledger_app, lambda: ledger_app.execute(PublishDisclosure(command_id=cid(), period=period)), "period",
             "period_must_be_settled_to_be_disclosed")


def test_wind_down_refunds_past_their_deadline_show_in_the_metrics(ledger_app: Ledger) -> None:
    """水滴互助's terms: refunds within 5 days of the end, claims for 180 days after it."""
    app = ledger_app
    plan = create_plan(app, prepaid_rules())
    members = [join(app, plan) for _ in range(3)]
    for m in members:
        app.execute(Deposit(command_id=cid(), member=m, amount_fen=1_000, reference=cid("bank")))
    now = clock_of(app).current
    app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(now + timedelta(days=5)),
                                refund_deadline=format_at(now + timedelta(days=10)), claim_tail_days=180))
    advance(app, days=5)
    app.execute(TerminatePlan(command_id=cid(), plan=plan))
    app.execute(WindDown(command_id=cid(), plan=plan))
    app.execute(DisburseRefund(command_id=cid(), member=members[0], amount_fen=1_000, reference="out-0"))
    advance(app, days=6)
    app.execute(DisburseRefund(command_id=cid(), member=members[1], amount_fen=1_000, reference="out-1"))
    data = metrics(app.read_models(), [plan], "", "9999", clock_of(app).current)
    refunds = data["plans"][0]["refunds"]
    assert (refunds["owed"], refunds["due_fen"], refunds["paid_fen"]) == (3, 3_000, 2_000)
    assert (refunds["past_deadline"], refunds["past_deadline_fen"]) == (2, 1_000)  # one late, one still unpaid
    assert data["custody_gap_fen"] == 0 and books(app)["refunds_paid"] == 2_000


def test_live_read_models_equal_a_rebuild_and_repeated_delivery_changes_nothing(
        ledger_app: Ledger, tmp_path: Path) -> None:
    prepaid_period(ledger_app)
    live = ledger_app.read_models().digests()
    assert live == fresh_digests(ledger_app, tmp_path)
    entries = list(ledger_app.entries())
    for projection in ledger_app.read_models().all():
        projection.apply_batch(entries[:10])
    assert ledger_app.read_models().digests() == live


def test_read_models_rebuilt_in_one_batch_equal_a_rebuild_a_few_events_at_a_time(
        ledger_app: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the long runs of inserts of one batch go as `COPY` (`SqlCursor.executemany`)."""
    prepaid_period(ledger_app)
    copies: list[str] = []
    plan_of = SqlCursor._copy_plan

    def recorded(cursor: SqlCursor, statement: str) -> tuple[str, list[tuple[bool, Any]]] | None:
        plan = plan_of(cursor, statement)
        copies.extend([plan[0]] if plan else [])
        return plan

    monkeypatch.setattr(SqlCursor, "_copy_plan", recorded)
    models = ledger_app.read_models()
    for projection in models.all():
        projection.rebuild()
    assert models.digests() == fresh_digests(ledger_app, tmp_path)
    assert bool(copies) == models.all()[0].sql.postgres


def test_read_models_caught_up_a_few_events_per_transaction_equal_the_live_ones(
        ledger_app: Ledger, tmp_path: Path) -> None:
    from eventsourcing.sqlite import SQLiteDatastore

    prepaid_period(ledger_app)
    live = ledger_app.read_models().digests()
    sql = SqlStore(SQLiteDatastore(str(tmp_path / "batches.sqlite3")))
    models = ReadModels(*(p(ledger_app, sql) for p in PROJECTIONS))  # type: ignore[arg-type]
    assert models.catch_up(page=5) == len(list(ledger_app.entries())) > 5
    assert models.digests() == live


def test_claim_metrics(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, rules(notice_days=3))
    members = [join(ledger_app, plan) for _ in range(3)]
    advance(ledger_app, days=100)
    approved_claim(ledger_app, members[0])
    claim = file(ledger_app, members[1], (clock_of(ledger_app).current.date() - timedelta(days=1)).isoformat())
    investigate(ledger_app, claim, reason="insufficient_evidence")
    from schemas.commands.claim import DecideClaim, NoticeClaim

    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    advance(ledger_app, days=4)
    ledger_app.execute(DecideClaim(command_id=cid(), claim=claim))
    data = metrics(ledger_app.read_models(), [plan], "", "9999", clock_of(ledger_app).current)
    cases = data["plans"][0]["cases"]
    assert (cases["filed"], cases["approved"], cases["rejected"], cases["approval_rate"]) == (2, 1, 1, 0.5)
    assert cases["rejections_by_reason"] == {"insufficient_evidence": 1}
    assert data["plans"][0]["days_filing_to_decision"]["count"] == 2


ACTIONS = st.lists(st.tuples(st.sampled_from(["join", "deposit", "exit", "period", "fail", "advance"]),
                             st.integers(0, 50)), min_size=5, max_size=25)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, prepaid=st.booleans())
def test_money_is_conserved_under_random_command_sequences(tmp_path_factory: Any, actions: list[tuple[str, int]],
                                                           prepaid: bool) -> None:
    app = new_ledger(tmp_path_factory.mktemp("random"), None)
    plan = create_plan(app, prepaid_rules(per_case_cap_fen=7) if prepaid else rules())
    members: list[str] = []
    number = 0
    period: str | None = None
    for action, n in actions:
        try:
            if action == "join" or not members:
                members.append(join(app, plan, payer=members[n % len(members)] if members and n % 4 == 0 else None))
            elif action == "deposit" and prepaid:
                app.execute(Deposit(command_id=cid(), member=members[n % len(members)], amount_fen=1 + n * 37,
                                    reference=cid("bank")))
            elif action == "exit":
                app.execute(Exit(command_id=cid(), member=members[n % len(members)]))
            elif action == "fail" and period and not prepaid:
                app.execute(RecordDebitFailure(command_id=cid(), member=members[n % len(members)], period=period))
            elif action == "period":
                opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=number + 1))
                number += 1
                period = str(opened["period"])
                if n % 3 == 0:
                    with suppress(DomainRuleError):
                        approved_claim(app, members[0])
                clock_of(app).set(max(clock_of(app).current, _instant(opened["cutoff_at"]) + timedelta(hours=1)))
                assessed = app.execute(AssessPeriod(command_id=cid(), period=period))
                if assessed["subsidy_fen"]:
                    app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=assessed["subsidy_fen"],
                                               reference=cid("op")))
            elif action == "advance":
                advance(app, days=n)
        except DomainRuleError:
            pass
        assert books(app)["custodian_cash"] == cash_from_events(app, prepaid)
    app.close()


def cash_from_events(app: Ledger, prepaid: bool) -> int:
    """What the custodian must hold, computed from the raw events alone (not from the journal's code)."""
    cash = 0
    for _, entry in app.entries():
        e = json.loads(entry)
        kind, body = e["type"], e["body"]
        if kind in ("member.deposit_received", "period.subsidy_received"):
            cash += body["amount_fen"]
        elif kind == "period.assessed" and not prepaid:
            cash += body["share_fen"] * body["locked_members"]
        elif kind == "member.debit_failed" and not prepaid:
            cash -= body["amount_fen"]
        elif kind == "member.debit_recovered" and not prepaid:
            cash += body["amount_fen"]
        elif kind == "claim.paid":
            cash -= body["amount_fen"] + body["arrears_deducted_fen"]
        elif kind == "member.refund_disbursed":
            cash -= body["amount_fen"]
    return cash


def _instant(text: str) -> Any:
    from ledger.envelope import parse_at

    return parse_at(text)


def test_stream_local_projections_split_by_partition_build_the_same_rows(tmp_path: Path) -> None:
    """Each partition of a stream-local projection, applied one after another in any order and recording its own
    position, with the keyring events in every partition, leaves exactly the rows of one projection applying
    everything in order."""
    from eventsourcing.sqlite import SQLiteDatastore

    from consumers.topic import entry_partitions
    from ledger.demo import run_demo

    app = demo_ledger(tmp_path / "data")
    run_demo(app, members=80, periods=2, seed=3)
    entries = list(app.entries())
    whole = fresh_digests(app, tmp_path)
    local = [p for p in PROJECTIONS if p.STREAM_LOCAL]
    assert {p.NAME for p in local} == {"balances", "cases"}
    sql = SqlStore(SQLiteDatastore(str(tmp_path / "partitions.sqlite3")))
    for projection_class in local:
        carried = 0
        for partition in (2, 0, 1):
            projection = projection_class(app.app, sql, f"{projection_class.NAME} partition {partition}/3")
            mine = [(nid, entry) for nid, entry in entries if partition in entry_partitions(entry, 3)]
            carried += len(mine)
            for start in range(0, len(mine), 50):
                projection.apply_batch(mine[start:start + 50])
            assert projection.position() == mine[-1][0]
            assert 0 < len(mine) < len(entries)
        keyring = sum(1 for _, entry in entries if json.loads(entry)["type"].startswith("key."))
        assert carried == len(entries) + 2 * keyring
        assert projection.digest() == whole[projection_class.NAME]
    app.close()


def test_a_streams_events_go_to_one_partition_and_keyring_events_to_every_partition() -> None:
    """The topic layout of docs/distribution.md: SHA-256 of the stream id, first 8 bytes big-endian, mod the count
    (vectors computed with `printf %s ID | sha256sum`)."""
    from consumers.topic import partitions_of

    assert list(partitions_of("00000000-0000-0000-0000-000000000000", "member.joined", 4)) == [0]
    assert list(partitions_of("00000000-0000-0000-0000-000000000000", "member.joined", 7)) == [1]
    assert list(partitions_of("63012790-1800-596b-a148-be77f95880cf", "claim.filed", 4)) == [1]
    assert list(partitions_of("63012790-1800-596b-a148-be77f95880cf", "key.registered", 4)) == [0, 1, 2, 3]
    assert list(partitions_of("63012790-1800-596b-a148-be77f95880cf", "key.revoked", 3)) == [0, 1, 2]


def test_migration_6_remakes_the_roster_and_the_journal_of_a_store_made_before(ledger_app: Ledger) -> None:
    """A store at schema version 5 has a journal that took uncovered shares from balances and no `journal_accounts`:
    it is refused until migrated, and step 6 drops the roster's and the journal's tables so that the next catch-up
    books the receivables from the start (the same balances and dues as a store made at version 6)."""
    from ledger.migrations import VERSION_TABLE

    app = ledger_app
    plan = create_plan(app, prepaid_rules(notice_days=3))
    accounts = [join(app, plan) for _ in range(3)]
    for member, amount in zip(accounts, (10_000, 100, 0), strict=True):
        if amount:
            app.execute(Deposit(command_id=cid(), member=member, amount_fen=amount, reference=cid("bank")))
    advance(app, days=100)
    approved_claim(app, accounts[0])
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    before = balances_and_dues(app, plan, accounts)
    assert sum(due for _, due in before.values()) > 0
    clock = clock_of(app)
    sql = app.read_models().journal.sql
    with sql.transaction() as cursor:  # as a version-5 store left it: dues taken from balances, no accounts table
        cursor.execute(f"UPDATE {sql.table('journal_postings')} SET account = 'member_balances' "
                       "WHERE account = 'member_receivables'")
        cursor.execute(f"DROP TABLE {sql.table('journal_accounts')}")
        cursor.execute(f"DELETE FROM {sql.table(VERSION_TABLE)} WHERE version >= 6")
    again = refused_until_migrated(app, 5, clock)
    try:
        assert balances_and_dues(again, plan, accounts) == before
    finally:
        again.close()
