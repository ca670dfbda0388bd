"""The fault simulation (`python -m sim`, docs/simulation.md): a few seeds run briefly on both stores, every
invariant holding; the bugs its seeds found kept as regression tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.run import FAULT_KINDS, SimDemo, Simulation, schedule
from tests.support import new_ledger

pytestmark = pytest.mark.kafka


def test_the_same_seed_gives_the_same_schedule() -> None:
    assert schedule(7, 120, "postgres") == schedule(7, 120, "postgres")
    assert schedule(7, 120, "postgres") != schedule(8, 120, "postgres")
    kinds = {fault.kind for seed in range(20) for fault in schedule(seed, 120, "postgres")}
    assert kinds == set(FAULT_KINDS)
    assert all(f.kind != "postgres connections terminated" for s in range(20) for f in schedule(s, 120, "sqlite"))


@pytest.mark.parametrize(("seed", "store", "steps"), [
    (47, "sqlite", 32),
    pytest.param(0, "postgres", 30, marks=pytest.mark.postgres),
])
def test_a_seed_runs_with_every_invariant_holding(seed: int, store: str, steps: int, postgres_url: str) -> None:
    """Seed 47 kills a consumer twice and the writer mid-batch, restarts the broker empty and jumps the clock; seed
    0 restarts the broker, terminates every PostgreSQL connection (the regression of seed 2), kills a consumer and
    the writer mid-batch."""
    report = Simulation(seed, steps, store, server_url=postgres_url).run()
    assert report.broken is None, report.broken
    assert report.fault_counts and report.checks
    assert report.client["commands acknowledged"] > 20


def test_the_workload_takes_every_role_and_claim_path_and_winds_down(tmp_path: Path) -> None:
    """The workload on the composition root in process (the simulation sends the same commands to its writer)."""
    ledger = new_ledger(tmp_path, None, signing_workers=0)  # the demo's clock starts where the tests' does
    demo = SimDemo(ledger, 20, 1, 3, None)
    demo.create_plans()
    demo.join_members()
    demo.qualify_jurors()
    demo.run_periods()
    demo.disclose()
    demo.wind_down()
    counts = demo.counts
    assert counts["jury_cases"] == counts["objections"] == counts["reports"] == 1
    assert counts["claims_approved"] and counts["claims_rejected"] and counts["claims_paid"]
    assert counts["debits_failed"] and counts["subsidies"] and counts["refunds_paid"]
    models = ledger.read_models()
    assert models.journal.trial_balance() == 0
    assert not [r for r in models.journal.refund_obligations() if (r[6] or 0) < r[3]]  # every refund due was paid
    ledger.close()
