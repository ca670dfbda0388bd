"""A claim: filed → investigated → publicly noticed → objections → jury → decided → included → paid.

The claim stream holds every step (docs/claims.md): the filing (coarse attributes and an evidence commitment only),
the investigation firm's signed report commitment and preliminary opinion, the public notice, objections and their
re-review, a jury the claimant may request against a preliminary rejection, juror-signed votes, the decision
(approved for at most the plan maximum at the age of diagnosis, or rejected for a reason from a closed set), the
period that funds it, and the custodian's payout — at most once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Final
from uuid import UUID

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Actor, format_at, parse_at
from ledger.errors import check
from ledger.rules import Rule
from schemas.events import (
    ClaimApprovedV1,
    ClaimFiledV1,
    ClaimFiledV2,
    ClaimIncludedV1,
    ClaimInvestigatedV1,
    ClaimNoticedV1,
    ClaimPaidV1,
    ClaimRejectedV1,
    JuryDecidedV1,
    JuryRequestedV1,
    JuryRequestedV2,
    ObjectionFiledV1,
    ObjectionResolvedV1,
    VoteCastV1,
)

PRELIMINARY_REASONS: Final = frozenset({
    "condition_not_covered", "undeclared_pre_existing_condition", "insufficient_evidence", "fraud",
    "not_a_member_at_diagnosis",
})
"""The reasons an investigation may give; `objection_upheld` and `jury_rejected` only come from the notice and the
jury, so an investigator cannot pre-empt either."""


class Claim(LedgerAggregate):
    """A claim's state."""

    MUST_EXIST: ClassVar[Rule] = Rule.CLAIM_MUST_EXIST

    def __init__(self) -> None:
        self.filing: ClaimFiledV1 | ClaimFiledV2 | None = None
        self.unsealed: dict[str, Any] = {}
        """The sealed values of a v2 filing, opened from the vault by the unit of work that loads the claim."""
        self.status = "filed"
        self.investigation: ClaimInvestigatedV1 | None = None
        self.notice_ends_at: datetime | None = None
        self.objections: dict[int, bool | None] = {}
        self.objectors: set[str] = set()
        self.jury_requested = False
        self.votes: dict[str, bool] = {}
        self.approved_fen = 0
        self.rejection: ClaimRejectedV1 | None = None
        self.period: str | None = None
        self.period_number = 0
        self.paid: ClaimPaidV1 | None = None

    class Filed(LedgerAggregate.Created):
        """The claim is reported."""

        TYPE = "claim.filed"
        body: ClaimFiledV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.filing = self.body

    class FiledSealed(LedgerAggregate.Created):
        """The claim is reported, its personal values sealed."""

        TYPE = "claim.filed"
        SCHEMA = 2
        body: ClaimFiledV2

        def apply(self, aggregate: Claim) -> None:
            aggregate.filing = self.body

    class Investigated(LedgerAggregate.Event):
        """The investigation firm's report and preliminary opinion."""

        TYPE = "claim.investigated"
        body: ClaimInvestigatedV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "investigated"
            aggregate.investigation = self.body

    class Noticed(LedgerAggregate.Event):
        """The case is on public notice."""

        TYPE = "claim.noticed"
        body: ClaimNoticedV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "noticed"
            aggregate.notice_ends_at = parse_at(self.body.ends_at)

    class ObjectionFiled(LedgerAggregate.Event):
        """A member objects."""

        TYPE = "claim.objection_filed"
        body: ObjectionFiledV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.objections[self.body.objection] = None
            aggregate.objectors.add(self.body.objector)

    class ObjectionResolved(LedgerAggregate.Event):
        """An objection was re-reviewed."""

        TYPE = "claim.objection_resolved"
        body: ObjectionResolvedV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.objections[self.body.objection] = self.body.upheld

    class JuryRequested(LedgerAggregate.Event):
        """The claimant asks for a jury."""

        TYPE = "claim.jury_requested"
        body: JuryRequestedV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.jury_requested = True

    class JuryRequestedSealed(LedgerAggregate.Event):
        """The claimant of a sealed claim asks for a jury."""

        TYPE = "claim.jury_requested"
        SCHEMA = 2
        body: JuryRequestedV2

        def apply(self, aggregate: Claim) -> None:
            aggregate.jury_requested = True

    class VoteCast(LedgerAggregate.Event):
        """A juror's vote."""

        TYPE = "claim.vote_cast"
        body: VoteCastV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.votes[self.body.juror] = self.body.support

    class JuryDecided(LedgerAggregate.Event):
        """The jury's count."""

        TYPE = "claim.jury_decided"
        body: JuryDecidedV1

        def apply(self, aggregate: Claim) -> None:
            pass

    class Approved(LedgerAggregate.Event):
        """The case is approved."""

        TYPE = "claim.approved"
        body: ClaimApprovedV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "approved"
            aggregate.approved_fen = self.body.amount_fen

    class Rejected(LedgerAggregate.Event):
        """The case is rejected."""

        TYPE = "claim.rejected"
        body: ClaimRejectedV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "rejected"
            aggregate.rejection = self.body

    class Included(LedgerAggregate.Event):
        """A period funds the case."""

        TYPE = "claim.included"
        body: ClaimIncludedV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "included"
            aggregate.period = self.body.period
            aggregate.period_number = self.body.period_number

    class Paid(LedgerAggregate.Event):
        """The custodian paid the aid."""

        TYPE = "claim.paid"
        body: ClaimPaidV1

        def apply(self, aggregate: Claim) -> None:
            aggregate.status = "paid"
            aggregate.paid = self.body

    # -- queries -----------------------------------------------------------------------------------------

    @property
    def details(self) -> ClaimFiledV1 | ClaimFiledV2:
        """The filing."""
        assert self.filing is not None
        return self.filing

    @property
    def is_sealed(self) -> bool:
        """Whether the filing seals its personal values (v2)."""
        return isinstance(self.filing, ClaimFiledV2)

    def _value(self, name: str) -> Any:
        if isinstance(self.details, ClaimFiledV1):
            return getattr(self.details, name)
        assert name in self.unsealed, f"the sealed {name} of claim {self.id} is not in the vault (erased?)"
        return self.unsealed[name]

    @property
    def claimant(self) -> str:
        """The member the claim is for (sealed from v2 on: opened from the vault)."""
        return str(self._value("member"))

    @property
    def age_at_diagnosis(self) -> int:
        """The claimant's age at diagnosis (sealed from v2 on)."""
        return int(self._value("age_at_diagnosis"))

    # -- commands ----------------------------------------------------------------------------------------

    @classmethod
    def file(cls, claim_id: UUID, at: datetime, actor: Actor, body: ClaimFiledV2, unsealed: dict[str, Any]) -> Claim:
        """Report a claim with its values sealed (eligibility is checked by the handler, which has the plan and the
        membership); `unsealed` holds the values the commitments seal, for the rest of this unit of work."""
        claim = cls.start(cls.FiledSealed, claim_id, at, actor, body)
        claim.unsealed = dict(unsealed)
        return claim

    def investigate(self, at: datetime, actor: Actor, body: ClaimInvestigatedV1, max_aid_fen: int) -> None:
        """Record the investigation; an approval never recommends more than the plan maximum."""
        check(self.status == "filed", "claim", Rule.CLAIM_IS_INVESTIGATED_ONCE_AFTER_FILING, self.status)
        check(body.recommended_amount_fen <= max_aid_fen, "recommended_amount_fen",
              Rule.AMOUNT_MUST_NOT_EXCEED_THE_PLAN_MAXIMUM_FOR_THE_AGE_AT_DIAGNOSIS,
              f"{body.recommended_amount_fen} > {max_aid_fen}")
        check(body.opinion == "reject" or body.recommended_amount_fen > 0, "recommended_amount_fen",
              Rule.AN_APPROVAL_RECOMMENDS_A_POSITIVE_AMOUNT)
        check(body.reason is None or body.reason in PRELIMINARY_REASONS, "reason",
              Rule.INVESTIGATION_REASON_MUST_BE_A_PRELIMINARY_REASON, str(body.reason))
        self.record(self.Investigated, at, actor, body)

    def notice(self, at: datetime, actor: Actor, notice_days: int) -> None:
        """Put the case on public notice for the plan's notice days."""
        check(self.status == "investigated", "claim", Rule.CLAIM_MUST_BE_INVESTIGATED_BEFORE_NOTICE, self.status)
        ends = at + timedelta(days=notice_days)
        self.record(self.Noticed, at, actor, ClaimNoticedV1(starts_at=format_at(at), ends_at=format_at(ends)))

    def check_on_notice(self, at: datetime, field: str) -> None:
        """The case must be on notice now."""
        check(self.status == "noticed", "claim", Rule.CLAIM_MUST_BE_ON_NOTICE, self.status)
        assert self.notice_ends_at is not None
        check(at < self.notice_ends_at, field, Rule.ONLY_DURING_THE_PUBLIC_NOTICE, format_at(self.notice_ends_at))

    def file_objection(self, at: datetime, actor: Actor, objector: str, evidence_commitment: str) -> int:
        """A member objects during the notice; one objection per member; returns the objection number."""
        self.check_on_notice(at, "objector")
        check(objector != self.claimant, "objector", Rule.CLAIMANT_CANNOT_OBJECT_TO_OWN_CLAIM)
        check(objector not in self.objectors, "objector", Rule.ONE_OBJECTION_PER_MEMBER)
        number = len(self.objections) + 1
        self.record(self.ObjectionFiled, at, actor, ObjectionFiledV1(
            objection=number, objector=objector, evidence_commitment=evidence_commitment))
        return number

    def resolve_objection(self, at: datetime, actor: Actor, objection: int, upheld: bool, review: str) -> None:
        """Record the re-review of an objection, once."""
        check(objection in self.objections, "objection", Rule.OBJECTION_MUST_EXIST, str(objection))
        check(self.objections[objection] is None, "objection", Rule.OBJECTION_IS_RESOLVED_ONCE, str(objection))
        self.record(self.ObjectionResolved, at, actor, ObjectionResolvedV1(
            objection=objection, upheld=upheld, review_commitment=review))

    def request_jury(self, at: datetime, actor: Actor, requested_by: str) -> None:
        """The claimant disputes a rejection during the notice: the preliminary one, or an upheld objection's."""
        self.check_on_notice(at, "claim")
        check(requested_by == self.claimant, "requested_by", Rule.ONLY_THE_CLAIMANT_MAY_REQUEST_A_JURY)
        assert self.investigation is not None
        check(self.investigation.opinion == "reject" or any(self.objections.values()), "claim",
              Rule.JURY_ONLY_AGAINST_A_REJECTION)
        check(not self.jury_requested, "claim", Rule.JURY_IS_REQUESTED_ONCE)
        if self.is_sealed:
            self.record(self.JuryRequestedSealed, at, actor, JuryRequestedV2())
        else:
            self.record(self.JuryRequested, at, actor, JuryRequestedV1(requested_by=requested_by))

    def cast_vote(self, at: datetime, actor: Actor, juror: str, support: bool) -> None:
        """A juror's vote (eligibility is checked by the handler); one vote per juror, during the notice, so the
        count is closed before anyone can choose the moment of the decision."""
        check(self.jury_requested, "claim", Rule.VOTES_NEED_A_JURY_REQUEST)
        self.check_on_notice(at, "juror")
        check(juror not in self.votes, "juror", Rule.ONE_VOTE_PER_JUROR)
        self.record(self.VoteCast, at, actor, VoteCastV1(juror=juror, support=support))

    def decide(self, at: datetime, actor: Actor, max_aid_fen: int, quorum: int, threshold_bps: int) -> str:
        """Decide after the notice: a jury's verdict if it reached quorum, else an upheld objection rejects, else
        the preliminary opinion stands."""
        check(self.status == "noticed", "claim", Rule.CLAIM_MUST_BE_ON_NOTICE, self.status)
        assert self.notice_ends_at is not None and self.investigation is not None
        check(at >= self.notice_ends_at, "claim", Rule.DECISION_ONLY_AFTER_THE_NOTICE_ENDS,
              format_at(self.notice_ends_at))
        check(all(v is not None for v in self.objections.values()), "claim", Rule.OBJECTIONS_MUST_BE_RESOLVED_FIRST)
        opinion = self.investigation
        if self.jury_requested:
            votes, support = len(self.votes), sum(self.votes.values())
            verdict = ("no_quorum" if votes < quorum
                       else "approve" if support * 10_000 > threshold_bps * votes else "reject")
            self.record(self.JuryDecided, at, actor, JuryDecidedV1(
                votes=votes, support=support, quorum=quorum, threshold_bps=threshold_bps,
                verdict=verdict))  # type: ignore[arg-type]  # one of the literals
            if verdict == "approve":
                recommended = opinion.recommended_amount_fen if opinion.opinion == "approve" else max_aid_fen
                self.record(self.Approved, at, actor, ClaimApprovedV1(
                    amount_fen=min(recommended, max_aid_fen), max_aid_fen=max_aid_fen, basis="jury"))
                return "approved"
            if verdict == "reject":
                self.record(self.Rejected, at, actor, ClaimRejectedV1(reason="jury_rejected", basis="jury"))
                return "rejected"
            # no quorum: the rejection the jury was asked to overturn stands
        if any(self.objections.values()):
            self.record(self.Rejected, at, actor, ClaimRejectedV1(reason="objection_upheld", basis="objection"))
            return "rejected"
        if opinion.opinion == "reject":
            assert opinion.reason is not None
            self.record(self.Rejected, at, actor, ClaimRejectedV1(reason=opinion.reason, basis="notice"))
            return "rejected"
        amount = min(opinion.recommended_amount_fen, max_aid_fen)
        self.record(self.Approved, at, actor, ClaimApprovedV1(amount_fen=amount, max_aid_fen=max_aid_fen,
                                                              basis="notice"))
        return "approved"

    def include(self, at: datetime, actor: Actor, period: str, period_number: int) -> None:
        """A period funds the approved case, once."""
        check(self.status == "approved", "claim", Rule.ONLY_AN_APPROVED_CLAIM_IS_INCLUDED_ONCE, self.status)
        self.record(self.Included, at, actor, ClaimIncludedV1(period=period, period_number=period_number))

    def pay(self, at: datetime, actor: Actor, funded_fen: int, arrears_fen: int, max_aid_fen: int,
            reference: str) -> int:
        """The custodian pays the funded amount less arrears, at most once, never above the plan maximum."""
        check(self.status != "paid", "claim", Rule.CLAIM_IS_PAID_AT_MOST_ONCE)
        check(self.status == "included", "claim", Rule.CLAIM_MUST_BE_INCLUDED_IN_AN_ASSESSED_PERIOD, self.status)
        check(funded_fen <= max_aid_fen, "claim", Rule.PAYOUT_MUST_NOT_EXCEED_THE_PLAN_MAXIMUM,
              f"{funded_fen} > {max_aid_fen}")
        deducted = min(arrears_fen, funded_fen)
        amount = funded_fen - deducted
        check(amount > 0, "claim", Rule.NOTHING_LEFT_TO_PAY_AFTER_ARREARS, f"{funded_fen} - {deducted}")
        self.record(self.Paid, at, actor, ClaimPaidV1(amount_fen=amount, arrears_deducted_fen=deducted,
                                                      reference=reference))
        return amount
