"""The fault simulation (`python -m sim`, docs/simulation.md): a few seeds run briefly on both stores, every
invariant holding; the bugs its seeds found kept as regression tests."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import psycopg
import pytest
from eventsourcing.sqlite import SQLiteDatastore

from consumers.relay import Relay
from consumers.topic import read_topic
from consumers.views import views_store
from ledger.config import Settings
from ledger.projections import PROJECTIONS
from ledger.projections.balances import Balances
from ledger.projections.sql import SqlStore
from schemas.commands.membership import Join
from sim.client import Acknowledged, first_result
from sim.fixtures import commitment
from sim.invariants import Checks, InvariantBrokenError
from sim.run import FAULT_KINDS, SimDemo, Simulation, ahead_of, schedule
from sim.services import fresh_schema
from tests.support import cid, create_plan, deposit, new_ledger, prepaid_rules

pytestmark = pytest.mark.kafka


def test_the_same_seed_gives_the_same_schedule() -> None:
    assert schedule(7, 120, "postgres") == schedule(7, 120, "postgres")
    assert schedule(7, 120, "postgres") != schedule(8, 120, "postgres")
    kinds = {fault.kind for seed in range(20) for fault in schedule(seed, 120, "postgres")}
    assert kinds == set(FAULT_KINDS)
    assert all(f.kind != "postgres connections terminated" for s in range(20) for f in schedule(s, 120, "sqlite"))


@pytest.mark.parametrize(("seed", "store", "steps"), [
    (47, "sqlite", 32),
    (104, "sqlite", 30),
    pytest.param(0, "postgres", 30, marks=pytest.mark.postgres),
    pytest.param(4007, "postgres", 42, marks=pytest.mark.postgres),
])
def test_a_seed_runs_with_every_invariant_holding(seed: int, store: str, steps: int, postgres_url: str) -> None:
    """Seed 47 kills a consumer twice and the writer mid-batch, restarts the broker empty and jumps the clock; seed
    104 registered a juror's key for an unknown member (its probe must now be refused); seed 0 restarts the broker,
    terminates every PostgreSQL connection (the regression of seed 2: no process may end on its own), kills a
    consumer and the writer mid-batch; seed 4007's workload reached the prepaid plan's objection with no member
    left to object (every other member a claimant or gone) and stopped the run."""
    report = Simulation(seed, steps, store, server_url=postgres_url).run()
    assert report.broken is None, report.broken
    assert report.fault_counts and report.checks
    assert report.client["commands acknowledged"] > 20


def test_the_workload_takes_every_role_and_claim_path_and_winds_down(tmp_path: Path) -> None:
    """The workload on the composition root in process (the simulation sends the same commands to its writer)."""
    ledger = new_ledger(tmp_path, None, signing_workers=0)  # the demo's clock starts where the tests' does
    demo = SimDemo(ledger, 150, 1, 3, None)  # a pool whose shares its balances can pay (money held only)
    demo.play()
    counts = demo.counts
    assert counts["jury_cases"] == counts["objections"] == counts["reports"] == 1
    assert counts["claims_approved"] and counts["claims_rejected"] and counts["claims_paid"]
    # no subsidy: the demo's caps bind only where they would in the real pool, and the workload leaves out the
    # endings (whose operator-funded periods are the subsidies: tests/test_endings.py)
    assert counts["debits_failed"] and counts["refunds_paid"]
    models = ledger.read_models()
    assert models.journal.trial_balance() == 0
    assert not [r for r in models.journal.refund_obligations() if (r[6] or 0) < r[3]]  # every refund due was paid
    ledger.close()


def test_each_check_fails_on_what_it_guards(tmp_path: Path) -> None:
    """The checks are not vacuous: a view row altered, a result that is not the stored one, a command never
    stored, a position gone back — each is named as the invariant it breaks."""
    ledger = new_ledger(tmp_path, None, signing_workers=0)
    setup_events = sum(1 for _ in ledger.entries())
    plan = create_plan(ledger, prepaid_rules())
    command = Join(command_id=cid("join"), plan=plan, age_years=30, sex="f", province="zj",
                   consent_commitment=commitment("consent"), health_declaration_commitment=commitment("health"))
    result = ledger.execute(command)
    deposit(ledger, str(result["member"]), 5_000)
    views = SqlStore(SQLiteDatastore(str(tmp_path / "views.sqlite3")))
    for projection_class in PROJECTIONS:
        projection_class(ledger.app, views).catch_up()
    checks = Checks(ledger, views, tmp_path)
    checks.setup_events = setup_events
    acknowledged = {command.command_id: Acknowledged(command.model_dump(mode="json"), None, first_result(result))}
    with pytest.raises(InvariantBrokenError, match="the store holds exactly the events"):
        checks.exactly_once(acknowledged)  # the plan and the deposit were never acknowledged
    checks.setup_events += 2  # their events
    checks.quick(acknowledged)
    checks.digests()
    altered = {**result, "member": "someone else"}
    with pytest.raises(InvariantBrokenError, match="stored with its first result"):
        checks.exactly_once({command.command_id: Acknowledged({}, None, altered)})
    with pytest.raises(InvariantBrokenError, match="every acknowledged command is stored"):
        checks.exactly_once({"never-sent": Acknowledged({}, None, {"events": []})})
    with views.transaction() as cursor:
        cursor.execute(f"UPDATE {views.table('roster_members')} SET deposits = deposits + 1")
    with pytest.raises(InvariantBrokenError, match="Kafka-fed digests equal a fresh rebuild: balances"):
        checks.digests()
    checks.positions = dict.fromkeys(checks.positions, 10**9)
    with pytest.raises(InvariantBrokenError, match="a projection never goes back"):
        checks.positions_never_go_back()
    ledger.close()


@pytest.mark.postgres
def test_opening_a_read_model_takes_no_lock_its_consumer_waits_for(postgres_url: str, tmp_path: Path) -> None:
    """Seed 40001 on PostgreSQL (`python -m sim --seed 40001 --store postgres`): the checks opened the read models
    on the views while the consumers applied to them, and the database found a deadlock — `CREATE INDEX IF NOT
    EXISTS` takes its table's SHARE lock before it finds the index. What exists is no longer created again."""
    with fresh_schema(postgres_url) as url:
        views = views_store(Settings(data_dir=tmp_path, views_url=url))
        ledger = new_ledger(tmp_path, None, signing_workers=0)
        Balances(ledger.app, views).catch_up()
        name = views.table("roster_members")
        schema = url.split("schema=")[1]
        with psycopg.connect(url.split("?")[0]) as consumer:  # a consumer's transaction, applying
            consumer.execute(f'UPDATE "{schema}".roster_members SET deposits = deposits WHERE false')
            opened = threading.Thread(target=lambda: Balances(ledger.app, views))
            opened.start()
            opened.join(10)
            blocked = opened.is_alive()
            consumer.rollback()
        opened.join(30)
        assert not blocked, f"opening the read model waited for the consumer's lock on {name}"
        ledger.close()


