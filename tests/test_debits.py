"""Failed and recovered debits, each rule broken on purpose: a channel failure only for a postpaid share of the
member's own plan before settlement, a recovery only of an outstanding failure before its grace ends; and the
guards every command passes (an id of the right kind, an event not older than its stream)."""

from __future__ import annotations

from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger
from schemas.commands.membership import Deposit, RecordDebitFailure, RecoverDebit
from schemas.commands.period import AssessPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod
from sim.fixtures import START, rules
from tests.support import advance, cid, create_plan, join, prepaid_rules, rejected, reopen
from tests.test_period import approved_claim, at_local, period_of


def assessed_postpaid_period(app: Ledger) -> tuple[str, str, list[str]]:
    """A postpaid plan with three members and its first period assessed with one approved claim (notice
    2026-04-21)."""
    plan = create_plan(app, rules(notice_days=3))
    members = [join(app, plan) for _ in range(3)]
    advance(app, days=100)
    approved_claim(app, members[2])
    period = str(app.execute(OpenPeriod(command_id=cid(), plan=plan, number=1))["period"])
    at_local(app, "2026-04-21", 1)
    app.execute(AssessPeriod(command_id=cid(), period=period))
    return plan, period, members


def test_a_channel_debit_fails_only_for_a_postpaid_share_of_the_members_own_plan(ledger_app: Ledger) -> None:
    app = ledger_app
    _, period, members = assessed_postpaid_period(app)
    prepaid = create_plan(app, prepaid_rules(), name="Prepaid")
    saver = join(app, prepaid)
    rejected(app, lambda: app.execute(RecordDebitFailure(command_id=cid(), member=saver, period=period)), "member",
             "channel_debit_failures_are_only_for_postpaid_plans")
    other = create_plan(app, rules(notice_days=3), name="Other")
    stranger = join(app, other)
    rejected(app, lambda: app.execute(RecordDebitFailure(command_id=cid(), member=stranger, period=period)),
             "period", "period_must_belong_to_the_members_plan")
    rejected(app, lambda: app.execute(RecoverDebit(command_id=cid(), member=members[0], period=period)), "period",
             "only_an_outstanding_failed_debit_can_be_recovered")


def test_a_failed_debit_is_recovered_only_before_its_grace_ends_and_fails_only_before_settlement(
        ledger_app: Ledger) -> None:
    app = ledger_app
    _, period, members = assessed_postpaid_period(app)
    at_local(app, "2026-04-28", 9)
    app.execute(RecordDebitFailure(command_id=cid(), member=members[0], period=period))
    subsidy = period_of(app, period).require_assessment().subsidy_fen
    if subsidy:
        app.execute(ReceiveSubsidy(command_id=cid(), period=period, amount_fen=subsidy, reference="op-1"))
    at_local(app, "2026-05-12", 1)  # grace ends two days before the next collection day
    rejected(app, lambda: app.execute(RecoverDebit(command_id=cid(), member=members[0], period=period)), "at",
             "debit_must_be_recovered_before_grace_ends")
    app.execute(SettlePeriod(command_id=cid(), period=period))
    rejected(app, lambda: app.execute(RecordDebitFailure(command_id=cid(), member=members[1], period=period)),
             "period", "debits_can_fail_only_before_settlement")


def test_an_id_of_another_kind_is_named_as_such(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, prepaid_rules())
    rejected(ledger_app, lambda: ledger_app.execute(Deposit(command_id=cid(), member=plan, amount_fen=100,
                                                            reference="bank-x")),
             "member", "id_must_name_the_expected_kind")


def test_no_event_is_older_than_the_last_event_of_its_stream(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app, prepaid_rules())
    member = join(ledger_app, plan)
    advance(ledger_app, days=3)
    ledger_app.execute(Deposit(command_id=cid(), member=member, amount_fen=100, reference="bank-1"))
    behind = reopen(ledger_app, SimulatedClock(START))  # another writer whose clock is three days behind
    try:
        rejected(behind, lambda: behind.execute(Deposit(command_id=cid(), member=member, amount_fen=100,
                                                        reference="bank-2")),
                 "at", "event_time_must_not_precede_stream")
    finally:
        behind.close()
