"""Signed appends on PostgreSQL against raw psycopg inserts of the same rows, in the same run.

The ledger's rate: joins into one plan through `execute_many` in batches (each join one new signed stream, its
receipt in the same transaction), with the default signing workers. The baseline: the very rows the ledger stored
(stream, seq, topic, signed envelope), read back and inserted with psycopg into a table of the same shape, in
batches of the same size, one transaction per batch (`executemany`, which psycopg pipelines). Target: ledger /
raw >= 0.5. Each round measures both, one after the other, and the ratio is taken within a round (this machine's
rates drift).

Usage: python -m bench.postgres_append [--url postgresql://postgres@127.0.0.1:5432/postgres] [--events 20000]
       [--batch 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from ledger.application import SimulatedClock
from ledger.config import Settings
from ledger.service import ledger_with_parties
from schemas.commands.membership import Join
from schemas.commands.plan import CreatePlan
from sim.fixtures import commitment, rules
from sim.services import fresh_schema


def ledger_rate(directory: Path, url: str, events: int, batch: int) -> tuple[float, list[tuple[Any, ...]]]:
    """Joins per second through `execute_many` on PostgreSQL, and the rows it stored."""
    app = ledger_with_parties(directory, SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC)), url,
                              signing_workers=Settings(data_dir=Path()).signing_workers)
    plan = app.execute(CreatePlan(command_id="bench-plan", name="Bench", kind="cancer", rules=rules()))["plan"]
    consent, health = commitment("consent"), commitment("health")
    commands = [Join(command_id=f"j-{i}", plan=plan, age_years=20 + i % 39, sex="f" if i % 2 else "m",
                     province="zj", consent_commitment=consent, health_declaration_commitment=health)
                for i in range(events)]
    first = (app.app.recorder.max_notification_id() or 0) + 1
    start = time.perf_counter()
    for offset in range(0, events, batch):
        app.execute_many(commands[offset:offset + batch])
    elapsed = time.perf_counter() - start
    app.close()
    schema = url.split("schema=")[1]
    with psycopg.connect(url.split("?")[0]) as conn:
        rows = conn.execute(f'SELECT originator_id, originator_version, topic, state FROM "{schema}".ledger_events '
                            "WHERE notification_id >= %s ORDER BY notification_id", (first,)).fetchall()
    assert len(rows) == events, (len(rows), events)
    return events / elapsed, rows


def raw_rate(url: str, rows: list[tuple[Any, ...]], batch: int) -> float:
    """Rows per second inserted with psycopg into a table of the events' shape, one transaction per batch."""
    schema = url.split("schema=")[1]
    table = f'"{schema}".raw_events'
    with psycopg.connect(url.split("?")[0]) as conn:
        conn.execute(f"CREATE TABLE {table} (originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                     "topic text, state bytea, notification_id bigserial, PRIMARY KEY (originator_id, "
                     "originator_version))")
        conn.execute(f"CREATE UNIQUE INDEX ON {table} (notification_id)")
        conn.commit()
        start = time.perf_counter()
        for offset in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
                                   "VALUES (%s, %s, %s, %s)", rows[offset:offset + batch])
        return len(rows) / (time.perf_counter() - start)


def main() -> None:
    """Alternate the two measurements for a few rounds; print each round and the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"events: {args.events}, batch: {args.batch}")
    print("round | ledger signed appends/s | raw psycopg inserts of the same rows/s | ledger / raw")
    ratios: list[float] = []
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp, fresh_schema(args.url) as url:
            signed, rows = ledger_rate(Path(tmp), url, args.events, args.batch)
            raw = raw_rate(url, rows, args.batch)
        ratios.append(signed / raw)
        print(f"{number:5d} | {signed:8.0f} | {raw:8.0f} | {signed / raw:.2f}", flush=True)
    print(f"median ledger / raw psycopg: {statistics.median(ratios):.2f}  (target >= 0.50)")


if __name__ == "__main__":
    main()
