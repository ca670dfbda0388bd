"""The distributed path with a real Kafka-protocol broker: relay, verifying consumers, crashes, gaps, forgeries."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from consumers.consumer import MessageRejectedError, ProjectionConsumer
from consumers.relay import Relay
from ledger.application import LedgerApplication, SimulatedClock
from ledger.config import Settings
from ledger.demo import DEMO_START, run_demo
from ledger.projections import PROJECTIONS
from ledger.projections.sql import SqlStore

pytestmark = pytest.mark.kafka
NAMES = [p.NAME for p in PROJECTIONS]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo history on the embedded default."""
    data = tmp_path_factory.mktemp("kafka-demo")
    app = LedgerApplication(Settings(data_dir=data), SimulatedClock(DEMO_START))
    run_demo(app, members=150, periods=1, seed=21)
    app.close()
    return data


def settings(data: Path, bootstrap: str, topic: str, views: Path) -> Settings:
    return Settings(data_dir=data, kafka_bootstrap_servers=bootstrap, kafka_topic=topic,
                    views_url=f"sqlite:///{views}")


def fresh_digests(app: LedgerApplication, tmp: Path) -> dict[str, str]:
    from eventsourcing.sqlite import SQLiteDatastore

    sql = SqlStore(SQLiteDatastore(str(tmp / f"fresh-{uuid.uuid4().hex}.sqlite3")))
    digests = {}
    for projection_class in PROJECTIONS:
        projection = projection_class(app, sql)
        projection.catch_up()
        digests[projection.NAME] = projection.digest()
    return digests


def consume_all(app: LedgerApplication, views: SqlStore, bootstrap: str, topic: str, group: str) -> dict[str, str]:
    digests = {}
    for name in NAMES:
        consumer = ProjectionConsumer(name, app, views, bootstrap, topic, f"{group}-{name}")
        consumer.run(until_caught_up=True, deadline_seconds=120)
        digests[name] = consumer.projection.digest()
        consumer.close()
    return digests


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "ledger.cli", *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kafka_fed_read_models_equal_the_in_process_rebuild(demo_dir: Path, kafka_bootstrap: str,
                                                            tmp_path: Path) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    app = LedgerApplication(settings(demo_dir, kafka_bootstrap, topic, tmp_path / "views.sqlite3"))
    relay = Relay(app, kafka_bootstrap, topic)
    assert relay.publish_pending() == app.recorder.max_notification_id()
    relay.close()
    from consumers.views import views_store

    views = views_store(app.settings)
    assert consume_all(app, views, kafka_bootstrap, topic, "g1") == fresh_digests(app, tmp_path)
    app.close()


