"""The demo: two realistic plans run for a number of sharing periods on a simulated clock.

A 相互宝-like postpaid cancer plan (operator pays what the caps cut off) and a 水滴互助-like prepaid plan (pro-rata
payouts, custodian-held balances) take members over four months — realistic ages, payers with family members,
top-ups — and then run sharing periods: claims filed after the waiting period, investigated, publicly noticed,
one objection, one jury case with juror-signed votes, periods opened and assessed, debits failed and recovered,
a lapse, subsidies and payouts by the custodian, settlement. Everything goes through the application service, so
every fact is a signed event. The same seed gives the same history (event times come from the simulated clock;
keys and signatures are new on each run).
"""

from __future__ import annotations

import hashlib
import random
import shlex
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.aggregates.sharing_period import SharingPeriod, next_cycle, plan_date, plan_midnight
from ledger.anchors import TRUST_ANCHORS_FILE
from ledger.application import OPERATOR_ROOT_KEY, SimulatedClock, member_key_name
from ledger.bootstrap import Ledger
from ledger.envelope import format_at
from ledger.keys import SigningKey
from ledger.log.witness import open_witness, witness_name
from ledger.projections.cases import render_disclosure, yuan
from ledger.service import initialize, set_up_parties
from schemas.commands import Command
from schemas.commands.claim import (
    CastVote,
    DecideClaim,
    FileClaim,
    FileObjection,
    InvestigateClaim,
    NoticeClaim,
    PayClaim,
    RequestJury,
    ResolveObjection,
)
from schemas.commands.keys import RegisterKey
from schemas.commands.membership import Deposit, Join, QualifyJuror, RecordDebitFailure, RecoverDebit
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, ReceiveSubsidy, SettlePeriod
from schemas.commands.plan import CreatePlan
from schemas.events import AidBand, PlanRules

DEMO_START = datetime(2026, 1, 1, tzinfo=UTC)
"""The simulated clock's first instant."""
JOIN_DAYS = 120
"""Members join over this many days, so waiting periods have passed when claims start."""
BATCH = 2000
"""Commands per transaction."""
PROVINCES = ("zj", "gd", "js", "sd", "hn", "sc", "hb", "ah", "fj", "bj", "sh", "he", "ln", "jx", "gx")
CONDITIONS = ("breast_cancer", "lung_cancer", "thyroid_cancer", "colorectal_cancer", "leukemia", "liver_cancer",
              "gastric_cancer", "cervical_cancer")
CHINA = 480
"""UTC+8, in minutes: the plans' civil time."""


def postpaid_rules(members: int) -> PlanRules:
    """相互宝 (2019): postpaid, ages 0–59, 90 waiting days, 300,000 / 100,000 yuan by age band, 8% fee,
    0.10 yuan per patient and 188 yuan a year caps paid by the operator, notice on the 7th and 21st."""
    return PlanRules(
        min_age_years=0, max_age_years=59, waiting_days=90,
        aid_bands=(AidBand(up_to_age_years=39, max_aid_fen=30_000_000),
                   AidBand(up_to_age_years=59, max_aid_fen=10_000_000)),
        fee_bps=800, per_case_cap_fen=10, annual_cap_fen=18_800, excess_policy="operator_pays",
        payment_model="postpaid", min_balance_fen=0, grace_days=2, claim_window_days=180, notice_days=3,
        jury_quorum=jury_quorum(members), jury_threshold_bps=5000, juror_min_age_years=18,
        juror_min_member_days=30, notice_days_of_month=(7, 21), collection_days_of_month=(14, 28),
        utc_offset_minutes=CHINA,
    )


def prepaid_rules(members: int) -> PlanRules:
    """水滴互助-like: prepaid balances held by the custodian, warned below 3 yuan, pro-rata payouts when capped."""
    return postpaid_rules(members).model_copy(update={
        "payment_model": "prepaid", "excess_policy": "pro_rata", "min_balance_fen": 300, "per_case_cap_fen": 100,
        "waiting_days": 180 - 90,
    })


