"""Bodies of every signed event, by `(type, schema)`.

The envelope is fixed (docs/design.md); these models fix what each `body` may hold. A new shape of body is a new
schema number with a new model; old events keep validating against the model they were written with.
No body holds personal data: members are pseudonymous ids, documents are salted commitments, attributes are
coarse (age band, two-letter province, sex). From `claim.filed` v2, `member.excluded` v2, `member.joined` v2,
`member.juror_qualified` v2 and `member.fraud_recorded` v2 on, the exact values — who claims, the diagnosis date,
the exact ages, the claim a fraud finding concerns — are sealed fields (`<name>_sealed`, the commitment of
`ledger.sealing`) beside the coarse value the public disclosure shows (month, 5-year age band).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.common import (
    AgeBand,
    Code,
    Commitment,
    Count,
    Fen,
    Frozen,
    HashHex,
    Id,
    Instant,
    IsoDate,
    KeyId,
    Month,
    Name,
    Province,
    Reference,
    Role,
    SignedFen,
)

# -- keyring -------------------------------------------------------------------------------------------------


class KeyRegisteredV1(Frozen):
    """A public key becomes valid for a role from `valid_from`; member and juror keys name their member."""

    key_id: KeyId
    role: Role
    public_key: str = Field(pattern=r"^[A-Za-z0-9+/]{43}=$", description="base64 of the raw 32-byte key")
    valid_from: Instant
    member: Id | None = None


class KeyRegisteredV2(KeyRegisteredV1):
    """Schema 2 of a registration: the public name of the party that holds a party key (the investigation firm a
    case card names, the custodian bank); a member's or juror's key carries none."""

    party_name: Name


class KeyRevokedV1(Frozen):
    """A key stops being valid at `revoked_at`; signatures it made after that instant are invalid."""

    key_id: KeyId
    revoked_at: Instant


# -- plan ----------------------------------------------------------------------------------------------------


class AidBand(Frozen):
    """Maximum aid for members whose age at diagnosis is at most `up_to_age_years`."""

    up_to_age_years: int = Field(ge=0, le=150)
    max_aid_fen: Fen


class PlanRules(Frozen):
    """One version of a plan's rules. Every rule that docs/domain.md names is a parameter here."""

    min_age_years: int = Field(ge=0, le=150)
    max_age_years: int = Field(ge=0, le=150)
    waiting_days: int = Field(ge=0, le=3650, description="illness only; accidents are covered at once")
    aid_bands: tuple[AidBand, ...] = Field(min_length=1)
    fee_bps: int = Field(ge=0, le=10_000, description="management fee on approved aid, basis points")
    per_case_cap_fen: Fen = Field(description="share cap per patient per member per period")
    annual_cap_fen: Fen = Field(description="share cap per member per calendar year")
    excess_policy: Literal["operator_pays", "pro_rata"]
    payment_model: Literal["prepaid", "postpaid"]
    min_balance_fen: Fen = Field(description="prepaid: members below this balance are warned")
    grace_days: int = Field(
        ge=0, le=60, description="postpaid: a failed debit may be recovered until this many days "
        "before the next collection day; then the member is removed"
    )
    claim_window_days: int = Field(ge=1, le=3650, description="claims within this many days of diagnosis")
    notice_days: int = Field(ge=1, le=60, description="public notice length")
    jury_quorum: int = Field(ge=1, le=10_000_000, description="valid votes needed for a verdict")
    jury_threshold_bps: int = Field(
        ge=5000, lt=10_000, description="a verdict approves when support exceeds this share of votes"
    )
    juror_min_age_years: int = Field(ge=18, le=150)
    juror_min_member_days: int = Field(ge=0, le=3650)
    notice_days_of_month: tuple[int, ...] = Field(min_length=1, description="cycle calendar: notice days")
    collection_days_of_month: tuple[int, ...] = Field(
        min_length=1, description="cycle calendar: collection days"
    )
    utc_offset_minutes: int = Field(ge=-720, le=840, description="the plan's civil time zone (China: 480)")

    @model_validator(mode="after")
    def _consistent(self) -> PlanRules:
        if self.min_age_years > self.max_age_years:
            raise ValueError("min_age_years must not exceed max_age_years")
        ages = [band.up_to_age_years for band in self.aid_bands]
        if ages != sorted(set(ages)) or ages[-1] < self.max_age_years:
            raise ValueError("aid_bands must ascend and cover max_age_years")
        for days in (self.notice_days_of_month, self.collection_days_of_month):
            if list(days) != sorted(set(days)) or days[0] < 1 or days[-1] > 28:
                raise ValueError("cycle days must ascend and lie in 1..28")
        if len(self.notice_days_of_month) != len(self.collection_days_of_month):
            raise ValueError("each notice day needs one collection day")
        return self

    def max_aid_fen(self, age_years: int) -> int:
        """The maximum aid for a member of this age at diagnosis (0 when outside every band)."""
        for band in self.aid_bands:
            if age_years <= band.up_to_age_years:
                return band.max_aid_fen
        return 0


