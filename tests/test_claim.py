"""The claim lifecycle and its rules, on both backends: each rule broken once, with nothing written."""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID, uuid4

import pytest

from ledger.aggregates.claim import Claim
from ledger.aggregates.membership import Membership
from ledger.aggregates.sharing_period import SharingPeriod, plan_midnight
from ledger.application import member_key_name
from ledger.bootstrap import Ledger
from ledger.envelope import format_at
from ledger.errors import BatchError, DomainRuleError, KeyDirectoryError
from ledger.service import member_key
from ledger.store import decode_entry
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
from schemas.commands.membership import Exit, QualifyJuror, RecordDebitFailure, RecordFraud
from schemas.commands.period import AssessPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod
from schemas.commands.plan import AmendRules, AnnounceClosing, TerminatePlan
from schemas.events import AidBand
from sim.fixtures import commitment, rules
from tests.support import advance, cid, clock_of, create_plan, join, rejected, sealed_values


def today(app: Ledger, days: int = 0) -> str:
    """The simulated date, shifted."""
    return (clock_of(app).current.date() + timedelta(days=days)).isoformat()


def file(app: Ledger, member: str, diagnosed_on: str, age: int = 30,
         category: str = "illness", condition: str | None = None) -> str:
    condition = condition or ("traffic_injury" if category == "accident" else "breast_cancer")
    return str(app.execute(FileClaim(
        command_id=cid(), member=member, category=category, condition=condition,  # type: ignore[arg-type]
        diagnosed_on=diagnosed_on, age_at_diagnosis=age, evidence_commitment=commitment("evidence")))["claim"])


def investigate(app: Ledger, claim: str, amount: int = 30_000_000, reason: str | None = None) -> None:
    app.execute(InvestigateClaim(
        command_id=cid(), claim=claim, report_commitment=commitment("report"),
        opinion="reject" if reason else "approve", recommended_amount_fen=0 if reason else amount,
        reason=reason))  # type: ignore[arg-type]


def read(app: Ledger, claim: str) -> Claim:
    found = app.read(UUID(claim), Claim)
    assert found is not None
    return found


@pytest.fixture
def plan(ledger_app: Ledger) -> str:
    return create_plan(ledger_app, rules(jury_quorum=3, notice_days=3))


def test_claim_approved_on_notice(ledger_app: Ledger, plan: str) -> None:
    member = join(ledger_app, plan, age=34)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -3), age=34)
    investigate(ledger_app, claim)
    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    rejected(ledger_app, lambda: ledger_app.execute(DecideClaim(command_id=cid(), claim=claim)),
             "claim", "decision_only_after_the_notice_ends")
    advance(ledger_app, days=3)
    result = ledger_app.execute(DecideClaim(command_id=cid(), claim=claim))
    assert (result["decision"], result["amount_fen"]) == ("approved", 30_000_000)
    entries = [decode_entry(e) for _, e in ledger_app.entries()]
    steps = [(e.type, e.actor.role) for e in entries if e.stream == claim]
    assert steps == [("claim.filed", "operator"), ("claim.investigated", "investigator"),
                     ("claim.noticed", "operator"), ("claim.approved", "operator")]


def test_filing_rules(ledger_app: Ledger, plan: str) -> None:
    member = join(ledger_app, plan, age=34)
    advance(ledger_app, days=30)
    rejected(ledger_app, lambda: file(ledger_app, member, today(ledger_app, -1), age=34),
             "diagnosed_on", "illness_in_the_waiting_period_is_not_covered")
    accident = file(ledger_app, member, today(ledger_app, -1), age=34, category="accident")
    assert read(ledger_app, accident).details.category == "accident"
    rejected(ledger_app, lambda: file(ledger_app, member, today(ledger_app, -1), age=34, category="accident"),
             "member", "member_has_an_open_claim")
    other, batched = join(ledger_app, plan, age=50), join(ledger_app, plan)
    advance(ledger_app, days=300)
    twice = [FileClaim(command_id=cid(), member=batched, category="illness", condition="breast_cancer",
                       diagnosed_on=today(ledger_app, -1), age_at_diagnosis=30, evidence_commitment=commitment())
             for _ in range(2)]
    before = ledger_app.app.recorder.max_notification_id()
    assert before is not None
    with pytest.raises(BatchError) as caught:
        ledger_app.execute_many(twice)
    error = caught.value.error
    assert isinstance(error, DomainRuleError) and (error.field, error.rule) == ("member", "member_has_an_open_claim")
    assert ledger_app.app.recorder.max_notification_id() == before + 1  # the first filing only
    rejected(ledger_app, lambda: file(ledger_app, other, today(ledger_app, -181), age=50),
             "diagnosed_on", "claim_must_be_filed_within_the_claim_window")
    rejected(ledger_app, lambda: file(ledger_app, other, today(ledger_app, 1), age=50),
             "diagnosed_on", "diagnosis_must_not_be_in_the_future")
    rejected(ledger_app, lambda: file(ledger_app, other, today(ledger_app, -1), age=45),
             "age_at_diagnosis", "age_at_diagnosis_must_match_the_age_at_joining")
    rejected(ledger_app, lambda: file(ledger_app, other, "2025-12-01", age=50),
             "diagnosed_on", "diagnosis_must_not_precede_joining")


