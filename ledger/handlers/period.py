"""Handlers of the sharing period commands: open, assess (the formula and the roll), collect, subsidy, settle,
and the wind-down refunds of a terminated plan."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from ledger.ages import TopAge, top_age_years
from ledger.aggregates.claim import Claim
from ledger.aggregates.membership import Membership
from ledger.aggregates.plan import Plan
from ledger.aggregates.sharing_period import (
    SharingPeriod,
    next_cycle,
    operator_funds,
    period_id,
    plan_date,
    plan_midnight,
)
from ledger.envelope import format_at, parse_at
from ledger.errors import check
from ledger.handlers.common import date_arg
from ledger.ports import LockedSet
from ledger.rules import Rule
from ledger.sharing import assess, member_charge
from ledger.unit_of_work import Outcome, UnitOfWork, handles
from schemas.commands.period import (
    AssessPeriod,
    CollectPeriod,
    OpenPeriod,
    ReceiveAdvance,
    ReceiveSubsidy,
    SettlePeriod,
    WindDown,
)
from schemas.commands.plan import ReleaseSurplus
from schemas.events import AssessedCase, PeriodAssessedV2, PeriodAssessedV4, UncoveredListedV1, UncoveredShare


@handles(OpenPeriod)
def open_period(uow: UnitOfWork, command: OpenPeriod) -> Outcome:
    """Period 1, or the one after an assessed period, on a later notice day of the plan's calendar."""
    plan = uow.get(UUID(command.plan), Plan, "plan")
    if plan.status == "terminated":  # a tail period, funded by the operator, for claims approved after the end
        waiting = uow.queries.approved_claims(command.plan, format_at(uow.at))
        check(bool(waiting), "plan", Rule.TAIL_PERIOD_NEEDS_AN_APPROVED_CLAIM, plan.status)
    rules = plan.rules_at(uow.at).rules
    after = plan_date(uow.at, rules)
    if command.number > 1:
        previous = uow.find(period_id(command.plan, command.number - 1), SharingPeriod)
        check(previous is not None, "number", Rule.PREVIOUS_PERIOD_MUST_EXIST, str(command.number - 1))
        assert previous is not None
        check(previous.status != "opened", "number", Rule.PREVIOUS_PERIOD_MUST_BE_ASSESSED_FIRST, previous.status)
        after = max(after, previous.notice_on)
    notice_on, collection_on = next_cycle(rules, after)
    if command.notice_on is not None:
        given = date_arg("notice_on", command.notice_on)
        check(given >= notice_on, "notice_on", Rule.NOTICE_DAY_MUST_FOLLOW_THE_PREVIOUS_PERIOD_AND_TODAY,
              f"earliest {notice_on.isoformat()}")
        notice_on, collection_on = next_cycle(rules, date.fromordinal(given.toordinal() - 1))
        check(notice_on == given, "notice_on", Rule.NOTICE_DAY_MUST_BE_IN_THE_PLAN_CALENDAR, command.notice_on)
    period = SharingPeriod.open(command.plan, command.number, uow.at, uow.actor("operator"), notice_on, collection_on,
                                rules)
    uow.add(period, "number")
    return Outcome({"period": str(period.id), "plan": command.plan, "number": command.number,
                    "notice_on": notice_on.isoformat(), "collection_on": collection_on.isoformat(),
                    "cutoff_at": format_at(period.cutoff_at)})


def surplus_held(uow: UnitOfWork, plan: str) -> int:
    """What a plan's pool holds once its last period is assessed and every period settled: the surpluses carried by
    the settlements recorded since that assessment (what a next period would take in); a rule error while a period
    is not settled."""
    number = 0
    while uow.find(period_id(plan, number + 1), SharingPeriod) is not None:
        number += 1
    if number == 0:
        return 0
    last = uow.get(period_id(plan, number), SharingPeriod, "period")
    for n in range(1, number + 1):
        period = uow.get(period_id(plan, n), SharingPeriod, "period")
        check(period.status == "settled", "plan", Rule.EVERY_PERIOD_MUST_BE_SETTLED_FIRST,
              f"period {n}: {period.status}")
    assert last.assessed_at is not None
    return sum(p.settlement.surplus_carried_fen for n in range(1, number + 1)
               if (p := uow.get(period_id(plan, n), SharingPeriod, "period")).settlement is not None
               and p.settled_at is not None and p.settled_at > last.assessed_at)


