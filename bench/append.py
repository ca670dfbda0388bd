"""Signed events appended per second on SQLite through the real application path (`execute_many`).

Measured in the same run against two baselines:
  (a) the same workload through plain `eventsourcing` (same SQLite recorder, default JSON mapper, no signing);
  (b) the raw Ed25519 signing rate of `cryptography` on one core (prefix + 32-byte event hash, as the ledger signs).
Target: ledger rate >= 0.5 x (b). The ledger signs with libsodium (`ledger.keys.ed25519_sign`), whose raw rate is
printed too, with the ledger's ratio to it: that one says how much the ledger adds to the signatures themselves.
The workload is joins into one plan, each a new signed stream. The ledger is measured twice: with its default
signing workers (one per core beyond the first: signatures are made in a worker process while the batch's commands
run, `ledger.signing`) and with every signature made in-process.

Also times `mutual-ledger demo --members N --periods P` in a child process and reports its wall time and peak RSS.

Usage: python -m bench.append [--events 20000] [--batch 1000] [--rounds 3] [--demo-members 100000 --demo-periods 4]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ledger.application import SimulatedClock
from ledger.config import Settings
from ledger.keys import EVENT_SIGNATURE_PREFIX, SigningKey, ed25519_sign
from ledger.service import ledger_with_parties
from schemas.commands.membership import Join
from schemas.commands.plan import CreatePlan
from sim.fixtures import commitment, rules


def raw_signing_rate(seconds: float = 2.0) -> float:
    """Ed25519 signatures per second of `cryptography` on one core, over the ledger's signed message shape."""
    key = Ed25519PrivateKey.generate()
    digest = hashlib.sha256(b"event").digest()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            key.sign(EVENT_SIGNATURE_PREFIX + digest)
        count += 500
    return count / (time.perf_counter() - start)


def raw_libsodium_rate(seconds: float = 2.0) -> float:
    """The same with the ledger's own signing function (libsodium)."""
    secret = SigningKey.generate("bench", "operator").secret_key
    digest = hashlib.sha256(b"event").digest()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(500):
            ed25519_sign(secret, EVENT_SIGNATURE_PREFIX + digest)
        count += 500
    return count / (time.perf_counter() - start)


def ledger_rate(directory: Path, events: int, batch: int, workers: int) -> float:
    """Joins per second through the application's `execute_many` (each one signed event)."""
    app = ledger_with_parties(directory, SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC)), signing_workers=workers)
    plan = app.execute(CreatePlan(command_id="bench-plan", name="Bench", kind="cancer", rules=rules()))["plan"]
    consent, health = commitment("consent"), commitment("health")
    commands = [
        Join(command_id=f"j-{i}", plan=plan, age_years=20 + i % 39, sex="f" if i % 2 else "m", province="zj",
             consent_commitment=consent, health_declaration_commitment=health)
        for i in range(events)
    ]
    start = time.perf_counter()
    for offset in range(0, events, batch):
        app.execute_many(commands[offset:offset + batch])
    elapsed = time.perf_counter() - start
    app.close()
    return events / elapsed


class PlainMember(Aggregate):
    """The same join, as a plain eventsourcing aggregate (no envelope, no signature)."""

    @event("Joined")
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body


def plain_rate(directory: Path, events: int, batch: int) -> float:
    """Joins per second through plain `eventsourcing` on the same SQLite recorder."""
    app: Application[UUID] = Application({"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                          "SQLITE_DBNAME": str(directory / "plain.sqlite3")})
    body = {"plan": str(uuid4()), "rules_version": 1, "age_years": 30, "sex": "f", "province": "zj",
            "payer": None, "family_order": 0, "consent_commitment": commitment("consent"),
            "health_declaration_commitment": commitment("health")}
    start = time.perf_counter()
    for offset in range(0, events, batch):
        app.save(*[PlainMember(dict(body, age_years=20 + i % 39)) for i in range(offset, min(events, offset + batch))])
    elapsed = time.perf_counter() - start
    app.close()
    return events / elapsed


def main() -> None:
    """Run the measurements in alternating rounds and print each round's figures and the medians.

    This machine's rates drift by a fifth from one second to the next (other tenants, the disk's flush latency),
    so one measurement of each says little about their ratio: each round measures every rate once, one after the
    other, and the ratios are taken within a round.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--demo-members", type=int, default=0, help="also time the demo (0: skip)")
    parser.add_argument("--demo-periods", type=int, default=4)
    args = parser.parse_args()
    workers = Settings(data_dir=Path()).signing_workers
    print(f"events: {args.events}, batch: {args.batch}, cores: {os.cpu_count()}, signing workers: {workers}")
    print("round | raw signing: cryptography, libsodium | plain eventsourcing | ledger with its workers "
          "(x raw, x libsodium, x plain) | ledger signing in-process (x raw)")
    rounds: list[dict[str, float]] = []
    for number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            sign, sodium = raw_signing_rate(), raw_libsodium_rate()
            plain = plain_rate(Path(tmp), args.events, args.batch)
            signed = ledger_rate(Path(tmp) / "ledger", args.events, args.batch, workers)
            inline = ledger_rate(Path(tmp) / "inline", args.events, args.batch, 0)
        rounds.append({"sign": sign, "sodium": sodium, "plain": plain, "signed": signed, "inline": inline})
        print(f"{number:5d} | {sign:7.0f} {sodium:7.0f} signatures/s | {plain:7.0f} events/s | {signed:7.0f} "
              f"events/s ({signed / sign:.2f}, {signed / sodium:.2f}, {signed / plain:.2f}) | {inline:7.0f} "
              f"events/s ({inline / sign:.2f})", flush=True)

    def median(ratio: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(ratio(r) for r in rounds)

    print(f"median ledger / raw signing (cryptography, one core): {median(lambda r: r['signed'] / r['sign']):.2f}  "
          f"(target >= 0.50)")
    print(f"median ledger / raw signing (libsodium, one core):    {median(lambda r: r['signed'] / r['sodium']):.2f}")
    print(f"median ledger / plain eventsourcing, unsigned:        {median(lambda r: r['signed'] / r['plain']):.2f}")
    print(f"median ledger signing in-process / raw signing:       {median(lambda r: r['inline'] / r['sign']):.2f}")
    if args.demo_members:
        demo(args.demo_members, args.demo_periods)


def demo(members: int, periods: int) -> None:
    """Time the demo in a child process; report wall time, peak RSS and events written."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ledger.cli", "--data-dir", str(Path(tmp) / "demo"), "demo",
                        "--members", str(members), "--periods", str(periods), "--json"],
                       check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        summary = json.loads((Path(tmp) / "demo" / "demo-summary.json").read_text())
    print(f"demo --members {members} --periods {periods}: {elapsed:.1f} s wall, peak RSS {peak_mib:.0f} MiB, "
          f"{summary['events']} signed events ({summary['events'] / elapsed:.0f} events/s overall)")


if __name__ == "__main__":
    main()