class PlanCreatedV1(Frozen):
    """A plan opens with its first rules (version 1)."""

    name: Name
    kind: Literal["cancer", "children", "accident", "elderly_cancer", "chronic"]
    rules: PlanRules


class PlanRulesAmendedV1(Frozen):
    """A new rules version; it applies to joins, claims and periods from `effective_from` on."""

    version: int = Field(ge=2)
    effective_from: Instant
    rules: PlanRules


class PlanClosingAnnouncedV1(Frozen):
    """Wind-down terms: when the plan ends, the refund deadline, and how long tail claims are accepted."""

    ends_at: Instant
    refund_deadline: Instant
    claim_tail_days: int = Field(ge=0, le=3650)
    operator_pays_final_periods: int = Field(ge=0, le=24)


class PlanClosingAnnouncedV2(PlanClosingAnnouncedV1):
    """Schema 2 of the closing: the conversion offered to members at the closing (水滴: a free one-year policy), if
    any; each member who takes it is recorded by `member.conversion_accepted`."""

    conversion_offer: Name | None = Field(description="what members are offered at the closing, or null")


class PlanTerminatedV1(Frozen):
    """The plan has ended; no joins, no new periods, tail claims only."""

    terminated_at: Instant


class SurplusReleasedV1(Frozen):
    """After a terminated plan's claim tail, every period settled, the custodian pays out what the pool still holds
    (the surplus the last settlements carried) to the operator, which funded the final and tail periods; the plan
    holds nothing after it."""

    amount_fen: Fen = Field(gt=0)
    reference: Reference
    to: Literal["operator"]


ErasureReason = Literal["left", "consent_withdrawn", "retention_ended"]
"""Why a member's sealed values were erased (docs/privacy.md)."""

# -- membership ----------------------------------------------------------------------------------------------


class MemberJoinedV1(Frozen):
    """A member joins. Personal data stays off the log: only commitments and coarse attributes."""

    plan: Id
    rules_version: int = Field(ge=1)
    age_years: int = Field(ge=0, le=150)
    sex: Literal["f", "m"]
    province: Province
    payer: Id | None = Field(description="the member who pays for this one, or null when self-paying")
    family_order: int = Field(ge=0, le=100, description="0 for the payer; then the order family joined")
    consent_commitment: Commitment
    health_declaration_commitment: Commitment


class MemberJoinedV2(Frozen):
    """A member joins, the exact age sealed (`ledger.sealing`): the body shows the 5-year age band."""

    plan: Id
    rules_version: int = Field(ge=1)
    age_band: AgeBand
    age_years_sealed: Commitment = Field(description="commitment to the age in years at joining")
    sex: Literal["f", "m"]
    province: Province
    payer: Id | None = Field(description="the member who pays for this one, or null when self-paying")
    family_order: int = Field(ge=0, le=100, description="0 for the payer; then the order family joined")
    consent_commitment: Commitment
    health_declaration_commitment: Commitment


class DepositReceivedV1(Frozen):
    """The custodian received a top-up into the member's prepaid balance."""

    plan: Id
    amount_fen: Fen = Field(gt=0)
    reference: Reference


class DebitFailedV1(Frozen):
    """A share could not be collected (postpaid channel failure, or prepaid balance too low)."""

    plan: Id
    period: Id
    amount_fen: Fen = Field(gt=0)
    reason: Literal["channel_declined", "insufficient_balance"]


class DebitRecoveredV1(Frozen):
    """A failed postpaid debit was collected on retry within the grace period."""

    plan: Id
    period: Id
    amount_fen: Fen = Field(gt=0)