def test_investigation_never_recommends_above_the_age_band_maximum(ledger_app: Ledger,
                                                                    plan: str) -> None:
    member = join(ledger_app, plan, age=45)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1), age=45)
    rejected(ledger_app, lambda: investigate(ledger_app, claim, amount=10_000_001), "recommended_amount_fen",
             "amount_must_not_exceed_the_plan_maximum_for_the_age_at_diagnosis")
    rejected(ledger_app, lambda: ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim)),
             "claim", "claim_must_be_investigated_before_notice")
    investigate(ledger_app, claim, amount=10_000_000)
    rejected(ledger_app, lambda: investigate(ledger_app, claim, amount=1), "claim",
             "claim_is_investigated_once_after_filing")


def test_an_investigation_signed_by_the_operator_is_refused(ledger_app: Ledger, plan: str) -> None:
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    rejected(ledger_app, lambda: ledger_app.execute(InvestigateClaim(
        command_id=cid(), claim=claim, report_commitment=commitment(), opinion="approve",
        recommended_amount_fen=100), sign_as="operator"),
        "signer", "investigations_must_be_signed_by_an_investigator_key")


def test_an_upheld_objection_rejects_the_case(ledger_app: Ledger, plan: str) -> None:
    member, objector = join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    investigate(ledger_app, claim)
    rejected(ledger_app, lambda: ledger_app.execute(FileObjection(
        command_id=cid(), claim=claim, objector=objector, evidence_commitment=commitment())),
        "claim", "claim_must_be_on_notice")
    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    rejected(ledger_app, lambda: ledger_app.execute(FileObjection(
        command_id=cid(), claim=claim, objector=member, evidence_commitment=commitment())),
        "objector", "claimant_cannot_object_to_own_claim")
    result = ledger_app.execute(FileObjection(command_id=cid(), claim=claim, objector=objector,
                                              evidence_commitment=commitment()))
    rejected(ledger_app, lambda: ledger_app.execute(FileObjection(
        command_id=cid(), claim=claim, objector=objector, evidence_commitment=commitment())),
        "objector", "one_objection_per_member")
    advance(ledger_app, days=3)
    rejected(ledger_app, lambda: ledger_app.execute(DecideClaim(command_id=cid(), claim=claim)),
             "claim", "objections_must_be_resolved_first")
    ledger_app.execute(ResolveObjection(command_id=cid(), claim=claim, objection=result["objection"], upheld=True,
                                        review_commitment=commitment()))
    decision = ledger_app.execute(DecideClaim(command_id=cid(), claim=claim))
    assert decision["decision"] == "rejected"
    assert read(ledger_app, claim).rejection is not None
    assert read(ledger_app, claim).rejection.reason == "objection_upheld"  # type: ignore[union-attr]


def jurors(app: Ledger, plan: str, count: int) -> list[str]:
    """Members who passed the exam and hold their own juror keys."""
    chosen = [join(app, plan, age=40) for _ in range(count)]
    for member in chosen:
        app.execute(QualifyJuror(command_id=cid(), member=member, age_years=40, exam_commitment=commitment()))
        member_key(app, member, role="juror")
    return chosen


