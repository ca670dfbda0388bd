"""The distributed path with a real Kafka-protocol broker: relay, verifying consumers in groups, crashes, gaps,
tampered messages, a broker that loses everything."""

from __future__ import annotations

import base64
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson
import psycopg
import pytest
from eventsourcing.sqlite import SQLiteDatastore
from kafka import KafkaProducer, TopicPartition
from kafka.cluster import ClusterMetadata
from kafka.protocol.consumer import JoinGroupResponse
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment, ConsumerProtocolSubscription

from consumers.consumer import Message, ProjectionConsumer, RangeAssignor, WholeTopicAssignor
from consumers.relay import Relay
from consumers.topic import ensure_topic, entry_partitions, message_headers, partition_of
from consumers.topic import read_topic as topic_records
from consumers.views import views_store
from ledger.application import LedgerApplication, SimulatedClock
from ledger.bootstrap import bootstrap as open_ledger
from ledger.config import DEFAULT_PARTITIONS, Settings
from ledger.demo import DEMO_START, run_demo
from ledger.projections import PROJECTIONS
from ledger.projections.sql import SqlStore
from ledger.service import party_key_directories
from ledger.store import replace_lost_connections
from schemas.commands.membership import Deposit, Join
from sim.fixtures import commitment
from sim.services import fresh_schema, new_database
from tests.services import TansuBroker
from tests.support import create_plan, deposit, join, new_ledger, prepaid_rules

pytestmark = pytest.mark.kafka
NAMES = [p.NAME for p in PROJECTIONS]
P = DEFAULT_PARTITIONS


@dataclass(frozen=True)
class Ledger:
    """An event store with a demo history, and an empty views database for the consumers."""

    data: Path
    database_url: str | None
    views_url: str

    def settings(self, bootstrap: str, topic: str) -> Settings:
        return Settings(data_dir=self.data, database_url=self.database_url, kafka_bootstrap_servers=bootstrap,
                        kafka_topic=topic, views_url=self.views_url)

    def env(self, bootstrap: str, topic: str) -> dict[str, str]:
        env = {"LEDGER_DATA_DIR": str(self.data), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "LEDGER_KAFKA_TOPIC": topic, "LEDGER_VIEWS_URL": self.views_url}
        if self.database_url:
            env["LEDGER_DATABASE_URL"] = self.database_url
        return env

    def app(self, bootstrap: str, topic: str) -> LedgerApplication:
        return open_ledger(self.settings(bootstrap, topic),
                         key_directories=party_key_directories(self.data.with_name("parties"))).app


def build_demo(settings: Settings) -> None:
    ledger = open_ledger(settings, clock=SimulatedClock(DEMO_START), create=True,
                       key_directories=party_key_directories(settings.data_dir.with_name("parties")))
    run_demo(ledger, members=150, periods=1, seed=21, endings=False)  # the plans stay open: the tests add to them
    ledger.close()


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo history on the embedded default."""
    data = tmp_path_factory.mktemp("kafka-demo")
    build_demo(Settings(data_dir=data / "operator"))
    return data / "operator"


@pytest.fixture(scope="module")
def postgres_demo(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The same demo history with its event store on PostgreSQL."""
    data = tmp_path_factory.mktemp("kafka-demo-postgres")
    with fresh_schema(postgres_url) as url:
        build_demo(Settings(data_dir=data / "operator", database_url=url))
        yield data / "operator", url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """The demo history with empty views: both on SQLite, then both on PostgreSQL."""
    if request.param == "sqlite":
        yield Ledger(request.getfixturevalue("demo_dir"), None, f"sqlite:///{tmp_path / 'views.sqlite3'}")
        return
    data, url = request.getfixturevalue("postgres_demo")
    with fresh_schema(request.getfixturevalue("postgres_url")) as views_url:
        yield Ledger(data, url, views_url)


@pytest.fixture
def own_ledger(demo_dir: Path, tmp_path: Path) -> Ledger:
    """A copy of the SQLite demo history that a test may add events to."""
    shutil.copytree(demo_dir.parent, tmp_path / "data")
    return Ledger(tmp_path / "data" / "operator", None, f"sqlite:///{tmp_path / 'views.sqlite3'}")


def new_topic() -> str:
    return f"events-{uuid.uuid4().hex[:8]}"


