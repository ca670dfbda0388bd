"""Pipeline benchmark: the event store through the relay and Kafka into the balances read model, every message
verified and applied, against raw kafka-python on the same broker in the same run.

On the suite's broker (`sim.services.kafka_server`: LEDGER_TEST_KAFKA_BOOTSTRAP, testcontainers' Kafka, or the
Tansu binary) with the embedded default (SQLite event store and views):

1. **Throughput.** A plan with `--members` members (one signed `member.joined` each). A `consume balances` process
   joins a new group first; then the relay (in this process) publishes the store while the consumer verifies and
   applies, as deployed: timed from the relay's first read to the last event applied (the views polled every 20 ms).
   Then the stages one after the other: the relay alone, then a new consumer timed from the moment it joined its
   group. Then concurrently again with two consumers in one group, which split the partitions. Baseline:
   kafka-python producing the same messages (the store's entries, with their partitions and headers) with the
   relay's producer settings, flushed, then consuming them from assigned partitions with the consumers' poll size.
   Reported: events/s and the ratio of each to the baseline's produce-then-consume rate (target >= 0.5).
2. **Lag.** A plan with 1,000 members; `consume balances` and `relay --interval I` processes; this process commits
   joins at `--lag-rate` events/s (a batch every 10 ms) for `--lag-seconds`, and watches the views (every 5 ms) for the
   partition position that covers each event: lag = applied - committed, p50 and p99 (the first second left out).
3. **Scale-out.** A plan with `--plan-members` members (their joins) and one assessed period (one signed
   `period.assessed`, one row in balances), published; then consumed by one `consume balances` process, and by two
   in one group started together, each into empty views, timed from the processes' start to the last one's exit
   (group join included), digests checked against the in-process rebuild (bench.consumers).

The machine running it may be shared: figures are indicative; run it twice.

Usage: python -m bench.pipeline [--members 100000] [--lag-rate 1000] [--lag-seconds 25] [--relay-interval 0.05]
                                [--plan-members 1000000] [--parts throughput lag scale]
"""

from __future__ import annotations

import argparse
import bisect
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

import orjson
from kafka import KafkaConsumer, TopicPartition

from bench.consumers import timed_consumers
from bench.projections import START, period_phase, populate
from consumers.relay import Relay, producer
from consumers.topic import ensure_topic, entry_partitions, message_headers, partition_of
from consumers.views import views_store
from ledger.application import LedgerApplication, SimulatedClock
from ledger.bootstrap import bootstrap as open_ledger
from ledger.config import Settings
from ledger.projections.balances import Balances
from ledger.projections.sql import SqlStore
from ledger.service import ledger_with_parties
from schemas.commands.membership import Join
from sim.fixtures import commitment

PARTITIONS = Settings(data_dir=Path()).kafka_partitions


def lane_targets(app: LedgerApplication) -> dict[str, int]:
    """The position of every partition of balances once everything stored is applied."""
    last = [0] * PARTITIONS
    for index, entry in app.entries(1, 5000):
        for partition in entry_partitions(entry, PARTITIONS):
            last[partition] = index
    return {f"balances partition {p}/{PARTITIONS}": last[p] for p in range(PARTITIONS)}


def positions(views: SqlStore) -> dict[str, int]:
    """The positions recorded in the views."""
    with views.transaction(commit=False) as cursor:
        rows = cursor.execute(f"SELECT name, position FROM {views.table('projection_tracking')}").fetchall()
    return {str(name): int(position) for name, position in rows}


def wait_applied(views: SqlStore, targets: dict[str, int], timeout: float = 3600) -> float:
    """The monotonic time at which the views reached `targets` (polled every 20 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        found = positions(views)
        if all(found.get(name, 0) >= position for name, position in targets.items()):
            return time.monotonic()
        if time.monotonic() > deadline:
            raise SystemExit(f"the consumer did not apply everything: {found} < {targets}")
        time.sleep(0.02)


def start(env: dict[str, str], log: IO[bytes], *args: str) -> subprocess.Popen[bytes]:
    """A `mutual-ledger kafka …` process (the relay or a consumer)."""
    return subprocess.Popen([sys.executable, "-m", "ledger.cli", "kafka", *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=log)


def joined(logs: list[Path], timeout: float = 120) -> float:
    """The monotonic time at which every consumer's log says the group gave it partitions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = [[line for line in log.read_text().splitlines() if line.startswith("balances: partitions")]
                  for log in logs]
        if all(lines and not lines[-1].endswith(f"none of {PARTITIONS}") for lines in latest):
            return time.monotonic()
        time.sleep(0.02)
    raise SystemExit(f"the consumers did not join their group: {[log.read_text() for log in logs]}")


def consumer_env(data: Path, bootstrap: str, topic: str, views: Path) -> dict[str, str]:
    """The environment of the ledger's processes."""
    return {"LEDGER_DATA_DIR": str(data / "operator"), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "LEDGER_KAFKA_TOPIC": topic, "LEDGER_VIEWS_URL": f"sqlite:///{views}"}