@handles(ReleaseSurplus)
def release_surplus(uow: UnitOfWork, command: ReleaseSurplus) -> Outcome:
    """The custodian pays out a terminated plan's last surplus (docs/plans.md, "The wind-down")."""
    plan = uow.get(UUID(command.plan), Plan, "plan")
    held = plan.release_surplus(uow.at, uow.actor("custodian"), lambda: surplus_held(uow, command.plan),
                                command.reference)
    return Outcome({"plan": command.plan, "amount_fen": held})


def surplus_in(uow: UnitOfWork, period: SharingPeriod) -> int:
    """Money held that the period starts from: the surpluses carried by the plan's settlements recorded since the
    previous period was assessed (each settlement's surplus goes into exactly one later assessment). After a
    schema-1 assessment, its own rule: the previous surplus out less what settlements since left uncollected."""
    if period.number == 1:
        return 0
    previous = uow.get(period_id(period.plan, period.number - 1), SharingPeriod, "period")
    assessment = previous.require_assessment()
    assert previous.assessed_at is not None
    legacy = not isinstance(assessment, PeriodAssessedV2)
    carried = assessment.surplus_out_fen if legacy else 0
    for number in range(period.number - 1, 0, -1):
        earlier = uow.get(period_id(period.plan, number), SharingPeriod, "period")
        if earlier.settlement is not None and earlier.settled_at is not None and (
                earlier.settled_at > previous.assessed_at):
            carried += -earlier.settlement.uncollected_fen if legacy else earlier.settlement.surplus_carried_fen
    return max(0, carried)  # a schema-1 deficit is not money held


def left_out_for_age(uow: UnitOfWork, plan: str, at: datetime, top_age: int, utc_offset_minutes: int) -> list[str]:
    """The plan's members active at `at` past the top age then (`ledger.ages`), sorted. Only the few whose public age
    bound makes them older than the top age are read (`age_candidates`), a batch at a time: a v1 join's bound is its
    exact age, and the sealed ages of a batch's v2 joins are opened from the vault at once
    (`UnitOfWork.ages_at_joining`). No membership is loaded, and only the members found are kept (the candidates are
    millions at 10M members). A sealed candidate whose age is gone (erased) is a rule error, as
    `UnitOfWork.age_at_joining` makes it."""
    rule = TopAge(at, top_age, utc_offset_minutes)
    found: list[str] = []
    for candidates in uow.queries.age_candidates(plan, format_at(at), top_age, utc_offset_minutes):
        found += [member for member, _, _, sealed in candidates if not sealed]
        sealed = [(member, joined_at) for member, _, joined_at, is_sealed in candidates if is_sealed]
        ages = uow.ages_at_joining([member for member, _ in sealed])
        for member, joined_at in sealed:
            age = ages.get(member)
            check(age is not None, "member", Rule.MEMBER_MUST_NOT_BE_ERASED, member)
            assert age is not None
            if rule.past(age, joined_at):
                found.append(member)
    return sorted(found)


