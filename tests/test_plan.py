"""Plan rules: versioned rules, and the life of a plan (open → closing → terminated), each rule broken once."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from pydantic import ValidationError

from ledger.aggregates.plan import Plan
from ledger.bootstrap import Ledger
from ledger.envelope import format_at
from schemas.commands.membership import Join
from schemas.commands.plan import AmendRules, AnnounceClosing, TerminatePlan
from schemas.events import AidBand, PlanRules
from sim.fixtures import commitment, rules
from tests.support import advance, cid, clock_of, create_plan, join, rejected


def at(app: Ledger, **delta: float) -> str:
    """An instant relative to the simulated clock, in the envelope's format."""
    return format_at(clock_of(app).current + timedelta(**delta))


def test_rules_are_checked_when_built() -> None:
    with pytest.raises(ValidationError, match="min_age_years must not exceed max_age_years"):
        rules(min_age_years=60, max_age_years=59)
    with pytest.raises(ValidationError, match="aid_bands must ascend and cover max_age_years"):
        rules(aid_bands=(AidBand(up_to_age_years=39, max_aid_fen=1),))
    with pytest.raises(ValidationError, match="cycle days must ascend"):
        rules(notice_days_of_month=(21, 7))
    with pytest.raises(ValidationError, match="fee_bps"):
        rules(fee_bps=10_001)
    with pytest.raises(ValidationError, match="per_case_cap_fen"):
        PlanRules.model_validate_json(rules().model_dump_json().replace('"per_case_cap_fen":10',
                                                                        '"per_case_cap_fen":"10"'))


def test_max_aid_follows_the_age_band_at_diagnosis() -> None:
    plan_rules = rules()
    assert [plan_rules.max_aid_fen(age) for age in (0, 39, 40, 59, 60)] == [
        30_000_000, 30_000_000, 10_000_000, 10_000_000, 0]


def test_amended_rules_take_effect_from_their_instant(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    result = ledger_app.execute(AmendRules(command_id=cid(), plan=plan, effective_from=at(ledger_app, days=10),
                                           rules=rules(fee_bps=600)))
    assert result["rules_version"] == 2
    assert join_version(ledger_app, plan) == 1
    advance(ledger_app, days=10)
    assert join_version(ledger_app, plan) == 2
    stored = ledger_app.read(UUID(plan), Plan)
    assert stored is not None and stored.rules_at(clock_of(ledger_app).current).rules.fee_bps == 600


def join_version(app: Ledger, plan: str) -> int:
    """The rules version recorded by a new join."""
    member = join(app, plan)
    from ledger.aggregates.membership import Membership

    membership = app.read(UUID(member), Membership)
    assert membership is not None
    return membership.details.rules_version


def test_rules_cannot_be_amended_in_the_past_or_out_of_order(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    advance(ledger_app, days=1)
    rejected(ledger_app, lambda: ledger_app.execute(AmendRules(
        command_id=cid(), plan=plan, effective_from=at(ledger_app, hours=-1), rules=rules())),
        "effective_from", "rules_cannot_take_effect_in_the_past")
    ledger_app.execute(AmendRules(command_id=cid(), plan=plan, effective_from=at(ledger_app, days=30),
                                  rules=rules()))
    rejected(ledger_app, lambda: ledger_app.execute(AmendRules(
        command_id=cid(), plan=plan, effective_from=at(ledger_app, days=20), rules=rules())),
        "effective_from", "rules_versions_must_take_effect_in_order")


def test_unknown_plan(ledger_app: Ledger) -> None:
    rejected(ledger_app, lambda: ledger_app.execute(Join(
        command_id=cid(), plan="5e0a4a3e-8d3c-4b43-9f4c-1f1f6f0c2a11", age_years=30, sex="f", province="zj",
        consent_commitment=commitment(), health_declaration_commitment=commitment())),
        "plan", "plan_must_exist")


def test_closing_and_termination(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    rejected(ledger_app, lambda: ledger_app.execute(TerminatePlan(command_id=cid(), plan=plan)),
             "plan", "plan_must_announce_closing_before_termination")
    rejected(ledger_app, lambda: ledger_app.execute(AnnounceClosing(
        command_id=cid(), plan=plan, ends_at=at(ledger_app, hours=-1), refund_deadline=at(ledger_app, days=5),
        claim_tail_days=180)), "ends_at", "plan_end_must_be_in_the_future")
    rejected(ledger_app, lambda: ledger_app.execute(AnnounceClosing(
        command_id=cid(), plan=plan, ends_at=at(ledger_app, days=30), refund_deadline=at(ledger_app, days=29),
        claim_tail_days=180)), "refund_deadline", "refund_deadline_must_not_precede_end")
    ledger_app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=at(ledger_app, days=30),
                                       refund_deadline=at(ledger_app, days=35), claim_tail_days=180))
    rejected(ledger_app, lambda: join(ledger_app, plan), "plan", "plan_must_be_open_to_join")
    rejected(ledger_app, lambda: ledger_app.execute(AmendRules(
        command_id=cid(), plan=plan, effective_from=at(ledger_app, days=1), rules=rules())),
        "plan", "plan_must_be_open_to_amend_rules")
    rejected(ledger_app, lambda: ledger_app.execute(AnnounceClosing(
        command_id=cid(), plan=plan, ends_at=at(ledger_app, days=40), refund_deadline=at(ledger_app, days=45),
        claim_tail_days=180)), "plan", "plan_must_be_open_to_announce_closing")
    advance(ledger_app, days=29)
    rejected(ledger_app, lambda: ledger_app.execute(TerminatePlan(command_id=cid(), plan=plan)),
             "at", "plan_cannot_terminate_before_announced_end")
    advance(ledger_app, days=1)
    ledger_app.execute(TerminatePlan(command_id=cid(), plan=plan))
    stored = ledger_app.read(UUID(plan), Plan)
    assert stored is not None and stored.status == "terminated"
    rejected(ledger_app, lambda: ledger_app.execute(TerminatePlan(command_id=cid(), plan=plan)),
             "plan", "plan_must_announce_closing_before_termination")
