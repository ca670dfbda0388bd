"""Handlers of the claim commands (docs/claims.md states every rule)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from ledger.aggregates.claim import Claim
from ledger.aggregates.membership import Membership
from ledger.aggregates.plan import Plan
from ledger.aggregates.sharing_period import SharingPeriod, plan_date, plan_midnight
from ledger.conditions import fits_age, fits_category, fits_sex
from ledger.envelope import format_at
from ledger.errors import check
from ledger.handlers.common import date_arg
from ledger.plan_days import day_end, whole_years
from ledger.rules import Rule
from ledger.sealing import age_band, plan_month
from ledger.unit_of_work import Outcome, UnitOfWork, handles
from schemas.commands.claim import (
    CastVote,
    DecideClaim,
    FileClaim,
    FileObjection,
    InvestigateClaim,
    NoticeClaim,
    PayClaim,
    RequestJury,
    ResolveObjection,
)
from schemas.events import ClaimFiledV2, ClaimInvestigatedV1, PlanRules


def claim_and_plan(uow: UnitOfWork, claim_id: str) -> tuple[Claim, Plan, PlanRules]:
    """A claim, its plan, and the rules version in force at diagnosis."""
    claim = uow.get(UUID(claim_id), Claim, "claim")
    plan = uow.get(UUID(claim.details.plan), Plan, "plan")
    return claim, plan, plan.rules_version(claim.details.rules_version).rules


def open_claims_of(uow: UnitOfWork, member: str) -> set[str]:
    """The member's claims not yet rejected or paid: the stored ones (plain ones from the read side, sealed ones by
    the vault, which alone knows who filed them), as changed by this unit of work, so that a batch cannot file two
    claims for one member."""
    found = set(uow.queries.open_claims(member))
    for stream in uow.vault.streams_of(member):
        sealed = uow.find(UUID(stream), Claim)
        if sealed is not None and sealed.status not in ("rejected", "paid"):
            found.add(stream)
    for aggregate in uow.loaded.values():
        if isinstance(aggregate, Claim) and aggregate.filing is not None and aggregate.claimant == member:
            if aggregate.status in ("rejected", "paid"):
                found.discard(str(aggregate.id))
            else:
                found.add(str(aggregate.id))
    return found


@handles(FileClaim)
def file_claim(uow: UnitOfWork, command: FileClaim) -> Outcome:
    """Report a diagnosis: covered member, within the window, not an illness in the waiting period."""
    membership = uow.get(UUID(command.member), Membership, "member")
    plan = uow.get(UUID(membership.plan), Plan, "plan")
    diagnosed_on = date_arg("diagnosed_on", command.diagnosed_on)
    zone = plan.rules_at(uow.at).rules  # diagnosis dates are plan days (ledger.plan_days)
    offset = zone.utc_offset_minutes
    diagnosed_at = day_end(diagnosed_on, offset)  # the rules in force on the diagnosis day, as audited
    today = plan_date(uow.at, zone)
    check(diagnosed_on <= today, "diagnosed_on", Rule.DIAGNOSIS_MUST_NOT_BE_IN_THE_FUTURE, today.isoformat())
    check(plan_date(membership.joined_at, zone) <= diagnosed_on, "diagnosed_on",
          Rule.DIAGNOSIS_MUST_NOT_PRECEDE_JOINING)
    wound_down = membership.status == "wound_down"  # the wind-down ends no cover: diagnoses up to the plan's end
    check(membership.ended_at is None or wound_down or diagnosed_on < plan_date(membership.ended_at, zone), "member",
          Rule.MEMBER_MUST_BE_COVERED_ON_THE_DIAGNOSIS_DATE, membership.status)
    ends_at = plan.ends_at()
    if plan.status != "open":
        assert ends_at is not None
        check(plan_midnight(diagnosed_on, plan.rules_at(ends_at).rules) < ends_at, "diagnosed_on",
              Rule.DIAGNOSIS_MUST_PRECEDE_THE_PLAN_END, format_at(ends_at))  # the end day itself counts as before
    version = plan.rules_at(diagnosed_at)
    rules = version.rules
    window = rules.claim_window_days
    if plan.status != "open" and plan.closing is not None:
        window = plan.closing.claim_tail_days
    check(today <= diagnosed_on + timedelta(days=window), "diagnosed_on",
          Rule.CLAIM_MUST_BE_FILED_WITHIN_THE_CLAIM_WINDOW, f"{window} days")
    check(fits_category(command.condition, command.category), "condition", Rule.CONDITION_MUST_FIT_THE_CATEGORY,
          f"{command.condition} is not an {command.category}" if command.category == "accident"
          else f"{command.condition} is an accident")
    check(fits_sex(command.condition, membership.details.sex), "condition", Rule.CONDITION_MUST_FIT_THE_MEMBERS_SEX,
          f"{command.condition} for sex {membership.details.sex}")
    joined_rules = plan.rules_version(membership.details.rules_version).rules
    check(command.category == "accident"
          or not membership.in_waiting_period(diagnosed_on, joined_rules.waiting_days, offset),
          "diagnosed_on", Rule.ILLNESS_IN_THE_WAITING_PERIOD_IS_NOT_COVERED, f"{joined_rules.waiting_days} days")
    years_in_plan = whole_years(plan_date(membership.joined_at, zone), diagnosed_on)
    joined_age = uow.age_at_joining(membership)
    check(joined_age <= command.age_at_diagnosis <= joined_age + years_in_plan + 1,
          "age_at_diagnosis", Rule.AGE_AT_DIAGNOSIS_MUST_MATCH_THE_AGE_AT_JOINING, f"joined at {joined_age}")
    check(rules.max_aid_fen(command.age_at_diagnosis) > 0, "age_at_diagnosis", Rule.AGE_AT_DIAGNOSIS_MUST_BE_COVERED)
    check(fits_age(command.condition, command.age_at_diagnosis), "condition", Rule.CONDITION_MUST_FIT_THE_MEMBERS_AGE,
          f"{command.condition} at {command.age_at_diagnosis}")
    open_claims = open_claims_of(uow, command.member)
    check(not open_claims, "member", Rule.MEMBER_HAS_AN_OPEN_CLAIM, ", ".join(sorted(open_claims)))
    claim_id = uow.new_id("claim", command.command_id)
    joined_at = format_at(membership.joined_at)
    values = {"member": command.member, "diagnosed_on": command.diagnosed_on,
              "age_at_diagnosis": command.age_at_diagnosis, "joined_at": joined_at}
    sealed = {name: uow.seal(command.member, claim_id, 1, name, value) for name, value in values.items()}
    body = ClaimFiledV2(
        plan=membership.plan, rules_version=version.version, category=command.category, condition=command.condition,
        diagnosed_month=command.diagnosed_on[:7], age_band=age_band(command.age_at_diagnosis),
        sex=membership.details.sex, province=membership.details.province,
        joined_month=plan_month(joined_at, zone.utc_offset_minutes), evidence_commitment=command.evidence_commitment,
        member_sealed=sealed["member"], diagnosed_on_sealed=sealed["diagnosed_on"],
        age_at_diagnosis_sealed=sealed["age_at_diagnosis"], joined_at_sealed=sealed["joined_at"])
    # the operator signs, on no one's behalf: a member's key or an on-behalf-of would name the claimant on the log
    uow.add(Claim.file(claim_id, uow.at, uow.actor("operator"), body, values), "claim", derived=True)
    return Outcome({"claim": str(claim_id)})


@handles(InvestigateClaim)
def investigate_claim(uow: UnitOfWork, command: InvestigateClaim) -> Outcome:
    """The investigation firm's report and opinion."""
    claim, _, rules = claim_and_plan(uow, command.claim)
    body = ClaimInvestigatedV1(report_commitment=command.report_commitment, opinion=command.opinion,
                               recommended_amount_fen=command.recommended_amount_fen, reason=command.reason)
    claim.investigate(uow.at, uow.actor("investigator"), body, rules.max_aid_fen(claim.age_at_diagnosis))
    return Outcome({"claim": command.claim, "opinion": command.opinion})