def vote(app: Ledger, claim: str, juror: str, support: bool) -> None:
    app.execute(CastVote(command_id=cid(), claim=claim, juror=juror, support=support))


def test_a_jury_overturns_a_preliminary_rejection(ledger_app: Ledger, plan: str) -> None:
    panel = jurors(ledger_app, plan, 4)
    member, newcomer = join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    investigate(ledger_app, claim, reason="insufficient_evidence")
    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    rejected(ledger_app, lambda: vote(ledger_app, claim, panel[0], True), "claim", "votes_need_a_jury_request")
    ledger_app.execute(RequestJury(command_id=cid(), claim=claim))
    rejected(ledger_app, lambda: ledger_app.execute(RequestJury(command_id=cid(), claim=claim)),
             "claim", "jury_is_requested_once")
    ledger_app.execute(QualifyJuror(command_id=cid(), member=newcomer, age_years=40, exam_commitment=commitment()))
    before = ledger_app.app.recorder.max_notification_id()
    with pytest.raises(KeyDirectoryError):
        vote(ledger_app, claim, newcomer, True)
    assert ledger_app.app.recorder.max_notification_id() == before
    vote(ledger_app, claim, panel[0], True)
    rejected(ledger_app, lambda: vote(ledger_app, claim, panel[0], True), "juror", "one_vote_per_juror")
    vote(ledger_app, claim, panel[1], True)
    vote(ledger_app, claim, panel[2], False)
    vote(ledger_app, claim, panel[3], True)
    advance(ledger_app, days=3)
    decision = ledger_app.execute(DecideClaim(command_id=cid(), claim=claim))
    assert (decision["decision"], decision["amount_fen"]) == ("approved", 30_000_000)
    votes = [decode_entry(e) for _, e in ledger_app.entries() if b'"claim.vote_cast"' in e]
    assert {v.actor.role for v in votes} == {"juror"}
    decided = next(decode_entry(e) for _, e in ledger_app.entries() if b'"claim.jury_decided"' in e)
    assert decided.body == {"votes": 4, "support": 3, "quorum": 3, "threshold_bps": 5000, "verdict": "approve"}


def test_juror_eligibility(ledger_app: Ledger, plan: str) -> None:
    panel = jurors(ledger_app, plan, 3)
    minor = join(ledger_app, plan, age=16)  # the exam states 18; the membership proves at most 16
    ledger_app.execute(QualifyJuror(command_id=cid(), member=minor, age_years=18, exam_commitment=commitment()))
    member_key(ledger_app, minor, role="juror")
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    investigate(ledger_app, claim, reason="condition_not_covered")
    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    ledger_app.execute(RequestJury(command_id=cid(), claim=claim))
    fresh = jurors(ledger_app, plan, 1)[0]
    rejected(ledger_app, lambda: vote(ledger_app, claim, fresh, True), "juror",
             "juror_must_be_a_member_for_the_minimum_days")
    ledger_app.execute(RecordFraud(command_id=cid(), member=panel[0], finding_commitment=commitment()))
    rejected(ledger_app, lambda: vote(ledger_app, claim, panel[0], True), "juror", "juror_must_have_no_fraud_record")
    rejected(ledger_app, lambda: vote(ledger_app, claim, minor, True), "juror", "juror_must_be_of_age")
    unqualified = join(ledger_app, plan)
    member_key(ledger_app, unqualified, role="juror")
    rejected(ledger_app, lambda: vote(ledger_app, claim, unqualified, True), "juror",
             "juror_must_pass_the_qualification_exam")
    claimant_key = member_key(ledger_app, member, role="juror")
    assert claimant_key.member == member
    rejected(ledger_app, lambda: vote(ledger_app, claim, member, True), "juror", "claimant_cannot_vote_on_own_claim")
    rejected(ledger_app, lambda: ledger_app.execute(CastVote(command_id=cid(), claim=claim, juror=panel[1],
                                                             support=True), sign_as="operator"),
             "signer", "votes_must_be_signed_by_the_jurors_own_key")


