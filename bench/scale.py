"""The ledger at N members, on SQLite or PostgreSQL: every figure of the scale targets in one run.

For each N of `--members`, on a fresh store:

1. build: a plan and N members joined through the application (`execute_many`, batches of 2,000): the rate;
2. in a child process on that store (its peak RSS is the periods' alone): the read models caught up (on
   PostgreSQL the store then vacuumed and analyzed, timed, as autovacuum would have done by then: a server may run
   without it, and the roll's index-only scan needs it); one period opened, assessed at N locked members and
   applied to every read model — wall time (target < 60 s at 10M) and peak RSS (target < 2 GiB); then `--periods`
   − 1 more periods; the age rule two years on (when the members who joined in the top age band may be past it):
   the sealed ages it opens and its time; then a member's statement p50 / p99 (target < 20 ms) and, once the log is
   integrated with its index and a checkpoint published (timed: the log at N+ entries), the member's proof bundle
   p50 / p99 (target < 50 ms) with the number of periods it proves;
3. every read model rebuilt from the store into a fresh database, as a ratio of the raw read of the same events in
   the same run (target >= 0.25);
4. with `--audit`, the log exported and `audit verify` run over it in a child process (`bench.audit`): its rate
   against the raw all-core Ed25519 rates measured just before and after (target >= 0.7), and its peak RSS (target
   < 1 GiB whatever the log's size).

Each phase prints a line on stderr as it ends (a run at 10M takes hours); the figures are printed at the end. With
`--keep DIR` the store is built in DIR and kept (and its PostgreSQL schema not dropped): DIR must not exist.

With `--again DIR` (the m<N> directory of a store kept by `--keep`; on PostgreSQL `--url` the URL `--keep` printed)
the store is migrated to the current schema (timed) and the periods' phase (2.) run once more, `--periods` periods
numbered after its last: a change measured before and after on the same store, without building it again.

With two or more N, 10M and 100M members are projected — the totals (build, period, integration) in proportion
to the largest run, the peak RSS along its growth between the last two, the per-member lookups flat — and printed
as projections, not measurements.

Usage: python -m bench.scale --members 100000 [200000 …] [--store sqlite|postgres] [--periods 48]
       [--url postgresql://postgres@127.0.0.1:5432/postgres] [--profile FILE] [--audit] [--keep DIR]
       python -m bench.scale --again DIR/m<N> [--store postgres --url URL?schema=S] [--periods 1]
(`--profile period.prof` writes `period.N.prof` for N members: `python -m pstats` reads it.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.projections import START, period_phase, populate, progress, rebuild_ratio
from ledger.application import SimulatedClock


def fresh_store(store: str, url: str) -> str | None:
    """A fresh schema for one run on PostgreSQL (its URL), or None for SQLite."""
    if store == "sqlite":
        return None
    name = f"scale_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    return f"{url}?schema={name}"


def drop_store(database_url: str | None) -> None:
    """Drop a run's PostgreSQL schema."""
    if database_url is not None:
        base, schema = database_url.split("?schema=")
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(members: int, store: str, url: str, periods: int, directory: Path,
            profile: Path | None = None, audit: bool = False, keep: bool = False) -> dict[str, Any]:
    """Every figure at `members` members (module docstring)."""
    database_url = fresh_store(store, url)
    if keep and database_url is not None:
        progress(f"store kept: {database_url}")
    try:
        plan, build_seconds = populate(directory, members, database_url)
        progress(f"built: {members:,} members in {build_seconds:.0f} s ({members / build_seconds:,.0f} joins/s)")
        figures = periods_child(directory, plan, periods, database_url, profile)
        read_rate, rebuild_rate, events = rebuild_ratio(directory, database_url)
        if audit:
            figures.update(audit_figures(directory, database_url))
    finally:
        if not keep:
            drop_store(database_url)
    return {"members": members, "build_seconds": build_seconds, "build_rate": members / build_seconds,
            "read_rate": read_rate, "rebuild_rate": rebuild_rate, "events": events, **figures}


