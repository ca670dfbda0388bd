"""Service benchmark: a member's statement and proof bundle over HTTP at 64 concurrent clients, and the service's
peak RSS.

A postpaid plan gets `--members` members through the application (`bench.projections.populate`), one period is
opened and assessed, `--keyed` of the members get keys of their own, the read models are caught up and a checkpoint
published. Then `mutual-ledger serve` runs on that store in a process of its own, and a bounded load generator on
loopback (asyncio, httpx, `--concurrency` clients each with one request in flight, every request RFC 9421-signed
with the member's key) asks for:

- the public plan list (the baseline: the same server, the same signing-free path, in the same run);
- statements of random keyed members, for `--seconds` (targets: p50 < 20 ms, p99 < 100 ms);
- bundles of random keyed members, `--bundles` requests in all (same targets).

Reported: requests, p50 and p99 of each, their ratio to the baseline's p50, and the service's peak RSS (VmHWM).
The machine may be shared: say so with the figures.

With `--store DIR`, a store written by `python -m bench.pages build` is used instead (its keyed members, 48
periods of history at a million members), so the statement and bundle carry two years of periods.

Usage: python -m bench.service [--members 1000000] [--keyed 200] [--concurrency 64] [--seconds 20] [--bundles 64]
       python -m bench.service --parts api --store bench-out/pages-1000000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from bench.log import percentile
from bench.projections import START, populate
from ledger.application import SimulatedClock
from ledger.envelope import parse_at
from ledger.httpsig import sign_request
from ledger.keys import KeyDirectory, SigningKey
from ledger.service import ledger_with_parties
from schemas.commands.period import AssessPeriod, OpenPeriod
from tests.http_servers import free_port
from tests.support import member_key

ROOT = Path(__file__).resolve().parent.parent


def prepare(base: Path, members: int, keyed: int) -> list[SigningKey]:
    """The store: members, one assessed period, keys for `keyed` members, read models caught up, a checkpoint."""
    plan, seconds = populate(base, members)
    print(f"{members:,} members joined in {seconds:.0f} s", flush=True)
    ledger = ledger_with_parties(base, SimulatedClock(START + timedelta(days=1)))
    clock = ledger.clock
    assert isinstance(clock, SimulatedClock)
    opened = ledger.execute(OpenPeriod(command_id="open-1", plan=plan, number=1))
    clock.set(max(clock.now(), parse_at(str(opened["cutoff_at"])) + timedelta(hours=1)))
    ledger.execute(AssessPeriod(command_id="assess-1", period=str(opened["period"])))
    chosen = random.Random(7).sample(ledger.read_models().balances.active_members(plan), keyed)
    keys = [member_key(ledger, member) for member in chosen]
    ledger.read_models()
    ledger.checkpoints.publish(clock.now())
    ledger.close()
    return keys


def stored_keys(store: Path) -> list[SigningKey]:
    """The keyed members of a `bench.pages` store, loaded from their key files."""
    facts = json.loads((store / "pages-bench.json").read_text())
    keys = []
    for keyed in facts.get("keyed") or [{"member": facts["member"], "key_file": facts["key_file"]}]:
        path = Path(keyed["key_file"])
        keys.append(KeyDirectory(path.parent).load(path.stem))
    print(f"store {store}: {facts['members']:,} members, {facts['periods']} periods, {len(keys)} keyed", flush=True)
    return keys


def peak_rss_mib(pid: int) -> float:
    """A process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def load(base: str, paths: list[tuple[str, SigningKey | None]], concurrency: int, seconds: float,
               requests: int) -> list[float]:
    """Latencies (ms) of requests to random `paths`, `concurrency` at a time, until `seconds` or `requests`."""
    rng = random.Random(11)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline and len(latencies) < requests:
            path, key = rng.choice(paths)
            url = f"{base}{path}"
            headers = sign_request("GET", url, [], b"", key, datetime.now(UTC)) if key else {}
            start = time.perf_counter()
            response = await http.get(url, headers=headers)
            latencies.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text[:300]

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=600) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    return latencies


def report(name: str, latencies: list[float], baseline_p50: float | None) -> None:
    """One line of figures."""
    ordered = sorted(latencies)
    p50, p99 = percentile(ordered, 0.5), percentile(ordered, 0.99)
    ratio = f", p50 {p50 / baseline_p50:.1f}x the baseline's" if baseline_p50 else ""
    print(f"{name:<10} {len(ordered):>6} requests  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms{ratio}", flush=True)


def main() -> None:
    """The parts asked for: the API's latencies (`api`), full tiles against memory (`tiles`, `bench.service_log`),
    checkpoint-to-cosigned with two witnesses (`witnesses`, `bench.service_log`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["api", "tiles", "witnesses"],
                        default=["tiles", "witnesses", "api"])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--keyed", type=int, default=200)
    parser.add_argument("--store", type=Path, help="API: a store written by `bench.pages build`, used as it is.")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--bundles", type=int, default=64)
    parser.add_argument("--entries", type=int, default=1_000_000, help="Tiles: the synthetic log's size.")
    parser.add_argument("--rounds", type=int, default=6, help="Tiles: rounds of the two routes.")
    parser.add_argument("--witness-rounds", type=int, default=50)
    parser.add_argument("--batch", type=int, default=1_000, help="Witnesses: new entries a round.")
    args = parser.parse_args()
    if "tiles" in args.parts or "witnesses" in args.parts:
        from bench.service_log import bench_tiles, bench_witnesses

        with tempfile.TemporaryDirectory(prefix="bench-service-") as directory:
            if "tiles" in args.parts:
                bench_tiles(Path(directory), args.entries, args.rounds, min(args.seconds, 3.0), 32)
            if "witnesses" in args.parts:
                bench_witnesses(Path(directory), args.witness_rounds, args.batch)
    if "api" in args.parts:
        bench_api(args)


def bench_api(args: argparse.Namespace) -> None:
    """Statement and bundle latencies at `--concurrency` clients against the plans list as the baseline."""
    with tempfile.TemporaryDirectory() as tmp:
        base = args.store or Path(tmp)
        keys = stored_keys(base) if args.store else prepare(base, args.members, args.keyed)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "ledger.cli", "--data-dir", str(base / "operator"), "serve",
                                   "--port", str(port)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 600
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/plans").status_code == 200:
                        break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the service did not start") from None
                    time.sleep(0.2)
            members = [(f"/api/v1/members/{key.member}", key) for key in keys]
            baseline = asyncio.run(load(url, [("/api/v1/plans", None)], args.concurrency, args.seconds, 10**9))
            report("baseline", baseline, None)
            base_p50 = percentile(baseline, 0.5)
            statements = asyncio.run(load(url, [(f"{p}/statement", k) for p, k in members], args.concurrency,
                                          args.seconds, 10**9))
            report("statement", statements, base_p50)
            bundles = asyncio.run(load(url, [(f"{p}/bundle", k) for p, k in members], args.concurrency, 3600,
                                       args.bundles))
            report("bundle", bundles, base_p50)
            print(f"service peak RSS {peak_rss_mib(server.pid):.0f} MiB", flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)


if __name__ == "__main__":
    main()