class JurorQualifiedV1(Frozen):
    """The member passed the jury qualification exam; age is attested at qualification."""

    age_years: int = Field(ge=18, le=150)
    exam_commitment: Commitment


class JurorQualifiedV2(Frozen):
    """The member passed the jury qualification exam; the age attested is sealed, its 5-year band shown."""

    age_band: AgeBand
    age_years_sealed: Commitment = Field(description="commitment to the age in years at qualification")
    exam_commitment: Commitment


class FraudRecordedV1(Frozen):
    """A fraud finding against the member: they may no longer serve as a juror."""

    claim: Id | None
    finding_commitment: Commitment


class FraudRecordedV2(Frozen):
    """A fraud finding against the member, the claim it concerns sealed (a claim id, or null for none): the
    finding would otherwise tie a sealed claim to its claimant."""

    claim_sealed: Commitment = Field(description="commitment to the claim id, or to null")
    finding_commitment: Commitment


class MemberLapsedV1(Frozen):
    """The member lost protection: arrears past grace, or a prepaid balance that could not pay a share."""

    plan: Id
    reason: Literal["grace_expired", "balance_exhausted"]
    arrears_fen: Fen


class MemberLapsedV2(MemberLapsedV1):
    """Schema 2 of a lapse: what is left of an exhausted prepaid balance (less than a share) is refunded, never kept;
    0 for family members and postpaid lapses."""

    refund_due_fen: Fen


class MemberExitedV1(Frozen):
    """The member left at their own request; a prepaid balance becomes a refund due."""

    plan: Id
    refund_due_fen: Fen


class MemberExcludedV1(Frozen):
    """Illness diagnosed in the waiting period: shares paid are refunded and the member leaves for good."""

    plan: Id
    diagnosed_on: IsoDate
    shares_paid_fen: Fen
    refund_due_fen: Fen


class MemberExcludedV2(Frozen):
    """Illness diagnosed in the waiting period, its date sealed: only the month is public."""

    plan: Id
    diagnosed_month: Month
    diagnosed_on_sealed: Commitment = Field(description="commitment to the diagnosis date (ledger.sealing)")
    shares_paid_fen: Fen
    refund_due_fen: Fen


class MemberErasedV1(Frozen):
    """The member's data key and sealed values were destroyed; their commitments stay on the log, unopenable."""

    plan: Id
    reason: ErasureReason


class MemberAgedOutV1(Frozen):
    """The member is older than the plan's top age band (`ledger.ages`): no claim of theirs could be paid, so the
    membership ends like an exit (a prepaid balance becomes a refund due), or moves to a successor plan (the
    elderly plan) where the member joins again as `successor_member`."""

    plan: Id
    top_age_years: int = Field(ge=0, le=150, description="the top of the plan's age bands the member passed")
    refund_due_fen: Fen
    successor_plan: Id | None
    successor_member: Id | None = Field(description="the member's new membership in the successor plan, or null")


class WindDownRefundDueV1(Frozen):
    """At a plan's end, the member's remaining balance becomes a refund due by the refund deadline."""

    plan: Id
    refund_due_fen: Fen
    deadline: Instant


class RefundDisbursedV2(Frozen):
    """Schema 2 of a refund paid: the reasons include a lapse's remaining balance."""

    plan: Id
    amount_fen: Fen = Field(gt=0)
    reference: Reference
    reason: Literal["exit", "waiting_period_illness", "wind_down", "lapse"]


class ConversionAcceptedV1(Frozen):
    """A member took the conversion offered at the plan's closing (a member's own request)."""

    plan: Id
    offer: Name


class RefundDisbursedV1(Frozen):
    """The custodian paid a refund to the member."""

    plan: Id
    amount_fen: Fen = Field(gt=0)
    reference: Reference
    reason: Literal["exit", "waiting_period_illness", "wind_down"]


# -- claim ---------------------------------------------------------------------------------------------------

RejectionReason = Literal[
    "condition_not_covered",
    "undeclared_pre_existing_condition",
    "insufficient_evidence",
    "fraud",
    "not_a_member_at_diagnosis",
    "objection_upheld",
    "jury_rejected",
]
"""The closed set of reasons a claim may be rejected for; each is documented in docs/claims.md."""