def test_without_quorum_the_preliminary_opinion_stands(ledger_app: Ledger, plan: str) -> None:
    panel = jurors(ledger_app, plan, 2)
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    investigate(ledger_app, claim, reason="undeclared_pre_existing_condition")
    ledger_app.execute(NoticeClaim(command_id=cid(), claim=claim))
    ledger_app.execute(RequestJury(command_id=cid(), claim=claim))
    for juror in panel:
        vote(ledger_app, claim, juror, True)
    advance(ledger_app, days=3)
    assert ledger_app.execute(DecideClaim(command_id=cid(), claim=claim))["decision"] == "rejected"
    rejection = read(ledger_app, claim).rejection
    assert rejection is not None
    assert (rejection.reason, rejection.basis) == ("undeclared_pre_existing_condition", "notice")


def notice(app: Ledger, claim: str) -> None:
    app.execute(NoticeClaim(command_id=cid(), claim=claim))


def decide(app: Ledger, claim: str) -> dict[str, object]:
    return dict(app.execute(DecideClaim(command_id=cid(), claim=claim)))


def test_a_claim_needs_coverage_on_the_diagnosis_date(ledger_app: Ledger, plan: str) -> None:
    member, stays = join(ledger_app, plan), join(ledger_app, plan, age=59)
    advance(ledger_app, days=100)
    ledger_app.execute(Exit(command_id=cid(), member=member))
    advance(ledger_app, days=2)
    rejected(ledger_app, lambda: file(ledger_app, member, today(ledger_app, -1)),
             "member", "member_must_be_covered_on_the_diagnosis_date")
    rejected(ledger_app, lambda: file(ledger_app, str(uuid4()), today(ledger_app, -1)),
             "member", "membership_must_exist")
    claim = file(ledger_app, member, today(ledger_app, -3))  # diagnosed the day before leaving
    assert sealed_values(ledger_app, claim)["member"] == member
    advance(ledger_app, days=300)  # joined at 59, now 60: no aid band covers that age
    rejected(ledger_app, lambda: file(ledger_app, stays, today(ledger_app, -1), age=60),
             "age_at_diagnosis", "age_at_diagnosis_must_be_covered")


def test_the_rules_version_in_force_at_diagnosis_sets_the_maximum(ledger_app: Ledger,
                                                                  plan: str) -> None:
    member = join(ledger_app, plan, age=30)
    advance(ledger_app, days=100)
    lower = rules(jury_quorum=3, notice_days=3, aid_bands=(AidBand(up_to_age_years=59, max_aid_fen=5_000_000),))
    ledger_app.execute(AmendRules(command_id=cid(), plan=plan,
                                  effective_from=format_at(clock_of(ledger_app).current + timedelta(days=1)),
                                  rules=lower))
    advance(ledger_app, days=2)
    before = file(ledger_app, member, today(ledger_app, -3))
    assert read(ledger_app, before).details.rules_version == 1
    investigate(ledger_app, before, amount=30_000_000)
    other = join(ledger_app, plan, age=30)
    advance(ledger_app, days=100)
    after = file(ledger_app, other, today(ledger_app, -1))
    assert read(ledger_app, after).details.rules_version == 2
    rejected(ledger_app, lambda: investigate(ledger_app, after, amount=5_000_001), "recommended_amount_fen",
             "amount_must_not_exceed_the_plan_maximum_for_the_age_at_diagnosis")


def test_claims_after_the_plan_ends_only_for_earlier_diagnoses_within_the_tail(ledger_app: Ledger,
                                                                               plan: str) -> None:
    member, other, last_day = join(ledger_app, plan), join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    ends = clock_of(ledger_app).current + timedelta(days=5)  # 08:00 in the plan's time zone
    ledger_app.execute(AnnounceClosing(command_id=cid(), plan=plan, ends_at=format_at(ends),
                                       refund_deadline=format_at(ends + timedelta(days=5)), claim_tail_days=60))
    advance(ledger_app, days=6)
    ledger_app.execute(TerminatePlan(command_id=cid(), plan=plan))
    rejected(ledger_app, lambda: file(ledger_app, member, today(ledger_app)),
             "diagnosed_on", "diagnosis_must_precede_the_plan_end")
    on_the_end_day = file(ledger_app, last_day, ends.date().isoformat())
    assert sealed_values(ledger_app, on_the_end_day)["diagnosed_on"] == ends.date().isoformat()
    advance(ledger_app, days=30)
    claim = file(ledger_app, member, today(ledger_app, -40))
    assert read(ledger_app, claim).status == "filed"
    rejected(ledger_app, lambda: file(ledger_app, other, today(ledger_app, -61)),
             "diagnosed_on", "claim_must_be_filed_within_the_claim_window")