def again(directory: Path, database_url: str | None, periods: int, profile: Path | None) -> None:
    """The periods' phase once more on a kept store, after its migration to the current schema (timed: at 10M
    members a new index is built over the roster): before and after a change on the same store."""
    from ledger.config import Settings
    from ledger.envelope import parse_at
    from ledger.migrations import migrate
    from ledger.service import ledger_with_parties

    began = time.perf_counter()
    migrated = migrate(Settings(data_dir=directory / "operator", database_url=database_url))
    progress(f"migrated from schema {migrated['from']} to {migrated['to']} in {time.perf_counter() - began:.1f} s")
    app = ledger_with_parties(directory, SimulatedClock(START), database_url)
    balances = app.read_models().balances
    with balances.sql.transaction(commit=False) as cursor:
        row = cursor.execute(f"SELECT plan, MAX(number), MAX(cutoff_at) FROM {balances.periods} GROUP BY plan"
                             ).fetchone()
    app.close()
    if row is None:
        raise SystemExit(f"{directory}: no assessed period (not a store kept by --keep?)")
    plan, last, cutoff = str(row[0]), int(row[1]), parse_at(str(row[2]))
    # from the instant the kept run settled its last period (`period_phase`: an hour past its cutoff, then 20 days)
    print(json.dumps(periods_child(directory, plan, periods, database_url, profile, last + 1,
                                   cutoff + timedelta(hours=1, days=20)), indent=1))


def periods_child(directory: Path, plan: str, periods: int, database_url: str | None, profile: Path | None,
                  first: int = 1, start: datetime = START + timedelta(days=1)) -> dict[str, Any]:
    """`bench.projections.period_phase` in a child process (its peak RSS is the periods' alone): its figures."""
    child = subprocess.run([sys.executable, "-m", "bench.scale", "--child", str(directory), plan, str(periods),
                            database_url or "", str(profile.resolve()) if profile else "", str(first),
                            start.isoformat()], check=False, stdout=subprocess.PIPE, text=True)
    if child.returncode:
        raise SystemExit(f"the periods' child process ended with exit {child.returncode}")
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return figures


def audit_figures(directory: Path, database_url: str | None) -> dict[str, float]:
    """The store's log exported beside it and audited as `bench.audit` does: the audit's figures at this size."""
    from bench.audit import audit_store

    r = audit_store(directory, database_url, directory.parent / f"{directory.name}.jsonl")
    progress(f"audited {r['entries']:,.0f} entries in {r['seconds']:.0f} s, peak RSS {r['peak_rss_mib']:,.0f} MiB")
    return {"audit_entries": r["entries"], "audit_rate": r["entries"] / r["seconds"],
            "audit_raw_rate": max(r["raw_before"], r["raw_after"]), "audit_sodium_rate": r["sodium"],
            "audit_per_cpu": r["entries"] / r["cpu_seconds"], "audit_sodium_per_cpu": r["sodium_per_cpu"],
            "audit_peak_rss_mib": r["peak_rss_mib"], "audit_worker_peak_rss_mib": r["worker_peak_rss_mib"]}


def report(r: dict[str, Any], store: str) -> None:
    """Print one run's figures."""
    print(f"{r['members']:,} members on {store}: built through the application in {r['build_seconds']:.0f} s "
          f"({r['build_rate']:,.0f} joins/s)")
    print(f"  one period assessed and applied at {r['locked']:,.0f} locked: {r['period_seconds']:.1f} s "
          f"(target < 60 s at 10M), peak RSS {r['period_peak_rss_mib']:,.0f} MiB (target < 2 GiB; "
          f"{r['rss_before_period_mib']:,.0f} MiB before the period, the read models caught up"
          + (f"; the store vacuumed and analyzed before it in {r['vacuum_seconds']:.1f} s)" if "vacuum_seconds" in r
             else ")"))
    print(f"  the age rule two years on: {r['age_rule_opened']:,.0f} candidates' sealed ages opened a batch at a time, "
          f"{r['age_rule_found']:,.0f} past the top age, in {r['age_rule_seconds']:.2f} s")
    print(f"  after {r['periods']:.0f} periods: statement p50 {r['statement_p50_ms']:.2f} ms, p99 "
          f"{r['statement_p99_ms']:.2f} ms (target p50 < 20 ms); bundle proving {r['bundle_rolls']:.0f} periods "
          f"p50 {r['bundle_p50_ms']:.2f} ms, p99 {r['bundle_p99_ms']:.2f} ms (target p50 < 50 ms)")
    print(f"  the log at {r['log_size']:,.0f} entries: integrated with its index in {r['integrate_seconds']:.1f} s "
          f"({r['log_size'] / r['integrate_seconds']:,.0f} entries/s)")
    print(f"  rebuild of every read model: {r['rebuild_rate']:,.0f} events/s; raw read {r['read_rate']:,.0f} "
          f"events/s; ratio {r['rebuild_rate'] / r['read_rate']:.2f} (target >= 0.25) over {r['events']:,} events",
          flush=True)
    if "audit_rate" in r:
        print(f"  audit verify over {r['audit_entries']:,.0f} entries: {r['audit_rate']:,.0f} events/s; raw Ed25519 "
              f"(cryptography) on {os.cpu_count()} cores {r['audit_raw_rate']:,.0f}/s, ratio "
              f"{r['audit_rate'] / r['audit_raw_rate']:.2f}; libsodium {r['audit_sodium_rate']:,.0f}/s, ratio "
              f"{r['audit_rate'] / r['audit_sodium_rate']:.2f} (target >= 0.7); per CPU second "
              f"{r['audit_per_cpu'] / r['audit_sodium_per_cpu']:.2f} of libsodium's; peak RSS "
              f"{r['audit_peak_rss_mib']:,.0f} MiB, largest worker {r['audit_worker_peak_rss_mib']:,.0f} MiB "
              "(target < 1 GiB)", flush=True)