class ClaimFiledV1(Frozen):
    """A claim is reported; the rules version in force and the member's coarse attributes are fixed here."""

    plan: Id
    member: Id
    rules_version: int = Field(ge=1)
    category: Literal["illness", "accident"]
    condition: Code = Field(description="coarse condition code, e.g. breast_cancer")
    diagnosed_on: IsoDate
    age_at_diagnosis: int = Field(ge=0, le=150)
    sex: Literal["f", "m"] = Field(description="from the join, for the public case card")
    province: Province = Field(description="from the join, for the public case card")
    joined_at: Instant = Field(description="when the member joined, for the card's days in the plan")
    evidence_commitment: Commitment


class ClaimFiledV2(Frozen):
    """A claim is reported, its personal values sealed: who claims, the exact diagnosis date, the exact age at
    diagnosis and the joining instant are commitments (`ledger.sealing`); the body shows only what the plan's
    public disclosure shows (condition, category, sex, province, diagnosis and joining month, 5-year age band)."""

    plan: Id
    rules_version: int = Field(ge=1)
    category: Literal["illness", "accident"]
    condition: Code = Field(description="coarse condition code, e.g. breast_cancer")
    diagnosed_month: Month
    age_band: AgeBand
    sex: Literal["f", "m"] = Field(description="from the join, for the public case card")
    province: Province = Field(description="from the join, for the public case card")
    joined_month: Month = Field(description="the joining month in the plan's civil time")
    evidence_commitment: Commitment
    member_sealed: Commitment = Field(description="commitment to the claimant's member id")
    diagnosed_on_sealed: Commitment = Field(description="commitment to the diagnosis date")
    age_at_diagnosis_sealed: Commitment = Field(description="commitment to the age at diagnosis in years")
    joined_at_sealed: Commitment = Field(description="commitment to the instant the claimant joined")


def check_opinion(opinion: str, reason: str | None, recommended_amount_fen: int) -> None:
    """An opinion's reason and amount agree: a rejection gives a reason and recommends 0, an approval no reason."""
    if (opinion == "reject") != (reason is not None):
        raise ValueError("reason is required for reject and forbidden for approve")
    if opinion == "reject" and recommended_amount_fen != 0:
        raise ValueError("a reject opinion recommends 0 fen")


class ClaimInvestigatedV1(Frozen):
    """The investigation firm's report (committed) and preliminary opinion."""

    report_commitment: Commitment
    opinion: Literal["approve", "reject"]
    recommended_amount_fen: Fen
    reason: RejectionReason | None

    @model_validator(mode="after")
    def _reason_matches(self) -> ClaimInvestigatedV1:
        check_opinion(self.opinion, self.reason, self.recommended_amount_fen)
        return self


class ClaimNoticedV1(Frozen):
    """The case is on public notice until `ends_at`; objections may be filed until then."""

    starts_at: Instant
    ends_at: Instant


class ObjectionFiledV1(Frozen):
    """A member objects to a noticed case, with committed evidence."""

    objection: int = Field(ge=1)
    objector: Id
    evidence_commitment: Commitment


class ObjectionResolvedV1(Frozen):
    """An objection was re-reviewed; an upheld objection rejects the case."""

    objection: int = Field(ge=1)
    upheld: bool
    review_commitment: Commitment


class JuryRequestedV1(Frozen):
    """The claimant disputes a preliminary rejection and asks for a jury."""

    requested_by: Id


class JuryRequestedV2(Frozen):
    """The claimant of a sealed claim asks for a jury; who asked stays off the log (the operator signs)."""


class VoteCastV1(Frozen):
    """A juror's vote, signed by that juror's key."""

    juror: Id
    support: bool = Field(description="true supports paying the claim")


class JuryDecidedV1(Frozen):
    """The jury's count. Without quorum, or without more than the threshold, the preliminary opinion stands."""

    votes: Count
    support: Count
    quorum: Count
    threshold_bps: int = Field(ge=5000, lt=10_000)
    verdict: Literal["approve", "reject", "no_quorum"]


class ClaimApprovedV1(Frozen):
    """The case is approved for `amount_fen` (never above the plan maximum for the age at diagnosis)."""

    amount_fen: Fen = Field(gt=0)
    max_aid_fen: Fen
    basis: Literal["notice", "jury"]


