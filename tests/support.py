"""Builders shared by the tests: short command helpers (the plan rules, commitments and starting instant they share
with the benchmarks are `sim.fixtures`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger, bootstrap
from ledger.config import Settings
from ledger.errors import DomainRuleError
from ledger.log.checkpoints import CheckpointLog
from ledger.log.note import Signer
from ledger.service import ledger_with_parties, party_key_directories
from schemas.commands.membership import Deposit, Join
from schemas.commands.plan import CreatePlan
from schemas.events import PlanRules
from sim.fixtures import START, commitment, rules

INITIAL = 5
"""Entries of a new test ledger: the root key, the operator key, and the custodian's, investigator's and
regulator's keys registered."""

_ids = count(1)


def cid(prefix: str = "c") -> str:
    """A fresh command id."""
    return f"{prefix}-{next(_ids)}"


def prepaid_rules(**overrides: Any) -> PlanRules:
    """水滴互助-like rules: prepaid with a minimum balance, pro-rata excess."""
    return rules(**{"payment_model": "prepaid", "excess_policy": "pro_rata", "min_balance_fen": 300,
                    "per_case_cap_fen": 300, **overrides})


def new_ledger(base: Path, database_url: str | None, **settings: Any) -> Ledger:
    """An initialized ledger under `base` (the operator in `base/operator`, each other party in `base/<party>`),
    driven by a simulated clock from START."""
    return ledger_with_parties(base, SimulatedClock(START), database_url, **settings)


def demo_ledger(base: Path) -> Ledger:
    """An empty ledger for the demo under `base` (operator and parties), on the demo's simulated clock."""
    from ledger.demo import DEMO_START

    return bootstrap(Settings(data_dir=base / "operator"), clock=SimulatedClock(DEMO_START), create=True,
                     key_directories=party_key_directories(base))


def reopen(ledger: Ledger, clock: SimulatedClock | None = None) -> Ledger:
    """Another process on the same store, with the same parties' keys."""
    return bootstrap(ledger.settings, clock=clock or SimulatedClock(START),
                     key_directories=ledger.signers.directories[1:])


def signer_of(checkpoints: CheckpointLog) -> Signer:
    """The log key of a checkpoint log the operator holds (tests sign forged checkpoints with it)."""
    assert checkpoints.signer is not None
    return checkpoints.signer


def clock_of(app: Ledger) -> SimulatedClock:
    """The simulated clock of a test application."""
    assert isinstance(app.clock, SimulatedClock)
    return app.clock


def advance(app: Ledger, **delta: float) -> datetime:
    """Move a test application's clock forward."""
    clock = clock_of(app)
    clock.set(clock.current + timedelta(**delta))
    return clock.current


def create_plan(app: Ledger, plan_rules: PlanRules | None = None, name: str = "Cancer plan") -> str:
    """Create a plan and return its id."""
    result = app.execute(CreatePlan(command_id=cid("plan"), name=name, kind="cancer",
                                    rules=plan_rules or rules()))
    return str(result["plan"])


def join(app: Ledger, plan: str, age: int = 30, payer: str | None = None,
         sex: str = "f", province: str = "zj") -> str:
    """Join a member and return their id."""
    result = app.execute(Join(command_id=cid("join"), plan=plan, age_years=age, sex=sex,  # type: ignore[arg-type]
                              province=province, payer=payer, consent_commitment=commitment("consent"),
                              health_declaration_commitment=commitment("health")))
    return str(result["member"])


def deposit(app: Ledger, member: str, amount_fen: int) -> None:
    """A custodian-confirmed top-up."""
    app.execute(Deposit(command_id=cid("dep"), member=member, amount_fen=amount_fen, reference=cid("ref")))


def rejected(app: Ledger, run: Callable[[], object], field: str, rule: str) -> DomainRuleError:
    """Run a command that must break `rule` on `field`; assert the error names both and nothing was written."""
    before = app.app.recorder.max_notification_id()
    with pytest.raises(DomainRuleError) as caught:
        run()
    assert (caught.value.field, caught.value.rule) == (field, rule), str(caught.value)
    assert app.app.recorder.max_notification_id() == before, "a rejected command wrote events"
    return caught.value


def sealed_values(app: Ledger, stream: str) -> dict[str, Any]:
    """The sealed values of a stream's events, opened from the operator's vault, by field."""
    return {record.field: record.value for _, record in app.app.vault.values_of_stream(stream)}
