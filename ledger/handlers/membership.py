"""Handlers of the membership commands."""

from __future__ import annotations

from uuid import UUID

from ledger.ages import age_on, top_age_years
from ledger.aggregates.claim import Claim
from ledger.aggregates.membership import Membership
from ledger.aggregates.plan import Plan
from ledger.aggregates.sharing_period import SharingPeriod
from ledger.bounds import check_deposit
from ledger.errors import DomainRuleError, check
from ledger.handlers.common import date_arg, plan_id
from ledger.handlers.period import left_out_for_age
from ledger.plan_days import day_of
from ledger.provinces import PROVINCES
from ledger.rules import Rule
from ledger.sealing import age_band
from ledger.unit_of_work import Outcome, UnitOfWork, handles
from schemas.commands.membership import (
    AcceptConversion,
    Deposit,
    DisburseRefund,
    EraseMember,
    ExcludeForWaitingIllness,
    Exit,
    Join,
    QualifyJuror,
    RecordDebitFailure,
    RecordFraud,
    RecoverDebit,
)
from schemas.commands.plan import AgeOut
from schemas.events import MemberJoinedV2


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
        raise DomainRuleError("age_years", Rule.AGE_MUST_BE_WITHIN_THE_PLAN_BAND,
                              f"{command.age_years} not in {rules.rules.min_age_years}..{rules.rules.max_age_years}")
    check(command.province in PROVINCES, "province", Rule.PROVINCE_MUST_BE_A_PROVINCE_OF_CHINA,
          f"{command.province}: a code of ISO 3166-2:CN in lower case, e.g. zj for Zhejiang")
    family_order = 0
    if command.payer is not None:
        payer = uow.get(UUID(command.payer), Membership, "payer")
        check(payer.plan == command.plan, "payer", Rule.PAYER_MUST_BE_IN_THE_SAME_PLAN)
        payer.check_active("payer")
        check(payer.details.payer is None, "payer", Rule.PAYER_MUST_PAY_FOR_THEMSELVES)
        family_order = 1 + uow.queries.family_count(command.payer) + uow.family_joined(command.payer)
    member_id = uow.new_id("member", command.command_id)
    member = str(member_id)
    body = MemberJoinedV2(
        plan=command.plan, rules_version=rules.version, age_band=age_band(command.age_years),
        age_years_sealed=uow.seal(member, member_id, 1, "age_years", command.age_years, new_member=True),
        sex=command.sex,
        province=command.province, payer=command.payer, family_order=family_order,
        consent_commitment=command.consent_commitment,
        health_declaration_commitment=command.health_declaration_commitment,
    )
    uow.add(Membership.join(member_id, uow.at, uow.actor("member", member), body, command.age_years), "member",
            derived=True)
    return Outcome({"member": member, "plan": command.plan, "family_order": family_order})


@handles(Deposit)
def deposit(uow: UnitOfWork, command: Deposit) -> Outcome:
    """A custodian-confirmed top-up into a self-paying member's prepaid account."""
    membership, plan = member_and_plan(uow, command.member)
    check(plan.rules_at(uow.at).rules.payment_model == "prepaid", "member",
          Rule.DEPOSITS_ARE_ONLY_FOR_PREPAID_PLANS)
    check(membership.details.payer is None, "member", Rule.DEPOSITS_GO_TO_THE_PAYING_MEMBER,
          f"payer is {membership.details.payer}")
    # the balance as stored plus what this unit of work (a batch) added to it: the bound is the account's
    check_deposit(command.amount_fen, uow.queries.balance_fen(command.member) + pending_on_account(uow, command.member))
    membership.receive_deposit(uow.at, uow.actor("custodian"), command.amount_fen, command.reference)
    return Outcome({"member": command.member, "amount_fen": command.amount_fen})


def assessed_period_for(uow: UnitOfWork, membership: Membership, period_id: str) -> SharingPeriod:
    """The assessed period a member was locked into."""
    period = uow.get(UUID(period_id), SharingPeriod, "period")
    check(period.plan == membership.plan, "period", Rule.PERIOD_MUST_BELONG_TO_THE_MEMBERS_PLAN)
    check(period.assessment is not None, "period", Rule.PERIOD_MUST_BE_ASSESSED)
    check(membership.active_at(period.cutoff_at), "member", Rule.MEMBER_MUST_BE_LOCKED_IN_THE_PERIOD)
    return period


@handles(RecordDebitFailure)
def record_debit_failure(uow: UnitOfWork, command: RecordDebitFailure) -> Outcome:
    """The payment channel declined a postpaid share."""
    membership, plan = member_and_plan(uow, command.member)
    check(plan.rules_at(uow.at).rules.payment_model == "postpaid", "member",
          Rule.CHANNEL_DEBIT_FAILURES_ARE_ONLY_FOR_POSTPAID_PLANS)
    period = assessed_period_for(uow, membership, command.period)
    check(period.status == "assessed", "period", Rule.DEBITS_CAN_FAIL_ONLY_BEFORE_SETTLEMENT, period.status)
    charge = uow.queries.charge_fen(command.member, command.period)  # the share, or less (schema 3)
    check(charge is not None, "member", Rule.MEMBER_MUST_BE_LOCKED_IN_THE_PERIOD, "left out of the roll")
    assert charge is not None
    check(charge > 0, "period", Rule.A_ZERO_SHARE_CANNOT_FAIL)
    membership.fail_debit(uow.at, uow.actor("operator"), command.period, charge, "channel_declined")
    return Outcome({"member": command.member, "period": command.period, "amount_fen": charge})