def fresh_digests(app: LedgerApplication, tmp: Path) -> dict[str, str]:
    sql = SqlStore(SQLiteDatastore(str(tmp / f"fresh-{uuid.uuid4().hex}.sqlite3")))
    digests = {}
    for projection_class in PROJECTIONS:
        projection = projection_class(app, sql)
        projection.catch_up()
        digests[projection.NAME] = projection.digest()
    return digests


def view_digests(app: LedgerApplication, views: SqlStore) -> dict[str, str]:
    return {p.NAME: p(app, views).digest() for p in PROJECTIONS}


def consume_all(app: LedgerApplication, views: SqlStore, bootstrap: str, topic: str, group: str) -> dict[str, str]:
    for name in NAMES:
        consumer = ProjectionConsumer(name, app, views, bootstrap, topic, f"{group}-{name}", P)
        consumer.run(until_caught_up=True, deadline_seconds=120)
        consumer.close()
    return view_digests(app, views)


def previous_headers(app: LedgerApplication) -> dict[tuple[int, int], int]:
    """(index, partition) → the `partition_previous` header the relay must write, for every stored event."""
    last = [0] * P
    expected = {}
    for index, entry in app.entries():
        for partition in entry_partitions(entry, P):
            expected[index, partition] = last[partition]
            last[partition] = index
    return expected


def final_positions(app: LedgerApplication) -> dict[str, int]:
    """The position of every lane of every read model once everything stored is applied."""
    last = [0] * P
    for index, entry in app.entries():
        for partition in entry_partitions(entry, P):
            last[partition] = index
    positions: dict[str, int] = {}
    for projection_class in PROJECTIONS:
        if projection_class.STREAM_LOCAL:
            positions |= {f"{projection_class.NAME} partition {p}/{P}": last[p] for p in range(P)}
        else:
            positions[projection_class.NAME] = max(last)
    return positions


def stored_positions(app: LedgerApplication, views: SqlStore, names: list[str]) -> dict[str, int]:
    """The positions recorded in the views for these read models (their tables created if need be)."""
    for projection_class in PROJECTIONS:
        projection_class(app, views)
    with views.transaction(commit=False) as cursor:
        rows = cursor.execute(f"SELECT name, position FROM {views.table('projection_tracking')}").fetchall()
    return {name: position for name, position in rows if name.split(" ")[0] in names}


