"""Handlers of the membership commands."""

from __future__ import annotations

from uuid import UUID

from ledger.aggregates.base import DomainRuleError, check
from ledger.aggregates.membership import Membership
from ledger.aggregates.plan import Plan
from ledger.aggregates.sharing_period import SharingPeriod
from ledger.application import Outcome, UnitOfWork, handles
from ledger.handlers.common import date_arg, new_stream_id, plan_id
from schemas.commands.membership import (
    Deposit,
    DisburseRefund,
    ExcludeForWaitingIllness,
    Exit,
    Join,
    QualifyJuror,
    RecordDebitFailure,
    RecordFraud,
    RecoverDebit,
)
from schemas.events import MemberJoinedV1


def member_and_plan(uow: UnitOfWork, member: str) -> tuple[Membership, Plan]:
    """Load a membership and its plan."""
    membership = uow.get(UUID(member), Membership, "member")
    return membership, uow.get(UUID(membership.plan), Plan, "plan")


@handles(Join)
def join(uow: UnitOfWork, command: Join) -> Outcome:
    """A person joins: the plan must be open, their age within its band, their payer a self-paying member."""
    plan = uow.get(plan_id(command.plan), Plan, "plan")
    plan.check_accepts_joins(uow.at)
    rules = plan.rules_at(uow.at)
    if not rules.rules.min_age_years <= command.age_years <= rules.rules.max_age_years:
        raise DomainRuleError("age_years", "age_must_be_within_the_plan_band",
                              f"{command.age_years} not in {rules.rules.min_age_years}..{rules.rules.max_age_years}")
    family_order = 0
    if command.payer is not None:
        payer = uow.get(UUID(command.payer), Membership, "payer")
        check(payer.plan == command.plan, "payer", "payer_must_be_in_the_same_plan")
        payer.check_active("payer")
        check(payer.details.payer is None, "payer", "payer_must_pay_for_themselves")
        family_order = 1 + uow.app.balances().family_count(command.payer) + uow.family_joined(command.payer)
    member_id = new_stream_id("member", command.command_id, command.member)
    body = MemberJoinedV1(
        plan=command.plan, rules_version=rules.version, age_years=command.age_years, sex=command.sex,
        province=command.province, payer=command.payer, family_order=family_order,
        consent_commitment=command.consent_commitment,
        health_declaration_commitment=command.health_declaration_commitment,
    )
    member = str(member_id)
    uow.add(Membership.join(member_id, uow.at, uow.actor("member", member), body), "member",
            derived=command.member is None)
    return Outcome({"member": member, "plan": command.plan, "family_order": family_order})


@handles(Deposit)
def deposit(uow: UnitOfWork, command: Deposit) -> Outcome:
    """A custodian-confirmed top-up into a self-paying member's prepaid account."""
    membership, plan = member_and_plan(uow, command.member)
    check(plan.rules_at(uow.at).rules.payment_model == "prepaid", "member",
          "deposits_are_only_for_prepaid_plans")
    check(membership.details.payer is None, "member", "deposits_go_to_the_paying_member",
          f"payer is {membership.details.payer}")
    membership.receive_deposit(uow.at, uow.actor("custodian"), command.amount_fen, command.reference)
    return Outcome({"member": command.member, "amount_fen": command.amount_fen})


def assessed_period_for(uow: UnitOfWork, membership: Membership, period_id: str) -> SharingPeriod:
    """The assessed period a member was locked into."""
    period = uow.get(UUID(period_id), SharingPeriod, "period")
    check(period.plan == membership.plan, "period", "period_must_belong_to_the_members_plan")
    check(period.assessment is not None, "period", "period_must_be_assessed")
    check(membership.active_at(period.cutoff_at), "member", "member_must_be_locked_in_the_period")
    return period