def pending_on_account(uow: UnitOfWork, account: str) -> int:
    """What this unit of work (a batch) has added to a prepaid account so far: its deposits less its recoveries."""
    total = 0
    for aggregate in uow.loaded.values():
        if isinstance(aggregate, Membership) and aggregate.joined is not None and (
                aggregate.details.payer or str(aggregate.id)) == account:
            for event in aggregate.pending_events:
                if isinstance(event, Membership.DepositReceived):
                    total += event.body.amount_fen
                elif isinstance(event, Membership.DebitRecovered):
                    total -= event.body.amount_fen
    return total


@handles(RecoverDebit)
def recover_debit(uow: UnitOfWork, command: RecoverDebit) -> Outcome:
    """A failed debit collected on retry, before grace ends (two days before the next collection day)."""
    membership, plan = member_and_plan(uow, command.member)
    period = assessed_period_for(uow, membership, command.period)
    rules = plan.rules_at(period.cutoff_at).rules
    if rules.payment_model == "prepaid" and command.period in membership.arrears:
        # the share is taken from the account now: a balance that cannot cover it would go negative
        account = membership.details.payer or command.member
        balance = uow.queries.balance_fen(account) + pending_on_account(uow, account)
        check(balance >= membership.arrears[command.period], "period",
              Rule.PREPAID_DEBIT_IS_RECOVERED_ONLY_FROM_A_BALANCE_THAT_COVERS_IT,
              f"balance {balance} fen, debit {membership.arrears[command.period]} fen")
    membership.recover_debit(uow.at, uow.actor("operator"), command.period, period.grace_ends_at(rules))
    return Outcome({"member": command.member, "period": command.period})


@handles(QualifyJuror)
def qualify_juror(uow: UnitOfWork, command: QualifyJuror) -> Outcome:
    """A member passed the juror exam."""
    membership, plan = member_and_plan(uow, command.member)
    membership.qualify_juror(uow.at, uow.actor("operator"), command.age_years, command.exam_commitment,
                             plan.rules_at(uow.at).rules.juror_min_age_years,
                             lambda seq, name, value: uow.seal(command.member, membership.id, seq, name, value))
    return Outcome({"member": command.member})


@handles(RecordFraud)
def record_fraud(uow: UnitOfWork, command: RecordFraud) -> Outcome:
    """A fraud finding against a member."""
    membership = uow.get(UUID(command.member), Membership, "member")
    membership.record_fraud(uow.at, uow.actor("operator"), command.claim, command.finding_commitment,
                            lambda seq, name, value: uow.seal(command.member, membership.id, seq, name, value))
    return Outcome({"member": command.member})


def prepaid_balance_fen(uow: UnitOfWork, membership: Membership, plan: Plan) -> int:
    """The prepaid account balance a self-paying member holds (0 for family members): whatever the plan's payment
    model is now, so a balance left from before a switch to postpaid is refunded, not lost."""
    if membership.details.payer is not None:
        return 0
    return max(0, uow.queries.balance_fen(str(membership.id)))


@handles(Exit)
def exit_plan(uow: UnitOfWork, command: Exit) -> Outcome:
    """The member leaves; a payer must not leave family members without a payer."""
    membership, plan = member_and_plan(uow, command.member)
    membership.check_active()
    family = uow.queries.active_family(command.member)
    check(not family, "member", Rule.PAYER_WITH_ACTIVE_FAMILY_CANNOT_EXIT, f"{len(family)} family members")
    balance = prepaid_balance_fen(uow, membership, plan)
    membership.exit(uow.at, uow.actor("member", command.member), balance)
    return Outcome({"member": command.member, "refund_due_fen": max(balance, 0)})