class ClaimRejectedV1(Frozen):
    """The case is rejected for a reason from the closed set."""

    reason: RejectionReason
    basis: Literal["notice", "objection", "jury"]


class ClaimIncludedV1(Frozen):
    """The approved case is funded by this sharing period."""

    period: Id
    period_number: int = Field(ge=1)


class ClaimPaidV1(Frozen):
    """The custodian paid the aid: the approved (or pro-rata) amount less any postpaid arrears."""

    amount_fen: Fen = Field(gt=0)
    arrears_deducted_fen: Fen
    reference: Reference


# -- sharing period ------------------------------------------------------------------------------------------


class PeriodOpenedV1(Frozen):
    """A sharing period of a plan, with its cycle dates and the locking cutoff (00:00 on the notice day)."""

    plan: Id
    number: int = Field(ge=1)
    notice_on: IsoDate
    collection_on: IsoDate
    cutoff_at: Instant


class AssessedCase(Frozen):
    """One case funded by the period: its approved amount and what it is paid after caps."""

    claim: Id
    approved_fen: Fen
    funded_fen: Fen


class PeriodAssessedV1(Frozen):
    """The period's assessment, every term of the sharing formula (docs/design.md), and the roll's Merkle root."""

    plan: Id
    number: int = Field(ge=1)
    rules_version: int = Field(ge=1)
    cutoff_at: Instant
    locked_members: Count
    cases: tuple[AssessedCase, ...]
    aid_fen: Fen
    fee_bps: int = Field(ge=0, le=10_000)
    fee_fen: Fen
    surplus_in_fen: SignedFen
    need_fen: SignedFen
    uncapped_share_fen: Fen
    per_case_cap_fen: Fen
    annual_cap_remaining_fen: Fen
    cap_applied: Literal["none", "per_case", "annual"]
    share_fen: Fen
    excess_policy: Literal["operator_pays", "pro_rata"]
    subsidy_fen: Fen
    funded_aid_fen: Fen
    funded_fee_fen: Fen
    surplus_out_fen: SignedFen = Field(description="carried into the next period; negative only for a pro-rata deficit")
    roll_root: HashHex
    roll_size: Count


class PeriodAssessedV2(PeriodAssessedV1):
    """Schema 2 of the assessment: who funds the period, and money held only (docs/plans.md).

    `surplus_in_fen` is the sum of the surpluses carried by the plan's settlements since the previous assessment
    (never a promise of money not yet collected), so neither it nor `surplus_out_fen` is ever negative. When the
    operator funds the period (the final periods it announced it would pay, and tail periods after the plan's end)
    members are charged 0 and the subsidy covers aid and fee in full.
    """

    surplus_in_fen: Fen
    surplus_out_fen: Fen = Field(description="what the period holds beyond its funded aid and fee if every debit "
                                             "succeeds")
    funded_by: Literal["members", "operator"]
    payment_model: Literal["prepaid", "postpaid"] = Field(
        description="of the rules version assessed under: prepaid shares come from balances, postpaid ones from the "
                    "channel (a plan may switch)")


class PeriodAssessedV3(PeriodAssessedV2):
    """Schema 3 of the assessment: the annual cap is per member and members past the plan's top age are not locked
    (docs/plans.md, "Ageing out" and "The annual cap").

    The roll lists the members locked at the cutoff whose age — the age at joining plus the whole plan years since
    the plan day of joining (`ledger.ages`) — is at most `top_age_years`; those past it are `left_out`. Each leaf
    still carries the period's share.
    A member is charged `min(share, annual cap − what they were charged in the same plan year)`:
    `annual_cap_remaining_fen` is the per-member annual cap itself (what a member charged nothing this year could
    still pay), `members_capped` the members charged less than the share, and `charged_fen` the sum of the charges
    (what the shares raise if every debit succeeds, in place of share × locked).
    """

    top_age_years: int = Field(ge=0, le=150, description="the top of the plan's age bands at the cutoff")
    utc_offset_minutes: int = Field(ge=-720, le=840, description="the plan's civil time zone at the cutoff")
    plan_year: int = Field(ge=1970, le=9999, description="the plan-time calendar year of the cutoff")
    charged_fen: Fen = Field(description="the sum of the members' charges")
    members_capped: Count = Field(description="members charged less than the share by their annual cap")
    left_out: tuple[Id, ...] = Field(description="the members whose membership spans the cutoff but who are past "
                                                 "the top age, sorted: not in the roll (a sealed age is the writer's "
                                                 "to open, so the set is stated for every verifier)")


