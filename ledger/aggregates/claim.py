"""A claim: filed → investigated → publicly noticed → objections → jury → decided → included → paid.

The claim stream holds every step (docs/claims.md): the filing (coarse attributes and an evidence commitment only),
the investigation firm's signed report commitment and preliminary opinion, the public notice, objections and their
re-review, a jury the claimant may request against a preliminary rejection, juror-signed votes, the decision
(approved for at most the plan maximum at the age of diagnosis, or rejected for a reason from a closed set), the
period that funds it, and the custodian's payout — at most once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from ledger.aggregates.base import LedgerAggregate, check
from ledger.envelope import Actor, format_at, parse_at
from schemas.events import (
    ClaimApprovedV1,
    ClaimFiledV1,
    ClaimIncludedV1,
    ClaimInvestigatedV1,
    ClaimNoticedV1,
    ClaimPaidV1,
    ClaimRejectedV1,
    JuryDecidedV1,
    JuryRequestedV1,
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

    def __init__(self) -> None:
        self.filing: ClaimFiledV1 | None = None
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
    def details(self) -> ClaimFiledV1:
        """The filing."""
        assert self.filing is not None
        return self.filing

    @property
    def claimant(self) -> str:
        """The member the claim is for."""
        return self.details.member

    # -- commands ----------------------------------------------------------------------------------------

    @classmethod
    def file(cls, claim_id: UUID, at: datetime, actor: Actor, body: ClaimFiledV1) -> Claim:
        """Report a claim (eligibility is checked by the handler, which has the plan and the membership)."""
        return cls.start(cls.Filed, claim_id, at, actor, body)

    def investigate(self, at: datetime, actor: Actor, body: ClaimInvestigatedV1, max_aid_fen: int) -> None:
        """Record the investigation; an approval never recommends more than the plan maximum."""
        check(self.status == "filed", "claim", "claim_is_investigated_once_after_filing", self.status)
        check(body.recommended_amount_fen <= max_aid_fen, "recommended_amount_fen",
              "amount_must_not_exceed_the_plan_maximum_for_the_age_at_diagnosis",
              f"{body.recommended_amount_fen} > {max_aid_fen}")
        check(body.opinion == "reject" or body.recommended_amount_fen > 0, "recommended_amount_fen",
              "an_approval_recommends_a_positive_amount")
        check(body.reason is None or body.reason in PRELIMINARY_REASONS, "reason",
              "investigation_reason_must_be_a_preliminary_reason", str(body.reason))
        self.record(self.Investigated, at, actor, body)

    def notice(self, at: datetime, actor: Actor, notice_days: int) -> None:
        """Put the case on public notice for the plan's notice days."""
        check(self.status == "investigated", "claim", "claim_must_be_investigated_before_notice", self.status)
        ends = at + timedelta(days=notice_days)
        self.record(self.Noticed, at, actor, ClaimNoticedV1(starts_at=format_at(at), ends_at=format_at(ends)))

    def check_on_notice(self, at: datetime, field: str) -> None:
        """The case must be on notice now."""
        check(self.status == "noticed", "claim", "claim_must_be_on_notice", self.status)
        assert self.notice_ends_at is not None
        check(at < self.notice_ends_at, field, "only_during_the_public_notice", format_at(self.notice_ends_at))

    def file_objection(self, at: datetime, actor: Actor, objector: str, evidence_commitment: str) -> int:
        """A member objects during the notice; one objection per member; returns the objection number."""
        self.check_on_notice(at, "objector")
        check(objector != self.claimant, "objector", "claimant_cannot_object_to_own_claim")
        check(objector not in self.objectors, "objector", "one_objection_per_member")
        number = len(self.objections) + 1
        self.record(self.ObjectionFiled, at, actor, ObjectionFiledV1(
            objection=number, objector=objector, evidence_commitment=evidence_commitment))
        return number

    def resolve_objection(self, at: datetime, actor: Actor, objection: int, upheld: bool, review: str) -> None:
        """Record the re-review of an objection, once."""
        check(objection in self.objections, "objection", "objection_must_exist", str(objection))
        check(self.objections[objection] is None, "objection", "objection_is_resolved_once", str(objection))
        self.record(self.ObjectionResolved, at, actor, ObjectionResolvedV1(
            objection=objection, upheld=upheld, review_commitment=review))

    def request_jury(self, at: datetime, actor: Actor, requested_by: str) -> None:
        """The claimant disputes a rejection during the notice: the preliminary one, or an upheld objection's."""
        self.check_on_notice(at, "claim")
        check(requested_by == self.claimant, "requested_by", "only_the_claimant_may_request_a_jury")
        assert self.investigation is not None
        check(self.investigation.opinion == "reject" or any(self.objections.values()), "claim",
              "jury_only_against_a_rejection")
        check(not self.jury_requested, "claim", "jury_is_requested_once")
        self.record(self.JuryRequested, at, actor, JuryRequestedV1(requested_by=requested_by))

    def cast_vote(self, at: datetime, actor: Actor, juror: str, support: bool) -> None:
        """A juror's vote (eligibility is checked by the handler); one vote per juror, during the notice, so the
        count is closed before anyone can choose the moment of the decision."""
        check(self.jury_requested, "claim", "votes_need_a_jury_request")
        self.check_on_notice(at, "juror")
        check(juror not in self.votes, "juror", "one_vote_per_juror")
        self.record(self.VoteCast, at, actor, VoteCastV1(juror=juror, support=support))

    def decide(self, at: datetime, actor: Actor, max_aid_fen: int, quorum: int, threshold_bps: int) -> str:
        """Decide after the notice: a jury's verdict if it reached quorum, else an upheld objection rejects, else
        the preliminary opinion stands."""
        check(self.status == "noticed", "claim", "claim_must_be_on_notice", self.status)
        assert self.notice_ends_at is not None and self.investigation is not None
        check(at >= self.notice_ends_at, "claim", "decision_only_after_the_notice_ends", format_at(self.notice_ends_at))
        check(all(v is not None for v in self.objections.values()), "claim", "objections_must_be_resolved_first")
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
        check(self.status == "approved", "claim", "only_an_approved_claim_is_included_once", self.status)
        self.record(self.Included, at, actor, ClaimIncludedV1(period=period, period_number=period_number))

    def pay(self, at: datetime, actor: Actor, funded_fen: int, arrears_fen: int, max_aid_fen: int,
            reference: str) -> int:
        """The custodian pays the funded amount less arrears, at most once, never above the plan maximum."""
        check(self.status != "paid", "claim", "claim_is_paid_at_most_once")
        check(self.status == "included", "claim", "claim_must_be_included_in_an_assessed_period", self.status)
        check(funded_fen <= max_aid_fen, "claim", "payout_must_not_exceed_the_plan_maximum",
              f"{funded_fen} > {max_aid_fen}")
        deducted = min(arrears_fen, funded_fen)
        amount = funded_fen - deducted
        check(amount > 0, "claim", "nothing_left_to_pay_after_arrears", f"{funded_fen} - {deducted}")
        self.record(self.Paid, at, actor, ClaimPaidV1(amount_fen=amount, arrears_deducted_fen=deducted,
                                                      reference=reference))
        return amount