def wait_for(condition: Callable[[], bool], seconds: float, what: str,
             detail: Callable[[], str] | None = None) -> None:
    """Poll `condition` until it holds; past `seconds`, fail naming `what` and, with `detail`, the state it shows
    (a wait that times out under load is then explained by its own failure)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"\n{detail()}" if detail else ""))
        time.sleep(0.2)


def read_topic(bootstrap: str, topic: str) -> list[Message]:
    return [Message.of(record) for record in topic_records(bootstrap, topic, P)]


SPAWNED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    """Whatever a test started and did not end (it failed before it could) is killed after it."""
    yield
    while SPAWNED:
        process = SPAWNED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def cli(env: dict[str, str], *args: str, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "ledger.cli", *args], env={**os.environ, **env},
                               stdout=subprocess.PIPE, stderr=log or subprocess.PIPE)
    SPAWNED.append(process)
    return process


def finished(process: subprocess.Popen[bytes], seconds: float = 180) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=seconds)
    return process.returncode, (stderr or b"").decode()


def prepaid_plan(app: LedgerApplication) -> str:
    heads = [orjson.loads(entry) for _, entry in app.entries()]
    return str(next(h["stream"] for h in heads if h["type"] == "plan.created"
                    and h["body"]["rules"]["payment_model"] == "prepaid"))


class Workload:
    """Joins and custodian-confirmed deposits, a few dozen a second, from a thread, until stopped."""

    def __init__(self, app: LedgerApplication) -> None:
        self.app = app
        self.plan = prepaid_plan(app)
        self.stopping = threading.Event()
        self.accepted = 0
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stopping.is_set():
            member = str(self.app.execute(Join(
                command_id=f"w-{uuid.uuid4()}", plan=self.plan, age_years=30, sex="f", province="zj",
                consent_commitment=commitment("consent"), health_declaration_commitment=commitment("health")))[
                "member"])
            self.app.execute(Deposit(command_id=f"d-{uuid.uuid4()}", member=member, amount_fen=5000,
                                     reference=f"r-{uuid.uuid4()}"))
            self.accepted += 2
            time.sleep(0.02)

    def __enter__(self) -> Workload:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join()


def test_kafka_fed_read_models_equal_the_in_process_rebuild(ledger: Ledger, kafka_bootstrap: str,
                                                            tmp_path: Path) -> None:
    topic = new_topic()
    app = ledger.app(kafka_bootstrap, topic)
    relay = Relay(app, kafka_bootstrap, topic, P)
    assert relay.publish_pending() == len(list(app.entries()))
    relay.close()
    views = views_store(app.settings)
    assert consume_all(app, views, kafka_bootstrap, topic, "g1") == fresh_digests(app, tmp_path)
    assert stored_positions(app, views, NAMES) == final_positions(app)
    app.close()


def test_a_relay_killed_at_random_points_loses_and_reorders_nothing(demo_dir: Path, kafka_bootstrap: str,
                                                                    tmp_path: Path) -> None:
    """Every event reaches each partition that carries it, with the `partition_previous` header a relay that never
    stopped would have written, however often the relay was killed mid-batch."""
    topic = new_topic()
    ledger = Ledger(demo_dir, None, f"sqlite:///{tmp_path / 'views.sqlite3'}")
    env = ledger.env(kafka_bootstrap, topic)
    rng = random.Random(5)
    for _ in range(3):
        process = cli(env, "kafka", "relay", "--batch", "25", "--interval", "0.05")
        time.sleep(rng.uniform(1.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    code, stderr = finished(cli(env, "kafka", "relay", "--once"), 120)
    assert code == 0, stderr
    app = ledger.app(kafka_bootstrap, topic)
    expected = previous_headers(app)
    messages = read_topic(kafka_bootstrap, topic)
    assert {(m.index, m.partition) for m in messages} == set(expected)
    assert all(m.previous == expected[m.index, m.partition] for m in messages)
    assert consume_all(app, views_store(app.settings), kafka_bootstrap, topic, "g2") == fresh_digests(app, tmp_path)
    app.close()


def test_a_consumer_killed_mid_batch_resumes_without_duplicate_effects(ledger: Ledger, kafka_bootstrap: str,
                                                                      tmp_path: Path) -> None:
    topic = new_topic()
    app = ledger.app(kafka_bootstrap, topic)
    relay = Relay(app, kafka_bootstrap, topic, P)
    relay.publish_pending()
    relay.close()
    env = ledger.env(kafka_bootstrap, topic)
    views = views_store(app.settings)
    process = cli(env, "kafka", "consume", "balances", "--group", "g3")
    wait_for(lambda: any(stored_positions(app, views, ["balances"]).values()), 60, "the consumer to apply a batch")
    process.send_signal(signal.SIGKILL)
    process.wait()
    code, stderr = finished(cli(env, "kafka", "consume", "balances", "--group", "g3", "--until-caught-up"))
    assert code == 0, stderr
    assert PROJECTIONS[0].NAME == "balances"
    assert PROJECTIONS[0](app, views).digest() == fresh_digests(app, tmp_path)["balances"]
    app.close()


def test_partitions_missing_their_first_events_are_filled_from_the_store(demo_dir: Path, kafka_bootstrap: str,
                                                                         tmp_path: Path) -> None:
    """The topic lost the first 200 events of the store: every consumer reads them from the store, verified, and
    ends where one fed by the whole topic ends."""
    topic = new_topic()
    ledger = Ledger(demo_dir, None, f"sqlite:///{tmp_path / 'views.sqlite3'}")
    app = ledger.app(kafka_bootstrap, topic)
    ensure_topic(kafka_bootstrap, topic, P)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    expected = previous_headers(app)
    for index, entry in list(app.entries())[200:]:
        stream = orjson.loads(entry)["stream"]
        for partition in entry_partitions(entry, P):
            producer.send(topic, value=entry, partition=partition,
                          headers=message_headers(index, stream, expected[index, partition]))
    producer.close()
    views = views_store(app.settings)
    assert consume_all(app, views, kafka_bootstrap, topic, "g4") == fresh_digests(app, tmp_path)
    assert stored_positions(app, views, NAMES) == final_positions(app)
    app.close()


BAD_SIGNATURE = base64.b64encode(bytes(64)).decode()


def test_a_tampered_message_is_refused_by_every_consumer_and_nothing_of_it_is_applied(
        own_ledger: Ledger, kafka_bootstrap: str, tmp_path: Path) -> None:
    """After the published log, one message: a new event with a signature that fails; a genuine new event under
    the index of another; a genuine new event with a wrong `partition_previous`. Every read model's consumer exits
    3 naming the check, and its views stay exactly those of the log before it."""
    app = own_ledger.app(kafka_bootstrap, "unused")
    genuine_digests = fresh_digests(app, tmp_path)
    genuine_positions = final_positions(app)
    topics = {case: new_topic() for case in ("signature", "index", "previous")}
    for topic in topics.values():
        relay = Relay(app, kafka_bootstrap, topic, P)
        relay.publish_pending()
        relay.close()
    plan = prepaid_plan(app)
    joined = [str(app.execute(Join(command_id=f"t-{n}", plan=plan, age_years=30, sex="f", province="zj",
                                   consent_commitment=commitment("consent"),
                                   health_declaration_commitment=commitment("health")))["member"])
              for n in range(2)]
    (first_index, first), (_, second) = list(app.entries())[-2:]
    assert [orjson.loads(first)["stream"], orjson.loads(second)["stream"]] == joined
    last = [genuine_positions[f"balances partition {p}/{P}"] for p in range(P)]
    first_partition, second_partition = (partition_of(stream, P) for stream in joined)
    first_previous = last[first_partition]
    wrong_previous = first_previous + 1 if first_previous + 1 < first_index else first_previous - 1
    forged = first.replace(orjson.loads(first)["sig"].encode(), BAD_SIGNATURE.encode())
    tampered = {  # case: (partition, value, headers)
        "signature": (first_partition, forged, message_headers(first_index, joined[0], first_previous)),
        "index": (second_partition, second, message_headers(first_index, joined[1], last[second_partition])),
        "previous": (first_partition, first, message_headers(first_index, joined[0], wrong_previous)),
    }
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for case, (partition, value, message) in tampered.items():
        producer.send(topics[case], value=value, partition=partition, headers=message)
    producer.close()
    runs = {}
    for case, topic in topics.items():
        env = {**own_ledger.env(kafka_bootstrap, topic), "LEDGER_VIEWS_URL": f"sqlite:///{tmp_path / case}.sqlite3"}
        for name in NAMES:
            runs[case, name] = cli(env, "kafka", "consume", name, "--until-caught-up", "--group", f"{case}-{name}")
    checks = {"signature": "6 signature", "index": "header notification_id: the store holds stream",
              "previous": "header partition_previous: must be"}
    for (case, name), process in runs.items():
        code, stderr = finished(process)
        assert code == 3, f"{case} {name}: {stderr}"
        assert f"notification {first_index}" in stderr and checks[case] in stderr, f"{case} {name}: {stderr}"
    for case in topics:
        views = views_store(Settings(data_dir=own_ledger.data, views_url=f"sqlite:///{tmp_path / case}.sqlite3"))
        assert view_digests(app, views) == genuine_digests, case
        assert stored_positions(app, views, NAMES) == genuine_positions, case
    app.close()


def consumer_log(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_two_consumers_in_one_group_split_the_partitions_and_a_standby_takes_the_whole_topic_over(
        own_ledger: Ledger, kafka_bootstrap: str, tmp_path: Path) -> None:
    """Two `consume balances` in one group each get partitions and apply their events; of two `consume journal`
    in one group one applies the whole topic and the other stands by (in the group: it does not join again). Then
    one of each group stops, more events come, and the other takes the partitions over where their positions say.
    The views end equal to the in-process rebuild."""
    topic = new_topic()
    app = own_ledger.app(kafka_bootstrap, topic)
    env = own_ledger.env(kafka_bootstrap, topic)
    logs = {name: tmp_path / f"{name}.log" for name in ("balances-a", "balances-b", "journal-a", "journal-b")}
    processes = {}
    for name, log in logs.items():
        with log.open("wb") as handle:
            processes[name] = cli(env, "kafka", "consume", name.split("-")[0], "--group", f"g5-{name.split('-')[0]}",
                                  log=handle)

    def latest(name: str, prefix: str) -> str:
        lines = [line for line in consumer_log(logs[name]) if line.startswith(prefix)]
        return lines[-1] if lines else ""

    def split() -> bool:
        parts = [latest(name, "balances: partitions ") for name in ("balances-a", "balances-b")]
        journal = sorted(latest(name, "journal: ") for name in ("journal-a", "journal-b"))
        return all(p and not p.endswith("none of 4") for p in parts) and journal == [
            "journal: partitions 0, 1, 2, 3 of 4", "journal: standing by (no partition given)"]

    wait_for(split, 90, "the groups to settle")
    settled = {name: len(consumer_log(log)) for name, log in logs.items()}
    relay = Relay(app, kafka_bootstrap, topic, P)
    relay.publish_pending()
    views = views_store(app.settings)
    wait_for(lambda: stored_positions(app, views, ["balances", "journal"]) == {
        k: v for k, v in final_positions(app).items() if k.split(" ")[0] in ("balances", "journal")}, 90,
        "the consumers to apply the log")
    holder = next(n for n in ("journal-a", "journal-b") if latest(n, "journal: ").endswith("0, 1, 2, 3 of 4"))
    standby = ({"journal-a", "journal-b"} - {holder}).pop()
    for name in (holder, "balances-a"):  # the other member of each group takes their partitions over
        processes[name].send_signal(signal.SIGTERM)
        assert finished(processes[name])[0] == 0
    with Workload(app) as workload:
        wait_for(lambda: workload.accepted >= 20, 30, "more commands")
    relay.publish_pending()
    relay.close()
    wait_for(lambda: stored_positions(app, views, ["balances", "journal"]) == {
        k: v for k, v in final_positions(app).items() if k.split(" ")[0] in ("balances", "journal")}, 90,
        "the remaining members to take the partitions over")
    assert latest("balances-b", "balances: partitions ") == "balances: partitions 0, 1, 2, 3 of 4"
    for name in ("balances-b", standby):
        processes[name].send_signal(signal.SIGTERM)
        assert finished(processes[name])[0] == 0
    for name, log in logs.items():  # once the topic exists, a member given nothing stands by: it does not rejoin
        assert not any(" is gone" in line for line in consumer_log(log)[settled[name]:]), name
    summaries = {name: next(line for line in consumer_log(log) if " applied " in line) for name, log in logs.items()}
    for name in ("balances-a", "balances-b", standby):
        applied = int(summaries[name].split(" applied ")[1].split()[0])
        assert applied > 0, summaries[name]
        assert not summaries[name].endswith("partitions held: none"), summaries[name]
    fresh = fresh_digests(app, tmp_path)
    assert {n: d for n, d in view_digests(app, views).items() if n in ("balances", "journal")} == {
        n: d for n, d in fresh.items() if n in ("balances", "journal")}
    app.close()


def test_after_the_broker_lost_everything_the_relay_publishes_again_and_the_consumers_catch_up(
        own_ledger: Ledger, own_broker: TansuBroker, tmp_path: Path) -> None:
    """The broker is killed during a workload; commands keep being stored; a new, empty broker starts on the same
    port; the relay sees that the topic lost what it had published and publishes again from the store; the
    consumers end at the in-process rebuild's digests (nothing lost, nothing applied twice)."""
    topic = new_topic()
    bootstrap = own_broker.bootstrap
    app = own_ledger.app(bootstrap, topic)
    env = own_ledger.env(bootstrap, topic)
    views = views_store(app.settings)
    logs = {name: tmp_path / f"{name}.log" for name in ("relay", "balances", "journal")}
    processes = {}
    with Workload(app) as workload:
        for name, log in logs.items():
            with log.open("wb") as handle:
                args = ("kafka", "relay", "--interval", "0.1") if name == "relay" else ("kafka", "consume", name)
                processes[name] = cli(env, *args, log=handle)
        wait_for(lambda: len([v for v in stored_positions(app, views, ["balances", "journal"]).values() if v]) == P + 1,
                 90, "the consumers to apply events")
        own_broker.stop()
        stored_before = app.recorder.max_notification_id() or 0
        time.sleep(4)
        assert (app.recorder.max_notification_id() or 0) > stored_before, "commands stopped with the broker"
        own_broker.start()
        wait_for(lambda: any("the topic lost what was published" in line for line in consumer_log(logs["relay"])),
                 60, "the relay to notice the lost topic")
        time.sleep(2)
    expected = {k: v for k, v in final_positions(app).items() if k.split(" ")[0] in ("balances", "journal")}

    def state() -> str:
        tails = "\n".join(f"--- {name} (exit {processes[name].poll()}):\n" + "\n".join(consumer_log(log)[-15:])
                          for name, log in logs.items())
        return f"expected {expected}\nstored {stored_positions(app, views, ['balances', 'journal'])}\n{tails}"

    wait_for(lambda: stored_positions(app, views, ["balances", "journal"]) == expected, 120,
             "the consumers to catch up", state)
    for process in processes.values():
        process.send_signal(signal.SIGTERM)
        assert finished(process)[0] == 0
    fresh = fresh_digests(app, tmp_path)
    assert view_digests(app, views)["balances"] == fresh["balances"]
    assert view_digests(app, views)["journal"] == fresh["journal"]
    assert workload.accepted > 0
    app.close()


