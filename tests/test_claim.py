"""The claim lifecycle and its rules, on both backends: each rule broken once, with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.aggregates.claim import Claim
from ledger.application import LedgerApplication, SigningKeyMissingError
from ledger.store import decode_entry
from schemas.commands.claim import (
    CastVote,
    DecideClaim,
    FileClaim,
    FileObjection,
    InvestigateClaim,
    NoticeClaim,
    RequestJury,
    ResolveObjection,
)
from schemas.commands.membership import QualifyJuror, RecordFraud
from tests.support import advance, cid, clock_of, commitment, create_plan, join, member_key, rejected, rules


def today(app: LedgerApplication, days: int = 0) -> str:
    """The simulated date, shifted."""
    return (clock_of(app).current.date() + timedelta(days=days)).isoformat()


def file(app: LedgerApplication, member: str, diagnosed_on: str, age: int = 30,
         category: str = "illness") -> str:
    return str(app.execute(FileClaim(
        command_id=cid(), member=member, category=category, condition="breast_cancer",  # type: ignore[arg-type]
        diagnosed_on=diagnosed_on, age_at_diagnosis=age, evidence_commitment=commitment("evidence")))["claim"])


def investigate(app: LedgerApplication, claim: str, amount: int = 30_000_000, reason: str | None = None) -> None:
    app.execute(InvestigateClaim(
        command_id=cid(), claim=claim, report_commitment=commitment("report"),
        opinion="reject" if reason else "approve", recommended_amount_fen=0 if reason else amount,
        reason=reason))  # type: ignore[arg-type]


def read(app: LedgerApplication, claim: str) -> Claim:
    from uuid import UUID

    found = app.read(UUID(claim), Claim)
    assert found is not None
    return found


@pytest.fixture
def plan(ledger_app: LedgerApplication) -> str:
    return create_plan(ledger_app, rules(jury_quorum=3, notice_days=3))


def test_claim_approved_on_notice(ledger_app: LedgerApplication, plan: str) -> None:
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


def test_filing_rules(ledger_app: LedgerApplication, plan: str) -> None:
    member = join(ledger_app, plan, age=34)
    advance(ledger_app, days=30)
    rejected(ledger_app, lambda: file(ledger_app, member, today(ledger_app, -1), age=34),
             "diagnosed_on", "illness_in_the_waiting_period_is_not_covered")
    accident = file(ledger_app, member, today(ledger_app, -1), age=34, category="accident")
    assert read(ledger_app, accident).details.category == "accident"
    rejected(ledger_app, lambda: file(ledger_app, member, today(ledger_app, -1), age=34, category="accident"),
             "member", "member_has_an_open_claim")
    other = join(ledger_app, plan, age=50)
    advance(ledger_app, days=300)
    rejected(ledger_app, lambda: file(ledger_app, other, today(ledger_app, -181), age=50),
             "diagnosed_on", "claim_must_be_filed_within_the_claim_window")
    rejected(ledger_app, lambda: file(ledger_app, other, today(ledger_app, 1), age=50),
             "diagnosed_on", "diagnosis_must_not_be_in_the_future")
    rejected(ledger_app, lambda: file(ledger_app, other, today(ledger_app, -1), age=45),
             "age_at_diagnosis", "age_at_diagnosis_must_match_the_age_at_joining")
    rejected(ledger_app, lambda: file(ledger_app, other, "2025-12-01", age=50),
             "diagnosed_on", "diagnosis_must_not_precede_joining")


def test_investigation_never_recommends_above_the_age_band_maximum(ledger_app: LedgerApplication,
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


def test_an_investigation_signed_by_the_operator_is_refused(ledger_app: LedgerApplication, plan: str) -> None:
    member = join(ledger_app, plan)
    advance(ledger_app, days=100)
    claim = file(ledger_app, member, today(ledger_app, -1))
    rejected(ledger_app, lambda: ledger_app.execute(InvestigateClaim(
        command_id=cid(), claim=claim, report_commitment=commitment(), opinion="approve",
        recommended_amount_fen=100), sign_as="operator"),
        "signer", "investigations_must_be_signed_by_an_investigator_key")


def test_an_upheld_objection_rejects_the_case(ledger_app: LedgerApplication, plan: str) -> None:
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


def jurors(app: LedgerApplication, plan: str, count: int) -> list[str]:
    """Members who passed the exam and hold their own juror keys."""
    chosen = [join(app, plan, age=40) for _ in range(count)]
    for member in chosen:
        app.execute(QualifyJuror(command_id=cid(), member=member, age_years=40, exam_commitment=commitment()))
        member_key(app, member, role="juror")
    return chosen


def vote(app: LedgerApplication, claim: str, juror: str, support: bool) -> None:
    app.execute(CastVote(command_id=cid(), claim=claim, juror=juror, support=support))


def test_a_jury_overturns_a_preliminary_rejection(ledger_app: LedgerApplication, plan: str) -> None:
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
    before = ledger_app.recorder.max_notification_id()
    with pytest.raises(SigningKeyMissingError):
        vote(ledger_app, claim, newcomer, True)
    assert ledger_app.recorder.max_notification_id() == before
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


def test_juror_eligibility(ledger_app: LedgerApplication, plan: str) -> None:
    panel = jurors(ledger_app, plan, 3)
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


def test_without_quorum_the_preliminary_opinion_stands(ledger_app: LedgerApplication, plan: str) -> None:
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
