"""Transparency log benchmark: integration throughput, memory, proof latency from storage, proof size, and the
offline verification time of a member's bundle with two years (48 periods) of history.

Integration runs over synthetic entries (envelope-sized, 350 bytes) in a SQLite database, as the tree itself does
not care what the entries are. The baseline, measured in the same run, is the raw `hashlib.sha256` rate for one
hash per entry of the same size (target: integration >= 0.25 x that). Proof latencies are measured with the node
cache cleared before each proof, so every proof is read from storage (targets at 10M: p50 < 1 ms, p99 < 5 ms).

Usage: python -m bench.log [--entries 1000000 10000000] [--proofs 1000] [--bundle-periods 48]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from eventsourcing.sqlite import SQLiteDatastore

from ledger.log.tree import TransparencyLog

ENTRY_SIZE = 350
BLOCK = 100_000


class _Recorder:
    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore


class SyntheticSource:
    """`entries` of a store holding `count` synthetic entries, in a fresh SQLite database."""

    def __init__(self, path: Path, count: int) -> None:
        self.recorder = _Recorder(SQLiteDatastore(str(path)))
        self.count = count
        pad = b"x" * (ENTRY_SIZE - 12)
        self.block = [b"%012d" % i + pad for i in range(BLOCK)]

    def entries(self, start: int = 1, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """Entries `start`..count, each ENTRY_SIZE bytes, taken from a prepared block (the source is not what is
        measured; the baseline hashes prepared entries too)."""
        block = self.block
        for notification_id in range(start, self.count + 1):
            yield notification_id, block[notification_id % BLOCK]


def sha256_rate(count: int) -> float:
    """Raw SHA-256 hashes per second over entries of the same size."""
    pad = b"x" * (ENTRY_SIZE - 12)
    entries = [b"%012d" % i + pad for i in range(BLOCK)]
    rounds = max(1, min(count, 1_000_000) // len(entries))
    start = time.perf_counter()
    for _ in range(rounds):
        for entry in entries:
            hashlib.sha256(entry).digest()
    return rounds * len(entries) / (time.perf_counter() - start)


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of the values lie."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def bench_tree(count: int, proofs: int, directory: Path) -> dict[str, Any]:
    """Integrate `count` synthetic entries and time proofs from storage."""
    log = TransparencyLog(SyntheticSource(directory / f"log-{count}.sqlite3", count))
    start = time.perf_counter()
    log.integrate(page=100_000)
    integrate_seconds = time.perf_counter() - start
    rng = random.Random(7)
    inclusion, consistency, sizes = [], [], []
    for _ in range(proofs):
        size = rng.randint(1, count)
        index = rng.randrange(size)
        log.clear_cache()
        t = time.perf_counter()
        proof = log.inclusion_proof(index, size)
        inclusion.append((time.perf_counter() - t) * 1000)
        sizes.append(len(proof) * 32)
        old = rng.randint(1, size)
        log.clear_cache()
        t = time.perf_counter()
        log.consistency_proof(old, size)
        consistency.append((time.perf_counter() - t) * 1000)
    return {
        "entries": count,
        "integrate_rate": count / integrate_seconds,
        "inclusion_ms": (statistics.median(inclusion), percentile(inclusion, 0.99)),
        "consistency_ms": (statistics.median(consistency), percentile(consistency, 0.99)),
        "proof_bytes": (statistics.median(sizes), max(sizes)),
    }


def bench_bundle(periods: int, directory: Path) -> tuple[float, int, int]:
    """Seconds to verify the bundle of a prepaid member locked in every one of `periods` periods."""
    import json

    from audit.bundle import verify_bundle
    from ledger.application import SimulatedClock
    from ledger.demo import DEMO_START, run_demo
    from ledger.log.bundle import build_bundle
    from ledger.service import ledger_with_parties

    app = ledger_with_parties(directory / "bundle", SimulatedClock(DEMO_START))
    summary = run_demo(app, members=200, periods=periods, seed=2)
    checkpoints = app.checkpoints
    checkpoints.publish(app.clock.now())
    best: dict[str, Any] | None = None
    for _, entry in app.entries():
        envelope = json.loads(entry)
        if envelope["type"] == "member.joined" and envelope["body"]["plan"] == summary.plans["prepaid"]:
            bundle = build_bundle(checkpoints, envelope["stream"])
            if best is None or len(bundle["rolls"]) > len(best["rolls"]):
                best = bundle
            if len(best["rolls"]) == periods:
                break
    assert best is not None
    start = time.perf_counter()
    statement = verify_bundle(best, checkpoints.verifier, [])
    seconds = time.perf_counter() - start
    app.close()
    return seconds, len(statement.periods), len(best["events"])


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--bundle-periods", type=int, default=48, help="0: skip the bundle measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.entries:
            raw = sha256_rate(count)
            result = bench_tree(count, args.proofs, Path(tmp))
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"{count:,} entries: integration {result['integrate_rate']:,.0f} entries/s; raw sha256 "
                  f"{raw:,.0f} hashes/s; ratio {result['integrate_rate'] / raw:.3f} (target >= 0.25); "
                  f"peak RSS so far {peak:,.0f} MiB")
            print(f"  inclusion proof from storage: p50 {result['inclusion_ms'][0]:.3f} ms, "
                  f"p99 {result['inclusion_ms'][1]:.3f} ms; consistency proof: p50 {result['consistency_ms'][0]:.3f}"
                  f" ms, p99 {result['consistency_ms'][1]:.3f} ms; inclusion proof size: median "
                  f"{result['proof_bytes'][0]:.0f} bytes, max {result['proof_bytes'][1]} bytes")
            (Path(tmp) / f"log-{count}.sqlite3").unlink()
        if args.bundle_periods:
            seconds, periods, events = bench_bundle(args.bundle_periods, Path(tmp))
            print(f"bundle of a member in {periods} periods ({events} events with proofs): verified offline in "
                  f"{seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
