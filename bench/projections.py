"""Read-model benchmark: rebuild rate, one period at N locked members, and statement latency after many periods.

For each N (default 100,000 and 1,000,000) a postpaid plan gets N members through the application (batches of
2,000 joins). Then, in a child process on that store (so its peak RSS is the period's alone):

- one period is opened, assessed (locked set, formula, roll root, the signed event) and applied to every read model
  (one set-based UPDATE over the locked members): wall time (target < 30 s at 1M) and peak RSS (target < 2 GiB);
- optionally `--periods P` more periods, then the statement of one member: p50 / p99 over 200 queries (target
  p50 < 20 ms after 48 periods at 1M).

Rebuild: every read model rebuilt from the store into a fresh database, in events/s, as a ratio of the raw rate of
reading the same events from the store in the same run (target >= 0.25): through the store's own read path with its
own paging, which is what the rebuild reads through (larger pages read slower: 5,000 rows a page, a fifth slower at a
million events), the faster of two reads, the first warming the page cache.

Usage: python -m bench.projections [--members 100000 1000000] [--periods 48]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import peak_rss_mib
from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger
from ledger.envelope import parse_at
from ledger.service import ledger_with_parties
from schemas.commands.membership import Join
from schemas.commands.period import AssessPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod


def progress(message: str) -> None:
    """One line on stderr as a long run's phase ends, so that a run of an hour shows where it is (and what it has
    measured if it is stopped)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

START = datetime(2026, 1, 1, tzinfo=UTC)


def populate(directory: Path, members: int, database_url: str | None = None) -> tuple[str, float]:
    """A plan with `members` members (on SQLite, or the PostgreSQL of `database_url`); returns the plan id and the
    seconds it took."""
    from sim.fixtures import commitment, rules

    app = ledger_with_parties(directory, SimulatedClock(START), database_url)
    from schemas.commands.plan import CreatePlan

    plan = str(app.execute(CreatePlan(command_id="plan", name="Bench", kind="cancer", rules=rules()))["plan"])
    consent, health = commitment("consent"), commitment("health")
    start = time.perf_counter()
    for offset in range(0, members, 2000):
        app.execute_many([Join(command_id=f"j{i}", plan=plan, age_years=20 + i % 39, sex="f", province="zj",
                               consent_commitment=consent, health_declaration_commitment=health)
                          for i in range(offset, min(members, offset + 2000))])
        if (offset + 2000) % 500_000 == 0:
            progress(f"{offset + 2000:,} joined, {(offset + 2000) / (time.perf_counter() - start):,.0f} joins/s")
    seconds = time.perf_counter() - start
    app.close()
    return plan, seconds