def jury_quorum(members: int) -> int:
    """Valid votes a verdict needs: 1,000 in the real plan, scaled down for small demos."""
    return max(5, min(1000, members // 50))


def claims_per_period(members: int) -> int:
    """Cases per period: about 3,600 per 100 million members (2021), at least two so every path shows."""
    return max(2, round(members * 3.6e-5))


def commitment(*parts: object) -> str:
    """A salted commitment to an off-log document (the demo's documents are only their hashes)."""
    return hashlib.sha256(b"demo-document:" + ":".join(map(str, parts)).encode()).hexdigest()


def realistic_age(rng: random.Random) -> int:
    """An age drawn like the plans' members: mostly 25–45, children through family joins."""
    return min(59, max(18, int(rng.gauss(34, 9))))


@dataclass
class PeriodRow:
    """One assessed period, as the summary shows it."""

    plan: str
    number: int
    notice_on: str
    locked_members: int
    cases: int
    aid_fen: int
    fee_fen: int
    surplus_in_fen: int
    share_fen: int
    cap_applied: str
    subsidy_fen: int
    funded_aid_fen: int
    failed_debits: int
    lapsed: int


@dataclass
class DemoSummary:
    """What the demo did: counts, the periods, and where the data is."""

    data_dir: str
    seed: int
    members: int
    parties: str = ""
    """Where the custodian, investigator, regulator and members keep their own directories."""
    plans: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    periods: list[PeriodRow] = field(default_factory=list)
    events: int = 0
    statement: str = ""
    disclosure: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "data_dir": self.data_dir, "parties": self.parties, "seed": self.seed, "members": self.members,
            "plans": self.plans,
            "counts": self.counts, "events": self.events,
            "periods": [vars(row) for row in self.periods],
            "statement": self.statement, "last_disclosure": self.disclosure,
        }

    def render(self) -> str:
        """A readable account of the periods."""
        lines = [f"mutual-ledger demo — seed {self.seed}, {self.members:,} members, {self.events:,} signed events "
                 f"in {self.data_dir}", ""]
        lines += [f"  {name}: {plan_id}" for name, plan_id in self.plans.items()]
        lines += ["", "  " + ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in self.counts.items()), ""]
        header = (f"{'plan':<10} {'period':>6} {'notice day':>10} {'members':>9} {'cases':>5} {'aid (yuan)':>13} "
                  f"{'fee':>11} {'surplus in':>10} {'share':>7} {'cap':>8} {'subsidy':>13} {'failed':>6} "
                  f"{'lapsed':>6}")
        lines += [header, "-" * len(header)]
        for row in self.periods:
            lines.append(
                f"{row.plan:<10} {row.number:>6} {row.notice_on:>10} {row.locked_members:>9,} {row.cases:>5} "
                f"{yuan(row.aid_fen):>13} {yuan(row.fee_fen):>11} {yuan(row.surplus_in_fen):>10} "
                f"{yuan(row.share_fen):>7} {row.cap_applied:>8} {yuan(row.subsidy_fen):>13} "
                f"{row.failed_debits:>6} {row.lapsed:>6}")
        lines += ["", "share = ceil((aid + fee - surplus in) / members), capped at 0.10 yuan (postpaid) or 1 yuan "
                  "(prepaid) per case; the operator pays what the cap cuts off in the postpaid plan, payouts shrink "
                  "pro rata in the prepaid one.", "", self.statement]
        if self.disclosure:
            lines += ["", render_disclosure(self.disclosure)]
        lines += ["", f"Explore it: the operator's ledger is in {self.data_dir}, the other parties' directories in "
                  f"{self.parties}.", *(f"  mutual-ledger {command}" for command in self.explore())]
        return "\n".join(lines)

    def explore(self) -> list[str]:
        """Commands that look at what the demo built, with the exact directories."""
        data, regulator = shlex.quote(self.data_dir), shlex.quote(str(Path(self.parties) / "regulator"))
        first = next(iter(self.plans), "postpaid")
        return [f"--data-dir {data} plan list", f"--data-dir {data} period list",
                f"--data-dir {data} disclosure show \"{first} cancer plan:1\"",
                f"--data-dir {data} log checkpoint show",
                f"--data-dir {regulator} audit verify --ledger {data}"]


