"""`python -m sim --seed S [--steps N] [--store sqlite|postgres]`: one seeded run of the fault simulation; with
`--seeds A-B` (or `--seeds N`: N seeds from `--seed`) a long run of those seeds one after another, reporting seeds
run, faults injected by kind and invariants checked. Exit 1 when an invariant broke (the line says the seed, the
step, the fault and the invariant)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from sim.run import FAULT_KINDS, Report, Simulation


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="The seed (the first one with --seeds).")
    parser.add_argument("--seeds", type=seed_range, default=None,
                        help="A-B: the seeds A to B, one after the other; N: N seeds from --seed.")
    parser.add_argument("--steps", type=int, default=120, help="Writer requests at most (the workload has ~90).")
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="sqlite",
                        help="The event store (both: alternate, even seeds on SQLite).")
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--periods", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="Run in this directory and keep it (one seed).")
    parser.add_argument("--json", action="store_true", help="One JSON report per seed, then the summary.")
    parser.add_argument("--summarize", type=Path, default=None, metavar="LOG",
                        help="Run nothing: the summary of the seeds whose --json reports a log holds.")
    return parser.parse_args(argv)


def seed_range(text: str) -> tuple[int, int | None]:
    """`A-B` (first and last seed) or `N` (a count, from `--seed`)."""
    first, dash, last = text.partition("-")
    try:
        if dash:
            start, end = int(first), int(last)
            if end < start:
                raise ValueError
            return start, end
        if int(text) < 1:
            raise ValueError
        return int(text), None
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds: must be A-B with A <= B, or a count of at least 1 ({text})"
                                         ) from None


def seeds_of(args: argparse.Namespace) -> range:
    """The seeds to run."""
    if args.seeds is None:
        return range(args.seed, args.seed + 1)
    first, last = args.seeds
    return range(first, last + 1) if last is not None else range(args.seed, args.seed + first)


def store_of(seed: int, store: str) -> str:
    """The store of a seed's run."""
    if store != "both":
        return store
    return "sqlite" if seed % 2 == 0 else "postgres"


def line(report: Report) -> str:
    """One seed in one line."""
    verdict = "BROKEN " + report.broken if report.broken else "ok"
    faults = sum(report.fault_counts.values())
    return (f"seed {report.seed} {report.store}: {report.steps} steps, {faults} faults, "
            f"{sum(report.checks.values())} checks, outcome {report.outcome or '-'}, {report.seconds:g} s, "
            f"load {os.getloadavg()[0]:.1f}: {verdict}")


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Seeds run (by store and by steps), the seeds that broke, faults injected by kind, invariants checked by
    name, over some seeds' reports."""
    faults: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
    checks: dict[str, int] = {}
    stores: dict[str, int] = {}
    steps: dict[str, int] = {}
    for report in reports:
        stores[report["store"]] = stores.get(report["store"], 0) + 1
        steps[str(report["steps"])] = steps.get(str(report["steps"]), 0) + 1
        for kind, count in report["fault_counts"].items():
            faults[kind] += count
        for name, count in report["checks"].items():
            checks[name] = checks.get(name, 0) + count
    broken = [str(report["broken"]).split("\n")[0] for report in reports if report["broken"]]
    return {"seeds_run": len(reports), "seeds_by_store": stores, "seeds_by_steps_reached": steps, "broken": broken,
            "faults_by_kind": faults, "invariants_checked": checks}


def logged(path: Path) -> list[dict[str, Any]]:
    """The seeds' reports in a log of `--json` runs (a seed logged twice counts once: its last report)."""
    reports: dict[tuple[int, str], dict[str, Any]] = {}
    for text in path.read_text().splitlines():
        if text.startswith('{"broken"'):
            report = json.loads(text)
            reports[report["seed"], report["store"]] = report
    return list(reports.values())


def main(argv: list[str] | None = None) -> int:
    """Run the seeds; print each and the summary (also when the run is stopped: of the seeds it finished)."""
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.summarize is not None:
        print(json.dumps(summarize(logged(args.summarize)), indent=2, sort_keys=True))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a run ended with SIGTERM stops what it started
    started = time.monotonic()
    seeds = seeds_of(args)
    reports: list[dict[str, Any]] = []
    stopped = None
    for seed in seeds:
        simulation = Simulation(seed, args.steps, store_of(seed, args.store), args.members, args.periods,
                                keep=args.keep)
        if len(seeds) == 1 and not args.json:
            print(f"seed {seed}: {len(simulation.faults)} faults scheduled", flush=True)
            for fault in simulation.faults:
                print(f"  step {fault.step}: {fault.describe()}", flush=True)
        try:
            report = simulation.run()
        except (KeyboardInterrupt, SystemExit):
            stopped = seed
            break
        print(json.dumps(report.to_json(), sort_keys=True) if args.json else line(report), flush=True)
        reports.append(report.to_json())
    summary = {"seeds": f"{seeds.start}-{seeds.stop - 1}", **summarize(reports), "steps": args.steps,
               "stopped_at": stopped, "seconds": round(time.monotonic() - started, 1)}
    if args.json or len(seeds) > 1:
        print(json.dumps(summary, indent=2, sort_keys=True), flush=True)
    for text in summary["broken"]:
        print(text, file=sys.stderr)
    return 1 if summary["broken"] else 143 if stopped is not None else 0


if __name__ == "__main__":
    sys.exit(main())
