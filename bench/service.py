"""Service benchmark: a member's statement and proof bundle over HTTP at 64 concurrent clients, and the service's
peak RSS.

A postpaid plan gets `--members` members through the application (`bench.projections.populate`), one period is
opened and assessed, `--keyed` of the members get keys of their own, the read models are caught up and a checkpoint
published. Then `mutual-ledger serve` runs on that store in a process of its own, and a bounded load generator on
loopback (HTTP/1.1 on asyncio streams, `bench.http_load`; every member request RFC 9421-signed with the member's key
as it is sent) asks for three routes: the public plan list (the baseline: the same server, no signature, no store
work), statements of random keyed members and bundles of random keyed members (targets for both: p50 < 20 ms,
p99 < 100 ms at 64 clients).

Each route is loaded in three ways, `--seconds` each:

- `sequential`: one client, one request at a time — the latency of an idle service, and its CPU per request;
- `paced`: `--concurrency` clients, each waiting a think time between its requests (exponentially distributed,
  mean `--think` seconds: a user reading a page before the next click, as a locust user does). The offered rate is
  clients / think time; the achieved rate is what was answered. Several `--think` values sweep the load up to the
  saturation point;
- `closed`: `--concurrency` clients with one request always in flight and no think time — the saturated service:
  its throughput, and latencies that are mostly queueing (Little's law: p50 ≈ clients / throughput).

Reported for each: requests, offered and achieved rates, p50 and p99, the service's CPU per request (user + system
time of its process over the run, from /proc) and the load generator's (it shares the machine's cores: on a small
machine it takes part of what the service could use). At the end, the service's peak RSS (VmHWM).
The machine may be shared: say so with the figures.

`--parts builder` builds the bundles of the store's keyed members in this process instead (no HTTP, no signature):
p50 / p99 of a bundle, its CPU time, and the mean time of each step (the index's reads, the roll proofs, the log's
inclusion proofs, the response model's validation and JSON) — the first round with nothing kept by the process,
the next ones with what it keeps (`ledger.log.index.RollCache`, the log's range hashes).

With `--store DIR`, a store written by `python -m bench.pages build` is used instead (its keyed members, 48
periods of history at a million members), so the statement and bundle carry two years of periods. The store is only
read.

Usage: python -m bench.service [--members 1000000] [--keyed 200] [--concurrency 64] [--seconds 20] [--think 1]
       python -m bench.service --parts api --store bench-out/pages-1000000 [--think 1 0.25 0.1] [--workers 2]
       python -m bench.service --parts builder --store bench-out/pages-1000000 [--rounds 3]
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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.http_load import Connection, cpu_seconds, peak_rss_mib
from bench.log import percentile
from bench.projections import START, populate
from ledger.application import SimulatedClock
from ledger.envelope import parse_at
from ledger.httpsig import sign_request
from ledger.keys import KeyDirectory, SigningKey
from ledger.service import ledger_with_parties, member_key
from schemas.commands.period import AssessPeriod, OpenPeriod
from sim.services import free_port

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


def service_pids(server: subprocess.Popen[bytes]) -> list[int]:
    """The service's process and, with `--workers`, its worker processes."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    return [server.pid, *(int(pid) for pid in children.read_text().split())] if children.exists() else [server.pid]


@dataclass
class Run:
    """One load run of one route: what was asked, what was answered, what it cost."""

    route: str
    mode: str
    clients: int
    think: float
    latencies: list[float]
    seconds: float
    service_cpu: float
    generator_cpu: float

    def line(self) -> str:
        """The run's figures on one line."""
        count = len(self.latencies)
        ordered = sorted(self.latencies)
        offered = f"{self.clients / self.think:7.1f}/s" if self.think else "   as fast"
        return (f"{self.route:<10} {self.mode:<18} {count:>6} req  offered {offered}  achieved "
                f"{count / self.seconds:7.1f}/s  p50 {percentile(ordered, 0.5):8.1f} ms  p99 "
                f"{percentile(ordered, 0.99):8.1f} ms  CPU/req service {self.service_cpu / count * 1000:5.2f} ms, "
                f"generator {self.generator_cpu / count * 1000:5.2f} ms")


async def load(port: int, paths: list[tuple[str, SigningKey | None]], clients: int, seconds: float,
               think: float, pids: list[int]) -> tuple[list[float], float, float, float]:
    """Latencies (ms) of requests to random `paths` by `clients` clients (one keep-alive connection each) for
    `seconds`, each client waiting an exponentially distributed think time of mean `think` before each request
    (none when 0); also the seconds until the last answer and the CPU seconds the service and this generator used."""
    rng = random.Random(11)
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    service_before, generator_before = cpu_seconds(pids), time.process_time()

    async def client() -> None:
        http = await Connection.open(port)
        while True:
            if think:
                await asyncio.sleep(min(rng.expovariate(1 / think), max(0.0, deadline - time.perf_counter())))
            if time.perf_counter() >= deadline:
                break
            path, key = rng.choice(paths)
            start = time.perf_counter()
            headers = sign_request("GET", f"http://{http.authority}{path}", [], b"", key, datetime.now(UTC)
                                   ) if key else {}
            status, body = await http.get(path, headers)
            latencies.append((time.perf_counter() - start) * 1000)
            assert status == 200, body[:300]
        await http.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return latencies, elapsed, cpu_seconds(pids) - service_before, time.process_time() - generator_before


