"""The roster questions the period commands ask of the balances read model, on both backends: who is locked at a
cutoff, which approved claims wait for a period, what the year's shares were, and that applying an assessment is
one statement whatever the number of members."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ledger.bootstrap import Ledger
from ledger.envelope import format_at
from ledger.projections.balances import Balances
from ledger.projections.sql import Params, SqlCursor
from schemas.commands.membership import Exit
from schemas.commands.period import AssessPeriod, OpenPeriod
from sim.fixtures import START, rules
from tests.support import advance, cid, clock_of, create_plan, join
from tests.test_period import approved_claim, at_local, period_of


class CountingCursor(SqlCursor):
    """A cursor that counts the statements sent through it."""

    def __init__(self, inner: SqlCursor) -> None:
        self.inner = inner
        self.statements = 0

    def execute(self, statement: str, params: Params = ()) -> SqlCursor:
        self.statements += 1
        return self.inner.execute(statement, params)

    def executemany(self, statement: str, rows: Sequence[Params]) -> None:
        self.statements += 1
        self.inner.executemany(statement, rows)


def count_rows(balances: Balances, table: str) -> int:
    with balances.sql.transaction(commit=False) as cursor:
        row = cursor.execute(f"SELECT COUNT(*) FROM {balances.t(table)}").fetchone()
    assert row is not None
    return int(row[0])


def test_locked_members_are_those_in_the_plan_at_the_cutoff_sorted(ledger_app: Ledger) -> None:
    app = ledger_app
    plan, other_plan = create_plan(app), create_plan(app, name="Other plan")
    stays, leaves_later, left_before = join(app, plan), join(app, plan), join(app, plan)
    join(app, other_plan)
    advance(app, days=1)
    app.execute(Exit(command_id=cid(), member=left_before))
    advance(app, days=1)
    cutoff = format_at(clock_of(app).current)
    advance(app, seconds=1)
    joined_after = join(app, plan)
    app.execute(Exit(command_id=cid(), member=leaves_later))
    balances = app.balances()
    assert balances.locked_members(plan, cutoff) == sorted([stays, leaves_later])
    assert balances.locked_members(plan, format_at(clock_of(app).current)) == sorted([stays, joined_after])
    assert balances.locked_members(plan, format_at(START - timedelta(days=1))) == []
    assert balances.position() == app.app.recorder.max_notification_id()


def test_claims_waiting_for_a_period_and_the_years_shares(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, rules(notice_days=3))
    members = [join(app, plan) for _ in range(4)]
    advance(app, days=100)
    claim = approved_claim(app, members[0])
    balances = app.balances()
    decided = format_at(clock_of(app).current)
    assert balances.approved_claims(plan, decided) == [claim]
    assert balances.approved_claims(plan, format_at(clock_of(app).current - timedelta(seconds=1))) == []
    first = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=first))
    share = period_of(app, first).require_assessment().share_fen
    assert share == 10  # one case, capped at 10 fen per case
    balances = app.balances()
    assert balances.approved_claims(plan, format_at(clock_of(app).current)) == []
    assert balances.included_claims(first) == [claim]
    cutoff = period_of(app, first).cutoff_at
    year_start = format_at(START - timedelta(hours=8))  # 2026-01-01 00:00 China time
    assert balances.year_shares_fen(plan, year_start, format_at(cutoff)) == 0  # earlier periods only
    assert balances.year_shares_fen(plan, year_start, format_at(cutoff + timedelta(seconds=1))) == share
    assert [balances.shares_charged_fen(m) for m in members] == [share] * 4


def test_an_assessment_is_one_statement_whatever_the_number_of_members(ledger_app: Ledger) -> None:
    balances = ledger_app.balances()
    plan, period = str(uuid.uuid4()), str(uuid.uuid4())
    rng = random.Random(7)
    members = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(20_000)]
    joined = format_at(START)
    envelopes: list[dict[str, Any]] = [
        {"stream": member, "type": "member.joined", "at": joined,
         "body": {"plan": plan, "payer": None, "family_order": 0, "age_years": 30}} for member in members]
    with balances.sql.transaction() as cursor:
        for envelope in envelopes:
            balances.apply(cursor, envelope)
    cutoff = format_at(START + timedelta(days=7))
    assessed = {"stream": period, "type": "period.assessed", "at": cutoff,
                "body": {"plan": plan, "number": 1, "cutoff_at": cutoff, "share_fen": 33}}
    before = count_rows(balances, "roster_members"), count_rows(balances, "roster_periods")
    with balances.sql.transaction() as cursor:
        counting = CountingCursor(cursor)
        balances.apply(counting, assessed)
    assert counting.statements == 1
    assert (count_rows(balances, "roster_members"), count_rows(balances, "roster_periods")) == (
        before[0], before[1] + 1)
    assert balances.locked_members(plan, cutoff) == sorted(members)
    assert {balances.shares_charged_fen(m) for m in rng.sample(members, 20)} == {33}
    assert balances.year_shares_fen(plan, joined, format_at(START + timedelta(days=8))) == 33


def test_the_locked_set_is_counted_and_rolled_as_it_streams_in_code_point_order(ledger_app: Ledger) -> None:
    """The assessment's locked set: its count and its roll in one snapshot, the roll hashed batch by batch as the
    members stream in, equal to the roll over the sorted list; members out of order are refused, not rolled."""
    import pytest

    from ledger.sharing import roll_root, streamed_roll

    app = ledger_app
    balances = app.balances()
    plan = str(uuid.uuid4())
    members = [str(uuid.uuid4()) for _ in range(23)]
    joined = format_at(START)
    with balances.sql.transaction() as cursor:
        for member in members:
            balances.apply(cursor, {"stream": member, "type": "member.joined", "at": joined,
                                    "body": {"plan": plan, "payer": None, "family_order": 0, "age_years": 30}})
    period, cutoff = str(uuid.uuid4()), format_at(START + timedelta(days=7))
    expected = roll_root(period, sorted(members), 33)
    with balances.locked_set(plan, cutoff) as locked:
        assert locked.count == 23
        assert locked.roll(period, 33) == (expected, 23)
    with balances.sql.snapshot() as snapshot:  # the stream as the roll reads it, three rows at a time
        batches = [[row[0] for row in batch] for batch in snapshot.batches(
            f"SELECT id FROM {balances.members} WHERE plan = ? ORDER BY id" + (' COLLATE "C"' if balances.sql.postgres
                                                                             else ""), (plan,), size=3)]
    assert [len(batch) for batch in batches] == [3] * 7 + [2]
    assert streamed_roll(period, batches, 33) == (expected, 23)
    assert streamed_roll(period, batches, 34)[0] != expected
    with pytest.raises(AssertionError, match="sorted"):
        streamed_roll(period, [batches[1], batches[0], *batches[2:]], 33)
    with balances.locked_set(plan, format_at(START - timedelta(days=1))) as nobody:
        assert nobody.count == 0 and nobody.roll(period, 33)[1] == 0
