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
from schemas.events import PeriodAssessedV1, PeriodOpenedV1, PeriodSettledV1, PlanRules, SubsidyReceivedV1


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

    class SubsidyReceived(LedgerAggregate.Event):
        """The custodian received the operator's subsidy for what the caps cut off."""

        TYPE = "period.subsidy_received"
        body: SubsidyReceivedV1

        def apply(self, aggregate: SharingPeriod) -> None:
            aggregate.subsidy_received_fen += self.body.amount_fen
            aggregate.subsidy_references.add(self.body.reference)

    class Settled(LedgerAggregate.Event):
        """Collection is over: what was collected, what was not, what carries on."""

        TYPE = "period.settled"
        body: PeriodSettledV1

        def apply(self, aggregate: SharingPeriod) -> None:
            aggregate.status = "settled"
            aggregate.settlement = self.body
            aggregate.settled_at = self.timestamp

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

    def assess(self, at: datetime, actor: Actor, body: PeriodAssessedV1) -> None:
        """Record the assessment, once, after the cutoff."""
        check(self.status == "opened", "period", Rule.PERIOD_IS_ASSESSED_ONCE, self.status)
        check(at >= self.cutoff_at, "period", Rule.PERIOD_CANNOT_BE_ASSESSED_BEFORE_ITS_CUTOFF,
              format_at(self.cutoff_at))
        self.record(self.Assessed, at, actor, body)

    def receive_subsidy(self, at: datetime, actor: Actor, amount_fen: int, reference: str) -> None:
        """Record subsidy received, never more than the assessment's subsidy."""
        assessment = self.require_assessment()
        check(reference not in self.subsidy_references, "reference", Rule.SUBSIDY_REFERENCE_MUST_BE_NEW, reference)
        outstanding = assessment.subsidy_fen - self.subsidy_received_fen
        check(amount_fen <= outstanding, "amount_fen", Rule.SUBSIDY_MUST_NOT_EXCEED_THE_ASSESSED_SUBSIDY,
              f"{amount_fen} > {outstanding}")
        self.record(self.SubsidyReceived, at, actor, SubsidyReceivedV1(amount_fen=amount_fen, reference=reference))

    def settle(self, at: datetime, actor: Actor, uncollected_fen: int, settles_at: datetime) -> PeriodSettledV1:
        """Close collection: the subsidy must be in, and grace (postpaid) or the collection day (prepaid) over."""
        assessment = self.require_assessment()
        check(self.status == "assessed", "period", Rule.PERIOD_IS_SETTLED_ONCE, self.status)
        check(at >= settles_at, "period", Rule.PERIOD_CANNOT_SETTLE_BEFORE_COLLECTION_AND_GRACE_END,
              format_at(settles_at))
        check(self.subsidy_received_fen == assessment.subsidy_fen, "period",
              Rule.SUBSIDY_MUST_BE_RECEIVED_BEFORE_SETTLEMENT,
              f"{self.subsidy_received_fen} of {assessment.subsidy_fen}")
        raised = assessment.share_fen * assessment.locked_members
        body = PeriodSettledV1(collected_fen=raised - uncollected_fen, uncollected_fen=uncollected_fen,
                               surplus_carried_fen=assessment.surplus_out_fen - uncollected_fen)
        self.record(self.Settled, at, actor, body)
        return body

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