def test_investigation_rules(ledger_app: Ledger, plan: str) -> None:
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    rejected(ledger_app, lambda: investigate(ledger_app, claim, amount=0), "recommended_amount_fen",
             "an_approval_recommends_a_positive_amount")
    for reason in ("jury_rejected", "objection_upheld"):
        rejected(ledger_app, lambda: investigate(ledger_app, claim, reason=reason), "reason",  # noqa: B023
                 "investigation_reason_must_be_a_preliminary_reason")
    rejected(ledger_app, lambda: investigate(ledger_app, str(uuid4())), "claim", "claim_must_exist")
    rejected(ledger_app, lambda: decide(ledger_app, claim), "claim", "claim_must_be_on_notice")
    investigate(ledger_app, claim, reason="fraud")
    notice(ledger_app, claim)
    rejected(ledger_app, lambda: notice(ledger_app, claim), "claim", "claim_must_be_investigated_before_notice")


def test_objection_rules(ledger_app: Ledger, plan: str) -> None:
    member, objector, leaver = join(ledger_app, plan), join(ledger_app, plan), join(ledger_app, plan)
    outsider = join(ledger_app, create_plan(ledger_app, rules(), name="Other plan"))
    advance(ledger_app, days=100)
    ledger_app.execute(Exit(command_id=cid(), member=leaver))
    claim = file(ledger_app, member, today(ledger_app, -1))
    investigate(ledger_app, claim)
    notice(ledger_app, claim)

    def object_by(who: str) -> dict[str, object]:
        return dict(ledger_app.execute(FileObjection(command_id=cid(), claim=claim, objector=who,
                                                     evidence_commitment=commitment("objection"))))

    rejected(ledger_app, lambda: object_by(outsider), "objector", "objector_must_be_in_the_claims_plan")
    member_key(ledger_app, member)
    rejected(ledger_app, lambda: ledger_app.execute(FileObjection(
        command_id=cid(), claim=claim, objector=objector, evidence_commitment=commitment("objection")),
        sign_as=member_key_name("member", member)),
        "signer", "member_requests_must_be_signed_by_the_member_or_the_operator_on_their_behalf")
    rejected(ledger_app, lambda: object_by(leaver), "objector", "member_must_be_active")
    number = object_by(objector)["objection"]
    assert number == 1

    def resolve(objection: int, upheld: bool) -> None:
        ledger_app.execute(ResolveObjection(command_id=cid(), claim=claim, objection=objection, upheld=upheld,
                                            review_commitment=commitment("review")))

    rejected(ledger_app, lambda: resolve(2, True), "objection", "objection_must_exist")
    resolve(1, False)
    rejected(ledger_app, lambda: resolve(1, True), "objection", "objection_is_resolved_once")
    advance(ledger_app, days=3)
    late = join(ledger_app, plan)
    rejected(ledger_app, lambda: object_by(late), "objector", "only_during_the_public_notice")
    result = decide(ledger_app, claim)
    assert (result["decision"], result["amount_fen"]) == ("approved", 30_000_000)
    rejected(ledger_app, lambda: decide(ledger_app, claim), "claim", "claim_must_be_on_notice")
    found = read(ledger_app, claim)
    assert (found.status, found.approved_fen) == ("approved", 30_000_000)


def test_jury_request_rules(ledger_app: Ledger, plan: str) -> None:
    member, approved_member = join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))

    def request(target: str) -> object:
        return ledger_app.execute(RequestJury(command_id=cid(), claim=target))

    rejected(ledger_app, lambda: request(claim), "claim", "claim_must_be_on_notice")
    investigate(ledger_app, claim, reason="insufficient_evidence")
    notice(ledger_app, claim)
    approved = file(ledger_app, approved_member, today(ledger_app, -1))
    investigate(ledger_app, approved)
    notice(ledger_app, approved)
    rejected(ledger_app, lambda: request(approved), "claim", "jury_only_against_a_rejection")
    loaded, now = read(ledger_app, claim), clock_of(ledger_app).current
    loaded.unsealed = sealed_values(ledger_app, claim)  # as the unit of work opens them from the vault
    rejected(ledger_app, lambda: loaded.request_jury(now, ledger_app.app.actor_for("member", approved_member),
                                                     approved_member),
             "requested_by", "only_the_claimant_may_request_a_jury")
    advance(ledger_app, days=3)
    rejected(ledger_app, lambda: request(claim), "claim", "only_during_the_public_notice")
    result = decide(ledger_app, claim)
    assert result["decision"] == "rejected"
    rejection = read(ledger_app, claim).rejection
    assert rejection is not None
    assert (rejection.reason, rejection.basis) == ("insufficient_evidence", "notice")


