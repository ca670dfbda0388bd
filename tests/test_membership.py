"""Membership rules: join (age band, payer and family order), deposits, juror qualification, exit, exclusion
for an illness in the waiting period, and refunds — each rule broken once, with nothing written."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from pydantic import ValidationError

from ledger.aggregates.membership import Membership
from ledger.bootstrap import Ledger
from schemas.commands.membership import (
    Deposit,
    DisburseRefund,
    ExcludeForWaitingIllness,
    Exit,
    Join,
    QualifyJuror,
)
from schemas.events import MemberJoinedV2
from sim.fixtures import commitment
from tests.support import advance, cid, clock_of, create_plan, deposit, join, prepaid_rules, rejected, sealed_values


def membership(app: Ledger, member: str) -> Membership:
    """A membership, read back from the store."""
    found = app.read(UUID(member), Membership)
    assert found is not None
    return found


def test_join_records_the_commitments_not_the_documents(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    member = membership(ledger_app, join(ledger_app, plan, age=41))
    assert isinstance(member.details, MemberJoinedV2) and member.details.age_band == "40-44"
    assert sealed_values(ledger_app, str(member.id)) == {"age_years": 41}  # the exact age only in the vault
    assert member.details.consent_commitment == commitment("consent")
    assert member.details.family_order == 0 and member.details.payer is None


def test_age_must_be_within_the_plan_band(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, prepaid_rules(min_age_years=18))
    rejected(ledger_app, lambda: join(ledger_app, plan, age=17), "age_years", "age_must_be_within_the_plan_band")
    rejected(ledger_app, lambda: join(ledger_app, plan, age=60), "age_years", "age_must_be_within_the_plan_band")


def test_command_fields_are_strictly_typed() -> None:
    good = Deposit(command_id="d-1", member="5e0a4a3e-8d3c-4b43-9f4c-1f1f6f0c2a11", amount_fen=100,
                   reference="bank-1").model_dump_json()
    for bad, field in ((good.replace("100", "12.5"), "amount_fen"), (good.replace("100", '"100"'), "amount_fen"),
                       (good.replace("100", "0"), "amount_fen"), (good.replace('"bank-1"', '"a b"'), "reference"),
                       (good.replace("5e0a4a3e", "nonsense"), "member")):
        with pytest.raises(ValidationError) as caught:
            Deposit.model_validate_json(bad)
        assert caught.value.errors()[0]["loc"] == (field,)


def test_family_members_join_under_a_self_paying_payer(ledger_app: Ledger) -> None:
    plan, other_plan = create_plan(ledger_app), create_plan(ledger_app)
    payer = join(ledger_app, plan)
    child = join(ledger_app, plan, age=5, payer=payer)
    second = join(ledger_app, plan, age=60 - 3, payer=payer)
    assert [membership(ledger_app, m).details.family_order for m in (child, second)] == [1, 2]
    rejected(ledger_app, lambda: join(ledger_app, plan, payer=child), "payer", "payer_must_pay_for_themselves")
    rejected(ledger_app, lambda: join(ledger_app, other_plan, payer=payer), "payer",
             "payer_must_be_in_the_same_plan")
    rejected(ledger_app, lambda: join(ledger_app, plan, payer="5e0a4a3e-8d3c-4b43-9f4c-1f1f6f0c2a11"),
             "payer", "membership_must_exist")
    rejected(ledger_app, lambda: ledger_app.execute(Exit(command_id=cid(), member=payer)),
             "member", "payer_with_active_family_cannot_exit")
    for member in (child, second, payer):
        ledger_app.execute(Exit(command_id=cid(), member=member))
    rejected(ledger_app, lambda: join(ledger_app, plan, payer=payer), "payer", "member_must_be_active")


def test_deposits(ledger_app: Ledger) -> None:
    postpaid, prepaid = create_plan(ledger_app), create_plan(ledger_app, prepaid_rules())
    postpaid_member = join(ledger_app, postpaid)
    rejected(ledger_app, lambda: deposit(ledger_app, postpaid_member, 100), "member",
             "deposits_are_only_for_prepaid_plans")
    payer = join(ledger_app, prepaid)
    child = join(ledger_app, prepaid, age=3, payer=payer)
    rejected(ledger_app, lambda: deposit(ledger_app, child, 100), "member", "deposits_go_to_the_paying_member")
    ledger_app.execute(Deposit(command_id=cid(), member=payer, amount_fen=1000, reference="bank-7"))
    rejected(ledger_app, lambda: ledger_app.execute(
        Deposit(command_id=cid(), member=payer, amount_fen=1000, reference="bank-7")),
        "reference", "deposit_reference_must_be_new")
    assert ledger_app.balances().balance_fen(payer) == 1000


def test_juror_qualification(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    member = join(ledger_app, plan, age=17)
    rejected(ledger_app, lambda: ledger_app.execute(QualifyJuror(
        command_id=cid(), member=member, age_years=17, exam_commitment=commitment())),
        "age_years", "juror_must_be_of_age")
    ledger_app.execute(QualifyJuror(command_id=cid(), member=member, age_years=18, exam_commitment=commitment()))
    rejected(ledger_app, lambda: ledger_app.execute(QualifyJuror(
        command_id=cid(), member=member, age_years=18, exam_commitment=commitment())),
        "member", "juror_can_qualify_once")


def test_exit_is_once_and_refunds_a_prepaid_balance(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, prepaid_rules())
    member = join(ledger_app, plan)
    deposit(ledger_app, member, 2000)
    result = ledger_app.execute(Exit(command_id=cid(), member=member))
    assert result["refund_due_fen"] == 2000
    rejected(ledger_app, lambda: ledger_app.execute(Exit(command_id=cid(), member=member)),
             "member", "member_must_be_active")
    rejected(ledger_app, lambda: deposit(ledger_app, member, 100), "member", "member_must_be_active")
    rejected(ledger_app, lambda: ledger_app.execute(DisburseRefund(
        command_id=cid(), member=member, amount_fen=2001, reference="out-1")),
        "amount_fen", "refund_must_not_exceed_amount_due")
    ledger_app.execute(DisburseRefund(command_id=cid(), member=member, amount_fen=2000, reference="out-1"))
    assert membership(ledger_app, member).refund_outstanding_fen() == 0
    rejected(ledger_app, lambda: ledger_app.execute(DisburseRefund(
        command_id=cid(), member=member, amount_fen=1, reference="out-2")),
        "amount_fen", "refund_must_not_exceed_amount_due")


def test_refund_must_be_due(ledger_app: Ledger) -> None:
    member = join(ledger_app, create_plan(ledger_app))
    rejected(ledger_app, lambda: ledger_app.execute(DisburseRefund(
        command_id=cid(), member=member, amount_fen=1, reference="out-1")), "member", "refund_must_be_due")


def test_illness_in_the_waiting_period_excludes_and_refunds(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, prepaid_rules(waiting_days=90))
    member = join(ledger_app, plan)
    deposit(ledger_app, member, 500)
    advance(ledger_app, days=100)
    today = clock_of(ledger_app).current.date()

    def exclude(diagnosed_on: str) -> dict[str, Any]:
        return ledger_app.execute(ExcludeForWaitingIllness(
            command_id=cid(), member=member, diagnosed_on=diagnosed_on, condition="lung_cancer"))

    rejected(ledger_app, lambda: exclude("2025-12-31"), "diagnosed_on", "diagnosis_must_not_precede_joining")
    rejected(ledger_app, lambda: exclude(today.replace(year=today.year + 1).isoformat()), "diagnosed_on",
             "diagnosis_must_not_be_in_the_future")
    rejected(ledger_app, lambda: exclude("2026-04-01"), "diagnosed_on",
             "exclusion_applies_only_to_illness_in_the_waiting_period")
    result = exclude("2026-03-31")
    assert result["refund_due_fen"] == 500
    excluded = membership(ledger_app, member)
    assert excluded.status == "excluded" and excluded.refund_outstanding_fen() == 500
    rejected(ledger_app, lambda: ledger_app.execute(Join(
        command_id=cid(), plan=plan, age_years=30, sex="f", province="zj", payer=member,
        consent_commitment=commitment(), health_declaration_commitment=commitment())),
        "payer", "member_must_be_active")