class UncoveredShare(Frozen):
    """What a prepaid account could not cover of its charges in a period when it was assessed."""

    account: Id = Field(description="the paying member (the account holder, who pays for their family)")
    amount_fen: Fen = Field(gt=0, description="the charges of the account holder and their family beyond the "
                                              "account's balance at the assessment")


class PeriodAssessedV4(PeriodAssessedV3):
    """Schema 4 of the assessment: what prepaid accounts could not cover, in sum, booked as owed by their holders
    (`member_receivables`, docs/projections.md) rather than taken from their balances.

    An account's uncovered amount is its family's charges in the period beyond its balance at the assessment
    (deposits less charges of earlier prepaid periods not failed, less balance refunded; what an account already owed
    does not cover anything); `uncovered_fen` is their sum (0 in a postpaid period). The accounts are listed by the
    `period.uncovered_listed` that follows in the same command: an assessment names the claims it funds, so it names
    no member whose claim it might be (docs/privacy.md).
    """

    uncovered_fen: Fen = Field(description="the sum of the uncovered amounts")


class UncoveredListedV1(Frozen):
    """The prepaid accounts a period's assessment left short, recorded by the same command right after it (only
    when `uncovered_fen` is positive): what each owes of its charges."""

    uncovered: tuple[UncoveredShare, ...] = Field(min_length=1, description="the prepaid accounts short at the "
                                                                            "assessment, sorted by account")
    uncovered_fen: Fen = Field(gt=0, description="the sum of the uncovered amounts (the assessment's)")


class SubsidyReceivedV1(Frozen):
    """The custodian received the operator's subsidy for what the caps cut off."""

    amount_fen: Fen = Field(gt=0)
    reference: Reference


class PeriodSettledV1(Frozen):
    """Collection closed: what was collected, what stayed unpaid after grace, and the surplus carried on."""

    collected_fen: Fen
    uncollected_fen: Fen
    surplus_carried_fen: SignedFen


class AdvanceReceivedV1(Frozen):
    """The custodian received an operator advance toward a period's shortfall (uncollected shares), so that its
    cases are paid in full from money held."""

    amount_fen: Fen = Field(gt=0)
    reference: Reference


class SettledCase(Frozen):
    """What one case of a settled period is paid: its funded amount, less its part of a shortfall."""

    claim: Id
    funded_fen: Fen
    payable_fen: Fen


class PeriodSettledV2(PeriodSettledV1):
    """Schema 2 of the settlement: the payouts sized from the money held (`ledger.sharing.settle`): collected,
    subsidy, surplus in and advances; aid before the fee; the surplus carried on is never negative."""

    surplus_carried_fen: Fen
    advance_fen: Fen
    available_fen: Fen
    owed_fen: Fen
    shortfall_fen: Fen
    cases: tuple[SettledCase, ...]
    fee_payable_fen: Fen


# -- disclosure ----------------------------------------------------------------------------------------------


class DisclosurePublishedV1(Frozen):
    """A settled period's public disclosure: the SHA-256 of its canonical document, which anyone can rebuild
    from the events and compare."""

    plan: Id
    period: Id
    number: int = Field(ge=1)
    document_hash: HashHex
    document_bytes: Count



class DisclosurePublishedV2(DisclosurePublishedV1):
    """Schema 2: the document's format, so that it is rebuilt in the format it was published in (v1 documents stay
    v1; `ledger.projections.cases`)."""

    format: Literal["mutual-ledger/disclosure/v1", "mutual-ledger/disclosure/v2"]


class ReportPublishedV1(Frozen):
    """A regulator's report over a date range: the SHA-256 of its canonical document, signed by the regulator."""

    since: IsoDate
    until: IsoDate
    document_hash: HashHex
    document_bytes: Count


