"""Stated bounds on the amounts a rule or a read model adds up (docs/plans.md, "Bounds").

Every sum the ledger forms — a balance, a period's aid, a plan's pool, the journal's accounts, a member's statement
— stays far inside 64-bit integers and JSON's exact integers (2^53 − 1) because the amounts that feed them are
bounded on write: a deposit, the balance it leads to, a plan's maximum aid per case and its share caps. A command
that would pass a bound is refused with exit 2 and writes nothing.
"""

from __future__ import annotations

from typing import Final

from ledger.errors import check
from ledger.rules import Rule
from schemas.events import PlanRules

MAX_DEPOSIT_FEN: Final = 5_000_000
"""50,000 yuan: one top-up (the plans took 10 to a few hundred yuan)."""
MAX_BALANCE_FEN: Final = 10_000_000
"""100,000 yuan: what one prepaid account may hold."""
MAX_AID_FEN: Final = 500_000_000
"""5,000,000 yuan: the most a plan may promise one case (the plans' largest was 300,000 yuan)."""


def check_plan_rules(rules: PlanRules) -> None:
    """A plan's amounts within the bounds: aid per case, the share caps and the warning balance."""
    largest = max(band.max_aid_fen for band in rules.aid_bands)
    check(largest <= MAX_AID_FEN, "rules", Rule.AID_MUST_NOT_EXCEED_THE_LEDGER_BOUND, f"{largest} > {MAX_AID_FEN}")
    for name in ("per_case_cap_fen", "annual_cap_fen", "min_balance_fen"):
        value = getattr(rules, name)
        check(value <= MAX_BALANCE_FEN, "rules", Rule.SHARE_CAPS_MUST_NOT_EXCEED_THE_BALANCE_BOUND,
              f"{name} {value} > {MAX_BALANCE_FEN}")


def check_deposit(amount_fen: int, balance_fen: int) -> None:
    """A top-up within the deposit bound, and the balance it leads to within the balance bound."""
    check(amount_fen <= MAX_DEPOSIT_FEN, "amount_fen", Rule.DEPOSIT_MUST_NOT_EXCEED_THE_BOUND,
          f"{amount_fen} > {MAX_DEPOSIT_FEN}")
    check(balance_fen + amount_fen <= MAX_BALANCE_FEN, "amount_fen", Rule.BALANCE_MUST_NOT_EXCEED_THE_BOUND,
          f"{balance_fen} + {amount_fen} > {MAX_BALANCE_FEN}")