@handles(AssessPeriod)
def assess_period(uow: UnitOfWork, command: AssessPeriod) -> Outcome:
    """The one assessment: members locked at the cutoff, approved cases decided by then, the formula, the roll."""
    period = uow.get(UUID(command.period), SharingPeriod, "period")
    plan = uow.get(UUID(period.plan), Plan, "plan")
    check(uow.at >= period.cutoff_at, "period", Rule.PERIOD_CANNOT_BE_ASSESSED_BEFORE_ITS_CUTOFF,
          format_at(period.cutoff_at))
    version = plan.rules_at(period.cutoff_at)
    rules = version.rules
    if rules.payment_model == "prepaid" and period.number > 1:
        previous = uow.get(period_id(period.plan, period.number - 1), SharingPeriod, "period")
        if previous.status == "assessed":
            check(not uncovered_shares(uow, previous), "period", Rule.PREVIOUS_PERIOD_MUST_BE_COLLECTED_FIRST,
                  str(previous.number))
    queries = uow.queries
    cutoff = format_at(period.cutoff_at)
    top_age = top_age_years(rules)
    claims = [uow.get(UUID(claim_id), Claim, "claim") for claim_id in queries.approved_claims(period.plan, cutoff)]
    plan_year = plan_date(period.cutoff_at, rules).year
    year_start = format_at(plan_midnight(date(plan_year, 1, 1), rules))
    operator = operator_funds(plan.closing_announced_at, plan.ends_at(), plan.final_periods(), period.notice_on,
                              period.cutoff_at, rules)
    cases = [(str(claim.id), claim.approved_fen) for claim in claims]
    carried = surplus_in(uow, period)
    cap = rules.annual_cap_fen
    left_out = frozenset(left_out_for_age(uow, period.plan, period.cutoff_at, top_age, rules.utc_offset_minutes))
    # counted, then rolled as it streams (never held), without the members past the top age
    with queries.locked_set(period.plan, cutoff, left_out) as locked:
        count = locked.count
        share = assess(count, cases, rules.fee_bps, carried, rules.per_case_cap_fen, cap, rules.excess_policy,
                       operator, charged=(0, 0)).share_fen  # the share does not depend on who pays less of it
        capped: dict[str, int] = {}
        if share and queries.year_shares_fen(period.plan, year_start, cutoff) + share > cap:
            # someone may reach their cap: the members whose own charges of the plan year leave less than the share
            capped = {member: member_charge(share, cap, charged)
                      for member, charged in locked.near_cap(year_start, cap - share)}
        charges = list(capped.values())
        spared = sum(share - charge for charge in charges)
        result = assess(count, cases, rules.fee_bps, carried, rules.per_case_cap_fen, cap, rules.excess_policy,
                        operator, charged=(share * count - spared, sum(charge < share for charge in charges)))
        root, size = locked.roll(str(period.id), result.share_fen)
        uncovered = uncovered_at_assessment(locked, result.share_fen, capped, left_out) if (
            rules.payment_model == "prepaid") else []
    assert size == result.locked_members, (size, result.locked_members)
    actor = uow.actor("operator")
    for claim in claims:
        claim.include(uow.at, actor, str(period.id), period.number)
    body = PeriodAssessedV4(
        plan=period.plan, number=period.number, rules_version=version.version, cutoff_at=cutoff,
        locked_members=result.locked_members,
        cases=tuple(AssessedCase(claim=c.claim, approved_fen=c.approved_fen, funded_fen=c.funded_fen)
                    for c in result.cases),
        aid_fen=result.aid_fen, fee_bps=result.fee_bps, fee_fen=result.fee_fen, surplus_in_fen=result.surplus_in_fen,
        need_fen=result.need_fen, uncapped_share_fen=result.uncapped_share_fen,
        per_case_cap_fen=result.per_case_cap_fen, annual_cap_remaining_fen=result.annual_cap_remaining_fen,
        cap_applied=result.cap_applied,  # type: ignore[arg-type]  # one of the literals
        share_fen=result.share_fen,
        excess_policy=result.excess_policy,  # type: ignore[arg-type]  # one of the literals
        subsidy_fen=result.subsidy_fen, funded_aid_fen=result.funded_aid_fen, funded_fee_fen=result.funded_fee_fen,
        surplus_out_fen=result.surplus_out_fen, roll_root=root.hex(), roll_size=size,
        funded_by="operator" if operator else "members", payment_model=rules.payment_model,
        top_age_years=top_age, utc_offset_minutes=rules.utc_offset_minutes, plan_year=plan_year,
        charged_fen=result.charged_fen, members_capped=result.members_capped, left_out=tuple(sorted(left_out)),
        uncovered_fen=sum(amount for _, amount in uncovered),
    )
    period.assess(uow.at, actor, body)
    if uncovered:  # in an event of its own: the assessment names the claims it funds, this one members
        period.list_uncovered(uow.at, actor, UncoveredListedV1(
            uncovered=tuple(UncoveredShare(account=account, amount_fen=amount) for account, amount in uncovered),
            uncovered_fen=body.uncovered_fen))
    return Outcome({"period": command.period, "number": period.number, "locked_members": size,
                    "cases": len(claims), "share_fen": result.share_fen, "charged_fen": result.charged_fen,
                    "members_capped": result.members_capped, "subsidy_fen": result.subsidy_fen,
                    "funded_by": body.funded_by,
                    "roll_root": body.roll_root})