def test_a_jury_rejects_and_votes_close_with_the_notice(ledger_app: Ledger, plan: str) -> None:
    panel = jurors(ledger_app, plan, 5)
    elsewhere = jurors(ledger_app, create_plan(ledger_app, rules(), name="Other plan"), 1)[0]
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    ledger_app.execute(Exit(command_id=cid(), member=panel[4]))
    claim = file(ledger_app, member, today(ledger_app, -1))
    investigate(ledger_app, claim, reason="condition_not_covered")
    rejected(ledger_app, lambda: vote(ledger_app, claim, panel[0], True), "claim", "votes_need_a_jury_request")
    notice(ledger_app, claim)
    ledger_app.execute(RequestJury(command_id=cid(), claim=claim))
    rejected(ledger_app, lambda: vote(ledger_app, claim, elsewhere, True), "juror", "juror_must_be_in_the_claims_plan")
    rejected(ledger_app, lambda: vote(ledger_app, claim, panel[4], True), "juror", "juror_must_be_an_active_member")
    vote(ledger_app, claim, panel[0], True)
    vote(ledger_app, claim, panel[1], False)
    vote(ledger_app, claim, panel[2], False)
    advance(ledger_app, days=3)
    rejected(ledger_app, lambda: vote(ledger_app, claim, panel[3], True), "juror", "only_during_the_public_notice")
    assert decide(ledger_app, claim)["decision"] == "rejected"
    rejection = read(ledger_app, claim).rejection
    assert rejection is not None
    assert (rejection.reason, rejection.basis) == ("jury_rejected", "jury")
    decided = next(decode_entry(e) for _, e in ledger_app.entries() if b'"claim.jury_decided"' in e)
    assert decided.body == {"votes": 3, "support": 1, "quorum": 3, "threshold_bps": 5000, "verdict": "reject"}


def test_a_tie_is_not_a_majority(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, rules(jury_quorum=2, notice_days=3))
    panel = jurors(ledger_app, plan, 2)
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    investigate(ledger_app, claim, reason="insufficient_evidence")
    notice(ledger_app, claim)
    ledger_app.execute(RequestJury(command_id=cid(), claim=claim))
    vote(ledger_app, claim, panel[0], True)
    vote(ledger_app, claim, panel[1], False)
    advance(ledger_app, days=3)
    assert decide(ledger_app, claim)["decision"] == "rejected"


def test_only_an_approved_claim_is_included_once(ledger_app: Ledger, plan: str) -> None:
    member, refused = join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim, other = file(ledger_app, member, today(ledger_app, -1)), file(ledger_app, refused, today(ledger_app, -1))
    investigate(ledger_app, claim)
    investigate(ledger_app, other, reason="fraud")
    notice(ledger_app, claim)
    notice(ledger_app, other)
    advance(ledger_app, days=3)
    decide(ledger_app, claim)
    decide(ledger_app, other)
    rejected(ledger_app, lambda: ledger_app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-0")),
             "claim", "claim_must_be_included_in_an_assessed_period")
    actor = ledger_app.app.actor_for("operator")
    now = clock_of(ledger_app).current
    period = str(uuid4())
    loaded = read(ledger_app, other)
    rejected(ledger_app, lambda: loaded.include(now, actor, period, 1), "claim",
             "only_an_approved_claim_is_included_once")
    approved = read(ledger_app, claim)
    approved.include(now, actor, period, 1)
    assert (approved.status, approved.period, approved.approved_fen) == ("included", period, 30_000_000)
    rejected(ledger_app, lambda: approved.include(now, actor, period, 2), "claim",
             "only_an_approved_claim_is_included_once")
    custodian = ledger_app.app.actor_for("custodian")
    rejected(ledger_app, lambda: approved.pay(now, custodian, 30_000_001, 0, 30_000_000, "aid-1"), "claim",
             "payout_must_not_exceed_the_plan_maximum")
    rejected(ledger_app, lambda: approved.pay(now, custodian, 100, 100, 30_000_000, "aid-1"), "claim",
             "nothing_left_to_pay_after_arrears")
    assert approved.pay(now, custodian, 30_000_000, 25, 30_000_000, "aid-1") == 30_000_000 - 25
    assert approved.paid is not None and approved.paid.arrears_deducted_fen == 25
    rejected(ledger_app, lambda: approved.pay(now, custodian, 1, 0, 30_000_000, "aid-2"), "claim",
             "claim_is_paid_at_most_once")


