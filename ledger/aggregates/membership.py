"""A membership: one member in one plan, from joining to leaving, with every fund movement of their own.

The membership stream holds the member's join (consent and health declaration as commitments only), custodian
deposits, failed and recovered debits, juror qualification, lapse, exit, exclusion for an illness in the waiting
period, refunds due and refunds paid. Per-period shares are not events here: a member's debit is proved by the
period's assessment roll (docs/design.md, "Sharing a period").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Actor, format_at
from ledger.errors import check
from ledger.plan_days import day_of, waiting_ends_on
from ledger.rules import Rule
from ledger.sealing import age_band
from schemas.events import (
    ConversionAcceptedV1,
    DebitFailedV1,
    DebitRecoveredV1,
    DepositReceivedV1,
    FraudRecordedV1,
    FraudRecordedV2,
    JurorQualifiedV1,
    JurorQualifiedV2,
    MemberErasedV1,
    MemberExcludedV1,
    MemberExcludedV2,
    MemberExitedV1,
    MemberJoinedV1,
    MemberJoinedV2,
    MemberLapsedV1,
    MemberLapsedV2,
    RefundDisbursedV1,
    RefundDisbursedV2,
    WindDownRefundDueV1,
)

ACTIVE = "active"
ENDED_STATUSES = ("lapsed", "exited", "excluded", "wound_down")


class Membership(LedgerAggregate):
    """A member's state in their plan."""

    MUST_EXIST: ClassVar[Rule] = Rule.MEMBERSHIP_MUST_EXIST

    def __init__(self) -> None:
        self.plan = ""
        self.joined: MemberJoinedV1 | MemberJoinedV2 | None = None
        self.unsealed: dict[tuple[int, str], Any] = {}
        """The sealed values of the member's own events by (seq, field), opened from the vault by the unit of work
        when a rule needs one (`UnitOfWork.age_at_joining`)."""
        self.joined_at = datetime.min
        self.status = ACTIVE
        self.ended_at: datetime | None = None
        self.deposits_fen = 0
        self.arrears: dict[str, int] = {}
        self.failed_periods: set[str] = set()
        self.refund_due_fen = 0
        self.refunded_fen = 0
        self.refund_reason: str | None = None
        self.juror_qualified_at: datetime | None = None
        self.fraud_recorded = False
        self.deposit_references: set[str] = set()
        self.erased = False
        self.conversion: str | None = None

    class Joined(LedgerAggregate.Created):
        """The member joined."""

        TYPE = "member.joined"
        body: MemberJoinedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.plan = self.body.plan
            aggregate.joined = self.body
            aggregate.joined_at = self.timestamp

    class JoinedSealed(LedgerAggregate.Created):
        """The member joined, the exact age sealed."""

        TYPE = "member.joined"
        SCHEMA = 2
        body: MemberJoinedV2

        def apply(self, aggregate: Membership) -> None:
            aggregate.plan = self.body.plan
            aggregate.joined = self.body
            aggregate.joined_at = self.timestamp

    class DepositReceived(LedgerAggregate.Event):
        """The custodian received a top-up."""

        TYPE = "member.deposit_received"
        body: DepositReceivedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.deposits_fen += self.body.amount_fen
            aggregate.deposit_references.add(self.body.reference)

    class DebitFailed(LedgerAggregate.Event):
        """A share could not be collected."""

        TYPE = "member.debit_failed"
        body: DebitFailedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.failed_periods.add(self.body.period)
            aggregate.arrears[self.body.period] = self.body.amount_fen

    class DebitRecovered(LedgerAggregate.Event):
        """A failed debit was collected on retry."""

        TYPE = "member.debit_recovered"
        body: DebitRecoveredV1

        def apply(self, aggregate: Membership) -> None:
            del aggregate.arrears[self.body.period]

    class JurorQualified(LedgerAggregate.Event):
        """The member may serve as a juror."""

        TYPE = "member.juror_qualified"
        body: JurorQualifiedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.juror_qualified_at = self.timestamp

    class JurorQualifiedSealed(LedgerAggregate.Event):
        """The member may serve as a juror; the age attested is sealed."""

        TYPE = "member.juror_qualified"
        SCHEMA = 2
        body: JurorQualifiedV2

        def apply(self, aggregate: Membership) -> None:
            aggregate.juror_qualified_at = self.timestamp

    class FraudRecorded(LedgerAggregate.Event):
        """A fraud finding against the member."""

        TYPE = "member.fraud_recorded"
        body: FraudRecordedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.fraud_recorded = True

    class FraudRecordedSealed(LedgerAggregate.Event):
        """A fraud finding against the member, the claim it concerns sealed."""

        TYPE = "member.fraud_recorded"
        SCHEMA = 2
        body: FraudRecordedV2

        def apply(self, aggregate: Membership) -> None:
            aggregate.fraud_recorded = True

    class Lapsed(LedgerAggregate.Event):
        """Protection lost."""

        TYPE = "member.lapsed"
        body: MemberLapsedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.end("lapsed", self.timestamp)

    class LapsedV2(Lapsed):
        """Schema 2: the remainder of an exhausted balance is refunded."""

        SCHEMA = 2
        body: MemberLapsedV2

        def apply(self, aggregate: Membership) -> None:
            aggregate.end("lapsed", self.timestamp)
            if self.body.refund_due_fen > 0:
                aggregate.owe_refund(self.body.refund_due_fen, "lapse")

    class Exited(LedgerAggregate.Event):
        """The member left."""

        TYPE = "member.exited"
        body: MemberExitedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.end("exited", self.timestamp)
            aggregate.owe_refund(self.body.refund_due_fen, "exit")

    class Excluded(LedgerAggregate.Event):
        """Illness in the waiting period: refund of shares paid, permanent exit."""

        TYPE = "member.excluded"
        body: MemberExcludedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.end("excluded", self.timestamp)
            aggregate.owe_refund(self.body.refund_due_fen, "waiting_period_illness")

    class ExcludedV2(LedgerAggregate.Event):
        """Illness in the waiting period, the diagnosis date sealed."""

        TYPE = "member.excluded"
        SCHEMA = 2
        body: MemberExcludedV2

        def apply(self, aggregate: Membership) -> None:
            aggregate.end("excluded", self.timestamp)
            aggregate.owe_refund(self.body.refund_due_fen, "waiting_period_illness")

    class Erased(LedgerAggregate.Event):
        """The member's sealed values were destroyed (`member erase`)."""

        TYPE = "member.erased"
        body: MemberErasedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.erased = True

    class WindDownRefundDue(LedgerAggregate.Event):
        """The plan ended: the remaining balance is due back."""

        TYPE = "member.wind_down_refund_due"
        body: WindDownRefundDueV1

        def apply(self, aggregate: Membership) -> None:
            if aggregate.status == ACTIVE:
                aggregate.end("wound_down", self.timestamp)
            aggregate.owe_refund(self.body.refund_due_fen, "wind_down")

    class ConversionAccepted(LedgerAggregate.Event):
        """The member took the conversion offered at the closing."""

        TYPE = "member.conversion_accepted"
        body: ConversionAcceptedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.conversion = self.body.offer

    class RefundDisbursed(LedgerAggregate.Event):
        """The custodian paid a refund."""

        TYPE = "member.refund_disbursed"
        body: RefundDisbursedV1

        def apply(self, aggregate: Membership) -> None:
            aggregate.refunded_fen += self.body.amount_fen

    class RefundDisbursedV2(RefundDisbursed):
        """Schema 2: a lapse's refund among the reasons."""

        SCHEMA = 2
        body: RefundDisbursedV2  # type: ignore[assignment]  # the reasons widened

    def end(self, status: str, moment: datetime) -> None:
        """Mark the membership ended (used by the events above)."""
        self.status = status
        self.ended_at = moment

    def owe_refund(self, amount_fen: int, reason: str) -> None:
        """Add to the refund due (used by the events above)."""
        self.refund_due_fen += amount_fen
        self.refund_reason = reason

    # -- queries -----------------------------------------------------------------------------------------

    @property
    def details(self) -> MemberJoinedV1 | MemberJoinedV2:
        """The join record (its exact age, sealed from v2 on, is read through `UnitOfWork.age_at_joining`)."""
        assert self.joined is not None
        return self.joined

    def active_at(self, moment: datetime) -> bool:
        """Whether the member is in the plan at `moment` (waiting period included)."""
        return self.joined_at <= moment and (self.ended_at is None or moment < self.ended_at)

    def in_waiting_period(self, diagnosed_on: date, waiting_days: int, utc_offset_minutes: int) -> bool:
        """Whether a diagnosis on that plan day falls in the waiting period after the plan day of joining."""
        return diagnosed_on < waiting_ends_on(self.joined_at, waiting_days, utc_offset_minutes)

    def days_in_plan(self, moment: datetime) -> int:
        """Whole days since joining."""
        return (moment - self.joined_at).days

    def arrears_fen(self) -> int:
        """Failed debits not yet recovered."""
        return sum(self.arrears.values())

    def refund_outstanding_fen(self) -> int:
        """Refund due and not yet paid."""
        return self.refund_due_fen - self.refunded_fen

    # -- commands ----------------------------------------------------------------------------------------

    @classmethod
    def join(cls, member_id: UUID, at: datetime, actor: Actor, body: MemberJoinedV2, age_years: int) -> Membership:
        """Start a membership, its age sealed in `body` (plan rules are checked by the handler, which has the
        plan); the age stays readable in this unit of work."""
        membership = cls.start(cls.JoinedSealed, member_id, at, actor, body)
        membership.unsealed[(1, "age_years")] = age_years
        return membership

    def check_active(self, field: str = "member") -> None:
        """The member must still be in the plan."""
        check(self.status == ACTIVE, field, Rule.MEMBER_MUST_BE_ACTIVE, self.status)

    def receive_deposit(self, at: datetime, actor: Actor, amount_fen: int, reference: str) -> None:
        """Record a custodian-confirmed top-up; a bank reference is credited once."""
        self.check_active()
        check(reference not in self.deposit_references, "reference", Rule.DEPOSIT_REFERENCE_MUST_BE_NEW,
              reference)
        self.record(self.DepositReceived, at, actor,
                    DepositReceivedV1(plan=self.plan, amount_fen=amount_fen, reference=reference))

    def fail_debit(self, at: datetime, actor: Actor, period: str, amount_fen: int, reason: str) -> None:
        """Record a failed share collection, once per period."""
        check(period not in self.failed_periods, "period", Rule.DEBIT_CAN_FAIL_ONCE_PER_PERIOD, period)
        self.record(self.DebitFailed, at, actor, DebitFailedV1(
            plan=self.plan, period=period, amount_fen=amount_fen,
            reason=reason,  # type: ignore[arg-type]  # checked by the model
        ))

    def recover_debit(self, at: datetime, actor: Actor, period: str, grace_ends_at: datetime) -> None:
        """Record that a failed debit was collected on retry, before the grace period ends."""
        check(period in self.arrears, "period", Rule.ONLY_AN_OUTSTANDING_FAILED_DEBIT_CAN_BE_RECOVERED, period)
        self.check_active()
        check(at < grace_ends_at, "at", Rule.DEBIT_MUST_BE_RECOVERED_BEFORE_GRACE_ENDS, format_at(grace_ends_at))
        self.record(self.DebitRecovered, at, actor, DebitRecoveredV1(
            plan=self.plan, period=period, amount_fen=self.arrears[period]))

    def qualify_juror(self, at: datetime, actor: Actor, age_years: int, exam_commitment: str,
                      min_age_years: int, seal: Callable[[int, str, object], str]) -> None:
        """Record a passed juror exam; the member must be of age. The age is sealed (`seal(seq, field, value)`
        returns its commitment); the body shows its band."""
        self.check_active()
        check(self.juror_qualified_at is None, "member", Rule.JUROR_CAN_QUALIFY_ONCE)
        check(age_years >= min_age_years, "age_years", Rule.JUROR_MUST_BE_OF_AGE, f"minimum {min_age_years}")
        seq = self.version + 1
        self.record(self.JurorQualifiedSealed, at, actor, JurorQualifiedV2(
            age_band=age_band(age_years), age_years_sealed=seal(seq, "age_years", age_years),
            exam_commitment=exam_commitment))
        self.unsealed[(seq, "age_years")] = age_years

    def record_fraud(self, at: datetime, actor: Actor, claim: str | None, finding_commitment: str,
                     seal: Callable[[int, str, object], str]) -> None:
        """Record a fraud finding (disqualifies the member as a juror); the claim it concerns is sealed."""
        self.record(self.FraudRecordedSealed, at, actor, FraudRecordedV2(
            claim_sealed=seal(self.version + 1, "claim", claim), finding_commitment=finding_commitment))

    def check_juror_eligible(self, at: datetime, claimant: str, min_member_days: int) -> None:
        """Juror rules (docs/domain.md): qualified by exam, of age, paying member for the minimum days, no fraud
        record, not the claimant."""
        check(str(self.id) != claimant, "juror", Rule.CLAIMANT_CANNOT_VOTE_ON_OWN_CLAIM)
        check(self.juror_qualified_at is not None, "juror", Rule.JUROR_MUST_PASS_THE_QUALIFICATION_EXAM)
        check(self.status == ACTIVE, "juror", Rule.JUROR_MUST_BE_AN_ACTIVE_MEMBER, self.status)
        check(not self.fraud_recorded, "juror", Rule.JUROR_MUST_HAVE_NO_FRAUD_RECORD)
        check(not self.arrears, "juror", Rule.JUROR_MUST_BE_A_PAYING_MEMBER)
        check(self.days_in_plan(at) >= min_member_days, "juror",
              Rule.JUROR_MUST_BE_A_MEMBER_FOR_THE_MINIMUM_DAYS, f"{self.days_in_plan(at)} < {min_member_days}")

    def lapse(self, at: datetime, actor: Actor, reason: str, balance_fen: int = 0) -> None:
        """End protection for arrears past grace or an exhausted prepaid balance; what is left of the balance (less
        than a share) becomes a refund due."""
        self.check_active()
        self.record(self.LapsedV2, at, actor, MemberLapsedV2(
            plan=self.plan, reason=reason,  # type: ignore[arg-type]  # checked by the model
            arrears_fen=self.arrears_fen(), refund_due_fen=max(balance_fen, 0)))

    def exit(self, at: datetime, actor: Actor, balance_fen: int) -> None:
        """Leave at the member's request; a positive prepaid balance becomes a refund due."""
        self.check_active()
        self.record(self.Exited, at, actor, MemberExitedV1(plan=self.plan, refund_due_fen=max(balance_fen, 0)))

    def exclude(self, at: datetime, actor: Actor, diagnosed_on: date, waiting_days: int, utc_offset_minutes: int,
                shares_paid_fen: int, balance_fen: int, seal: Callable[[int, str, object], str]) -> None:
        """Illness diagnosed in the waiting period (plan days): refund shares paid (and any prepaid balance), leave.
        The date is sealed (`seal(seq, field, value)` returns its commitment); the body shows its month."""
        self.check_active()
        check(diagnosed_on >= day_of(self.joined_at, utc_offset_minutes), "diagnosed_on",
              Rule.DIAGNOSIS_MUST_NOT_PRECEDE_JOINING)
        check(diagnosed_on <= day_of(at, utc_offset_minutes), "diagnosed_on", Rule.DIAGNOSIS_MUST_NOT_BE_IN_THE_FUTURE)
        check(self.in_waiting_period(diagnosed_on, waiting_days, utc_offset_minutes), "diagnosed_on",
              Rule.EXCLUSION_APPLIES_ONLY_TO_ILLNESS_IN_THE_WAITING_PERIOD)
        day = diagnosed_on.isoformat()
        self.record(self.ExcludedV2, at, actor, MemberExcludedV2(
            plan=self.plan, diagnosed_month=day[:7], diagnosed_on_sealed=seal(self.version + 1, "diagnosed_on", day),
            shares_paid_fen=shares_paid_fen, refund_due_fen=shares_paid_fen + max(balance_fen, 0)))

    def erase(self, at: datetime, actor: Actor, reason: str, retention_days: int, open_claims: list[str]) -> None:
        """Record the erasure of the member's sealed values: once, after the member left, with no claim of theirs
        still open; for the end of retention, only once the retention period after leaving is over."""
        check(not self.erased, "member", Rule.MEMBER_IS_ERASED_ONCE)
        check(self.status != ACTIVE and self.ended_at is not None, "member",
              Rule.MEMBER_MUST_HAVE_LEFT_BEFORE_ERASURE, self.status)
        check(not open_claims, "member", Rule.MEMBER_HAS_AN_OPEN_CLAIM, ", ".join(open_claims))
        assert self.ended_at is not None
        ends = self.ended_at + timedelta(days=retention_days)
        check(reason != "retention_ended" or at >= ends, "reason", Rule.RETENTION_PERIOD_MUST_HAVE_ENDED,
              f"{retention_days} days after leaving: {format_at(ends)}")
        self.record(self.Erased, at, actor, MemberErasedV1(plan=self.plan, reason=reason))  # type: ignore[arg-type]

    def owe_wind_down_refund(self, at: datetime, actor: Actor, balance_fen: int, deadline: datetime) -> None:
        """At a plan's end, make the remaining balance due by the deadline (once)."""
        assert self.refund_reason != "wind_down", "the wind-down handler skips refunds already due"
        self.record(self.WindDownRefundDue, at, actor, WindDownRefundDueV1(
            plan=self.plan, refund_due_fen=max(balance_fen, 0), deadline=format_at(deadline)))

    def accept_conversion(self, at: datetime, actor: Actor, offer: str) -> None:
        """Take the conversion offered at the closing, once; a member still in the plan or wound down by it."""
        check(self.status in (ACTIVE, "wound_down"), "member", Rule.CONVERSION_IS_FOR_MEMBERS_AT_THE_CLOSING,
              self.status)
        check(self.conversion is None, "member", Rule.CONVERSION_IS_ACCEPTED_ONCE)
        self.record(self.ConversionAccepted, at, actor, ConversionAcceptedV1(plan=self.plan, offer=offer))

    def disburse_refund(self, at: datetime, actor: Actor, amount_fen: int, reference: str) -> None:
        """Record a custodian-paid refund; never more than is due."""
        check(self.refund_reason is not None, "member", Rule.REFUND_MUST_BE_DUE)
        check(amount_fen <= self.refund_outstanding_fen(), "amount_fen", Rule.REFUND_MUST_NOT_EXCEED_AMOUNT_DUE,
              f"{amount_fen} > {self.refund_outstanding_fen()}")
        self.record(self.RefundDisbursedV2, at, actor, RefundDisbursedV2(
            plan=self.plan, amount_fen=amount_fen, reference=reference,
            reason=self.refund_reason,  # type: ignore[arg-type]  # one of the model's literals
        ))