def uncovered_at_assessment(locked: LockedSet, share_fen: int, capped: dict[str, int],
                            left_out: frozenset[str]) -> list[tuple[str, int]]:
    """Prepaid: (account, amount) of the accounts whose position before this period cannot cover what it charges
    their holder and family (the share, less for a member at their annual cap, nothing for one left out for age),
    sorted by account: the part beyond the balance, owed by the holder (schema 4). What an account already owed
    covers nothing."""
    if share_fen == 0:
        return []
    found = []
    for account, position, members in locked.short_of(share_fen):
        charges = sum(0 if member in left_out else capped.get(member, share_fen) for member in members)
        amount = charges - min(charges, max(position, 0))
        if amount > 0:
            found.append((account, amount))
    return sorted(found)


def next_assessed(uow: UnitOfWork, period: SharingPeriod) -> bool:
    """Whether the plan's next period is assessed already (balances then hold its shares too)."""
    following = uow.find(period_id(period.plan, period.number + 1), SharingPeriod)
    return following is not None and following.status != "opened"


def uncovered_shares(uow: UnitOfWork, period: SharingPeriod) -> list[tuple[Membership, int]]:
    """Prepaid: locked members whose charge in this period their account cannot cover and whose debit is not yet
    recorded as failed, with the charge. Each account pays its holder's charge, then its family's in join order,
    while the balance lasts. Read from the current balances, so it holds while no later period of the plan is
    assessed."""
    assessment = period.require_assessment()
    if assessment.share_fen == 0:
        return []
    queries = uow.queries
    uncovered: list[tuple[Membership, int]] = []
    for account, balance in queries.short_accounts(period.plan):
        family = [(uow.get(UUID(member_id), Membership, "member"), charge)
                  for member_id, charge in queries.family_charges(account, str(period.id)) if charge > 0]
        pending = [(membership, charge) for membership, charge in family
                   if str(period.id) not in membership.failed_periods]
        available = balance + sum(charge for _, charge in pending)  # the balance before this period's pending charges
        for membership, charge in pending:
            if available >= charge:
                available -= charge
            else:
                uncovered.append((membership, charge))
    return uncovered


@handles(CollectPeriod)
def collect_period(uow: UnitOfWork, command: CollectPeriod) -> Outcome:
    """Prepaid collection on the collection day, before the next assessment: every share an account cannot cover
    is one failed debit (reason insufficient_balance). Repeating it records only shares newly uncovered."""
    period = uow.get(UUID(command.period), SharingPeriod, "period")
    plan = uow.get(UUID(period.plan), Plan, "plan")
    rules = plan.rules_at(period.cutoff_at).rules
    check(rules.payment_model == "prepaid", "period", Rule.COLLECTION_FROM_BALANCES_IS_ONLY_FOR_PREPAID_PLANS)
    check(period.status == "assessed", "period", Rule.ONLY_AN_ASSESSED_UNSETTLED_PERIOD_IS_COLLECTED, period.status)
    check(uow.at >= period.collection_starts_at(rules), "period", Rule.COLLECTION_STARTS_ON_THE_COLLECTION_DAY,
          period.collection_on.isoformat())
    check(not next_assessed(uow, period), "period", Rule.COLLECTION_PRECEDES_THE_NEXT_ASSESSMENT,
          str(period.number + 1))
    actor = uow.actor("operator")
    failed = uncovered_shares(uow, period)
    for membership, charge in failed:
        membership.fail_debit(uow.at, actor, str(period.id), charge, "insufficient_balance")
    return Outcome({"period": command.period, "failed_debits": len(failed)})