@handles(RecordDebitFailure)
def record_debit_failure(uow: UnitOfWork, command: RecordDebitFailure) -> Outcome:
    """The payment channel declined a postpaid share."""
    membership, plan = member_and_plan(uow, command.member)
    check(plan.rules_at(uow.at).rules.payment_model == "postpaid", "member",
          "channel_debit_failures_are_only_for_postpaid_plans")
    period = assessed_period_for(uow, membership, command.period)
    check(period.status == "assessed", "period", "debits_can_fail_only_before_settlement", period.status)
    assert period.assessment is not None
    check(period.assessment.share_fen > 0, "period", "a_zero_share_cannot_fail")
    membership.fail_debit(uow.at, uow.actor("operator"), command.period, period.assessment.share_fen,
                          "channel_declined")
    return Outcome({"member": command.member, "period": command.period,
                    "amount_fen": period.assessment.share_fen})


@handles(RecoverDebit)
def recover_debit(uow: UnitOfWork, command: RecoverDebit) -> Outcome:
    """A failed debit collected on retry, before grace ends (two days before the next collection day)."""
    membership, plan = member_and_plan(uow, command.member)
    period = assessed_period_for(uow, membership, command.period)
    grace_ends_at = period.grace_ends_at(plan.rules_at(period.cutoff_at).rules)
    membership.recover_debit(uow.at, uow.actor("operator"), command.period, grace_ends_at)
    return Outcome({"member": command.member, "period": command.period})


@handles(QualifyJuror)
def qualify_juror(uow: UnitOfWork, command: QualifyJuror) -> Outcome:
    """A member passed the juror exam."""
    membership, plan = member_and_plan(uow, command.member)
    membership.qualify_juror(uow.at, uow.actor("operator"), command.age_years, command.exam_commitment,
                             plan.rules_at(uow.at).rules.juror_min_age_years)
    return Outcome({"member": command.member})


@handles(RecordFraud)
def record_fraud(uow: UnitOfWork, command: RecordFraud) -> Outcome:
    """A fraud finding against a member."""
    membership = uow.get(UUID(command.member), Membership, "member")
    membership.record_fraud(uow.at, uow.actor("operator"), command.claim, command.finding_commitment)
    return Outcome({"member": command.member})


def prepaid_balance_fen(uow: UnitOfWork, membership: Membership, plan: Plan) -> int:
    """The prepaid account balance a self-paying member holds (0 for postpaid plans and family members)."""
    if membership.details.payer is not None or plan.rules_at(uow.at).rules.payment_model != "prepaid":
        return 0
    return uow.app.balances().balance_fen(str(membership.id))


@handles(Exit)
def exit_plan(uow: UnitOfWork, command: Exit) -> Outcome:
    """The member leaves; a payer must not leave family members without a payer."""
    membership, plan = member_and_plan(uow, command.member)
    membership.check_active()
    family = uow.app.balances().active_family(command.member)
    check(not family, "member", "payer_with_active_family_cannot_exit", f"{len(family)} family members")
    balance = prepaid_balance_fen(uow, membership, plan)
    membership.exit(uow.at, uow.actor("member", command.member), balance)
    return Outcome({"member": command.member, "refund_due_fen": max(balance, 0)})


@handles(ExcludeForWaitingIllness)
def exclude_for_waiting_illness(uow: UnitOfWork, command: ExcludeForWaitingIllness) -> Outcome:
    """Illness in the waiting period: the shares paid come back without interest, the member leaves."""
    membership, plan = member_and_plan(uow, command.member)
    rules = plan.rules_version(membership.details.rules_version).rules
    shares_paid = uow.app.balances().shares_charged_fen(command.member)
    balance = prepaid_balance_fen(uow, membership, plan)
    membership.exclude(uow.at, uow.actor("operator"), date_arg("diagnosed_on", command.diagnosed_on),
                       rules.waiting_days, shares_paid, balance)
    return Outcome({"member": command.member, "refund_due_fen": shares_paid + max(balance, 0)})


@handles(DisburseRefund)
def disburse_refund(uow: UnitOfWork, command: DisburseRefund) -> Outcome:
    """The custodian paid a refund that was due."""
    membership = uow.get(UUID(command.member), Membership, "member")
    membership.disburse_refund(uow.at, uow.actor("custodian"), command.amount_fen, command.reference)
    return Outcome({"member": command.member, "amount_fen": command.amount_fen,
                    "refund_outstanding_fen": membership.refund_outstanding_fen()})