def joins_behind_another_partition(app: LedgerApplication) -> None:
    """New joins, until one of partition 0 follows, in the global order, an event of another partition."""
    plan = prepaid_plan(app)
    another = behind = False
    while not behind:
        member = app.execute(Join(command_id=f"k-{uuid.uuid4()}", plan=plan, age_years=30, sex="f", province="zj",
                                  consent_commitment=commitment("consent"),
                                  health_declaration_commitment=commitment("health")))["member"]
        partition = partition_of(str(member), P)
        behind = another and partition == 0
        another = another or partition != 0


def test_a_member_that_keeps_the_whole_topic_across_a_rebalance_reads_on_from_where_it_had_handled(
        own_ledger: Ledger, kafka_bootstrap: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The member holding a total-order read model holds messages of partition 0 that the merge cannot apply yet,
    and has paused every partition (as when its buffers are full), when a second member joins the group. It keeps
    the whole topic: it reads on, and reads the held messages again from the topic (nothing from the store), however
    the client carried its partitions' positions and pauses across the rebalance. The newcomer stands by."""
    caplog.set_level(logging.INFO, logger="kafka.coordinator.heartbeat")
    topic = new_topic()
    app = own_ledger.app(kafka_bootstrap, topic)
    relay = Relay(app, kafka_bootstrap, topic, P)
    relay.publish_pending()
    views = views_store(app.settings)
    holder = ProjectionConsumer("journal", app, views, kafka_bootstrap, topic, "g7", P)
    holder.run(until_caught_up=True, deadline_seconds=60)
    every = [TopicPartition(topic, p) for p in range(P)]
    holder.consumer.pause(*every[1:])
    joins_behind_another_partition(app)
    relay.publish_pending()
    relay.close()
    wait_for(lambda: holder.poll_once(200) >= 0 and bool(holder.buffers[0]), 30, "partition 0's messages held")
    holder.consumer.pause(*every)
    newcomer = ProjectionConsumer("journal", app, views, kafka_bootstrap, topic, "g7", P)
    standing_by = threading.Thread(target=newcomer.run)
    standing_by.start()
    try:
        wait_for(lambda: any("rebalancing" in record.getMessage() for record in caplog.records), 30,
                 "the holder to hear of the rebalance")
        holder.run(until_caught_up=True, deadline_seconds=60)
    finally:
        newcomer.stop()
        standing_by.join()
        newcomer.close()
        holder.close()
    assert holder.held == set(range(P)) and newcomer.held == set()
    assert holder.from_store == 0
    assert stored_positions(app, views, ["journal"]) == {"journal": final_positions(app)["journal"]}
    assert view_digests(app, views)["journal"] == fresh_digests(app, tmp_path)["journal"]
    app.close()


def test_a_topic_or_views_of_another_partition_count_are_refused(demo_dir: Path, kafka_bootstrap: str,
                                                                 tmp_path: Path) -> None:
    topic = new_topic()
    ensure_topic(kafka_bootstrap, topic, 1)
    ledger = Ledger(demo_dir, None, f"sqlite:///{tmp_path / 'views.sqlite3'}")
    env = ledger.env(kafka_bootstrap, topic)
    message = f"LEDGER_KAFKA_PARTITIONS: topic {topic} has 1 partitions, the configuration says {P}"
    for args in (("kafka", "relay", "--once"), ("kafka", "consume", "balances")):
        code, stderr = finished(cli(env, *args), 60)
        assert code == 2 and message in stderr, stderr
    code, stderr = finished(cli({**env, "LEDGER_KAFKA_PARTITIONS": "0"}, "kafka", "relay", "--once"), 60)
    assert code == 2 and "LEDGER_KAFKA_PARTITIONS: must_be_a_whole_number_in_range (1 to 1024 (0))" in stderr, stderr
    assert "Traceback" not in stderr
    app = ledger.app(kafka_bootstrap, topic)
    views = views_store(app.settings)
    PROJECTIONS[0](app, views, "balances partition 0/2").apply_batch(list(app.entries())[:1])
    with pytest.raises(ValueError, match=r"^LEDGER_KAFKA_PARTITIONS: the views hold balances by 2 partitions"):
        ProjectionConsumer("balances", app, views, kafka_bootstrap, new_topic(), "g6", P)
    app.close()


def test_an_assignment_made_without_the_topic_tells_every_member_it_was_given_nothing() -> None:
    """After a broker came back empty, the group's leader may assign before the topic exists again: every member gets
    nothing, and each one — the leader as well as the others — learns it from the assignment it receives, whatever
    its own metadata says by the time it is told, so that it joins again."""
    members = [JoinGroupResponse.JoinGroupResponseMember(
        member_id=member, metadata=ConsumerProtocolSubscription(version=0, topics=["events"], user_data=b""))
        for member in ("m1", "m2")]
    for kind in (RangeAssignor, WholeTopicAssignor):
        assignment = kind().assign(ClusterMetadata(), members)
        assert sorted(assignment) == ["m1", "m2"], kind.__name__
        for member, sent in assignment.items():
            received = ConsumerProtocolAssignment.decode(sent.encode())
            assignor = kind()
            assignor.on_assignment(received, 1)
            assert not received.partitions(), (kind.__name__, member)
            assert assignor.assigned_without_topic, (kind.__name__, member)


@pytest.mark.postgres
def test_connections_the_database_ended_leave_the_writer_the_relay_and_the_consumers_running(
        postgres_url: str, kafka_bootstrap: str, tmp_path: Path) -> None:
    """Seed 2 of the fault simulation on PostgreSQL, and every PostgreSQL seed after it: `pg_terminate_backend` of
    every connection to the store and the views ended the writer, the relay and the consumers (`OperationalError:
    terminating connection due to administrator command`) until something started them again. Now the writer runs
    its batch again on a new connection, and the relay and the consumers reconnect and carry on: each keeps
    running, and the views end equal to a rebuild (nothing lost, nothing applied twice)."""
    with new_database(postgres_url, "t_ledger") as url, new_database(postgres_url, "t_views") as views_url:
        writer = new_ledger(tmp_path, url, signing_workers=0)
        plan = create_plan(writer, prepaid_rules())
        app = writer.app
        topic = new_topic()
        env = Ledger(tmp_path / "operator", url, views_url).env(kafka_bootstrap, topic)
        views = views_store(Settings(data_dir=tmp_path / "operator", views_url=views_url))
        names = ["balances", "journal"]
        logs = {name: tmp_path / f"{name}.log" for name in ("relay", *names)}
        processes = {}
        for name, log in logs.items():
            with log.open("wb") as handle:
                args = ("kafka", "relay", "--interval", "0.1") if name == "relay" else ("kafka", "consume", name)
                processes[name] = cli(env, *args, log=handle)

        def members(count: int) -> None:
            for _ in range(count):
                member = join(writer, plan)
                deposit(writer, member, 5_000)

        def caught_up() -> bool:
            expected = {k: v for k, v in final_positions(app).items() if k.split(" ")[0] in names}
            return stored_positions(app, views, names) == expected

        members(3)
        wait_for(caught_up, 120, "the consumers to apply the first events")
        for database in (url, views_url):
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                             (database.rsplit("/", 1)[1],))
        replace_lost_connections(views.datastore)  # this test's own reading connections went too
        members(3)  # the writer's pooled connections were ended: its batches run again on new ones
        wait_for(caught_up, 120, "the consumers to apply what was written after the connections ended")
        for name, process in processes.items():
            assert process.poll() is None, f"{name} ended: {consumer_log(logs[name])[-3:]}"
            assert any("database connection lost" in line for line in consumer_log(logs[name])), name
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
            assert finished(process)[0] == 0
        fresh = fresh_digests(app, tmp_path)
        assert {name: view_digests(app, views)[name] for name in names} == {name: fresh[name] for name in names}
        writer.close()
