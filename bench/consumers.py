"""Consumer scale-out benchmark: the per-member read model fed from Kafka by groups of 1, 2, 4, … consumers.

A postpaid plan gets `--members` members through the application (one signed `member.joined` each: the per-member
work of a plan's growth); the relay publishes the store to a topic on a Kafka-protocol broker (the suite's broker:
`LEDGER_TEST_KAFKA_BOOTSTRAP`, testcontainers, or the Tansu binary). Then, each into its own empty views
database, as `mutual-ledger consume balances --until-caught-up` processes:

- for each count of `--consumers` (default 1 2 4), that many consumers started together in one new group, which
  split the topic's partitions between them (4 by default: a fifth consumer would stand by).

Each run is timed from the processes' start to the last one's exit (group join included), so the figure is what an
operator sees; every message is verified (signature, key, schema, chain, index) before it is applied. The views
digests of every run must equal the in-process rebuild. Reported: events/s of each, and the speed-up over one.

Usage: python -m bench.consumers [--members 100000] [--consumers 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def timed_consumers(env: dict[str, str], views: Path, count: int) -> tuple[float, list[str]]:
    """Seconds from starting `count` `consume balances` processes in one new group until the last has caught up,
    and each one's summary line (what it applied, from which partitions)."""
    env = {**os.environ, **env, "LEDGER_VIEWS_URL": f"sqlite:///{views}"}
    group = f"bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "ledger.cli", "kafka", "consume", "balances",
                                   "--until-caught-up", "--group", group], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE)
                 for _ in range(count)]
    summaries = []
    for process in processes:
        _, stderr = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise SystemExit(stderr.decode())
        summaries.append(next(line for line in stderr.decode().splitlines() if " applied " in line))
    return time.perf_counter() - start, summaries


def main() -> None:
    """Build, publish, consume twice, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    from bench.projections import populate
    from consumers.relay import Relay
    from consumers.views import views_store
    from ledger.bootstrap import bootstrap as bootstrap_ledger
    from ledger.config import Settings
    from ledger.projections.balances import Balances
    from sim.services import kafka_server

    with tempfile.TemporaryDirectory() as tmp, kafka_server() as bootstrap:
        data = Path(tmp) / "data"
        populate(data, args.members)
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        app = bootstrap_ledger(Settings(data_dir=data / "operator")).app
        relay = Relay(app, bootstrap, topic, Settings(data_dir=data).kafka_partitions)
        start = time.perf_counter()
        relay.publish_pending(5000)
        publish_seconds = time.perf_counter() - start
        relay.close()
        events = app.recorder.max_notification_id() or 0
        env = {"LEDGER_DATA_DIR": str(data / "operator"), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
               "LEDGER_KAFKA_TOPIC": topic}
        runs = [(count, *timed_consumers(env, Path(tmp) / f"group-{count}.sqlite3", count))
                 for count in args.consumers]
        fresh = Balances(app, views_store(Settings(data_dir=data, views_url=f"sqlite:///{tmp}/fresh.sqlite3")))
        fresh.catch_up()
        expected = fresh.digest()
        for count, _, _ in runs:
            views = views_store(Settings(data_dir=data, views_url=f"sqlite:///{tmp}/group-{count}.sqlite3"))
            if Balances(app, views).digest() != expected:
                raise SystemExit(f"{count} consumers: the Kafka-fed balances differ from the in-process rebuild")
        app.close()
    print(f"{events:,} events published in {publish_seconds:.1f} s ({events / publish_seconds:,.0f}/s); "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    first = runs[0][1]
    for count, seconds, summaries in runs:
        print(f"balances, {count} consumer(s) in one group: {seconds:.1f} s = {events / seconds:,.0f} events/s; "
              f"speed-up over {runs[0][0]}: {first / seconds:.2f}x; digests equal the in-process rebuild")
        for line in summaries:
            print(f"  {line}")


if __name__ == "__main__":
    main()