def test_messages_fed_ahead_of_the_relay_carry_the_relays_headers(tmp_path: Path, kafka_bootstrap: str) -> None:
    """Seed 4004: the reordered feed took each partition's previous index from a read of the topic, which came back
    short under load, and forged a header the journal's consumer rightly refused. The feed's messages now carry the
    headers the relay publishes for the same events, from any point on, the topic unread (here: never written
    before the point, as after the broker came back empty)."""
    ledger = new_ledger(tmp_path, None, signing_workers=0)
    plan = create_plan(ledger)
    ledger.execute_many([Join(command_id=cid("join"), plan=plan, age_years=30 + i % 20, sex="f", province="zj",
                              consent_commitment=commitment("consent"),
                              health_declaration_commitment=commitment("health")) for i in range(40)])
    topic = f"feed-{uuid.uuid4().hex[:8]}"
    relay = Relay(ledger.app, kafka_bootstrap, topic, 4)
    relay.publish_pending()
    relay.close()
    published = {(record.partition, int(dict(record.headers)["notification_id"])): int(
        dict(record.headers)["partition_previous"]) for record in read_topic(kafka_bootstrap, topic, 4)}
    stored = len(list(ledger.entries()))
    assert len(published) > stored  # keyring events are on every partition
    for sent in (0, 1, stored // 3, stored // 2, stored - 1):
        ahead = ahead_of(ledger.app, sent, 4)
        assert {index for _, _, index, _, _ in ahead} == set(range(sent + 1, stored + 1))
        assert {(partition, index): previous for partition, _, index, previous, _ in ahead} == {
            key: previous for key, previous in published.items() if key[1] > sent}
    ledger.close()
