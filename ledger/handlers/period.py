"""Handlers of the sharing period commands: open, assess (the formula and the roll), collect, subsidy, settle,
and the wind-down refunds of a terminated plan."""

from __future__ import annotations

from datetime import date
from uuid import UUID

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
from ledger.rules import Rule
from ledger.sharing import assess
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
from schemas.events import AssessedCase, PeriodAssessedV2


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
    claims = [uow.get(UUID(claim_id), Claim, "claim") for claim_id in queries.approved_claims(period.plan, cutoff)]
    year_start = format_at(plan_midnight(date(plan_date(period.cutoff_at, rules).year, 1, 1), rules))
    annual_remaining = max(0, rules.annual_cap_fen - queries.year_shares_fen(period.plan, year_start, cutoff))
    operator = operator_funds(plan.closing_announced_at, plan.ends_at(), plan.final_periods(), period.notice_on,
                              period.cutoff_at, rules)
    carried = surplus_in(uow, period)
    with queries.locked_set(period.plan, cutoff) as locked:  # counted, then rolled as it streams: never held
        result = assess(locked.count, [(str(claim.id), claim.approved_fen) for claim in claims], rules.fee_bps,
                        carried, rules.per_case_cap_fen, annual_remaining, rules.excess_policy, operator)
        root, size = locked.roll(str(period.id), result.share_fen)
    assert size == result.locked_members, (size, result.locked_members)
    actor = uow.actor("operator")
    for claim in claims:
        claim.include(uow.at, actor, str(period.id), period.number)
    body = PeriodAssessedV2(
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
    )
    period.assess(uow.at, actor, body)
    return Outcome({"period": command.period, "number": period.number, "locked_members": size,
                    "cases": len(claims), "share_fen": result.share_fen, "subsidy_fen": result.subsidy_fen,
                    "funded_by": body.funded_by,
                    "roll_root": body.roll_root})


def next_assessed(uow: UnitOfWork, period: SharingPeriod) -> bool:
    """Whether the plan's next period is assessed already (balances then hold its shares too)."""
    following = uow.find(period_id(period.plan, period.number + 1), SharingPeriod)
    return following is not None and following.status != "opened"


def uncovered_shares(uow: UnitOfWork, period: SharingPeriod) -> list[Membership]:
    """Prepaid: locked members whose share of this period their account cannot cover and whose debit is not yet
    recorded as failed. Each account pays its holder's share, then its family's in join order, while the balance
    lasts. Read from the current balances, so it holds while no later period of the plan is assessed."""
    assessment = period.require_assessment()
    share = assessment.share_fen
    if share == 0:
        return []
    queries = uow.queries
    uncovered: list[Membership] = []
    for account, balance in queries.short_accounts(period.plan):
        family = [uow.get(UUID(member_id), Membership, "member")
                  for member_id in queries.family_locked(account, assessment.cutoff_at)]
        pending = [membership for membership in family if str(period.id) not in membership.failed_periods]
        available = balance + share * len(pending)  # the balance before this period's pending shares
        for membership in pending:
            if available >= share:
                available -= share
            else:
                uncovered.append(membership)
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
    share = period.require_assessment().share_fen
    actor = uow.actor("operator")
    failed = uncovered_shares(uow, period)
    for membership in failed:
        membership.fail_debit(uow.at, actor, str(period.id), share, "insufficient_balance")
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