@handles(NoticeClaim)
def notice_claim(uow: UnitOfWork, command: NoticeClaim) -> Outcome:
    """Public notice for the plan's notice days."""
    claim, _, rules = claim_and_plan(uow, command.claim)
    claim.notice(uow.at, uow.actor("operator"), rules.notice_days)
    assert claim.notice_ends_at is not None
    return Outcome({"claim": command.claim, "notice_ends_at": format_at(claim.notice_ends_at)})


@handles(FileObjection)
def file_objection(uow: UnitOfWork, command: FileObjection) -> Outcome:
    """An active member of the same plan objects during the notice."""
    claim, _, _ = claim_and_plan(uow, command.claim)
    objector = uow.get(UUID(command.objector), Membership, "objector")
    check(objector.plan == claim.details.plan, "objector", Rule.OBJECTOR_MUST_BE_IN_THE_CLAIMS_PLAN)
    objector.check_active("objector")
    number = claim.file_objection(uow.at, uow.actor("member", command.objector), command.objector,
                                  command.evidence_commitment)
    return Outcome({"claim": command.claim, "objection": number})


@handles(ResolveObjection)
def resolve_objection(uow: UnitOfWork, command: ResolveObjection) -> Outcome:
    """The re-review of an objection."""
    claim, _, _ = claim_and_plan(uow, command.claim)
    claim.resolve_objection(uow.at, uow.actor("operator"), command.objection, command.upheld,
                            command.review_commitment)
    return Outcome({"claim": command.claim, "objection": command.objection, "upheld": command.upheld})