def at_local(app: Ledger, day: str, hours: int = 0) -> None:
    """Move the clock to a plan-time day (China) plus hours."""
    clock_of(app).set(plan_midnight(date.fromisoformat(day), rules()) + timedelta(hours=hours))


def approved_claim(app: Ledger, member: str) -> str:
    """A claim filed, investigated, noticed and approved on notice (the clock moves 3 days)."""
    claim = file(app, member, today(app, -1))
    investigate(app, claim)
    notice(app, claim)
    advance(app, days=3)
    assert decide(app, claim)["decision"] == "approved"
    return claim


def test_payout_less_arrears_at_most_once(ledger_app: Ledger, plan: str) -> None:
    app = ledger_app
    claimant, *others = [join(app, plan) for _ in range(5)]
    advance(app, days=100)  # 2026-04-11
    claim = approved_claim(app, claimant)
    opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))
    rejected(app, lambda: app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1")), "claim",
             "claim_must_be_included_in_an_assessed_period")
    at_local(app, str(opened["notice_on"]), 1)
    app.execute(AssessPeriod(command_id=cid(), period=str(opened["period"])))
    found = read(app, claim)
    assert (found.status, found.period, found.period_number) == ("included", str(opened["period"]), 1)
    rejected(app, lambda: app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1")), "claim",
             "claim_is_paid_after_its_period_settles")
    stored = app.read(UUID(str(opened["period"])), SharingPeriod)
    assert stored is not None
    subsidy = stored.require_assessment().subsidy_fen
    app.execute(ReceiveSubsidy(command_id=cid(), period=str(opened["period"]), amount_fen=subsidy, reference="op"))
    approved_claim(app, others[0])  # period 2 has a case of its own, so its share is not 0
    second = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=2))
    at_local(app, str(second["notice_on"]), 1)
    app.execute(AssessPeriod(command_id=cid(), period=str(second["period"])))
    at_local(app, "2026-05-12", 1)  # period 1's grace is over: it settles
    app.execute(SettlePeriod(command_id=cid(), period=str(opened["period"])))
    at_local(app, str(second["collection_on"]), 9)  # the claimant's share of period 2 fails: arrears in grace
    failed = app.execute(RecordDebitFailure(command_id=cid(), member=claimant, period=str(second["period"])))
    rejected(app, lambda: app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"),
                                      sign_as="operator"),
             "signer", "fund_movements_must_be_signed_by_a_custodian_key")
    paid = app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-1"))
    assert failed["amount_fen"] == 10
    assert (paid["amount_fen"], paid["arrears_deducted_fen"]) == (30_000_000 - 10, 10)
    membership = app.read(UUID(claimant), Membership)
    assert membership is not None and membership.arrears_fen() == 0
    payout = next(decode_entry(e) for _, e in app.entries() if b'"claim.paid"' in e)
    assert (payout.actor.role, payout.body["amount_fen"]) == ("custodian", 30_000_000 - 10)
    rejected(app, lambda: app.execute(PayClaim(command_id=cid(), claim=claim, reference="aid-2")), "claim",
             "claim_is_paid_at_most_once")
    assert others