def project(runs: list[dict[str, Any]]) -> None:
    """Extrapolate to 10M and 100M members (projections, not measurements): the totals (build, one period, log
    integration) in proportion to the members of the largest run — each is one pass over the members — and the
    peak RSS along its growth per member between the last two runs."""
    a, b = runs[-2], runs[-1]
    per_member_mib = (b["period_peak_rss_mib"] - a["period_peak_rss_mib"]) / (b["members"] - a["members"])
    for target in (10_000_000, 100_000_000):
        scale = target / b["members"]
        rss = b["period_peak_rss_mib"] + per_member_mib * (target - b["members"])
        print(f"PROJECTED at {target:,} members (from the {b['members']:,}-member run; not measured): build "
              f"{b['build_seconds'] * scale / 3600:.1f} h, one period {b['period_seconds'] * scale:.0f} s, peak RSS "
              f"{rss:,.0f} MiB ({per_member_mib * 1024 * 1024:.0f} bytes a member, linear: an upper bound where "
              f"the growth is SQLite's page cache, which stops at 256 MiB a connection), log integration with "
              f"{b['periods']:.0f} rolls {b['integrate_seconds'] * scale / 60:.0f} min; statement p50 "
              f"~{b['statement_p50_ms']:.1f} ms and bundle p50 ~{b['bundle_p50_ms']:.1f} ms (indexed lookups: flat)")


def main() -> None:
    """Run and print."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, nargs="+", default=[100_000])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--periods", type=int, default=48)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the second period (assessed and applied) "
                        "to this file; the first stays timed without the profiler (needs --periods 2 or more)")
    parser.add_argument("--audit", action="store_true", help="also export the log and audit it (bench.audit)")
    parser.add_argument("--keep", type=Path, help="build the store in this new directory and keep it (one --members)")
    parser.add_argument("--again", type=Path, metavar="DIR", help="on the store kept in DIR by --keep (its m<N> "
                        "directory; on PostgreSQL, --url is the kept store's URL that --keep printed): migrate it to "
                        "the current schema (timed), then the periods' phase again, numbered after its last period")
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        directory, plan, periods, database_url, profile, first, start = args.child
        print(json.dumps(period_phase(Path(directory), plan, int(periods), database_url or None, bundles=True,
                                      profile=Path(profile) if profile else None, first=int(first),
                                      start=datetime.fromisoformat(start))))
        return
    if args.again is not None:
        if args.store == "postgres" and "?schema=" not in args.url:
            parser.error("--again on PostgreSQL: --url is the kept store's URL, with its ?schema=")
        if not (args.again / "operator" / "trust-anchors.json").is_file():
            parser.error(f"--again: {args.again} is not the m<N> directory of a store kept by --keep")
        again(args.again, args.url if args.store == "postgres" else None, args.periods, args.profile)
        return
    print(f"store: {args.store}, cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    if args.keep is not None and (len(args.members) > 1 or args.keep.exists()):
        parser.error("--keep: one --members, and a directory that does not exist yet")
    runs = []
    for members in args.members:
        profile = None if args.profile is None else args.profile.with_suffix(f".{members}.prof")
        if args.keep is not None:
            args.keep.mkdir(parents=True)
            runs.append(measure(members, args.store, args.url, args.periods, args.keep / f"m{members}", profile,
                                args.audit, keep=True))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(measure(members, args.store, args.url, args.periods, Path(tmp) / f"m{members}",
                                    profile, args.audit))
        report(runs[-1], args.store)
    if len(runs) >= 2:
        project(runs)


if __name__ == "__main__":
    main()
