"""Consumer scale-out benchmark: the per-member read model fed from Kafka by one consumer, then by N shards at once.

A postpaid plan gets `--members` members through the application (one signed `member.joined` each: the per-member
work of a plan's growth); the relay publishes the store to a topic on a Kafka-protocol broker (the suite's broker:
`LEDGER_TEST_KAFKA_BOOTSTRAP`, testcontainers, or the Tansu binary). Then, each into its own empty views
database, as `mutual-ledger consume balances --until-caught-up` processes:

- one consumer (no shard);
- `--shards` consumers `--shard K/N` started together.

Each run is timed from the processes' start to the last one's exit (group join included), so the figure is what an
operator sees; every message is verified (signature, key, schema, chain, index) before it is applied. The views
digests of both runs must equal the in-process rebuild. Reported: events/s of each, and the speed-up.

Usage: python -m bench.consumers [--members 100000] [--shards 2]
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


def timed_consumers(env: dict[str, str], views: Path, shards: int) -> float:
    """Seconds from starting the consumers (one, or `shards` shards) until the last has caught up."""
    env = {**os.environ, **env, "LEDGER_VIEWS_URL": f"sqlite:///{views}"}
    parts = [[]] if shards == 1 else [["--shard", f"{k}/{shards}"] for k in range(shards)]
    start = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "ledger.cli", "consume", "balances", "--until-caught-up",
                                   "--group", f"bench-{uuid.uuid4().hex[:8]}", *part], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for part in parts]
    for process in processes:
        if process.wait(timeout=3600) != 0:
            raise SystemExit(process.stderr.read().decode() if process.stderr else "a consumer failed")
    return time.perf_counter() - start


def main() -> None:
    """Build, publish, consume twice, print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args()
    from bench.projections import populate
    from consumers.relay import Relay
    from consumers.views import views_store
    from ledger.application import LedgerApplication
    from ledger.config import Settings
    from ledger.projections.balances import Balances
    from tests.services import kafka_server

    with tempfile.TemporaryDirectory() as tmp, kafka_server() as bootstrap:
        data = Path(tmp) / "data"
        populate(data, args.members)
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        app = LedgerApplication(Settings(data_dir=data))
        relay = Relay(app, bootstrap, topic)
        start = time.perf_counter()
        while relay.publish_pending(5000):
            pass
        publish_seconds = time.perf_counter() - start
        relay.close()
        events = app.recorder.max_notification_id() or 0
        env = {"LEDGER_DATA_DIR": str(data), "LEDGER_KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LEDGER_KAFKA_TOPIC": topic}
        one = timed_consumers(env, Path(tmp) / "one.sqlite3", 1)
        many = timed_consumers(env, Path(tmp) / "many.sqlite3", args.shards)
        fresh = Balances(app, views_store(Settings(data_dir=data, views_url=f"sqlite:///{tmp}/fresh.sqlite3")))
        fresh.catch_up()
        expected = fresh.digest()
        for name in ("one", "many"):
            views = views_store(Settings(data_dir=data, views_url=f"sqlite:///{tmp}/{name}.sqlite3"))
            if Balances(app, views).digest() != expected:
                raise SystemExit(f"{name}: the Kafka-fed balances differ from the in-process rebuild")
        app.close()
    print(f"{events:,} events published in {publish_seconds:.1f} s ({events / publish_seconds:,.0f}/s); "
          f"{os.cpu_count()} cores")
    print(f"balances, one consumer: {one:.1f} s = {events / one:,.0f} events/s")
    print(f"balances, {args.shards} shards at once: {many:.1f} s = {events / many:,.0f} events/s; "
          f"speed-up {one / many:.2f}x; digests equal the in-process rebuild")


if __name__ == "__main__":
    main()
