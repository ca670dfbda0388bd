"""Plan days are China days (Asia/Shanghai): the waiting period and the rules version of a diagnosis day are counted
on plan-time calendar days, not UTC dates, and the audit recomputes the rules version of every filed claim."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from audit.verify import Auditor
from ledger.anchors import TrustAnchors
from ledger.bootstrap import Ledger
from ledger.envelope import format_at
from ledger.plan_days import day_end, day_of, day_start, waiting_ends_on, whole_years
from ledger.reveal import reveal_member
from schemas.commands.plan import AmendRules
from sim.fixtures import rules
from tests.support import cid, clock_of, create_plan, join, rejected, sealed_values
from tests.test_audit import resign_and_audit
from tests.test_claim import file, read


def test_a_plan_day_starts_at_midnight_in_china() -> None:
    assert day_of(datetime(2026, 3, 1, 15, 59, tzinfo=UTC), 480) == date(2026, 3, 1)
    assert day_of(datetime(2026, 3, 1, 16, 0, tzinfo=UTC), 480) == date(2026, 3, 2)
    assert day_start(date(2026, 3, 2), 480) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
    assert day_end(date(2026, 3, 1), 480) == datetime(2026, 3, 1, 15, 59, 59, 999_999, tzinfo=UTC)
    assert waiting_ends_on(datetime(2026, 1, 1, 20, 0, tzinfo=UTC), 90, 480) == date(2026, 4, 2)
    assert whole_years(date(2020, 2, 29), date(2021, 2, 28)) == 0
    assert whole_years(date(2020, 2, 29), date(2021, 3, 1)) == 1


def test_the_waiting_period_counts_china_days(ledger_app: Ledger) -> None:
    """Joined at 04:00 Beijing time on 2 January (still 1 January in UTC): 90 waiting days end with 1 April, so an
    illness diagnosed on 1 April is in the waiting period (UTC dates would have covered it a day early)."""
    plan = create_plan(ledger_app, rules(notice_days=3))
    clock_of(ledger_app).set(datetime(2026, 1, 1, 20, 0, tzinfo=UTC))
    member, other = join(ledger_app, plan), join(ledger_app, plan)
    clock_of(ledger_app).set(datetime(2026, 4, 10, 4, 0, tzinfo=UTC))
    rejected(ledger_app, lambda: file(ledger_app, member, "2026-04-01"), "diagnosed_on",
             "illness_in_the_waiting_period_is_not_covered")
    assert sealed_values(ledger_app, file(ledger_app, other, "2026-04-02"))["diagnosed_on"] == "2026-04-02"


def test_an_amendment_from_midnight_beijing_does_not_apply_to_the_day_before(ledger_app: Ledger) -> None:
    """Rules effective 00:00 Beijing on 11 April (16:00 UTC on the 10th) are not the rules of a diagnosis on the
    10th; the audit recomputes the version and catches a claim filed under the wrong one."""
    plan = create_plan(ledger_app, rules(notice_days=3))
    member, other = join(ledger_app, plan), join(ledger_app, plan)
    clock_of(ledger_app).set(datetime(2026, 4, 9, 4, 0, tzinfo=UTC))
    effective = day_start(date(2026, 4, 11), 480)
    ledger_app.execute(AmendRules(command_id=cid(), plan=plan, effective_from=format_at(effective),
                                  rules=rules(notice_days=4)))
    clock_of(ledger_app).set(effective + timedelta(hours=2))
    on_the_10th = file(ledger_app, member, "2026-04-10")
    on_the_11th = file(ledger_app, other, "2026-04-11")
    assert read(ledger_app, on_the_10th).details.rules_version == 1
    assert read(ledger_app, on_the_11th).details.rules_version == 2
    revealed = reveal_member(ledger_app.app, member) + reveal_member(ledger_app.app, other)  # the days are sealed
    failures = resign_and_audit(ledger_app, "claim.filed", lambda body: body.update(rules_version=2))
    assert failures == []  # without the value, the version of the diagnosis day cannot be checked...
    anchors = TrustAnchors.load(ledger_app.settings.data_dir / "trust-anchors.json")
    report = Auditor(anchors, revealed=revealed).run([entry for _, entry in ledger_app.entries()])
    assert [f.check for f in report.failures] == ["13 sealed (rules version)"]  # ...with it, it is

