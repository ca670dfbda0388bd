"""Commands of a claim."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from schemas.commands import Command
from schemas.common import Code, Commitment, Fen, Id, IsoDate, Reference
from schemas.events import RejectionReason, check_opinion


class FileClaim(Command):
    """A member (or their family) reports a diagnosis (a member's own request)."""

    NAME: ClassVar[str] = "file_claim"
    SCHEMA_VERSION: ClassVar[int] = 2
    """v2: the claim id is keyed by the operator, and the member, date and age are sealed on the log."""
    SEALS: ClassVar[bool] = True
    ROLE: ClassVar[str] = "member"
    command: Literal["file_claim"] = "file_claim"
    member: Id
    category: Literal["illness", "accident"]
    condition: Code
    diagnosed_on: IsoDate
    age_at_diagnosis: int = Field(ge=0, le=150)
    evidence_commitment: Commitment


class InvestigateClaim(Command):
    """The investigation firm reports and gives its preliminary opinion."""

    NAME: ClassVar[str] = "investigate_claim"
    ROLE: ClassVar[str] = "investigator"
    command: Literal["investigate_claim"] = "investigate_claim"
    claim: Id
    report_commitment: Commitment
    opinion: Literal["approve", "reject"]
    recommended_amount_fen: Fen
    reason: RejectionReason | None = None

    @model_validator(mode="after")
    def _reason_matches(self) -> InvestigateClaim:
        check_opinion(self.opinion, self.reason, self.recommended_amount_fen)
        return self


class NoticeClaim(Command):
    """Put an investigated case on public notice."""

    NAME: ClassVar[str] = "notice_claim"
    ROLE: ClassVar[str] = "operator"
    command: Literal["notice_claim"] = "notice_claim"
    claim: Id


class FileObjection(Command):
    """A member objects to a noticed case, with committed evidence (a member's own request)."""

    NAME: ClassVar[str] = "file_objection"
    ROLE: ClassVar[str] = "member"
    command: Literal["file_objection"] = "file_objection"
    claim: Id
    objector: Id
    evidence_commitment: Commitment


class ResolveObjection(Command):
    """Record the re-review of an objection."""

    NAME: ClassVar[str] = "resolve_objection"
    ROLE: ClassVar[str] = "operator"
    command: Literal["resolve_objection"] = "resolve_objection"
    claim: Id
    objection: int = Field(ge=1)
    upheld: bool
    review_commitment: Commitment


class RequestJury(Command):
    """The claimant disputes a preliminary rejection (a member's own request)."""

    NAME: ClassVar[str] = "request_jury"
    ROLE: ClassVar[str] = "member"
    command: Literal["request_jury"] = "request_jury"
    claim: Id


class CastVote(Command):
    """A juror votes (signed by the juror's own key)."""

    NAME: ClassVar[str] = "cast_vote"
    ROLE: ClassVar[str] = "juror"
    command: Literal["cast_vote"] = "cast_vote"
    claim: Id
    juror: Id
    support: bool


class DecideClaim(Command):
    """Decide a case after its notice."""

    NAME: ClassVar[str] = "decide_claim"
    ROLE: ClassVar[str] = "operator"
    command: Literal["decide_claim"] = "decide_claim"
    claim: Id


class PayClaim(Command):
    """The custodian confirms it paid an included case's aid."""

    NAME: ClassVar[str] = "pay_claim"
    ROLE: ClassVar[str] = "custodian"
    command: Literal["pay_claim"] = "pay_claim"
    claim: Id
    reference: Reference