def test_a_juror_in_arrears_cannot_vote(ledger_app: Ledger, plan: str) -> None:
    app = ledger_app
    panel = jurors(app, plan, 3)
    first, member = join(app, plan), join(app, plan)
    advance(app, days=100)
    approved_claim(app, first)
    opened = app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))
    at_local(app, str(opened["notice_on"]), 1)
    app.execute(AssessPeriod(command_id=cid(), period=str(opened["period"])))
    at_local(app, str(opened["collection_on"]), 9)
    app.execute(RecordDebitFailure(command_id=cid(), member=panel[0], period=str(opened["period"])))
    claim = file(app, member, today(app, -1))
    investigate(app, claim, reason="insufficient_evidence")
    notice(app, claim)
    app.execute(RequestJury(command_id=cid(), claim=claim))
    rejected(app, lambda: vote(app, claim, panel[0], True), "juror", "juror_must_be_a_paying_member")
    vote(app, claim, panel[1], True)


def test_a_jury_can_overturn_an_upheld_objection(ledger_app: Ledger, plan: str) -> None:
    panel = jurors(ledger_app, plan, 3)
    member, objector, second = join(ledger_app, plan), join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    claims = [file(ledger_app, member, today(ledger_app, -1)), file(ledger_app, second, today(ledger_app, -1))]
    for claim in claims:
        investigate(ledger_app, claim, amount=20_000_000)
        notice(ledger_app, claim)
        objection = ledger_app.execute(FileObjection(command_id=cid(), claim=claim, objector=objector,
                                                     evidence_commitment=commitment("objection")))["objection"]
        rejected(ledger_app, lambda: ledger_app.execute(RequestJury(command_id=cid(), claim=claim)),  # noqa: B023
                 "claim", "jury_only_against_a_rejection")
        ledger_app.execute(ResolveObjection(command_id=cid(), claim=claim, objection=objection, upheld=True,
                                            review_commitment=commitment("review")))
        ledger_app.execute(RequestJury(command_id=cid(), claim=claim))
    for juror in panel:
        vote(ledger_app, claims[0], juror, True)
    vote(ledger_app, claims[1], panel[0], True)
    advance(ledger_app, days=3)
    result = decide(ledger_app, claims[0])
    assert (result["decision"], result["amount_fen"]) == ("approved", 20_000_000)  # the recommended amount
    approval = next(decode_entry(e) for _, e in ledger_app.entries() if b'"claim.approved"' in e)
    assert approval.body == {"amount_fen": 20_000_000, "max_aid_fen": 30_000_000, "basis": "jury"}
    assert decide(ledger_app, claims[1])["decision"] == "rejected"  # no quorum: the upheld objection stands
    rejection = read(ledger_app, claims[1]).rejection
    assert rejection is not None
    assert (rejection.reason, rejection.basis) == ("objection_upheld", "objection")


def test_a_condition_must_fit_the_category_and_the_members_sex(ledger_app: Ledger, plan: str) -> None:
    """Finding 10: a cancer filed as an accident would skip the waiting period; a man cannot claim for cervical
    cancer. Both are refused at filing, naming the condition."""
    man = join(ledger_app, plan, sex="m")
    woman = join(ledger_app, plan, sex="f")
    advance(ledger_app, days=100)
    rejected(ledger_app, lambda: file(ledger_app, man, today(ledger_app, -1), category="accident",
                                      condition="lung_cancer"), "condition", "condition_must_fit_the_category")
    rejected(ledger_app, lambda: file(ledger_app, man, today(ledger_app, -1), condition="traffic_injury"),
             "condition", "condition_must_fit_the_category")
    rejected(ledger_app, lambda: file(ledger_app, man, today(ledger_app, -1), condition="cervical_cancer"),
             "condition", "condition_must_fit_the_members_sex")
    assert file(ledger_app, woman, today(ledger_app, -1), condition="cervical_cancer")


def test_diagnosis_dates_are_plan_dates(ledger_app: Ledger, plan: str) -> None:
    member, other = join(ledger_app, plan), join(ledger_app, plan)
    advance(ledger_app, days=100)
    at_local(ledger_app, "2026-04-12", 1)  # 01:00 in China is still the 11th in UTC
    claim = file(ledger_app, member, "2026-04-12")
    assert sealed_values(ledger_app, claim)["diagnosed_on"] == "2026-04-12"
    rejected(ledger_app, lambda: file(ledger_app, other, "2026-04-13"),
             "diagnosed_on", "diagnosis_must_not_be_in_the_future")