@dataclass
class PeriodState:
    """What the demo carries between the timed steps of one period of one plan."""

    plan_name: str
    number: int
    notice_on: date
    collection_on: date
    next_collection_on: date
    period: str = ""
    claims: list[tuple[str, Member]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    approved: list[str] = field(default_factory=list)
    objection: tuple[str, int] | None = None
    assessed: dict[str, Any] = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)
    failed: int = 0


@dataclass
class Member:
    """What the demo remembers of a member it created."""

    id: str
    plan: str
    age: int
    joined_on: date
    payer: str | None
    self_paying: bool


class Demo:
    """Drives the application through a simulated history."""

    def __init__(self, app: Ledger, members: int, periods: int, seed: int, progress: Progress | None):
        self.app = app
        self.clock = app.clock
        assert isinstance(self.clock, SimulatedClock), "the demo runs on a simulated clock"
        self.size = members
        self.period_count = periods
        self.rng = random.Random(seed)
        self.seed = seed
        self.progress = progress
        self.summary = DemoSummary(str(app.settings.data_dir), seed, members)
        self.members: dict[str, list[Member]] = {}
        self.counts: dict[str, int] = {}
        self.ids = 0
        self.claimed: set[str] = set()
        self.ended: set[str] = set()
        self.jurors: dict[str, list[str]] = {}

    # -- plumbing ----------------------------------------------------------------------------------------

    def next_id(self, kind: str) -> str:
        """A deterministic command id."""
        self.ids += 1
        return f"demo-{self.seed}-{kind}-{self.ids}"

    def at(self, moment: datetime) -> None:
        """Move the simulated clock forward to `moment` (never back)."""
        if moment > self.clock.now():
            assert isinstance(self.clock, SimulatedClock)
            self.clock.set(moment)

    def run(self, commands: Sequence[Command], sign_as: str | None = None) -> list[dict[str, Any]]:
        """Execute commands in batches."""
        results: list[dict[str, Any]] = []
        for offset in range(0, len(commands), BATCH):
            results += self.app.execute_many(commands[offset:offset + BATCH], sign_as=sign_as)
        return results

    def count(self, name: str, n: int = 1) -> None:
        """Add to a summary counter."""
        self.counts[name] = self.counts.get(name, 0) + n

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar (or nothing when progress is off)."""
        if self.progress is None:
            yield lambda n: None
            return
        task_id = self.progress.add_task(description, total=total)
        yield lambda n: self.progress.advance(task_id, n) if self.progress else None
        self.progress.update(task_id, completed=total)

    # -- the history -------------------------------------------------------------------------------------

    def create_plans(self) -> None:
        """The two plans."""
        self.at(DEMO_START)
        for name, rules in (("postpaid", postpaid_rules(self.size)), ("prepaid", prepaid_rules(self.size))):
            result = self.app.execute(CreatePlan(
                command_id=self.next_id("plan"), name=f"{name} cancer plan", kind="cancer", rules=rules))
            self.summary.plans[name] = str(result["plan"])
            self.members[name] = []

    def join_members(self) -> None:
        """Members join over JOIN_DAYS days: six in ten into the postpaid plan; a fifth join as family."""
        per_day = [self.size // JOIN_DAYS + (1 if day < self.size % JOIN_DAYS else 0) for day in range(JOIN_DAYS)]
        with self.task("members join", self.size) as advance:
            for day, count in enumerate(per_day):
                self.at(DEMO_START + timedelta(days=day, hours=2))
                joins: list[Command] = []
                planned: list[tuple[str, Member]] = []
                for _ in range(count):
                    plan_name = "postpaid" if self.rng.random() < 0.6 else "prepaid"
                    payers = [m for m in self.members[plan_name][-200:] if m.self_paying]
                    family = bool(payers) and self.rng.random() < 0.2
                    payer = self.rng.choice(payers) if family else None
                    age = self.rng.randint(0, 17) if family and self.rng.random() < 0.5 else realistic_age(self.rng)
                    command_id = self.next_id("join")
                    joins.append(Join(
                        command_id=command_id, plan=self.summary.plans[plan_name], age_years=age,
                        sex=self.rng.choice(("f", "m")), province=self.rng.choice(PROVINCES),
                        payer=payer.id if payer else None,
                        consent_commitment=commitment("consent", command_id),
                        health_declaration_commitment=commitment("health", command_id)))
                    planned.append((plan_name, Member("", plan_name, age, (DEMO_START + timedelta(days=day)).date(),
                                                      payer.id if payer else None, payer is None)))
                results = self.run(joins)
                deposits: list[Command] = []
                for (plan_name, member), result in zip(planned, results, strict=True):
                    member.id = str(result["member"])
                    self.members[plan_name].append(member)
                    if plan_name == "prepaid" and member.self_paying:
                        amount = self.rng.choice((300, 900)) + self.rng.choice((0, 1000, 1000, 5000))
                        deposits.append(Deposit(command_id=self.next_id("dep"), member=member.id,
                                                amount_fen=amount, reference=self.next_id("bank")))
                self.at(self.clock.now() + timedelta(hours=1))
                self.run(deposits)
                self.count("joins", len(joins))
                self.count("deposits", len(deposits))
                advance(count)

    def qualify_jurors(self) -> None:
        """Adult members pass the juror exam and get their own signing keys (votes are juror-signed)."""
        self.at(DEMO_START + timedelta(days=JOIN_DAYS, hours=3))
        for plan_name in ("postpaid", "prepaid"):
            quorum = jury_quorum(self.size)
            adults = [m for m in self.members[plan_name]
                      if m.age >= 18 and m.joined_on <= (DEMO_START + timedelta(days=JOIN_DAYS - 31)).date()]
            chosen = self.rng.sample(adults, min(len(adults), quorum + quorum // 5 + 2))
            commands: list[Command] = []
            keys: list[Command] = []
            for member in chosen:
                commands.append(QualifyJuror(command_id=self.next_id("juror"), member=member.id,
                                             age_years=member.age, exam_commitment=commitment("exam", member.id)))
                key = SigningKey.generate(member_key_name("juror", member.id), "juror", member.id)
                self.app.signers.party("members").save(key)
                keys.append(RegisterKey(command_id=self.next_id("key"), role="juror",
                                        public_key=key.public_base64, member=member.id))
            self.run(commands)
            self.run(keys)
            self.count("jurors", len(chosen))
            self.jurors[plan_name] = [m.id for m in chosen]

    def run_periods(self) -> None:
        """Sharing periods on the plans' calendar after the joins, every step at its time.

        Periods overlap as they do in a real plan: the next period's cases are filed and noticed while the last
        one is collected, and a postpaid period settles when its grace ends, two days before the next collection.
        The steps of all periods of both plans are put on one timeline and run in time order.
        """
        rules = postpaid_rules(self.size)
        after = plan_date(DEMO_START + timedelta(days=JOIN_DAYS + 10), rules)
        cycles = []
        for _ in range(self.period_count + 1):
            notice_on, collection_on = next_cycle(rules, after)
            cycles.append((notice_on, collection_on))
            after = notice_on
        timeline: list[tuple[datetime, int, Callable[[], None]]] = []
        for plan_name in ("postpaid", "prepaid"):
            plan_rules = postpaid_rules(self.size) if plan_name == "postpaid" else prepaid_rules(self.size)
            for number in range(1, self.period_count + 1):
                state = PeriodState(plan_name, number, *cycles[number - 1], next_collection_on=cycles[number][1])
                for moment, step in self.period_steps(state, plan_rules, cycles):
                    timeline.append((moment, len(timeline), step))
        timeline.sort(key=lambda item: (item[0], item[1]))
        with self.task("sharing periods", len(timeline)) as advance:
            for moment, _, step in timeline:
                self.at(moment)
                step()
                advance(1)

    def period_steps(self, state: PeriodState, rules: PlanRules,
                     cycles: list[tuple[date, date]]) -> list[tuple[datetime, Callable[[], None]]]:
        """The timed steps of one period of one plan."""
        cutoff = plan_midnight(state.notice_on, rules)
        collection = plan_midnight(state.collection_on, rules)
        opens = (cutoff - timedelta(days=16) if state.number == 1
                 else plan_midnight(cycles[state.number - 2][0], rules) + timedelta(hours=2))
        prepaid = rules.payment_model == "prepaid"
        grace_end = plan_midnight(state.next_collection_on - timedelta(days=rules.grace_days), rules)
        steps: list[tuple[datetime, Callable[[], None]]] = [
            (opens, lambda: self.open(state)),
            (cutoff - timedelta(days=13), lambda: self.file_claims(state, cutoff, rules)),
            (cutoff - timedelta(days=12), lambda: self.investigate(state, rules)),
            (cutoff - timedelta(days=11), lambda: self.notice(state)),
            (cutoff - timedelta(days=10), lambda: self.dispute(state)),
            (cutoff - timedelta(days=9), lambda: self.review(state)),
            (cutoff - timedelta(days=7), lambda: self.decide(state)),
            (cutoff + timedelta(hours=1), lambda: self.assess(state)),
            (collection + timedelta(hours=9), lambda: self.collect(state, rules, cutoff)),
            (collection + timedelta(hours=10), lambda: self.subsidy(state)),
            (collection + timedelta(days=1, hours=9), lambda: self.recover(state)),
            ((collection + timedelta(hours=12)) if prepaid else (grace_end + timedelta(hours=1)),
             lambda: self.settle(state)),
            ((collection + timedelta(hours=13)) if prepaid else (grace_end + timedelta(hours=2)),
             lambda: self.pay(state)),
        ]
        if prepaid:
            steps.append((collection + timedelta(days=3), lambda: self.top_ups(state.plan_name)))
        return steps

    def open(self, state: PeriodState) -> None:
        """Announce the period."""
        result = self.app.execute(OpenPeriod(command_id=self.next_id("open"), plan=self.summary.plans[state.plan_name],
                                             number=state.number, notice_on=state.notice_on.isoformat()))
        state.period = str(result["period"])

    def file_claims(self, state: PeriodState, cutoff: datetime, rules: PlanRules) -> None:
        """This period's cases are reported (diagnosed after the waiting period, within the window)."""
        self.refresh_ended(state.plan_name)
        diagnosed_on = (cutoff - timedelta(days=20)).date()
        claimants = self.eligible_claimants(state.plan_name, diagnosed_on, claims_per_period(self.size))
        filed = self.run([FileClaim(
            command_id=self.next_id("claim"), member=m.id,
            category="accident" if self.rng.random() < 0.05 else "illness", condition=self.rng.choice(CONDITIONS),
            diagnosed_on=(diagnosed_on - timedelta(days=self.rng.randint(0, 10))).isoformat(),
            age_at_diagnosis=m.age, evidence_commitment=commitment("evidence", m.id)) for m in claimants])
        state.claims = [(str(result["claim"]), m) for result, m in zip(filed, claimants, strict=True)]
        self.claimed |= {m.id for m in claimants}
        self.count("claims_filed", len(filed))

    def investigate(self, state: PeriodState, rules: PlanRules) -> None:
        """The investigation firm's opinions: about one in six rejected (and the case that goes to the jury)."""
        opinions: list[Command] = []
        for index, (claim, member) in enumerate(state.claims):
            jury_case = state.number == 1 and state.plan_name == "postpaid" and index == len(state.claims) - 1
            if jury_case or self.rng.random() < 1 / 6:
                state.rejected.append(claim)
                opinions.append(InvestigateClaim(
                    command_id=self.next_id("inv"), claim=claim, report_commitment=commitment("report", claim),
                    opinion="reject", recommended_amount_fen=0,
                    reason=self.rng.choice(("undeclared_pre_existing_condition", "condition_not_covered",
                                            "insufficient_evidence"))))
            else:
                opinions.append(InvestigateClaim(
                    command_id=self.next_id("inv"), claim=claim, report_commitment=commitment("report", claim),
                    opinion="approve", recommended_amount_fen=rules.max_aid_fen(member.age)))
        self.run(opinions)

    def notice(self, state: PeriodState) -> None:
        """Public notice of every case."""
        self.run([NoticeClaim(command_id=self.next_id("notice"), claim=claim) for claim, _ in state.claims])

    def dispute(self, state: PeriodState) -> None:
        """Period 1: an objection in the prepaid plan, a jury request in the postpaid plan."""
        if state.number != 1:
            return
        if state.plan_name == "prepaid":
            approved = [claim for claim, _ in state.claims if claim not in state.rejected]
            if approved:
                taken = {m.id for _, m in state.claims}
                objector = next(m for m in self.members[state.plan_name]
                                if m.id not in taken and m.id not in self.ended)
                result = self.app.execute(FileObjection(
                    command_id=self.next_id("object"), claim=approved[0], objector=objector.id,
                    evidence_commitment=commitment("objection", approved[0])))
                state.objection = (approved[0], int(result["objection"]))
                self.count("objections")
        elif state.rejected:
            claim = state.rejected[0]
            self.app.execute(RequestJury(command_id=self.next_id("jury"), claim=claim))
            jurors = [j for j in self.jurors[state.plan_name] if j not in self.claimed and j not in self.ended]
            quorum = jury_quorum(self.size)
            voters = jurors[:quorum + quorum // 10]
            against = round(len(voters) * 0.58)
            self.run([CastVote(command_id=self.next_id("vote"), claim=claim, juror=juror, support=i >= against)
                      for i, juror in enumerate(voters)])
            self.count("jury_cases")
            self.count("votes", len(voters))

    def review(self, state: PeriodState) -> None:
        """The objection's re-review does not uphold it."""
        if state.objection is not None:
            claim, number = state.objection
            self.app.execute(ResolveObjection(command_id=self.next_id("review"), claim=claim, objection=number,
                                              upheld=False, review_commitment=commitment("review", claim)))

    def decide(self, state: PeriodState) -> None:
        """Decisions after the notice."""
        decided = self.run([DecideClaim(command_id=self.next_id("decide"), claim=claim) for claim, _ in state.claims])
        state.approved = [str(r["claim"]) for r in decided if r["decision"] == "approved"]
        self.count("claims_approved", len(state.approved))
        self.count("claims_rejected", len(decided) - len(state.approved))

    def assess(self, state: PeriodState) -> None:
        """The period's one signed assessment."""
        state.assessed = self.app.execute(AssessPeriod(command_id=self.next_id("assess"), period=state.period))
        self.count("periods_assessed")

    def collect(self, state: PeriodState, rules: PlanRules, cutoff: datetime) -> None:
        """Prepaid: balances are debited. Postpaid: about 0.4% of channel debits fail."""
        if rules.payment_model == "prepaid":
            result = self.app.execute(CollectPeriod(command_id=self.next_id("collect"), period=state.period))
            state.failed = int(result["failed_debits"])
        elif int(state.assessed["share_fen"]) > 0:
            self.refresh_ended(state.plan_name)
            locked = [m for m in self.app.balances().locked_members(self.summary.plans[state.plan_name],
                                                                   format_at(cutoff)) if m not in self.ended]
            failing = self.rng.sample(locked, max(1, len(locked) // 250))
            self.run([RecordDebitFailure(command_id=self.next_id("fail"), member=m, period=state.period)
                      for m in failing])
            state.failing = failing
            state.failed = len(failing)
        self.count("debits_failed", state.failed)

    def subsidy(self, state: PeriodState) -> None:
        """The operator's subsidy for what the caps cut off reaches the custodian."""
        amount = int(state.assessed["subsidy_fen"])
        if amount > 0:
            self.app.execute(ReceiveSubsidy(command_id=self.next_id("subsidy"), period=state.period,
                                            amount_fen=amount, reference=self.next_id("op")))
            self.count("subsidies")

    def recover(self, state: PeriodState) -> None:
        """Postpaid: the channel retries; 60% of the failed debits are collected the next day."""
        recovered = state.failing[: len(state.failing) * 3 // 5]
        self.run([RecoverDebit(command_id=self.next_id("recover"), member=m, period=state.period)
                  for m in recovered])
        self.count("debits_recovered", len(recovered))

    def pay(self, state: PeriodState) -> None:
        """Once the period settles, the custodian pays each case what the settlement made payable."""
        stored = self.app.read(UUID(state.period), SharingPeriod)
        assert stored is not None
        payable = [claim for claim in state.approved if stored.payable_fen(claim) > 0]
        self.run([PayClaim(command_id=self.next_id("pay"), claim=claim, reference=self.next_id("aid"))
                  for claim in payable])
        self.count("claims_paid", len(payable))

    def settle(self, state: PeriodState) -> None:
        """Settlement: members whose debit still failed lapse; the summary row is written."""
        settled = self.app.execute(SettlePeriod(command_id=self.next_id("settle"), period=state.period))
        lapsed = int(settled["lapsed"])
        self.count("lapses", lapsed)
        stored = self.app.read(UUID(state.period), SharingPeriod)
        assert stored is not None
        a = stored.require_assessment()
        self.summary.periods.append(PeriodRow(
            plan=state.plan_name, number=state.number, notice_on=state.notice_on.isoformat(),
            locked_members=a.locked_members, cases=len(a.cases), aid_fen=a.aid_fen, fee_fen=a.fee_fen,
            surplus_in_fen=a.surplus_in_fen, share_fen=a.share_fen, cap_applied=a.cap_applied,
            subsidy_fen=a.subsidy_fen, funded_aid_fen=a.funded_aid_fen, failed_debits=state.failed, lapsed=lapsed))
        self.witness_checkpoint()

    def eligible_claimants(self, plan_name: str, diagnosed_on: date, count: int) -> list[Member]:
        """Members still in the plan, past the waiting period, without a claim, chosen at random."""
        waiting = (postpaid_rules(self.size) if plan_name == "postpaid" else prepaid_rules(self.size)).waiting_days
        candidates = [m for m in self.members[plan_name]
                      if m.id not in self.claimed and m.id not in self.ended
                      and m.joined_on + timedelta(days=waiting + 11) <= diagnosed_on]
        return self.rng.sample(candidates, min(count, len(candidates)))

    def refresh_ended(self, plan_name: str) -> None:
        """Remember which members have left (from the balances), so no claim is filed for them."""
        balances = self.app.balances()
        active = set(balances.active_members(self.summary.plans[plan_name]))
        self.ended |= {m.id for m in self.members[plan_name] if m.id not in active}

    def top_ups(self, plan_name: str) -> None:
        """Prepaid members warned of a low balance: most top up 10 or 50 yuan, some let it run out."""
        rules = prepaid_rules(self.size)
        low = self.app.balances().low_balances(self.summary.plans[plan_name], rules.min_balance_fen)
        deposits = [Deposit(command_id=self.next_id("dep"), member=account, amount_fen=self.rng.choice((1000, 5000)),
                            reference=self.next_id("bank")) for account, _ in low if self.rng.random() < 0.8]
        self.run(deposits)
        self.count("low_balance_warnings", len(low))
        self.count("deposits", len(deposits))

    def disclose(self) -> None:
        """Publish every settled period's disclosure; keep the last one and one member's 爱心账单 for the summary."""
        from ledger.projections.cases import disclosure_document
        from ledger.projections.statements import render, statement
        from schemas.commands.disclosure import PublishDisclosure

        models = self.app.read_models()
        settled = [p for p in models.periods.all() if p["status"] == "settled"]
        self.at(self.clock.now() + timedelta(hours=1))
        self.run([PublishDisclosure(command_id=self.next_id("disclose"), period=p["id"]) for p in settled])
        self.count("disclosures", len(settled))
        models = self.app.read_models()
        last = max(settled, key=lambda p: (p["cutoff_at"], p["plan"]))
        self.summary.disclosure = disclosure_document(last["id"], models.periods, models.cases,
                                                      models.balances.failed_periods())
        candidates = [m for m in self.members["prepaid"] if m.self_paying and m.id not in self.ended]
        best = max(candidates[:200] or self.members["prepaid"][:1],
                   key=lambda m: statement(models, m.id, None, None, self.clock.now())["periods_paid_into"])
        self.summary.statement = render(statement(models, best.id, None, None, self.clock.now()))

    def share_trust_anchors(self) -> None:
        """Every party receives the trust anchors (out of band, in reality): the operator's root and log keys and
        the custodian's and regulator's own keys, so each can verify the ledger from public material alone."""
        anchors = self.app.settings.data_dir / TRUST_ANCHORS_FILE
        for directory in self.app.signers.directories[1:]:
            shutil.copyfile(anchors, directory.path.parent / TRUST_ANCHORS_FILE)

    def witness_checkpoint(self) -> None:
        """The operator publishes a checkpoint; the custodian and the regulator, each from its own directory with
        its own key and state, check it against every one they cosigned and cosign it."""
        checkpoints = self.app.checkpoints
        published = checkpoints.publish(self.clock.now())
        root = self.app.signers.load(OPERATOR_ROOT_KEY).public_raw
        for party in ("custodian", "regulator"):
            directory = self.app.signers.party(party)
            witness = open_witness(directory.path.parent, directory.load(party),
                                   witness_name(party, self.app.settings.log_origin), [checkpoints.verifier], [root])
            cosigned = witness.cosign(published.note, checkpoints.verifier, checkpoints.log.consistency_proof,
                                      int(self.clock.now().timestamp()))
            checkpoints.add_cosignature(published.size, cosigned, witness.verifier)
        self.count("checkpoints")

    def event_count(self) -> int:
        """Stored events so far."""
        return self.app.app.recorder.max_notification_id() or 0


def run_demo(app: Ledger, members: int, periods: int, seed: int, progress: bool = False,
             console: Console | None = None) -> DemoSummary:
    """Build the demo history in an empty ledger and return its summary."""
    if not app.app.recorder.max_notification_id():
        initialize(app)
        set_up_parties(app)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console or Console(stderr=True), disable=not progress) as bar:
        demo = Demo(app, members, periods, seed, bar if progress else None)
        demo.create_plans()
        demo.join_members()
        demo.qualify_jurors()
        demo.run_periods()
        demo.disclose()
        demo.witness_checkpoint()
    demo.share_trust_anchors()
    demo.summary.counts = demo.counts
    demo.summary.events = demo.event_count()
    return demo.summary