@handles(ReceiveSubsidy)
def receive_subsidy(uow: UnitOfWork, command: ReceiveSubsidy) -> Outcome:
    """The custodian received the operator's subsidy."""
    period = uow.get(UUID(command.period), SharingPeriod, "period")
    period.receive_subsidy(uow.at, uow.actor("custodian"), command.amount_fen, command.reference)
    return Outcome({"period": command.period, "amount_fen": command.amount_fen})


@handles(ReceiveAdvance)
def receive_advance(uow: UnitOfWork, command: ReceiveAdvance) -> Outcome:
    """The custodian received an operator advance toward the period's shortfall (shares uncollected now)."""
    period = uow.get(UUID(command.period), SharingPeriod, "period")
    uncollected = sum(amount for _, amount in uow.queries.outstanding_debits(command.period))
    period.receive_advance(uow.at, uow.actor("custodian"), command.amount_fen, command.reference, uncollected)
    return Outcome({"period": command.period, "amount_fen": command.amount_fen})


@handles(SettlePeriod)
def settle_period(uow: UnitOfWork, command: SettlePeriod) -> Outcome:
    """After collection (prepaid) or grace (postpaid): members whose debit is still failed lapse."""
    period = uow.get(UUID(command.period), SharingPeriod, "period")
    plan = uow.get(UUID(period.plan), Plan, "plan")
    rules = plan.rules_at(period.cutoff_at).rules
    prepaid = rules.payment_model == "prepaid"
    settles_at = period.collection_starts_at(rules) if prepaid else period.grace_ends_at(rules)
    if prepaid and period.status == "assessed" and uow.at >= settles_at and not next_assessed(uow, period):
        uncovered = uncovered_shares(uow, period)
        check(not uncovered, "period", Rule.PREPAID_PERIOD_MUST_BE_COLLECTED_BEFORE_SETTLEMENT,
              f"{len(uncovered)} shares not covered")
    outstanding = uow.queries.outstanding_debits(str(period.id))
    actor = uow.actor("operator")
    settlement = period.settle(uow.at, actor, sum(amount for _, amount in outstanding), settles_at)
    lapsed = 0
    for member_id, _ in outstanding:
        membership = uow.get(UUID(member_id), Membership, "member")
        if membership.status == "active":
            # a self-paying prepaid member's remaining balance (less than a share) is refunded, never kept
            remainder = uow.queries.balance_fen(member_id) if prepaid and membership.details.payer is None else 0
            membership.lapse(uow.at, actor, "balance_exhausted" if prepaid else "grace_expired", remainder)
            lapsed += 1
    return Outcome({"period": command.period, "uncollected_fen": settlement.uncollected_fen, "lapsed": lapsed,
                    "shortfall_fen": settlement.shortfall_fen, "surplus_carried_fen": settlement.surplus_carried_fen})


@handles(WindDown)
def wind_down(uow: UnitOfWork, command: WindDown) -> Outcome:
    """From the closing announcement on, the plan winds down: every membership still active ends (family and
    postpaid members included, with a refund of 0 when they hold no balance), and every prepaid balance left —
    of members active or already gone — becomes a refund due by the announced deadline. Repeating it records
    only what is new."""
    plan = uow.get(UUID(command.plan), Plan, "plan")
    check(plan.status in ("closing", "terminated"), "plan", Rule.WIND_DOWN_FOLLOWS_THE_CLOSING_ANNOUNCEMENT,
          plan.status)
    assert plan.closing is not None
    deadline = parse_at(plan.closing.refund_deadline)
    queries = uow.queries
    actor = uow.actor("operator")
    balances = dict(queries.accounts_with_balance(command.plan))
    due = ended = 0
    for member in sorted(set(queries.active_members(command.plan)) | set(balances)):
        membership = uow.get(UUID(member), Membership, "member")
        if membership.refund_reason == "wind_down":
            continue
        ended += membership.status == "active"
        due += balances.get(member, 0) > 0
        membership.owe_wind_down_refund(uow.at, actor, balances.get(member, 0), deadline)
    return Outcome({"plan": command.plan, "refunds_due": due, "memberships_ended": ended})
