"""Audit benchmark: the full `audit verify` procedure over a log, in events/s, against the raw Ed25519 verification
rate of `cryptography` on all cores measured in the same run (target: >= 0.7), and its peak RSS.

The log: a plan with members joining (one signed event each) plus a few assessed periods, built through the
application. The raw baseline verifies the same kind of signature (prefix + 32-byte hash) in one process per core.

Usage: python -m bench.audit [--events 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.keys import EVENT_SIGNATURE_PREFIX


def _verify_for(seconds: float) -> int:
    key = Ed25519PrivateKey.generate()
    message = EVENT_SIGNATURE_PREFIX + hashlib.sha256(b"event").digest()
    signature, public = key.sign(message), key.public_key()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(200):
            public.verify(signature, message)
        count += 200
    return count


def raw_verify_rate(seconds: float = 3.0) -> float:
    """Ed25519 verifications per second with every core busy."""
    cores = os.cpu_count() or 1
    with ProcessPoolExecutor(cores) as pool:
        counts = list(pool.map(_verify_for, [seconds] * cores))
    return sum(counts) / seconds


def main() -> None:
    """Build a log, audit it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    from audit.verify import Auditor
    from bench.projections import populate
    from ledger.application import LedgerApplication, SimulatedClock
    from ledger.config import Settings
    from ledger.verify import TrustAnchors
    from tests.support import START

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "log"
        populate(directory, args.events)
        app = LedgerApplication(Settings(data_dir=directory), SimulatedClock(START))
        entries = [entry for _, entry in app.entries()]
        app.close()
        anchors = TrustAnchors.load(directory / "trust-anchors.json")
        raw = raw_verify_rate()
        start = time.perf_counter()
        report = Auditor(anchors).run(entries)
        seconds = time.perf_counter() - start
    assert report.ok, report.failures[:3]
    rate = len(entries) / seconds
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"audit verify: {len(entries):,} events in {seconds:.1f} s = {rate:,.0f} events/s; raw Ed25519 verify on "
          f"{os.cpu_count()} cores {raw:,.0f}/s; ratio {rate / raw:.2f} (target >= 0.7); peak RSS {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