def period_phase(directory: Path, plan: str, periods: int, database_url: str | None = None,
                 bundles: bool = False, profile: Path | None = None, first: int = 1,
                 start: datetime = START + timedelta(days=1)) -> dict[str, float]:
    """Run in a child process: periods `first`, `first` + 1, … from the instant `start`, then statement queries
    (and, with `bundles`, the log integrated with its index, a checkpoint published, and proof bundles built). With
    `profile`, the second period (assessed and applied: the same work as the first, which stays timed without the
    profiler) is profiled into that file."""
    import cProfile

    from ledger.projections.statements import statement

    app = ledger_with_parties(directory, SimulatedClock(start), database_url)
    clock = app.clock
    assert isinstance(clock, SimulatedClock)
    app.read_models()
    result: dict[str, float] = {"rss_before_period_mib": peak_rss_mib()}
    """The peak before the first period: opening the store and catching every read model up."""
    if database_url is not None:
        result["vacuum_seconds"] = vacuum_analyze(database_url)
        progress(f"the store vacuumed and analyzed in {result['vacuum_seconds']:.1f} s")
    for number in range(first, first + periods):
        opened = app.execute(OpenPeriod(command_id=f"open-{number}", plan=plan, number=number))
        clock.set(max(clock.now(), parse_at(str(opened["cutoff_at"])) + timedelta(hours=1)))
        profiler = cProfile.Profile() if profile is not None and number == first + 1 else None
        began = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        assessed = app.execute(AssessPeriod(command_id=f"assess-{number}", period=str(opened["period"])))
        app.read_models()
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        if number == first:
            result["period_seconds"] = time.perf_counter() - began
            result["period_peak_rss_mib"] = peak_rss_mib()
            result["locked"] = float(assessed["locked_members"])
            progress(f"period {number} assessed and applied at {result['locked']:,.0f} locked in "
                     f"{result['period_seconds']:.1f} s, peak RSS {result['period_peak_rss_mib']:,.0f} MiB")
        if assessed["subsidy_fen"]:
            app.execute(ReceiveSubsidy(command_id=f"subsidy-{number}", period=str(opened["period"]),
                                       amount_fen=int(assessed["subsidy_fen"]), reference=f"op-{number}"))
        clock.set(clock.now() + timedelta(days=20))  # past the grace of this period
        app.execute(SettlePeriod(command_id=f"settle-{number}", period=str(opened["period"])))
    progress(f"{periods} periods settled")
    result.update(age_rule(app, plan, clock.now() + timedelta(days=2 * 366)))
    progress(f"age rule: {result['age_rule_found']:,.0f} found in {result['age_rule_seconds']:.2f} s")
    models = app.read_models()
    with models.balances.locked_set(plan, "9999") as active:  # the first 200 in id order, not all of them read
        members = [str(row[0]) for row in next(active.snapshot.batches(active.roll_query, (plan, "9999", "9999"),
                                                                       200))]
    latencies = []
    for member in members:
        began = time.perf_counter()
        statement(models, member, None, None, clock.now())
        latencies.append((time.perf_counter() - began) * 1000)
    latencies.sort()
    result["statement_p50_ms"] = statistics.median(latencies)
    result["statement_p99_ms"] = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    result["periods"] = float(periods)
    progress(f"statement p50 {result['statement_p50_ms']:.2f} ms, p99 {result['statement_p99_ms']:.2f} ms")
    if bundles:
        result.update(bundle_latencies(app, members[:50]))
    app.close()
    return result


def vacuum_analyze(database_url: str) -> float:
    """`VACUUM (ANALYZE)` every table of the store's PostgreSQL schema, as autovacuum would have by then on a server
    that runs it (the default; some run without): the planner's statistics, and the visibility map an index-only
    scan needs (the period's roll reads `roster_members_roll` only so). The seconds it took."""
    import psycopg

    base, schema = database_url.split("?schema=")
    start = time.perf_counter()
    with psycopg.connect(base, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s",
                                                 (schema,)).fetchall()]
        for table in tables:
            conn.execute(f'VACUUM (ANALYZE) "{schema}"."{table}"')
    return time.perf_counter() - start


def age_rule(app: Ledger, plan: str, at: datetime) -> dict[str, float]:
    """The age rule (`left_out_for_age`) at an instant when the members who joined in the top age band may be past
    the top age (in the first year the public bound rules everyone out): how many candidates' sealed ages it opens,
    how many it finds past the top age, and the seconds it takes."""
    from uuid import UUID

    from ledger.ages import top_age_years
    from ledger.aggregates.plan import Plan
    from ledger.envelope import format_at
    from ledger.handlers.period import left_out_for_age
    from ledger.unit_of_work import UnitOfWork

    found = app.read(UUID(plan), Plan)
    assert found is not None
    rules = found.rules_at(at).rules
    top = top_age_years(rules)
    app.app.read_side.refresh()
    start = time.perf_counter()
    left_out = left_out_for_age(UnitOfWork(app.app, app.app.read_side, at), plan, at, top, rules.utc_offset_minutes)
    seconds = time.perf_counter() - start
    opened = sum(sealed for batch in app.app.read_side.queries.age_candidates(plan, format_at(at), top,
                                                                             rules.utc_offset_minutes)
                 for *_, sealed in batch)
    return {"age_rule_seconds": seconds, "age_rule_opened": float(opened), "age_rule_found": float(len(left_out))}