@handles(AgeOut)
def age_out(uow: UnitOfWork, command: AgeOut) -> Outcome:
    """Every active member of the plan older than its top age band today (`ledger.ages`) leaves it: a prepaid
    balance becomes a refund due like an exit's (a payer whose family stays keeps it for them), and with a successor
    plan (the elderly plan) the member joins it at their age, with the consent and health declaration commitments
    of their first join, self-paying. Members are left out of the locked set from the day they pass the top age
    whether or not this runs; running it twice records only who is new."""
    plan = uow.get(plan_id(command.plan), Plan, "plan")
    rules = plan.rules_at(uow.at).rules
    successor: Plan | None = None
    if command.successor_plan is not None:
        check(command.successor_plan != command.plan, "successor_plan", Rule.SUCCESSOR_MUST_BE_ANOTHER_PLAN)
        successor = uow.get(plan_id(command.successor_plan), Plan, "successor_plan")
        successor.check_accepts_joins(uow.at)
    top = top_age_years(rules)
    today = day_of(uow.at, rules.utc_offset_minutes)
    aged: list[tuple[Membership, int]] = []
    for member in left_out_for_age(uow, command.plan, uow.at, top, rules.utc_offset_minutes):
        membership = uow.get(UUID(member), Membership, "member")
        aged.append((membership, age_on(uow.age_at_joining(membership), membership.joined_at, today,
                                        rules.utc_offset_minutes)))
    leaving = {str(membership.id) for membership, _ in aged}
    moved = 0
    # family members first, so that a payer leaving with their whole family gets the account's balance back
    for membership, age in sorted(aged, key=lambda pair: (pair[0].details.payer is None, str(pair[0].id))):
        member = str(membership.id)
        staying = [m for m in uow.queries.active_family(member) if m not in leaving]
        balance = 0 if staying else prepaid_balance_fen(uow, membership, plan)
        successor_member: str | None = None
        if successor is not None:
            version = successor.rules_at(uow.at)
            band = version.rules
            check(band.min_age_years <= age <= band.max_age_years, "successor_plan",
                  Rule.SUCCESSOR_PLAN_MUST_COVER_THE_MEMBERS_AGE, f"{age} not in {band.min_age_years}.."
                  f"{band.max_age_years}")
            details = membership.details
            new_id = uow.new_id("member", f"{command.command_id}:{member}")
            successor_member = str(new_id)
            body = MemberJoinedV2(
                plan=str(successor.id), rules_version=version.version, age_band=age_band(age),
                age_years_sealed=uow.seal(successor_member, new_id, 1, "age_years", age, new_member=True),
                sex=details.sex, province=details.province, payer=None, family_order=0,
                consent_commitment=details.consent_commitment,
                health_declaration_commitment=details.health_declaration_commitment)
            uow.add(Membership.join(new_id, uow.at, uow.actor("member", successor_member), body, age), "member",
                    derived=True)
            moved += 1
        membership.age_out(uow.at, uow.actor("operator"), top, balance,
                           None if successor is None else str(successor.id), successor_member)
    return Outcome({"plan": command.plan, "aged_out": len(aged), "moved": moved, "top_age_years": top})


@handles(AcceptConversion)
def accept_conversion(uow: UnitOfWork, command: AcceptConversion) -> Outcome:
    """The member takes the conversion offered at the plan's closing (水滴: a free one-year policy)."""
    membership, plan = member_and_plan(uow, command.member)
    offer = plan.conversion_offer()
    check(plan.status != "open" and offer is not None, "member", Rule.CONVERSION_MUST_BE_OFFERED, plan.status)
    assert offer is not None
    membership.accept_conversion(uow.at, uow.actor("member", command.member), offer)
    return Outcome({"member": command.member, "offer": offer})


@handles(ExcludeForWaitingIllness)
def exclude_for_waiting_illness(uow: UnitOfWork, command: ExcludeForWaitingIllness) -> Outcome:
    """Illness in the waiting period: the shares paid come back without interest, the member leaves."""
    membership, plan = member_and_plan(uow, command.member)
    rules = plan.rules_version(membership.details.rules_version).rules
    shares_paid = uow.queries.shares_charged_fen(command.member)
    balance = prepaid_balance_fen(uow, membership, plan)
    membership.exclude(uow.at, uow.actor("operator"), date_arg("diagnosed_on", command.diagnosed_on),
                       rules.waiting_days, plan.rules_at(uow.at).rules.utc_offset_minutes, shares_paid, balance,
                       lambda seq, name, value: uow.seal(command.member, membership.id, seq, name, value))
    return Outcome({"member": command.member, "refund_due_fen": shares_paid + max(balance, 0)})


@handles(DisburseRefund)
def disburse_refund(uow: UnitOfWork, command: DisburseRefund) -> Outcome:
    """The custodian paid a refund that was due."""
    membership = uow.get(UUID(command.member), Membership, "member")
    membership.disburse_refund(uow.at, uow.actor("custodian"), command.amount_fen, command.reference)
    return Outcome({"member": command.member, "amount_fen": command.amount_fen,
                    "refund_outstanding_fen": membership.refund_outstanding_fen()})


@handles(EraseMember)
def erase_member(uow: UnitOfWork, command: EraseMember) -> Outcome:
    """Destroy a member's sealed values (docs/privacy.md): once they left, with no claim of theirs still open; the
    `member.erased` event and the deletion of their data key and values are saved in one transaction."""
    membership = uow.get(UUID(command.member), Membership, "member")
    streams = uow.vault.streams_of(command.member)
    open_claims = sorted(stream for stream in streams
                         if (claim := uow.find(UUID(stream), Claim)) is not None
                         and claim.status not in ("rejected", "paid"))
    open_claims += uow.queries.open_claims(command.member)
    membership.erase(uow.at, uow.actor("operator"), command.reason, uow.writer.retention_days, open_claims)
    uow.vault_writes.erase[command.member] = sorted(streams)
    return Outcome({"member": command.member, "reason": command.reason, "sealed_streams": len(streams)})
