"""The fault simulation (`python -m sim`, docs/simulation.md): a few seeds run briefly on both stores, every
invariant holding; the bugs its seeds found kept as regression tests."""

from __future__ import annotations

import pytest

from sim.run import FAULT_KINDS, Simulation, schedule

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