def test_a_relay_killed_at_random_points_loses_and_reorders_nothing(demo_dir: Path, kafka_bootstrap: str,
                                                                    tmp_path: Path) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    env = {"LEDGER_DATA_DIR": str(demo_dir), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "LEDGER_KAFKA_TOPIC": topic}
    rng = random.Random(5)
    for _ in range(3):
        process = cli(env, "relay", "--batch", "25", "--interval", "0.05")
        time.sleep(rng.uniform(1.5, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    finisher = cli(env, "relay", "--once")
    assert finisher.wait(timeout=120) == 0, finisher.stderr.read() if finisher.stderr else ""
    app = LedgerApplication(settings(demo_dir, kafka_bootstrap, topic, tmp_path / "views.sqlite3"))
    from consumers.views import views_store

    assert consume_all(app, views_store(app.settings), kafka_bootstrap, topic, "g2") == fresh_digests(app, tmp_path)
    app.close()


def test_a_consumer_killed_mid_batch_resumes_without_duplicate_effects(demo_dir: Path, kafka_bootstrap: str,
                                                                      tmp_path: Path) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    views_path = tmp_path / "views.sqlite3"
    app = LedgerApplication(settings(demo_dir, kafka_bootstrap, topic, views_path))
    relay = Relay(app, kafka_bootstrap, topic)
    relay.publish_pending()
    relay.close()
    env = {"LEDGER_DATA_DIR": str(demo_dir), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "LEDGER_KAFKA_TOPIC": topic, "LEDGER_VIEWS_URL": f"sqlite:///{views_path}"}
    process = cli(env, "consume", "balances", "--group", "g3")
    time.sleep(6)  # joined the group and applying
    process.send_signal(signal.SIGKILL)
    process.wait()
    finisher = cli(env, "consume", "balances", "--group", "g3", "--until-caught-up")
    assert finisher.wait(timeout=180) == 0, finisher.stderr.read() if finisher.stderr else ""
    from consumers.views import views_store

    views = views_store(app.settings)
    live = PROJECTIONS[0](app, views)
    assert live.NAME == "balances"
    assert live.digest() == fresh_digests(app, tmp_path)["balances"]
    app.close()


def test_a_gap_is_filled_from_the_store_and_a_forged_message_is_never_applied(
        demo_dir: Path, kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"events-{uuid.uuid4().hex[:8]}"
    app = LedgerApplication(settings(demo_dir, kafka_bootstrap, topic, tmp_path / "views.sqlite3"))
    from consumers.relay import ensure_topic

    ensure_topic(kafka_bootstrap, topic)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    entries = list(app.entries())
    for notification_id, entry in entries[200:]:  # the broker "lost" the first 200
        producer.send(topic, value=entry, headers=[("notification_id", str(notification_id).encode())])
    producer.flush()
    from consumers.views import views_store

    views = views_store(app.settings)
    digests = consume_all(app, views, kafka_bootstrap, topic, "g4")
    assert digests == fresh_digests(app, tmp_path)
    forged: Any = entries[-1][1].replace(b'"v":1', b'"v":1', 1)[:-2] + b"0}"
    producer.send(topic, value=forged, headers=[("notification_id", str(entries[-1][0] + 1).encode())])
    producer.flush()
    consumer = ProjectionConsumer("journal", app, views, kafka_bootstrap, topic, "g4-journal")
    position = consumer.projection.position()
    with pytest.raises(MessageRejectedError):
        consumer.run(until_caught_up=True, deadline_seconds=60)
    assert consumer.projection.position() == position
    consumer.close()
    producer.close()
    app.close()


def test_shards_of_the_per_member_read_models_in_parallel_build_what_one_consumer_builds(
        demo_dir: Path, kafka_bootstrap: str, tmp_path: Path) -> None:
    """Two `consume balances --shard K/2` processes and two of `cases`, run at once, one of them killed and
    restarted: the views database ends equal to the in-process rebuild; every shard reaches the last event."""
    topic = f"events-{uuid.uuid4().hex[:8]}"
    views_path = tmp_path / "views.sqlite3"
    app = LedgerApplication(settings(demo_dir, kafka_bootstrap, topic, views_path))
    relay = Relay(app, kafka_bootstrap, topic)
    relay.publish_pending()
    relay.close()
    env = {"LEDGER_DATA_DIR": str(demo_dir), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "LEDGER_KAFKA_TOPIC": topic, "LEDGER_VIEWS_URL": f"sqlite:///{views_path}"}
    victim = cli(env, "consume", "balances", "--shard", "1/2")
    time.sleep(5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    runs = [cli(env, "consume", name, "--shard", f"{k}/2", "--until-caught-up")
            for name in ("balances", "cases") for k in (0, 1)]
    for process in runs:
        assert process.wait(timeout=240) == 0, process.stderr.read() if process.stderr else ""
    from consumers.consumer import Shard
    from consumers.views import views_store

    views = views_store(app.settings)
    fresh = fresh_digests(app, tmp_path)
    last = app.recorder.max_notification_id()
    for projection_class in PROJECTIONS:
        if projection_class.STREAM_LOCAL:
            assert projection_class(app, views).digest() == fresh[projection_class.NAME]
            for k in (0, 1):
                shard = projection_class(app, views, f"{projection_class.NAME} {Shard(k, 2)}")
                assert shard.position() == last
    app.close()


def test_only_a_stream_local_read_model_can_be_sharded(demo_dir: Path, kafka_bootstrap: str, tmp_path: Path) -> None:
    app = LedgerApplication(settings(demo_dir, kafka_bootstrap, "unused", tmp_path / "views.sqlite3"))
    from consumers.consumer import Shard
    from consumers.views import views_store

    views = views_store(app.settings)
    for name in ("journal", "periods"):
        with pytest.raises(ValueError, match=rf"^shard: {name} combines events of several streams"):
            ProjectionConsumer(name, app, views, kafka_bootstrap, "unused", "g", shard=Shard(0, 2))
    result = subprocess.run([sys.executable, "-m", "ledger.cli", "consume", "balances", "--shard", "2/2"],
                            env={**os.environ, "LEDGER_DATA_DIR": str(demo_dir),
                                 "LEDGER_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2
    assert "shard: must be K/N with 0 <= K < N (2/2)" in result.stderr
    app.close()