def raw_kafka(bootstrap: str, app: LedgerApplication) -> tuple[float, float, int]:
    """(produce seconds, consume seconds, messages) of kafka-python alone, for the store's own messages."""
    topic = f"raw-{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, topic, PARTITIONS)
    messages = []
    previous = [0] * PARTITIONS
    for index, entry in app.entries(1, 5000):
        stream = orjson.loads(entry)["stream"]
        for partition in entry_partitions(entry, PARTITIONS):
            messages.append((partition, stream.encode(), entry, message_headers(index, stream, previous[partition])))
            previous[partition] = index
    sender = producer(bootstrap)
    began = time.perf_counter()
    for partition, key, value, headers in messages:
        sender.send(topic, key=key, value=value, partition=partition, headers=headers)
    sender.flush()
    produced = time.perf_counter() - began
    sender.close()
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=2000)
    reader.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    reader.seek_to_beginning()
    began, received = time.perf_counter(), 0
    while received < len(messages):
        received += sum(len(batch) for batch in reader.poll(timeout_ms=1000).values())
    consumed = time.perf_counter() - began
    reader.close()
    return produced, consumed, len(messages)


def throughput(tmp: Path, bootstrap: str, members: int) -> None:
    """Part 1."""
    data = tmp / "throughput"
    populate(data, members)
    app = open_ledger(Settings(data_dir=data / "operator")).app
    events = app.recorder.max_notification_id() or 0
    targets = lane_targets(app)
    produced, consumed, messages = raw_kafka(bootstrap, app)
    raw = events / (produced + consumed)
    print(f"throughput over {events:,} events ({messages:,} messages: keyring events go to every partition), "
          f"{PARTITIONS} partitions, {os.cpu_count()} cores")
    print(f"  raw kafka-python: produce {messages / produced:,.0f} msg/s, consume {messages / consumed:,.0f} msg/s; "
          f"produce then consume {raw:,.0f} events/s")
    for mode, members_of_group in (("concurrent", 1), ("one after the other", 1),
                                   ("concurrent, two consumers in one group", 2)):
        topic = f"pipeline-{uuid.uuid4().hex[:8]}"
        views_path = tmp / f"views-{uuid.uuid4().hex[:8]}.sqlite3"
        env = consumer_env(data, bootstrap, topic, views_path)
        views = views_store(Settings(data_dir=data, views_url=f"sqlite:///{views_path}"))
        Balances(app, views)
        logs = [tmp / f"consumer-{uuid.uuid4().hex[:8]}.log" for _ in range(members_of_group)]
        relay = Relay(app, bootstrap, topic, PARTITIONS)
        handles = [log.open("wb") for log in logs]
        if mode.startswith("concurrent"):
            consumers = [start(env, handle, "consume", "balances", "--group", topic) for handle in handles]
            joined(logs)
            began = time.monotonic()
            relay.publish_pending(5000)
            published = time.monotonic() - began
            seconds = wait_applied(views, targets) - began
        else:
            began = time.monotonic()
            relay.publish_pending(5000)
            published = time.monotonic() - began
            consumers = [start(env, handle, "consume", "balances", "--group", topic) for handle in handles]
            applying = joined(logs)
            seconds = published + wait_applied(views, targets) - applying
        relay.close()
        for consumer, handle in zip(consumers, handles, strict=True):
            consumer.terminate()
            consumer.wait()
            handle.close()
        rate = events / seconds
        print(f"  pipeline, {mode}: relay {events / published:,.0f} events/s; store -> relay -> Kafka -> balances "
              f"{rate:,.0f} events/s = {rate / raw:.2f} x raw (target >= 0.5)")
    app.close()


@dataclass
class Watch:
    """Samples of the views' positions, taken every 5 ms from a thread."""

    views: SqlStore
    samples: dict[str, tuple[list[float], list[int]]] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stopping.is_set():
            now = time.monotonic()
            for name, position in positions(self.views).items():
                times, values = self.samples.setdefault(name, ([], []))
                if not values or position > values[-1]:
                    times.append(now)
                    values.append(position)
            time.sleep(0.005)

    def applied_at(self, lane: str, index: int) -> float | None:
        """When the lane's position first covered `index`."""
        times, values = self.samples.get(lane, ([], []))
        at = bisect.bisect_left(values, index)
        return times[at] if at < len(values) else None


