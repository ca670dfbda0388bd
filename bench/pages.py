"""Pages benchmark: "Verify my history" and the 公示 page in headless Chromium, at a store of `--members` members
with `--periods` periods of history (defaults: 1,000,000 and 48, two years of a 相互宝-like postpaid plan with
about 36 cases a period, each period settled, its cases paid and its 公示 published).

    python -m bench.pages build --dir bench-out/pages [--members 1000000 --periods 48 --keyed 200]
    python -m bench.pages measure --dir bench-out/pages [--rounds 5]

`build` writes the store once (it takes long at a million members; `bench-out/` is not committed). `--keyed` members
(the first and a seeded sample) hold keys from the start and are in every period's roll; `bench.service --store`
signs as them against the same store. `measure` serves the store with `create_app` (uvicorn, loopback)
and drives the system Chromium with Playwright:

- the 公示 page's first load (fresh profile, nothing cached), at CPU throttling 4x (Chrome DevTools Protocol
  `Emulation.setCPUThrottlingRate`) and not throttled: navigation start to the load event — target < 1 s throttled
  — and, within it, to the end of the HTML response (the service's part, not throttled);
- "Verify my history" end to end, once, throttled (click to ✓: the signed bundle request, the service building
  the bundle, the download, the checks), and the bytes the browser received for it (encoded, as on the wire, from
  the DevTools network events) — target < 200 KB; the service's part is the bundle builder's (the scale work);
- the browser's own part of it (the checks alone, timed by the page), throttled and not, over `--rounds` more runs
  on the bundle the service gave (served to the page as captured, so the builder's time is not repeated) — target
  < 1 s throttled.

Figures are medians. The machine may be shared: say so with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger.application import SimulatedClock
from ledger.demo import claims_per_period, commitment, postpaid_rules
from ledger.envelope import parse_at
from ledger.service import ledger_with_parties, member_key
from schemas.commands.claim import DecideClaim, FileClaim, InvestigateClaim, NoticeClaim, PayClaim
from schemas.commands.disclosure import PublishDisclosure
from schemas.commands.membership import Join
from schemas.commands.period import AssessPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod
from schemas.commands.plan import CreatePlan

START = datetime(2024, 1, 1, tzinfo=UTC)
"""Two years of history end before the real clock of any run, so the member's key (registered at the start) is
valid when the browser signs with the real time."""
BATCH = 2000
THROTTLE = 4


def build(directory: Path, members: int, periods: int, keyed: int = 200) -> None:
    """The store, its keyed members and what `measure` and `bench.service --store` need (`pages-bench.json`)."""
    started = time.perf_counter()
    ledger = ledger_with_parties(directory, SimulatedClock(START))
    clock = ledger.clock
    assert isinstance(clock, SimulatedClock)
    rules = postpaid_rules(members)
    plan = str(ledger.execute(CreatePlan(command_id="plan", name="相互宝 bench", kind="cancer", rules=rules))["plan"])
    ids: list[str] = []
    for offset in range(0, members, BATCH):
        ids += [str(r["member"]) for r in ledger.execute_many([Join(
            command_id=f"j{i}", plan=plan, age_years=20 + i % 39, sex="f" if i % 2 else "m", province="zj",
            consent_commitment=commitment("consent", i), health_declaration_commitment=commitment("health", i))
            for i in range(offset, min(members, offset + BATCH))])]
    chosen = {0, *random.Random(3).sample(range(1, len(ids)), min(len(ids) - 1, max(0, keyed - 1)))}
    keys = [member_key(ledger, ids[index]) for index in sorted(chosen)]
    print(f"{members:,} members joined in {time.perf_counter() - started:.0f} s", flush=True)
    rng = random.Random(7)
    unkeyed = [index for index in range(1, len(ids)) if index not in chosen]  # keyed members stay claim-free
    claimants = iter(rng.sample(unkeyed, min(len(unkeyed), claims_per_period(members) * periods)))
    pending: list[tuple[str, list[str]]] = []  # assessed periods and their cases, settled once their grace ended

    def settle(period: str, claims: list[str]) -> None:
        ledger.execute(SettlePeriod(command_id=f"settle-{period}", period=period))
        ledger.execute_many([PayClaim(command_id=f"pay-{c}", claim=c, reference=f"aid-{c}") for c in claims])
        ledger.read_models()
        ledger.execute(PublishDisclosure(command_id=f"disclose-{period}", period=period))

    for number in range(1, periods + 1):
        opened = ledger.execute(OpenPeriod(command_id=f"open-{number}", plan=plan, number=number))
        cutoff = parse_at(str(opened["cutoff_at"]))
        filed_at = cutoff - timedelta(days=rules.notice_days + 2)
        claims: list[str] = []
        if filed_at > START + timedelta(days=1):  # accidents: covered from the join, no waiting period
            clock.set(max(clock.now(), filed_at))
            amounts: dict[str, int] = {}
            for n in range(claims_per_period(members)):
                index = next(claimants)
                member, age = ids[index], 20 + index % 39 + (filed_at - START).days // 366
                claims.append(str(ledger.execute(FileClaim(
                    command_id=f"claim-{number}-{n}", member=member, category="accident", condition="fracture",
                    diagnosed_on=filed_at.date().isoformat(), age_at_diagnosis=age,
                    evidence_commitment=commitment("evidence", member)))["claim"]))
                amounts[claims[-1]] = next(b.max_aid_fen for b in rules.aid_bands if age <= b.up_to_age_years)
            ledger.execute_many([InvestigateClaim(command_id=f"inv-{c}", claim=c,
                                                  report_commitment=commitment("r", c), opinion="approve",
                                                  recommended_amount_fen=amounts[c]) for c in claims])
            ledger.execute_many([NoticeClaim(command_id=f"notice-{c}", claim=c) for c in claims])
            clock.set(filed_at + timedelta(days=rules.notice_days, hours=1))
            ledger.execute_many([DecideClaim(command_id=f"decide-{c}", claim=c) for c in claims])
        clock.set(max(clock.now(), cutoff + timedelta(hours=1)))
        ledger.read_models()  # the assessment asks the read models for the approved cases
        assessed = ledger.execute(AssessPeriod(command_id=f"assess-{number}", period=str(opened["period"])))
        assert assessed["cases"] == len(claims), (number, assessed["cases"], len(claims))
        if assessed["subsidy_fen"]:
            ledger.execute(ReceiveSubsidy(command_id=f"subsidy-{number}", period=str(opened["period"]),
                                          amount_fen=int(assessed["subsidy_fen"]), reference=f"op-{number}"))
        pending.append((str(opened["period"]), claims))
        if len(pending) > 2:  # a period's grace ends two days before the next one's collection day
            settle(*pending.pop(0))
        print(f"period {number}: {assessed['locked_members']:,} members, {len(claims)} cases, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    clock.set(clock.now() + timedelta(days=40))  # past the last periods' grace
    for period, claims in pending:
        settle(period, claims)
    ledger.read_models()
    ledger.checkpoints.publish(clock.now())
    last = str(ledger.read_models().periods.all(plan)[-1]["id"])
    (directory / "pages-bench.json").write_text(json.dumps({
        "member": ids[0], "key_file": key_file(directory, keys[0].name), "period": last,
        "keyed": [{"member": k.member, "key_file": key_file(directory, k.name)} for k in keys],
        "members": members, "periods": periods, "entries": ledger.app.recorder.max_notification_id()}))
    ledger.close()
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)


def key_file(directory: Path, name: str) -> str:
    """Where a member's key, saved by the members' party, lies in the store's directory."""
    return str(directory / "members" / "keys" / f"{name}.pem")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(directory: Path, rounds: int) -> None:
    """Serve the store and time the pages in Chromium (see the module docstring)."""
    from playwright.sync_api import Page, sync_playwright

    from ledger.api.app import create_app, service_state
    from ledger.application import SystemClock
    from ledger.bootstrap import bootstrap
    from ledger.config import Settings
    from ledger.service import party_key_directories
    from sim.services import CHROMIUM, CHROMIUM_ARGUMENTS, serving

    facts = json.loads((directory / "pages-bench.json").read_text())
    ledger = bootstrap(Settings(data_dir=directory / "operator"), clock=SystemClock(),
                       key_directories=party_key_directories(directory))
    state = service_state(ledger)
    print(f"store: {facts['members']:,} members, {facts['periods']} periods, {facts['entries']:,} entries",
          flush=True)
    results: dict[str, list[float]] = {}
    captured: dict[str, bytes] = {}

    def add(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    def verify(page: Page, throttle: int, end_to_end: bool) -> None:
        """Sign in, click "Verify my history", wait for ✓; the bundle from the service (end to end, the bytes
        counted) or as captured then (the browser's part alone)."""
        page.goto(f"{base}/member")
        page.set_input_files("#key-file", facts["key_file"])
        page.wait_for_selector("#history:not([hidden])", timeout=120_000)
        received: dict[str, float] = {}
        cdp = page.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
        cdp.on("Network.loadingFinished",
               lambda event: received.__setitem__(event["requestId"], event["encodedDataLength"]))
        if end_to_end:
            page.on("response", lambda r: captured.__setitem__("bundle", r.body()) if r.url.endswith("/bundle")
                    else None)
        else:
            page.route("**/bundle", lambda route: route.fulfill(status=200, body=captured["bundle"],
                                                                content_type="application/json"))
        started = time.perf_counter()
        page.click("#verify-history")
        page.wait_for_selector("#history-result.ok, #history-result.failed", timeout=3_600_000)
        elapsed = (time.perf_counter() - started) * 1000
        outcome = page.text_content("#history-result") or ""
        assert "✓" in outcome, outcome + (page.text_content("#checklist") or "")
        timing = page.eval_on_selector("#history-result", "e => ({...e.dataset})")
        add(f"verify_browser_ms@{throttle}x", float(timing["checkMs"]))
        if end_to_end:
            add(f"verify_end_to_end_ms@{throttle}x", elapsed)
            add("verify_bytes", sum(received.values()))

    def fresh(driver: Any) -> Any:
        return driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGUMENTS)

    with serving(create_app(state)) as base, sync_playwright() as driver:
        import httpx

        httpx.get(f"{base}/periods/{facts['period']}", timeout=600).raise_for_status()  # a running service is warm
        browser = fresh(driver)
        try:
            verify(browser.new_context().new_page(), THROTTLE, end_to_end=True)
        finally:
            browser.close()
        print("end to end: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in sorted(results.items())), flush=True)
        for round_number in range(rounds):
            for throttle in (THROTTLE, 1):
                browser = fresh(driver)
                try:
                    context = browser.new_context()
                    page = context.new_page()
                    cdp = context.new_cdp_session(page)
                    cdp.send("Network.enable")
                    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                    cdp.send("Emulation.setCPUThrottlingRate", {"rate": throttle})
                    page.goto(f"{base}/periods/{facts['period']}", wait_until="load")
                    load, html = page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                                               " return [n.loadEventEnd - n.startTime, n.responseEnd - n.startTime]; }")
                    add(f"disclosure_load_ms@{throttle}x", float(load))
                    add(f"disclosure_html_ms@{throttle}x", float(html))
                    verify(browser.new_context().new_page(), throttle, end_to_end=False)
                finally:
                    browser.close()
            print(f"round {round_number + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in sorted(results.items())),
                  flush=True)
    ledger.close()
    print(f"\nmedians (CPU throttling {THROTTLE}x marked @{THROTTLE}x; end to end and bytes: one run, the bundle "
          f"built by the service; the browser's part: {rounds} rounds more on the bundle it then received):")
    for name, values in sorted(results.items()):
        print(f"  {name:<28} {median(values):>12,.0f}")
    print(f"targets: verify_browser_ms@{THROTTLE}x < 1000, verify_bytes < 200,000, "
          f"disclosure_load_ms@{THROTTLE}x < 1000")


def main(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    built = commands.add_parser("build")
    built.add_argument("--dir", type=Path, required=True)
    built.add_argument("--members", type=int, default=1_000_000)
    built.add_argument("--periods", type=int, default=48)
    built.add_argument("--keyed", type=int, default=200, help="Members holding keys (bench.service signs as them).")
    measured = commands.add_parser("measure")
    measured.add_argument("--dir", type=Path, required=True)
    measured.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "build":
        args.dir.mkdir(parents=True, exist_ok=True)
        build(args.dir, args.members, args.periods, args.keyed)
    else:
        measure(args.dir, args.rounds)


if __name__ == "__main__":
    main()
