"""A sharing period of a plan: opened with its calendar days, assessed once at the cutoff, settled after grace.

Stream id = uuid5(plan id, number), so a period is found from its plan and number. The cycle calendar is the
plan's (e.g. notice on the 7th and 21st, collection on the 14th and 28th, China time). `cutoff_at` is 00:00 plan
time on the notice day: the locked set is frozen then. A failed postpaid debit may be recovered until `grace_days`
before the next collection day (docs/domain.md: "retried until two days before the next collection day").
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Actor, format_at, parse_at
from ledger.errors import check
from ledger.plan_days import day_of, day_start
from ledger.rules import Rule
from ledger.sharing import Settlement, raised_of, settle
from schemas.events import (
    AdvanceReceivedV1,
    PeriodAssessedV1,
    PeriodAssessedV2,
    PeriodAssessedV3,
    PeriodAssessedV4,
    PeriodOpenedV1,
    PeriodSettledV1,
    PeriodSettledV2,
    PlanRules,
    SettledCase,
    SubsidyReceivedV1,
    UncoveredListedV1,
)


def period_id(plan: str, number: int) -> UUID:
    """The stream id of period `number` of a plan."""
    return uuid5(NAMESPACE_URL, f"mutual-ledger:period:{plan}:{number}")


def plan_midnight(day: date, rules: PlanRules) -> datetime:
    """00:00 plan time on `day`, as a UTC instant (ledger.plan_days)."""
    return day_start(day, rules.utc_offset_minutes)


def plan_date(moment: datetime, rules: PlanRules) -> date:
    """The plan-time calendar date of an instant (ledger.plan_days)."""
    return day_of(moment, rules.utc_offset_minutes)


def _days(start: date) -> list[date]:
    """Dates from `start` on, for two months (enough for any calendar of days 1..28)."""
    return [start + timedelta(days=i) for i in range(62)]


def next_cycle(rules: PlanRules, after: date) -> tuple[date, date]:
    """The first notice day strictly after `after` and its collection day (the calendar pairs them in order)."""
    for day in _days(after + timedelta(days=1)):
        if day.day in rules.notice_days_of_month:
            index = rules.notice_days_of_month.index(day.day)
            collection_day = rules.collection_days_of_month[index]
            collection = next(d for d in _days(day) if d.day == collection_day)
            return day, collection
    raise AssertionError("a calendar of days 1..28 always has a notice day within a month")


def next_collection(rules: PlanRules, after: date) -> date:
    """The first collection day strictly after `after`."""
    return next(d for d in _days(after + timedelta(days=1)) if d.day in rules.collection_days_of_month)


def operator_funds(announced_at: datetime | None, ends_at: datetime | None, final_periods: int, notice_on: date,
                   cutoff_at: datetime, rules: PlanRules) -> bool:
    """Whether the operator funds a period (members charged 0): the plan announced its closing before the period's
    cutoff, and the period is a tail period (its cutoff at or after the plan's end) or one of the
    `final_periods` last of the plan's calendar (its notice day among the last `final_periods` notice days whose
    cutoff precedes the end). The audit recomputes it with this function."""
    if announced_at is None or ends_at is None or announced_at > cutoff_at:
        return False
    if cutoff_at >= ends_at:
        return True
    remaining, day = 0, notice_on
    while plan_midnight(day, rules) < ends_at and remaining <= final_periods:
        remaining += 1
        day = next_cycle(rules, day)[0]
    return remaining <= final_periods


class SharingPeriod(LedgerAggregate):
    """A period's calendar, its one assessment, subsidy received, and settlement."""

    MUST_EXIST: ClassVar[Rule] = Rule.PERIOD_MUST_EXIST

    def __init__(self) -> None:
        self.plan = ""
        self.number = 0
        self.notice_on = date.min
        self.collection_on = date.min
        self.cutoff_at = datetime.min
        self.status = "opened"
        self.assessment: PeriodAssessedV1 | None = None
        self.assessed_at: datetime | None = None
        self.subsidy_received_fen = 0
        self.subsidy_references: set[str] = set()
        self.advance_received_fen = 0
        self.advance_references: set[str] = set()
        self.settlement: PeriodSettledV1 | None = None
        self.settled_at: datetime | None = None

    class Opened(LedgerAggregate.Created):
        """The period is announced with its notice and collection days."""

        TYPE = "period.opened"
        body: PeriodOpenedV1

        def apply(self, aggregate: SharingPeriod) -> None:
            aggregate.plan = self.body.plan
            aggregate.number = self.body.number
            aggregate.notice_on = date.fromisoformat(self.body.notice_on)
            aggregate.collection_on = date.fromisoformat(self.body.collection_on)
            aggregate.cutoff_at = parse_at(self.body.cutoff_at)

    class Assessed(LedgerAggregate.Event):
        """The one signed assessment of the period (every term of the formula and the roll root)."""

        TYPE = "period.assessed"
        body: PeriodAssessedV1

        def apply(self, aggregate: SharingPeriod) -> None:
            aggregate.status = "assessed"
            aggregate.assessment = self.body
            aggregate.assessed_at = self.timestamp

    class AssessedV2(Assessed):
        """Schema 2: who funds the period, and a surplus in of money held only."""

        SCHEMA = 2
        body: PeriodAssessedV2

    class AssessedV3(Assessed):
        """Schema 3: the annual cap per member, and members past the top age left out of the roll."""

        SCHEMA = 3
        body: PeriodAssessedV3

    class AssessedV4(Assessed):
        """Schema 4: what prepaid accounts could not cover at the assessment, owed by their holders."""

        SCHEMA = 4
        body: PeriodAssessedV4

    class UncoveredListed(LedgerAggregate.Event):
        """The accounts the assessment left short, each with what it owes (recorded right after the assessment)."""

        TYPE = "period.uncovered_listed"
        body: UncoveredListedV1

        def apply(self, aggregate: SharingPeriod) -> None:
            pass

    class SubsidyReceived(LedgerAggregate.Event):
        """The custodian received the operator's subsidy for what the caps cut off."""

        TYPE = "period.subsidy_received"
        body: SubsidyReceivedV1

        def apply(self, aggregate: SharingPeriod) -> None:
            aggregate.subsidy_received_fen += self.body.amount_fen
            aggregate.subsidy_references.add(self.body.reference)

    class AdvanceReceived(LedgerAggregate.Event):
        """The custodian received an operator advance toward the period's shortfall."""

        TYPE = "period.advance_received"
        body: AdvanceReceivedV1

        def apply(self, aggregate: SharingPeriod) -> None:
            aggregate.advance_received_fen += self.body.amount_fen
            aggregate.advance_references.add(self.body.reference)

    class Settled(LedgerAggregate.Event):
        """Collection is over: what was collected, what was not, what carries on."""

        TYPE = "period.settled"
        body: PeriodSettledV1

        def apply(self, aggregate: SharingPeriod) -> None:
            aggregate.status = "settled"
            aggregate.settlement = self.body
            aggregate.settled_at = self.timestamp

    class SettledV2(Settled):
        """Schema 2: the payouts sized from the money held."""

        SCHEMA = 2
        body: PeriodSettledV2

    @classmethod
    def open(cls, plan: str, number: int, at: datetime, actor: Actor, notice_on: date, collection_on: date,
             rules: PlanRules) -> SharingPeriod:
        """Announce a period; its cutoff must still be ahead, so the locked set is never chosen in hindsight."""
        cutoff = plan_midnight(notice_on, rules)
        check(notice_on.day in rules.notice_days_of_month, "notice_on", Rule.NOTICE_DAY_MUST_BE_IN_THE_PLAN_CALENDAR,
              notice_on.isoformat())
        check(at < cutoff, "notice_on", Rule.PERIOD_MUST_OPEN_BEFORE_ITS_CUTOFF, format_at(cutoff))
        body = PeriodOpenedV1(plan=plan, number=number, notice_on=notice_on.isoformat(),
                              collection_on=collection_on.isoformat(), cutoff_at=format_at(cutoff))
        return cls.start(cls.Opened, period_id(plan, number), at, actor, body)

    def assess(self, at: datetime, actor: Actor, body: PeriodAssessedV4) -> None:
        """Record the assessment, once, after the cutoff."""
        check(self.status == "opened", "period", Rule.PERIOD_IS_ASSESSED_ONCE, self.status)
        check(at >= self.cutoff_at, "period", Rule.PERIOD_CANNOT_BE_ASSESSED_BEFORE_ITS_CUTOFF,
              format_at(self.cutoff_at))
        self.record(self.AssessedV4, at, actor, body)

    def list_uncovered(self, at: datetime, actor: Actor, body: UncoveredListedV1) -> None:
        """Record the accounts the assessment just recorded left short (their sum is the assessment's)."""
        assessment = self.require_assessment()
        assert isinstance(assessment, PeriodAssessedV4) and assessment.uncovered_fen == body.uncovered_fen, body
        self.record(self.UncoveredListed, at, actor, body)

    def receive_subsidy(self, at: datetime, actor: Actor, amount_fen: int, reference: str) -> None:
        """Record subsidy received, never more than the assessment's subsidy."""
        assessment = self.require_assessment()
        check(reference not in self.subsidy_references, "reference", Rule.SUBSIDY_REFERENCE_MUST_BE_NEW, reference)
        outstanding = assessment.subsidy_fen - self.subsidy_received_fen
        check(amount_fen <= outstanding, "amount_fen", Rule.SUBSIDY_MUST_NOT_EXCEED_THE_ASSESSED_SUBSIDY,
              f"{amount_fen} > {outstanding}")
        self.record(self.SubsidyReceived, at, actor, SubsidyReceivedV1(amount_fen=amount_fen, reference=reference))

    def receive_advance(self, at: datetime, actor: Actor, amount_fen: int, reference: str,
                        uncollected_fen: int) -> None:
        """Record an operator advance before settlement, never more than the shortfall the shares left uncollected
        now would leave."""
        self.require_assessment()
        check(self.status == "assessed", "period", Rule.ADVANCE_ONLY_BEFORE_SETTLEMENT, self.status)
        check(reference not in self.advance_references, "reference", Rule.ADVANCE_REFERENCE_MUST_BE_NEW, reference)
        shortfall = self.settlement_for(uncollected_fen).shortfall_fen
        check(amount_fen <= shortfall, "amount_fen", Rule.ADVANCE_MUST_NOT_EXCEED_THE_SHORTFALL,
              f"{amount_fen} > {shortfall}")
        self.record(self.AdvanceReceived, at, actor, AdvanceReceivedV1(amount_fen=amount_fen, reference=reference))

    def settlement_for(self, uncollected_fen: int) -> Settlement:
        """The settlement the period would record with these shares uncollected (`ledger.sharing.settle`)."""
        a = self.require_assessment()
        return settle([(case.claim, case.funded_fen) for case in a.cases], a.funded_fee_fen,
                      raised_of(a.model_dump()), a.subsidy_fen, max(0, a.surplus_in_fen), uncollected_fen,
                      self.advance_received_fen)

    def settle(self, at: datetime, actor: Actor, uncollected_fen: int, settles_at: datetime) -> PeriodSettledV2:
        """Close collection: the subsidy must be in, and grace (postpaid) or the collection day (prepaid) over; the
        payouts are sized from the money held."""
        assessment = self.require_assessment()
        check(self.status == "assessed", "period", Rule.PERIOD_IS_SETTLED_ONCE, self.status)
        check(at >= settles_at, "period", Rule.PERIOD_CANNOT_SETTLE_BEFORE_COLLECTION_AND_GRACE_END,
              format_at(settles_at))
        check(self.subsidy_received_fen == assessment.subsidy_fen, "period",
              Rule.SUBSIDY_MUST_BE_RECEIVED_BEFORE_SETTLEMENT,
              f"{self.subsidy_received_fen} of {assessment.subsidy_fen}")
        s = self.settlement_for(uncollected_fen)
        funded = {case.claim: case.funded_fen for case in assessment.cases}
        body = PeriodSettledV2(
            collected_fen=s.collected_fen, uncollected_fen=s.uncollected_fen, surplus_carried_fen=s.surplus_carried_fen,
            advance_fen=s.advance_fen, available_fen=s.available_fen, owed_fen=s.owed_fen,
            shortfall_fen=s.shortfall_fen, fee_payable_fen=s.fee_payable_fen,
            cases=tuple(SettledCase(claim=claim, funded_fen=funded[claim], payable_fen=payable)
                        for claim, payable in s.payable))
        self.record(self.SettledV2, at, actor, body)
        return body

    def payable_fen(self, claim: str) -> int:
        """What a case of this settled period is paid: the settlement's payable amount (schema 2), or its funded
        amount under a schema-1 settlement."""
        assessment = self.require_assessment()
        check(self.settlement is not None, "claim", Rule.CLAIM_IS_PAID_AFTER_ITS_PERIOD_SETTLES, self.status)
        if isinstance(self.settlement, PeriodSettledV2):
            found = next((c.payable_fen for c in self.settlement.cases if c.claim == claim), None)
        else:
            found = next((c.funded_fen for c in assessment.cases if c.claim == claim), None)
        assert found is not None, "an included claim is a case of its period's assessment"
        return found

    def require_assessment(self) -> PeriodAssessedV1:
        """The assessment; a rule error when the period is not assessed yet."""
        check(self.assessment is not None, "period", Rule.PERIOD_MUST_BE_ASSESSED, self.status)
        assert self.assessment is not None
        return self.assessment

    def grace_ends_at(self, rules: PlanRules) -> datetime:
        """When recovery of this period's failed debits stops: 00:00 plan time, `grace_days` before the next
        collection day."""
        return plan_midnight(next_collection(rules, self.collection_on) - timedelta(days=rules.grace_days), rules)

    def collection_starts_at(self, rules: PlanRules) -> datetime:
        """00:00 plan time on the collection day."""
        return plan_midnight(self.collection_on, rules)