def bundle_latencies(app: Ledger, members: list[str]) -> dict[str, float]:
    """Integrate the log (with its index) and publish a checkpoint, timed; then build the members' proof bundles:
    p50 / p99, and the periods proved in the first."""
    from ledger.log.bundle import build_bundle

    start = time.perf_counter()
    app.checkpoints.publish(app.clock.now())
    integrated = time.perf_counter() - start
    progress(f"log of {app.log.size():,} entries integrated with its index in {integrated:.1f} s")
    latencies, rolls = [], 0
    for member in members:
        start = time.perf_counter()
        bundle = build_bundle(app.checkpoints, member)
        latencies.append((time.perf_counter() - start) * 1000)
        rolls = max(rolls, len(bundle["rolls"]))
    latencies.sort()
    return {"integrate_seconds": integrated, "log_size": float(app.log.size()), "bundle_rolls": float(rolls),
            "bundle_p50_ms": statistics.median(latencies),
            "bundle_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def rebuild_ratio(directory: Path, database_url: str | None = None) -> tuple[float, float, int]:
    """(raw read events/s, rebuild events/s, events) on the store in `directory` (or at `database_url`)."""
    from eventsourcing.sqlite import SQLiteDatastore

    from ledger.projections import PROJECTIONS, ReadModels
    from ledger.projections.sql import SqlStore

    app = ledger_with_parties(directory, SimulatedClock(START), database_url).app
    read_rate, count = 0.0, 0
    for _ in range(2):
        start = time.perf_counter()
        count = sum(1 for _ in app.entries())
        read_rate = max(read_rate, count / (time.perf_counter() - start))
        progress(f"raw read of {count:,} events: {count / (time.perf_counter() - start):,.0f} events/s")
    with tempfile.TemporaryDirectory() as tmp:
        sql = SqlStore(SQLiteDatastore(str(Path(tmp) / "fresh.sqlite3")))
        models = ReadModels(*(p(app, sql) for p in PROJECTIONS))  # type: ignore[arg-type]
        start = time.perf_counter()
        models.rebuild()
        rebuild_rate = count / (time.perf_counter() - start)
        progress(f"rebuild: {rebuild_rate:,.0f} events/s, ratio {rebuild_rate / read_rate:.2f}")
    app.close()
    return read_rate, rebuild_rate, count


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--periods", type=int, default=1)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(period_phase(Path(args.child[0]), args.child[1], int(args.child[2]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for members in args.members:
            directory = Path(tmp) / f"m{members}"
            plan, seconds = populate(directory, members)
            child = subprocess.run([sys.executable, "-m", "bench.projections", "--child", str(directory), plan,
                                    str(args.periods)], check=False, capture_output=True, text=True)
            if child.returncode:
                raise SystemExit(child.stderr)
            r = json.loads(child.stdout.strip().splitlines()[-1])
            read_rate, rebuild_rate, count = rebuild_ratio(directory)
            print(f"{members:,} members (joined in {seconds:.0f} s): one period assessed and applied at "
                  f"{r['locked']:,.0f} locked in {r['period_seconds']:.1f} s (target < 30 s at 1M), peak RSS "
                  f"{r['period_peak_rss_mib']:,.0f} MiB (target < 2 GiB)")
            print(f"  statement after {r['periods']:.0f} periods: p50 {r['statement_p50_ms']:.2f} ms, "
                  f"p99 {r['statement_p99_ms']:.2f} ms (target p50 < 20 ms after 48 periods at 1M)")
            print(f"  rebuild of every read model: {rebuild_rate:,.0f} events/s; raw read {read_rate:,.0f} events/s;"
                  f" ratio {rebuild_rate / read_rate:.2f} (target >= 0.25) over {count:,} events")
            import shutil

            shutil.rmtree(directory)


if __name__ == "__main__":
    main()