def lag(tmp: Path, bootstrap: str, rate: int, seconds: float, interval: float) -> None:
    """Part 2."""
    data = tmp / "lag"
    plan, _ = populate(data, 1000)
    ledger = ledger_with_parties(data, SimulatedClock(START + timedelta(days=1)))
    app = ledger.app
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    views_path = tmp / "lag-views.sqlite3"
    env = consumer_env(data, bootstrap, topic, views_path)
    views = views_store(Settings(data_dir=data, views_url=f"sqlite:///{views_path}"))
    Balances(app, views)
    log = tmp / "lag-consumer.log"
    with log.open("wb") as consumer_log, (tmp / "lag-relay.log").open("wb") as relay_log:
        consumer = start(env, consumer_log, "consume", "balances", "--group", topic)
        relay = start(env, relay_log, "relay", "--interval", str(interval))
        joined([log])
        wait_applied(views, lane_targets(app))
        watch = Watch(views)
        watcher = threading.Thread(target=watch.run)
        watcher.start()
        committed: list[tuple[float, int, str]] = []
        consent, health = commitment("consent"), commitment("health")
        per_batch = max(1, rate // 100)
        began = time.monotonic()
        batch = 0
        while time.monotonic() - began < seconds:
            results = app.execute_many([Join(command_id=f"lag-{batch}-{i}", plan=plan, age_years=30, sex="f",
                                             province="zj", consent_commitment=consent,
                                             health_declaration_commitment=health) for i in range(per_batch)])
            now, last = time.monotonic(), app.recorder.max_notification_id() or 0
            streams = [str(result["member"]) for result in results]
            committed.extend((now, last - len(streams) + 1 + k, stream) for k, stream in enumerate(streams))
            batch += 1
            time.sleep(max(0.0, began + batch * 0.01 - time.monotonic()))
        elapsed = time.monotonic() - began
        wait_applied(views, lane_targets(app))
        time.sleep(0.05)
        watch.stopping.set()
        watcher.join()
        for process in (consumer, relay):
            process.terminate()
            process.wait()
    lags = []
    for moment, index, stream in committed:
        if moment - began < 1.0:
            continue
        applied = watch.applied_at(f"balances partition {partition_of(stream, PARTITIONS)}/{PARTITIONS}", index)
        assert applied is not None
        lags.append((applied - moment) * 1000)
    lags.sort()
    print(f"lag at {len(committed) / elapsed:,.0f} events/s for {elapsed:.0f} s (relay --interval {interval}): "
          f"p50 {statistics.median(lags):.0f} ms, p99 {lags[int(len(lags) * 0.99)]:.0f} ms, max {lags[-1]:.0f} ms "
          f"over {len(lags):,} events")
    app.close()


def scale(tmp: Path, bootstrap: str, members: int) -> None:
    """Part 3."""
    data = tmp / "scale"
    began = time.perf_counter()
    plan, _ = populate(data, members)
    period = period_phase(data, plan, 1)
    built = time.perf_counter() - began
    app = open_ledger(Settings(data_dir=data / "operator")).app
    events = app.recorder.max_notification_id() or 0
    topic = f"scale-{uuid.uuid4().hex[:8]}"
    relay = Relay(app, bootstrap, topic, PARTITIONS)
    began = time.perf_counter()
    relay.publish_pending(5000)
    published = time.perf_counter() - began
    relay.close()
    env = {"LEDGER_DATA_DIR": str(data / "operator"), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "LEDGER_KAFKA_TOPIC": topic}
    one, _ = timed_consumers(env, tmp / "scale-one.sqlite3", 1)
    two, summaries = timed_consumers(env, tmp / "scale-two.sqlite3", 2)
    fresh = Balances(app, views_store(Settings(data_dir=data, views_url=f"sqlite:///{tmp}/scale-fresh.sqlite3")))
    fresh.catch_up()
    for name in ("one", "two"):
        views = views_store(Settings(data_dir=data, views_url=f"sqlite:///{tmp}/scale-{name}.sqlite3"))
        if Balances(app, views).digest() != fresh.digest():
            raise SystemExit(f"{name}: the Kafka-fed balances differ from the in-process rebuild")
    app.close()
    print(f"scale-out: {members:,} members and one period assessed at {period['locked']:,.0f} locked "
          f"({events:,} events, built in {built:.0f} s), published in {published:.0f} s "
          f"({events / published:,.0f} events/s)")
    print(f"  balances, one consumer: {one:.1f} s ({events / one:,.0f} events/s); two in one group: {two:.1f} s "
          f"({events / two:,.0f} events/s); speed-up {one / two:.2f}x; digests equal the in-process rebuild")
    for line in summaries:
        print(f"    {line}")


def main() -> None:
    """Run the parts asked for and print their figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--lag-rate", type=int, default=1000)
    parser.add_argument("--lag-seconds", type=float, default=25)
    parser.add_argument("--relay-interval", type=float, default=0.05)
    parser.add_argument("--plan-members", type=int, default=1_000_000)
    parser.add_argument("--parts", nargs="+", choices=("throughput", "lag", "scale"),
                        default=["throughput", "lag", "scale"])
    args = parser.parse_args()
    from sim.services import kafka_server

    with tempfile.TemporaryDirectory() as tmp, kafka_server() as bootstrap:
        if "throughput" in args.parts:
            throughput(Path(tmp), bootstrap, args.members)
        if "lag" in args.parts:
            lag(Path(tmp), bootstrap, args.lag_rate, args.lag_seconds, args.relay_interval)
        if "scale" in args.parts:
            scale(Path(tmp), bootstrap, args.plan_members)


if __name__ == "__main__":
    main()