@handles(RequestJury)
def request_jury(uow: UnitOfWork, command: RequestJury) -> Outcome:
    """The claimant asks for a jury against a preliminary rejection."""
    claim, _, _ = claim_and_plan(uow, command.claim)
    actor = uow.actor("operator") if claim.is_sealed else uow.actor("member", claim.claimant)
    claim.request_jury(uow.at, actor, claim.claimant)
    return Outcome({"claim": command.claim})


@handles(CastVote)
def cast_vote(uow: UnitOfWork, command: CastVote) -> Outcome:
    """An eligible juror of the same plan votes with their own key; the age is the one the membership proves (age at
    joining plus whole years since), not only the one stated at the exam."""
    claim, plan, _ = claim_and_plan(uow, command.claim)
    juror = uow.get(UUID(command.juror), Membership, "juror")
    check(juror.plan == claim.details.plan, "juror", Rule.JUROR_MUST_BE_IN_THE_CLAIMS_PLAN)
    rules = plan.rules_at(uow.at).rules
    juror.check_juror_eligible(uow.at, claim.claimant, rules.juror_min_member_days)
    years_since = whole_years(plan_date(juror.joined_at, rules), plan_date(uow.at, rules))
    joined_age = uow.age_at_joining(juror)
    check(joined_age + years_since >= rules.juror_min_age_years, "juror", Rule.JUROR_MUST_BE_OF_AGE,
          f"joined at {joined_age}, {years_since} years ago")
    claim.cast_vote(uow.at, uow.actor("juror", command.juror), command.juror, command.support)
    return Outcome({"claim": command.claim, "juror": command.juror})


@handles(DecideClaim)
def decide_claim(uow: UnitOfWork, command: DecideClaim) -> Outcome:
    """Decide after the notice (jury, objections, or the preliminary opinion)."""
    claim, plan, rules = claim_and_plan(uow, command.claim)
    current = plan.rules_at(uow.at).rules
    outcome = claim.decide(uow.at, uow.actor("operator"), rules.max_aid_fen(claim.age_at_diagnosis),
                           current.jury_quorum, current.jury_threshold_bps)
    return Outcome({"claim": command.claim, "decision": outcome, "amount_fen": claim.approved_fen})


@handles(PayClaim)
def pay_claim(uow: UnitOfWork, command: PayClaim) -> Outcome:
    """After its period settles, the custodian pays the case's payable amount (docs/plans.md, "Money held") less the
    claimant's postpaid arrears still in grace (which the deduction recovers); arrears past grace were written off
    when the member lapsed. A failed prepaid debit is not deducted: it is recovered from the account's balance or
    the member lapses (the balances and the journal take a prepaid recovery from the balance)."""
    claim, plan, rules = claim_and_plan(uow, command.claim)
    check(claim.period is not None, "claim", Rule.CLAIM_MUST_BE_INCLUDED_IN_AN_ASSESSED_PERIOD, claim.status)
    assert claim.period is not None
    period = uow.get(UUID(claim.period), SharingPeriod, "period")
    funded = period.payable_fen(command.claim)  # sized at settlement from the money the period holds
    membership = uow.get(UUID(claim.claimant), Membership, "member")
    recoverable = []
    for arrears_period in sorted(membership.arrears):
        owed = uow.get(UUID(arrears_period), SharingPeriod, "period")
        owed_rules = plan.rules_at(owed.cutoff_at).rules
        grace_ends_at = owed.grace_ends_at(owed_rules)
        if owed_rules.payment_model == "postpaid" and membership.status == "active" and uow.at < grace_ends_at:
            recoverable.append((arrears_period, grace_ends_at))
    arrears = sum(membership.arrears[p] for p, _ in recoverable)
    amount = claim.pay(uow.at, uow.actor("custodian"), funded, arrears,
                       rules.max_aid_fen(claim.age_at_diagnosis), command.reference)
    for arrears_period, grace_ends_at in recoverable:
        membership.recover_debit(uow.at, uow.actor("operator"), arrears_period, grace_ends_at)
    return Outcome({"claim": command.claim, "amount_fen": amount, "arrears_deducted_fen": funded - amount})
