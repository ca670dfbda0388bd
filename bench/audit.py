"""Audit benchmark: the full `audit verify` procedure over a log, in events/s, against the raw Ed25519 verification
rate of `cryptography` on all cores measured in the same run (target: >= 0.7), and its peak RSS.

The log: a plan with members joining (one signed event each), built through the application and exported (one
canonical entry per line, as `mutual-ledger export` writes it). The audit runs in a child process and streams that
file, as `mutual-ledger audit verify --input` does, so that its peak RSS is its own (the main process, and the largest
worker). The raw baseline verifies the same kind of signature (prefix + 32-byte hash) in one process per core, just
before and just after the audit; the ratio is taken against the faster of the two (others' load on a shared machine
only ever lowers it). The ledger verifies with libsodium (`ledger.keys.ed25519_verify`), faster than `cryptography`;
its raw rate on all cores is printed too, with the audit's ratio to it: what the audit adds to the signature checks.
On a shared machine the wall-time ratios move with the others' load (the audit runs three processes on two cores,
the raw rate two, measured at other moments), so the ratio of CPU costs is printed as well: events audited per CPU
second of all the audit's processes against libsodium verifications per CPU second.

Usage: python -m bench.audit [--events 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench import peak_rss_mib
from ledger.keys import EVENT_SIGNATURE_PREFIX, ed25519_verify


def _verify_for(seconds: float, libsodium: bool = False) -> tuple[int, float]:
    """Verify for `seconds` of wall time: (verifications, CPU seconds this process spent on them)."""
    key = Ed25519PrivateKey.generate()
    message = EVENT_SIGNATURE_PREFIX + hashlib.sha256(b"event").digest()
    signature, public = key.sign(message), key.public_key()
    raw = public.public_bytes_raw()
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        if libsodium:
            for _ in range(200):
                assert ed25519_verify(raw, signature, message)
        else:
            for _ in range(200):
                public.verify(signature, message)
        count += 200
    return count, time.process_time() - cpu


def raw_verify_rate(seconds: float = 3.0, libsodium: bool = False) -> float:
    """Ed25519 verifications per second with every core busy (`cryptography`, or libsodium as the ledger does)."""
    return raw_verify(seconds, libsodium)[0]


def raw_verify(seconds: float = 3.0, libsodium: bool = False) -> tuple[float, float]:
    """(verifications per second with every core busy, verifications per CPU second)."""
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(cores) as pool:
        runs = list(pool.map(_verify_for, [seconds] * cores, [libsodium] * cores))
    count, cpu = sum(n for n, _ in runs), sum(c for _, c in runs)
    return count / seconds, count / cpu


def audit_phase(export: Path, anchors: Path) -> dict[str, float]:
    """Run in a child process: audit the export file, streamed."""
    from audit.verify import Auditor
    from ledger.anchors import TrustAnchors
    from ledger.verify import read_export

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    report = Auditor(TrustAnchors.load(anchors)).run(read_export(export))
    seconds = time.perf_counter() - start
    assert report.ok, report.failures[:3]
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"entries": float(report.entries), "seconds": seconds,
            "cpu_seconds": (own.ru_utime + own.ru_stime - before.ru_utime - before.ru_stime + workers.ru_utime
                            + workers.ru_stime),
            "peak_rss_mib": peak_rss_mib(),
            "worker_peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def audit_store(directory: Path, database_url: str | None, export: Path) -> dict[str, float]:
    """The store's log exported to `export` (one canonical entry per line), audited in a child process streaming
    that file, with `cryptography`'s raw all-core rate just before and after and libsodium's after: the audit's
    figures (`audit_phase`'s, plus `raw_before`, `raw_after`, `sodium`, `sodium_per_cpu`). The export is removed."""
    from ledger.application import SimulatedClock
    from ledger.service import ledger_with_parties
    from sim.fixtures import START

    app = ledger_with_parties(directory, SimulatedClock(START), database_url)
    with export.open("wb") as out:
        for _, entry in app.entries(1, 5000):
            out.write(entry + b"\n")
    app.close()
    try:
        before = raw_verify_rate()
        child = subprocess.run([sys.executable, "-m", "bench.audit", "--child", str(export),
                                str(directory / "operator" / "trust-anchors.json")], check=False,
                               stdout=subprocess.PIPE, text=True)
        if child.returncode:
            raise SystemExit(f"the audit's child process ended with exit {child.returncode}")
        after = raw_verify_rate()
        sodium, sodium_per_cpu = raw_verify(libsodium=True)
    finally:
        export.unlink()
    figures: dict[str, float] = json.loads(child.stdout.strip().splitlines()[-1])
    return {**figures, "raw_before": before, "raw_after": after, "sodium": sodium, "sodium_per_cpu": sodium_per_cpu}


def main() -> None:
    """Build a log, export it, audit it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(audit_phase(Path(args.child[0]), Path(args.child[1]))))
        return
    from bench.projections import populate

    with tempfile.TemporaryDirectory() as tmp:
        populate(Path(tmp) / "log", args.events)
        r = audit_store(Path(tmp) / "log", None, Path(tmp) / "log.jsonl")
    before, after, sodium, sodium_per_cpu = r["raw_before"], r["raw_after"], r["sodium"], r["sodium_per_cpu"]
    raw = max(before, after)
    rate = r["entries"] / r["seconds"]
    per_cpu = r["entries"] / r["cpu_seconds"]
    print(f"audit verify: {r['entries']:,.0f} events in {r['seconds']:.1f} s = {rate:,.0f} events/s; raw Ed25519 "
          f"verify on {os.cpu_count()} cores {raw:,.0f}/s (before {before:,.0f}, after {after:,.0f}); ratio "
          f"{rate / raw:.2f} (target >= 0.7); libsodium's raw verify on {os.cpu_count()} cores {sodium:,.0f}/s, ratio "
          f"{rate / sodium:.2f}; peak RSS {r['peak_rss_mib']:,.0f} MiB (largest worker "
          f"{r['worker_peak_rss_mib']:,.0f} MiB)")
    print(f"per CPU second (all processes, whatever the machine's load): audit {per_cpu:,.0f} events, libsodium "
          f"{sodium_per_cpu:,.0f} verifications; ratio {per_cpu / sodium_per_cpu:.2f} (what the all-core ratio is on "
          "an idle machine whose cores the audit's processes keep busy)")


if __name__ == "__main__":
    main()
