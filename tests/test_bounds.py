"""Finding 9: every amount a rule or a read model adds up is bounded on write (ledger/bounds.py): a deposit, the
balance it leads to, a plan's aid per case and its share caps; passing one is refused (exit 2) and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.bootstrap import Ledger
from ledger.bounds import MAX_AID_FEN, MAX_BALANCE_FEN, MAX_DEPOSIT_FEN
from ledger.envelope import format_at
from ledger.errors import BatchError
from schemas.commands.membership import Deposit, Exit
from schemas.commands.plan import AmendRules, CreatePlan
from schemas.common import MAX_FEN
from schemas.events import AidBand
from tests.support import cid, clock_of, create_plan, join, prepaid_rules, rejected


def test_deposits_and_balances_are_bounded(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app, prepaid_rules())
    member = join(app, plan)
    rejected(app, lambda: app.execute(Deposit(command_id=cid(), member=member, amount_fen=MAX_FEN,
                                              reference="huge")), "amount_fen", "deposit_must_not_exceed_the_bound")
    for n in range(MAX_BALANCE_FEN // MAX_DEPOSIT_FEN):
        app.execute(Deposit(command_id=cid(), member=member, amount_fen=MAX_DEPOSIT_FEN, reference=f"top-{n}"))
    rejected(app, lambda: app.execute(Deposit(command_id=cid(), member=member, amount_fen=1, reference="one-more")),
             "amount_fen", "balance_must_not_exceed_the_bound")
    assert app.balances().balance_fen(member) == MAX_BALANCE_FEN
    assert app.execute(Exit(command_id=cid(), member=member))["refund_due_fen"] == MAX_BALANCE_FEN
    assert app.read_models().journal.balances()["refunds_payable"] == -MAX_BALANCE_FEN


def test_the_balance_bound_counts_the_deposits_earlier_in_a_batch(ledger_app: Ledger) -> None:
    """Deposits in one batch (one unit of work) are bounded by the account's sum, not each against the balance
    stored before the batch: the third of three maximal top-ups would take the account past the bound."""
    app = ledger_app
    plan = create_plan(app, prepaid_rules())
    member = join(app, plan)
    batch = [Deposit(command_id=cid(), member=member, amount_fen=MAX_DEPOSIT_FEN, reference=f"batch-{n}")
             for n in range(MAX_BALANCE_FEN // MAX_DEPOSIT_FEN + 1)]
    with pytest.raises(BatchError, match="balance_must_not_exceed_the_bound") as caught:
        app.execute_many(batch)
    assert caught.value.position == len(batch) - 1
    assert app.balances().balance_fen(member) == MAX_BALANCE_FEN  # the ones before it are saved, nothing beyond


def test_a_plans_amounts_are_bounded(ledger_app: Ledger) -> None:
    app = ledger_app
    too_much_aid = prepaid_rules(aid_bands=(AidBand(up_to_age_years=59, max_aid_fen=MAX_AID_FEN + 1),))
    rejected(app, lambda: app.execute(CreatePlan(command_id=cid(), name="Too generous", kind="cancer",
                                                 rules=too_much_aid)), "rules", "aid_must_not_exceed_the_ledger_bound")
    plan = create_plan(app, prepaid_rules())
    rejected(app, lambda: app.execute(AmendRules(
        command_id=cid(), plan=plan, effective_from=format_at(clock_of(app).current + timedelta(days=1)),
        rules=prepaid_rules(annual_cap_fen=MAX_FEN))), "rules", "share_caps_must_not_exceed_the_balance_bound")