def main() -> None:
    """The parts asked for: the API's latencies (`api`), full tiles against memory (`tiles`, `bench.service_log`),
    checkpoint-to-cosigned with two witnesses (`witnesses`, `bench.service_log`)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", choices=["api", "tiles", "witnesses", "builder"],
                        default=["tiles", "witnesses", "api"])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--keyed", type=int, default=200)
    parser.add_argument("--store", type=Path, help="API: a store written by `bench.pages build`, used as it is.")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1, help="API: the service's worker processes.")
    parser.add_argument("--think", type=float, nargs="+", default=[1.0],
                        help="API: paced runs' mean think times between a client's requests, seconds.")
    parser.add_argument("--entries", type=int, default=1_000_000, help="Tiles: the synthetic log's size.")
    parser.add_argument("--rounds", type=int, default=6, help="Tiles: rounds of the two routes; builder: rounds "
                        "over the keyed members.")
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
    if "builder" in args.parts:
        if args.store is None:
            parser.error("--parts builder needs --store")
        bench_builder(args.store, args.rounds)


def bench_builder(store: Path, rounds: int) -> None:
    """The bundles of the store's keyed members built in this process, `rounds` times over: wall and CPU time of a
    bundle and of each step, timed around the index's and the log's own methods."""
    from ledger.log.bundle import build_bundle
    from ledger.reveal import claimant_records
    from schemas.api import ProofBundle

    members = [key.member for key in stored_keys(store)]
    ledger = ledger_with_parties(store, SimulatedClock(datetime.now(UTC)))
    log, index = ledger.log, ledger.log.index
    assert index is not None
    steps: dict[str, list[float]] = {}

    def timed(name: str, method: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return method(*args, **kwargs)
            finally:
                spent = steps.setdefault(name, [0.0, 0.0])
                spent[0] += time.perf_counter() - wall
                spent[1] += time.process_time() - cpu
        return run

    for name in ("stream_entries", "member_claims", "left_out_of", "plan_assessments", "roll_proofs",
                 "key_registrations"):
        setattr(index, name, timed(f"index.{name}", getattr(index, name)))
    log.inclusion_proofs = timed("log.inclusion_proofs", log.inclusion_proofs)  # type: ignore[method-assign]
    recorder = log.source.recorder
    recorder.select_entries = timed("entries read", recorder.select_entries)
    for number in range(rounds):
        steps.clear()
        walls, cpus = [], []
        for member in members:
            wall, cpu = time.perf_counter(), time.process_time()
            claimants = timed("vault: claimant records", claimant_records)(ledger.app, member)
            bundle = timed("build_bundle", build_bundle)(ledger.checkpoints, member, claimants=claimants)
            timed("response model and JSON", lambda b: orjson.dumps(ProofBundle.model_validate(b).model_dump(
                mode="json")))(bundle)
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        walls.sort()
        print(f"builder round {number + 1} ({'nothing kept' if number == 0 else 'kept from before'}): "
              f"{len(members)} bundles of {len(bundle['rolls'])} rolls, {len(bundle['events'])} events; "
              f"p50 {percentile(walls, 0.5):.1f} ms, p99 {percentile(walls, 0.99):.1f} ms, CPU "
              f"{sum(cpus) / len(cpus):.2f} ms a bundle", flush=True)
        for name, (wall_s, cpu_s) in steps.items():
            print(f"  {name:<28} {wall_s / len(members) * 1000:7.2f} ms  CPU {cpu_s / len(members) * 1000:6.2f} ms",
                  flush=True)
        if number == 0:
            print("  (the first round reads every roll tile and right edge the rolls' proofs meet)", flush=True)
    ledger.close()


def bench_api(args: argparse.Namespace) -> None:
    """The plans list, statements and bundles: sequential, paced at each `--think`, and closed-loop."""
    with tempfile.TemporaryDirectory() as tmp:
        base = args.store or Path(tmp)
        keys = stored_keys(base) if args.store else prepare(base, args.members, args.keyed)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "ledger.cli", "--data-dir", str(base / "operator"), "serve",
                                   "--port", str(port), "--workers", str(args.workers)],
                                  cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
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
            pids = service_pids(server)
            members = [f"/api/v1/members/{key.member}" for key in keys]
            routes: dict[str, list[tuple[str, SigningKey | None]]] = {
                "plans": [("/api/v1/plans", None)],
                "statement": [(f"{path}/statement", key) for path, key in zip(members, keys, strict=True)],
                "bundle": [(f"{path}/bundle", key) for path, key in zip(members, keys, strict=True)]}
            modes = [("sequential", 1, 0.0), *((f"paced, think {t:g} s", args.concurrency, t) for t in args.think),
                     ("closed", args.concurrency, 0.0)]
            print(f"{args.concurrency} clients, {args.seconds:g} s a run, {args.workers} service worker(s)", flush=True)
            for route, paths in routes.items():
                asyncio.run(load(port, paths, 1, 1.0, 0.0, pids))  # warm: connections, caches, first queries
                for mode, clients, think in modes:
                    latencies, elapsed, service_cpu, generator_cpu = asyncio.run(
                        load(port, paths, clients, args.seconds, think, pids))
                    print(Run(route, mode, clients, think, latencies, elapsed, service_cpu, generator_cpu).line(),
                          flush=True)
            print(f"service peak RSS {sum(peak_rss_mib(pid) for pid in pids):.0f} MiB"
                  + (f" (over {len(pids)} processes)" if len(pids) > 1 else ""), flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)


if __name__ == "__main__":
    main()