EVENT_BODIES: dict[tuple[str, int], type[Frozen]] = {
    ("key.registered", 1): KeyRegisteredV1,
    ("key.registered", 2): KeyRegisteredV2,
    ("key.revoked", 1): KeyRevokedV1,
    ("plan.created", 1): PlanCreatedV1,
    ("plan.rules_amended", 1): PlanRulesAmendedV1,
    ("plan.closing_announced", 1): PlanClosingAnnouncedV1,
    ("plan.closing_announced", 2): PlanClosingAnnouncedV2,
    ("plan.terminated", 1): PlanTerminatedV1,
    ("plan.surplus_released", 1): SurplusReleasedV1,
    ("member.joined", 1): MemberJoinedV1,
    ("member.joined", 2): MemberJoinedV2,
    ("member.deposit_received", 1): DepositReceivedV1,
    ("member.debit_failed", 1): DebitFailedV1,
    ("member.debit_recovered", 1): DebitRecoveredV1,
    ("member.juror_qualified", 1): JurorQualifiedV1,
    ("member.juror_qualified", 2): JurorQualifiedV2,
    ("member.fraud_recorded", 1): FraudRecordedV1,
    ("member.fraud_recorded", 2): FraudRecordedV2,
    ("member.lapsed", 1): MemberLapsedV1,
    ("member.lapsed", 2): MemberLapsedV2,
    ("member.exited", 1): MemberExitedV1,
    ("member.excluded", 1): MemberExcludedV1,
    ("member.excluded", 2): MemberExcludedV2,
    ("member.erased", 1): MemberErasedV1,
    ("member.wind_down_refund_due", 1): WindDownRefundDueV1,
    ("member.aged_out", 1): MemberAgedOutV1,
    ("member.refund_disbursed", 1): RefundDisbursedV1,
    ("member.refund_disbursed", 2): RefundDisbursedV2,
    ("member.conversion_accepted", 1): ConversionAcceptedV1,
    ("claim.filed", 1): ClaimFiledV1,
    ("claim.filed", 2): ClaimFiledV2,
    ("claim.investigated", 1): ClaimInvestigatedV1,
    ("claim.noticed", 1): ClaimNoticedV1,
    ("claim.objection_filed", 1): ObjectionFiledV1,
    ("claim.objection_resolved", 1): ObjectionResolvedV1,
    ("claim.jury_requested", 1): JuryRequestedV1,
    ("claim.jury_requested", 2): JuryRequestedV2,
    ("claim.vote_cast", 1): VoteCastV1,
    ("claim.jury_decided", 1): JuryDecidedV1,
    ("claim.approved", 1): ClaimApprovedV1,
    ("claim.rejected", 1): ClaimRejectedV1,
    ("claim.included", 1): ClaimIncludedV1,
    ("claim.paid", 1): ClaimPaidV1,
    ("period.opened", 1): PeriodOpenedV1,
    ("period.assessed", 1): PeriodAssessedV1,
    ("period.assessed", 2): PeriodAssessedV2,
    ("period.assessed", 3): PeriodAssessedV3,
    ("period.assessed", 4): PeriodAssessedV4,
    ("period.subsidy_received", 1): SubsidyReceivedV1,
    ("period.settled", 1): PeriodSettledV1,
    ("period.settled", 2): PeriodSettledV2,
    ("period.advance_received", 1): AdvanceReceivedV1,
    ("period.uncovered_listed", 1): UncoveredListedV1,
    ("disclosure.published", 1): DisclosurePublishedV1,
    ("disclosure.published", 2): DisclosurePublishedV2,
    ("report.published", 1): ReportPublishedV1,
}
"""Every event body model by `(type, schema)`. The JSON Schema files in `schemas/json/` are exported from here."""

CUSTODIAN_TYPES = frozenset(
    {"member.deposit_received", "member.refund_disbursed", "claim.paid", "period.subsidy_received",
     "period.advance_received", "plan.surplus_released"}
)
"""Fund movements the custodian executed: only a custodian key may sign them."""

REGULATOR_TYPES = frozenset({"report.published"})
"""Events only a regulator's key may sign."""

JUROR_TYPES = frozenset({"claim.vote_cast"})
"""Events only a juror's own key may sign."""

INVESTIGATOR_TYPES = frozenset({"claim.investigated"})
"""Events only the investigation firm's key may sign."""

MEMBER_REQUEST_TYPES = frozenset(
    {"member.joined", "member.exited", "claim.filed", "claim.objection_filed", "claim.jury_requested",
     "member.conversion_accepted"}
)
"""A member's own requests: signed by the member's key, or by an operator key on behalf of the member."""
