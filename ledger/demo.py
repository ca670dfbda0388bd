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
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.aggregates.sharing_period import SharingPeriod, next_cycle, plan_date, plan_midnight
from ledger.anchors import TRUST_ANCHORS_FILE
from ledger.application import OPERATOR_ROOT_KEY, SimulatedClock, member_key_name
from ledger.bootstrap import Ledger
from ledger.bounds import MAX_BALANCE_FEN
from ledger.conditions import SEX_SPECIFIC, fits_age
from ledger.envelope import format_at, parse_at
from ledger.keys import SigningKey
from ledger.log.note import COSIGNATURE_V1, Verifier
from ledger.log.witness import open_witness, witness_name
from ledger.projections.cases import render_disclosure, yuan
from ledger.service import anchor_witnesses, initialize, set_up_parties
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
from schemas.commands.membership import (
    AcceptConversion,
    Deposit,
    DisburseRefund,
    Exit,
    Join,
    QualifyJuror,
    RecordDebitFailure,
    RecoverDebit,
)
from schemas.commands.period import (
    AssessPeriod,
    CollectPeriod,
    OpenPeriod,
    ReceiveSubsidy,
    SettlePeriod,
    WindDown,
)
from schemas.commands.plan import AgeOut, AnnounceClosing, CreatePlan, TerminatePlan
from schemas.events import AidBand, PlanRules

DEMO_START = datetime(2026, 1, 1, tzinfo=UTC)
"""The simulated clock's first instant."""
JOIN_DAYS = 120
"""Most members (STARTERS) join over this many days, so waiting periods have passed when claims start; the rest
join while the periods run."""
STARTERS = 0.7
SCALE = 300
"""Each demo member stands for SCALE real members (docs/plans.md, "The demo's scale"): incidence and every amount a
member pays or holds (shares, top-ups, the annual cap) are SCALE times the real ones, so the share per demo member is
SCALE times the real share; the per-case cap is set so that it binds exactly when it would have in the real pool."""
REAL_POOL = 100_000_000
"""相互宝's members at its peak: the pool whose per-case cap (0.10 yuan from every member) never bound."""
MATURE_INCIDENCE = 3.6e-5
"""Cases per real member per period in a mature pool (about 3,600 per 100 million, 2021)."""
FINAL_PERIODS = 3
"""The postpaid plan's last periods, paid by the operator (相互宝 paid its last ones)."""
CONVERSION_OFFER = "free one-year critical illness policy"
BATCH = 2000
"""Commands per transaction."""
PROVINCES = ("zj", "gd", "js", "sd", "hn", "sc", "hb", "ah", "fj", "bj", "sh", "he", "ln", "jx", "gx")
CONDITIONS = ("breast_cancer", "lung_cancer", "thyroid_cancer", "colorectal_cancer", "leukemia", "liver_cancer",
              "gastric_cancer", "cervical_cancer", "prostate_cancer")
SEX_ONLY = {**SEX_SPECIFIC, "breast_cancer": "f"}
"""Conditions the demo gives to one sex only (the catalogue's, and breast cancer, rare in men)."""
CHINA = 480
"""UTC+8, in minutes: the plans' civil time."""


def postpaid_rules(members: int) -> PlanRules:
    """相互宝 (2019): postpaid, ages 0–59, 90 waiting days, 300,000 / 100,000 yuan by age band, 8% fee,
    0.10 yuan per patient and 188 yuan a year caps paid by the operator, notice on the 7th and 21st — the caps as
    the demo's scale makes them (`per_case_cap`, SCALE)."""
    return PlanRules(
        min_age_years=0, max_age_years=59, waiting_days=90,
        aid_bands=(AidBand(up_to_age_years=39, max_aid_fen=30_000_000),
                   AidBand(up_to_age_years=59, max_aid_fen=10_000_000)),
        fee_bps=800, per_case_cap_fen=per_case_cap(members), annual_cap_fen=18_800 * SCALE,
        excess_policy="operator_pays", payment_model="postpaid", min_balance_fen=0, grace_days=2,
        claim_window_days=180, notice_days=3,
        jury_quorum=jury_quorum(members), jury_threshold_bps=5000, juror_min_age_years=18,
        juror_min_member_days=30, notice_days_of_month=(7, 21), collection_days_of_month=(14, 28),
        utc_offset_minutes=CHINA,
    )


def prepaid_rules(members: int) -> PlanRules:
    """水滴互助-like: prepaid balances held by the custodian, warned below 3 yuan, pro-rata payouts when capped."""
    return postpaid_rules(members).model_copy(update={
        "payment_model": "prepaid", "excess_policy": "pro_rata", "min_balance_fen": 300 * SCALE,
        "waiting_days": 180 - 90,
    })


def per_case_cap(members: int) -> int:
    """The per-case cap per demo member: what 0.10 yuan from each of the real pool's members is per demo member, so
    that a case meets the cap exactly when it would have in the 100-million pool (it never did); within the ledger's
    balance bound."""
    return min(MAX_BALANCE_FEN, -(-10 * REAL_POOL // max(1, members)))


def incidence(number: int) -> float:
    """Cases per demo member in period `number`: a young pool claims less; the rate ramps to the mature one."""
    return SCALE * MATURE_INCIDENCE * min(1.0, 0.3 + 0.25 * (number - 1))


def claim_amount(rng: random.Random, maximum: int) -> int:
    """An approved amount as the plans' were: around a median of 100,000 yuan (averages 105–136k), in whole hundreds
    of yuan, never above the plan maximum for the age."""
    hundreds = max(100, round(rng.lognormvariate(0, 0.45) * 1_000))  # at least 10,000 yuan
    return min(maximum, hundreds * 10_000)


def jury_quorum(members: int) -> int:
    """Valid votes a verdict needs: 1,000 in the real plan, scaled down for small demos."""
    return max(5, min(1000, members // 50))


def claims_per_period(members: int) -> int:
    """Cases per period in a mature real pool of `members`: about 3,600 per 100 million (2021), at least two."""
    return max(2, round(members * MATURE_INCIDENCE))


def demo_claims(members: int, number: int, rng: random.Random) -> int:
    """Cases in period `number` among `members` demo members: the ramped, scaled incidence with its spread, at least
    two so every path (an objection, a jury) shows."""
    expected = members * incidence(number)
    return max(2, round(rng.gauss(expected, expected ** 0.5 / 2)))


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
    funded_by: str = "members"


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
    endings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each plan's ending: its style, dates, memberships ended, refunds (how many, how much, by when), conversions
    and tail claims paid."""
    books: dict[str, int] = field(default_factory=dict)
    """The fund's books after the endings: member balances, refunds and aid still owed, the surplus left."""

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "data_dir": self.data_dir, "parties": self.parties, "seed": self.seed, "members": self.members,
            "plans": self.plans,
            "counts": self.counts, "events": self.events,
            "periods": [vars(row) for row in self.periods],
            "statement": self.statement, "last_disclosure": self.disclosure,
            "endings": self.endings, "books": self.books,
        }

    def render(self) -> str:
        """A readable account of the periods."""
        lines = [f"mutual-ledger demo — seed {self.seed}, {self.members:,} members, {self.events:,} signed events "
                 f"in {self.data_dir}", ""]
        lines += [f"  {name}: {plan_id}" for name, plan_id in self.plans.items()]
        lines += ["", "  " + ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in self.counts.items()), ""]
        header = (f"{'plan':<10} {'period':>6} {'notice day':>10} {'members':>9} {'cases':>5} {'aid (yuan)':>13} "
                  f"{'fee':>11} {'surplus in':>10} {'share':>9} {'≈ real':>6} {'cap':>8} {'paid by':>8} "
                  f"{'subsidy':>13} {'failed':>6} {'lapsed':>6}")
        lines += [header, "-" * len(header)]
        for row in self.periods:
            lines.append(
                f"{row.plan:<10} {row.number:>6} {row.notice_on:>10} {row.locked_members:>9,} {row.cases:>5} "
                f"{yuan(row.aid_fen):>13} {yuan(row.fee_fen):>11} {yuan(row.surplus_in_fen):>10} "
                f"{yuan(row.share_fen):>9} {row.share_fen / SCALE / 100:>6.2f} {row.cap_applied:>8} "
                f"{row.funded_by:>8} {yuan(row.subsidy_fen):>13} {row.failed_debits:>6} {row.lapsed:>6}")
        for name in ("postpaid", "prepaid"):
            shares = [f"{row.share_fen / SCALE / 100:.2f}" for row in self.periods if row.plan == name]
            lines.append(f"{name} share trajectory (≈ real yuan per member): {' → '.join(shares)}")
        lines += ["", f"Scale: each demo member stands for {SCALE} real members, so incidence and every amount a "
                  f"member pays or holds are {SCALE}x the real ones ('≈ real' divides the share back); the per-case "
                  "cap is what 0.10 yuan from each of 100 million members comes to per demo member, so it binds "
                  "only where it would have in the real pool; the operator pays what the caps cut off in the "
                  "postpaid plan, payouts shrink pro rata in the prepaid one."]
        for name, ending in self.endings.items():
            lines += ["", f"{name} plan ending ({ending.get('style', '')}): announced {ending.get('announced')}, "
                      f"ended {ending.get('ends')}, refunds due by {ending.get('refund_deadline')}",
                      f"  memberships ended by the wind-down: {ending.get('memberships_ended', 0):,}; "
                      f"refunds paid: {ending.get('refunds', 0):,}, {yuan(ending.get('refunded_fen', 0))} yuan, "
                      f"by {ending.get('refunded_by')}; conversions taken: {ending.get('conversions', 0):,}; "
                      f"tail claims paid after the end: {ending.get('tail_claims_paid', 0)}"]
        if self.books:
            b = self.books
            lines += [f"books after the endings: member balances {yuan(b['member_balances_fen'])}, refunds owed "
                      f"{yuan(b['refunds_owed_fen'])}, aid owed {yuan(b['aid_owed_fen'])} yuan; surplus left in the "
                      f"pools {yuan(b['surplus_fen'])} yuan; trial balance {b['trial_balance_fen']}"]
        lines += ["", self.statement]
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
    sex: str = "f"


class Demo:
    """Drives the application through a simulated history."""

    def __init__(self, app: Ledger, members: int, periods: int, seed: int, progress: Progress | None,
                 endings: bool = True):
        self.app = app
        self.endings = endings
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
        self.closed: set[str] = set()
        """Plans whose closing was announced: nobody joins them any more."""

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
        """Most members (STARTERS) join over JOIN_DAYS days; the rest join while the periods run."""
        starters = round(self.size * STARTERS)
        per_day = [starters // JOIN_DAYS + (1 if day < starters % JOIN_DAYS else 0) for day in range(JOIN_DAYS)]
        with self.task("members join", starters) as advance:
            for day, count in enumerate(per_day):
                self.join_batch(DEMO_START + timedelta(days=day, hours=2), count)
                advance(count)

    def join_batch(self, moment: datetime, count: int) -> None:
        """`count` people join at `moment`: six in ten into the postpaid plan; a fifth join as family; self-payers of
        the prepaid plan top up (SCALE times 10 to 50 yuan)."""
        self.at(moment)
        joins: list[Command] = []
        planned: list[tuple[str, Member]] = []
        for _ in range(count):
            plan_name = "postpaid" if self.rng.random() < 0.6 else "prepaid"
            if plan_name in self.closed:
                continue
            payers = [m for m in self.members[plan_name][-200:] if m.self_paying and m.id not in self.ended]
            family = bool(payers) and self.rng.random() < 0.2
            payer = self.rng.choice(payers) if family else None
            age = self.rng.randint(0, 17) if family and self.rng.random() < 0.5 else realistic_age(self.rng)
            sex = self.rng.choice(("f", "m"))
            command_id = self.next_id("join")
            joins.append(Join(
                command_id=command_id, plan=self.summary.plans[plan_name], age_years=age,
                sex=sex, province=self.rng.choice(PROVINCES),  # type: ignore[arg-type]
                payer=payer.id if payer else None,
                consent_commitment=commitment("consent", command_id),
                health_declaration_commitment=commitment("health", command_id)))
            planned.append((plan_name, Member("", plan_name, age, plan_date(moment, postpaid_rules(self.size)),
                                              payer.id if payer else None, payer is None, sex)))
        results = self.run(joins)
        deposits: list[Command] = []
        for (plan_name, member), result in zip(planned, results, strict=True):
            member.id = str(result["member"])
            self.members[plan_name].append(member)
            if plan_name == "prepaid" and member.self_paying:
                amount = SCALE * self.rng.choice((1000, 2000, 2000, 5000))
                deposits.append(Deposit(command_id=self.next_id("dep"), member=member.id,
                                        amount_fen=amount, reference=self.next_id("bank")))
        self.at(self.clock.now() + timedelta(hours=1))
        self.run(deposits)
        self.count("joins", len(joins))
        self.count("deposits", len(deposits))

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
        """Sharing periods on the plans' calendar after the joins, every step at its time, then the endings.

        Periods overlap as they do in a real plan: the next period's cases are filed and noticed while the last
        one is collected, and a postpaid period settles when its grace ends, two days before the next collection.
        The steps of all periods of both plans are put on one timeline and run in time order. The postpaid plan
        announces its closing before its last FINAL_PERIODS periods, which the operator pays; the prepaid plan
        closes after its last period, 水滴-style (`prepaid_ending`). Both end with tail claims (`tail`).
        """
        rules = postpaid_rules(self.size)
        after = plan_date(DEMO_START + timedelta(days=JOIN_DAYS + 10), rules)
        cycles = []
        for _ in range(self.period_count + FINAL_PERIODS + 1):
            notice_on, collection_on = next_cycle(rules, after)
            cycles.append((notice_on, collection_on))
            after = notice_on
        timeline: list[tuple[datetime, int, Callable[[], None]]] = []
        late = self.size - round(self.size * STARTERS)
        for plan_name in ("postpaid", "prepaid"):
            plan_rules = postpaid_rules(self.size) if plan_name == "postpaid" else prepaid_rules(self.size)
            last = self.period_count + (FINAL_PERIODS if plan_name == "postpaid" and self.endings else 0)
            for number in range(1, last + 1):
                state = PeriodState(plan_name, number, *cycles[number - 1], next_collection_on=cycles[number][1])
                for moment, step in self.period_steps(state, plan_rules, cycles):
                    timeline.append((moment, len(timeline), step))
                if plan_name == "postpaid" and number <= self.period_count:
                    joins = late // self.period_count + (1 if number <= late % self.period_count else 0)
                    moment = plan_midnight(state.notice_on, plan_rules) - timedelta(days=14, hours=20)
                    timeline.append((moment, len(timeline), partial(self.join_batch, moment, joins)))
            if not self.endings:
                continue
            if plan_name == "postpaid":
                final = self.period_count  # the closing is announced before the first final period's cutoff
                announce = plan_midnight(cycles[final][0], plan_rules) - timedelta(days=3)
                ends = plan_midnight(cycles[last - 1][0], plan_rules) + timedelta(days=1)
                timeline.append((announce, len(timeline), partial(self.postpaid_closing, announce, ends)))
                timeline.append((ends + timedelta(hours=1), len(timeline), lambda: self.end_plan("postpaid")))
            else:
                ends_after = plan_midnight(cycles[last][1], plan_rules) + timedelta(days=1)
                timeline.append((ends_after, len(timeline), partial(self.prepaid_ending, ends_after)))
        timeline.sort(key=lambda item: (item[0], item[1]))
        with self.task("sharing periods", len(timeline)) as advance:
            for moment, _, step in timeline:
                self.at(moment)
                step()
                advance(1)
        if self.endings:
            self.tail()

    def period_steps(self, state: PeriodState, rules: PlanRules,
                     cycles: list[tuple[date, date]]) -> list[tuple[datetime, Callable[[], None]]]:
        """The timed steps of one period of one plan."""
        cutoff = plan_midnight(state.notice_on, rules)
        collection = plan_midnight(state.collection_on, rules)
        opens = (cutoff - timedelta(days=16) if state.number == 1
                 else plan_midnight(cycles[state.number - 2][0], rules) + timedelta(hours=2))
        prepaid = rules.payment_model == "prepaid"
        grace_end = plan_midnight(state.next_collection_on - timedelta(days=rules.grace_days), rules)
        settles = (collection + timedelta(hours=12)) if prepaid else (grace_end + timedelta(hours=1))
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
            (settles, lambda: self.settle(state)),
            (settles + timedelta(hours=1), lambda: self.pay(state)),
            (settles + timedelta(hours=2), lambda: self.exits(state)),
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
        diagnosed_on = plan_date(cutoff - timedelta(days=20), rules)
        active = sum(1 for m in self.members[state.plan_name] if m.id not in self.ended)
        claimants = self.eligible_claimants(state.plan_name, diagnosed_on,
                                            demo_claims(active, state.number, self.rng))
        filed = self.run([FileClaim(
            command_id=self.next_id("claim"), member=m.id, category="illness", condition=self.condition(m),
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
                    opinion="approve", recommended_amount_fen=claim_amount(self.rng, rules.max_aid_fen(member.age))))
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
                objector = next((m for m in self.members[state.plan_name]
                                 if m.id not in taken and m.id not in self.ended), None)
                if objector is None:  # a small pool may have no member left who is not a claimant
                    return
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
            locked = self.in_join_order([m for m in self.app.balances().locked_members(
                self.summary.plans[state.plan_name], format_at(cutoff)) if m not in self.ended])
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
            subsidy_fen=a.subsidy_fen, funded_aid_fen=a.funded_aid_fen, failed_debits=state.failed, lapsed=lapsed,
            funded_by=getattr(a, "funded_by", "members")))
        self.witness_checkpoint()

    def condition(self, member: Member) -> str:
        """A cancer that fits the member's sex and age (the demo's claims are illnesses, after the waiting period)."""
        return self.rng.choice([c for c in CONDITIONS if SEX_ONLY.get(c, member.sex) == member.sex
                                and fits_age(c, member.age)])

    def exits(self, state: PeriodState) -> None:
        """Members leave by choice, more as the share rises (a real share of 4 yuan: about 1% a period), those past the
        plan's top age are aged out, and the custodian pays the refunds due (exits, lapses, age-outs) the same day."""
        if state.plan_name not in self.closed:
            real_share = int(state.assessed.get("share_fen", 0)) / SCALE / 100
            chance = min(0.05, 0.0025 * real_share)
            self.refresh_ended(state.plan_name)
            payers = {m.payer for m in self.members[state.plan_name] if m.payer and m.id not in self.ended}
            leaving = [m for m in self.members[state.plan_name]
                       if m.id not in self.ended and m.id not in self.claimed and m.id not in payers
                       and self.rng.random() < chance]
            self.run([Exit(command_id=self.next_id("exit"), member=m.id) for m in leaving])
            self.ended |= {m.id for m in leaving}
            self.count("exits", len(leaving))
            # members past the plan's top age leave it (they are not locked from that day on anyway)
            plan = self.summary.plans[state.plan_name]
            aged = self.app.execute(AgeOut(command_id=self.next_id("age-out"), plan=plan))
            self.count("aged_out", int(aged["aged_out"]))
            self.refresh_ended(state.plan_name)
        self.disburse_refunds(state.plan_name)

    def disburse_refunds(self, plan_name: str) -> list[tuple[str, int]]:
        """The custodian pays every refund of the plan still owed; returns (member, amount) paid."""
        journal = self.app.read_models().journal
        owed = [(str(row[0]), int(row[3]) - int(row[6])) for row in journal.refund_obligations(
            self.summary.plans[plan_name]) if int(row[3]) > int(row[6])]
        self.run([DisburseRefund(command_id=self.next_id("refund"), member=member, amount_fen=amount,
                                 reference=self.next_id("out")) for member, amount in owed])
        self.count("refunds_paid", len(owed))
        return owed

    def postpaid_closing(self, announced: datetime, ends: datetime) -> None:
        """相互宝-style: the closing is announced; the operator pays the last FINAL_PERIODS periods in full."""
        self.closed.add("postpaid")
        plan = self.summary.plans["postpaid"]
        self.app.execute(AnnounceClosing(
            command_id=self.next_id("closing"), plan=plan, ends_at=format_at(ends),
            refund_deadline=format_at(ends + timedelta(days=5)), claim_tail_days=180,
            operator_pays_final_periods=FINAL_PERIODS))
        self.summary.endings["postpaid"] = {"style": "相互宝: the operator pays the last periods",
                                            "announced": format_at(announced), "ends": format_at(ends),
                                            "refund_deadline": format_at(ends + timedelta(days=5))}

    def prepaid_ending(self, announced: datetime) -> None:
        """水滴-style: announced, every balance refunded within five days, a conversion offered and taken by some,
        then the end."""
        self.closed.add("prepaid")
        plan = self.summary.plans["prepaid"]
        ends = announced + timedelta(days=5)
        self.app.execute(AnnounceClosing(
            command_id=self.next_id("closing"), plan=plan, ends_at=format_at(ends), refund_deadline=format_at(ends),
            claim_tail_days=180, conversion_offer=CONVERSION_OFFER))
        self.at(announced + timedelta(hours=2))
        wound = self.app.execute(WindDown(command_id=self.next_id("wind"), plan=plan))
        self.refresh_ended("prepaid")
        wound_down = self.wound_down(plan)
        takers = [m for m in self.members["prepaid"] if m.id in wound_down and m.age >= 18 and self.rng.random() < 0.3]
        self.run([AcceptConversion(command_id=self.next_id("convert"), member=m.id) for m in takers])
        self.at(announced + timedelta(days=3))
        paid = self.disburse_refunds("prepaid")
        self.at(ends + timedelta(minutes=1))
        self.app.execute(TerminatePlan(command_id=self.next_id("terminate"), plan=plan))
        self.summary.endings["prepaid"] = {
            "style": "水滴: balances refunded within five days, a conversion offered",
            "announced": format_at(announced), "ends": format_at(ends), "refund_deadline": format_at(ends),
            "memberships_ended": int(wound["memberships_ended"]), "refunds": len(paid),
            "refunded_fen": sum(amount for _, amount in paid), "refunded_by": format_at(announced + timedelta(days=3)),
            "conversions": len(takers), "conversion_offer": CONVERSION_OFFER}

    def wound_down(self, plan: str) -> set[str]:
        """Members of a plan ended by its wind-down."""
        balances = self.app.balances()
        return {m.id for name in ("postpaid", "prepaid") for m in self.members[name]
                if (row := balances.member(m.id)) is not None and row["plan"] == plan and row["status"] == "wound_down"}

    def end_plan(self, plan_name: str) -> None:
        """The postpaid plan's end: every membership wound down (refunds of 0: nobody holds a balance), then
        terminated."""
        plan = self.summary.plans[plan_name]
        wound = self.app.execute(WindDown(command_id=self.next_id("wind"), plan=plan))
        self.app.execute(TerminatePlan(command_id=self.next_id("terminate"), plan=plan))
        paid = self.disburse_refunds(plan_name)
        self.summary.endings[plan_name].update(memberships_ended=int(wound["memberships_ended"]), refunds=len(paid),
                                               refunded_fen=sum(amount for _, amount in paid),
                                               refunded_by=format_at(self.clock.now()))

    def tail(self) -> None:
        """Claims diagnosed before each plan's end and filed after it (within 180 days), approved, funded by a tail
        period the operator pays, and paid by the custodian; then the books."""
        for plan_name in ("postpaid", "prepaid"):
            rules = postpaid_rules(self.size) if plan_name == "postpaid" else prepaid_rules(self.size)
            plan = self.summary.plans[plan_name]
            ends = parse_at(self.summary.endings[plan_name]["ends"])
            diagnosed_on = plan_date(ends - timedelta(days=2), rules)
            self.at(max(self.clock.now(), ends) + timedelta(days=3))
            wound_down = self.wound_down(plan)
            candidates = [m for m in self.members[plan_name]
                          if m.id not in self.claimed and m.joined_on + timedelta(days=rules.waiting_days + 1)
                          <= diagnosed_on and m.id in wound_down]
            claimants = self.rng.sample(candidates, min(2, len(candidates)))
            if not claimants:
                continue
            filed = self.run([FileClaim(
                command_id=self.next_id("claim"), member=m.id, category="illness", condition=self.condition(m),
                diagnosed_on=diagnosed_on.isoformat(), age_at_diagnosis=m.age,
                evidence_commitment=commitment("evidence", m.id)) for m in claimants])
            claims = [str(r["claim"]) for r in filed]
            self.claimed |= {m.id for m in claimants}
            self.run([InvestigateClaim(command_id=self.next_id("inv"), claim=c, report_commitment=commitment("r", c),
                                       opinion="approve", recommended_amount_fen=claim_amount(
                                           self.rng, rules.max_aid_fen(m.age))) for c, m in zip(claims, claimants,
                                                                                                strict=True)])
            self.run([NoticeClaim(command_id=self.next_id("notice"), claim=c) for c in claims])
            self.at(self.clock.now() + timedelta(days=rules.notice_days))
            self.run([DecideClaim(command_id=self.next_id("decide"), claim=c) for c in claims])
            number = max(row.number for row in self.summary.periods if row.plan == plan_name) + 1
            notice_on, collection_on = next_cycle(rules, plan_date(self.clock.now(), rules))
            state = PeriodState(plan_name, number, notice_on, collection_on,
                                next_collection_on=next_cycle(rules, notice_on)[1])
            self.open(state)
            state.approved = claims
            self.at(plan_midnight(notice_on, rules) + timedelta(hours=1))
            self.assess(state)
            self.at(plan_midnight(collection_on, rules) + timedelta(hours=10))
            self.subsidy(state)
            grace_end = plan_midnight(state.next_collection_on - timedelta(days=rules.grace_days), rules)
            self.at((plan_midnight(collection_on, rules) + timedelta(hours=12)) if plan_name == "prepaid"
                    else grace_end + timedelta(hours=1))
            self.settle(state)
            self.pay(state)
            self.summary.endings[plan_name]["tail_claims_paid"] = len(claims)
        books = self.app.read_models().journal.balances()
        self.summary.books = {
            "member_balances_fen": -books["member_balances"],
            "refunds_owed_fen": -(books["refunds_payable"] + books["refunds_paid"]),
            "aid_owed_fen": -(books["aid_payable"] + books["aid_paid"]),
            "surplus_fen": -books["surplus"], "trial_balance_fen": sum(books.values())}

    def eligible_claimants(self, plan_name: str, diagnosed_on: date, count: int) -> list[Member]:
        """Members still in the plan, past the waiting period, without a claim, chosen at random."""
        waiting = (postpaid_rules(self.size) if plan_name == "postpaid" else prepaid_rules(self.size)).waiting_days
        candidates = [m for m in self.members[plan_name]
                      if m.id not in self.claimed and m.id not in self.ended
                      and m.joined_on + timedelta(days=waiting + 11) <= diagnosed_on]
        return self.rng.sample(candidates, min(count, len(candidates)))

    def in_join_order(self, members: list[str]) -> list[str]:
        """Members in the order the demo made them, not in id order: ids are keyed by each ledger's own vault key,
        so random choices made in id order would differ from one run of the same seed to the next."""
        order = {m.id: i for plan in self.members.values() for i, m in enumerate(plan)}
        return sorted(members, key=lambda member: (order.get(member, len(order)), member))

    def refresh_ended(self, plan_name: str) -> None:
        """Remember which members have left (from the balances), so no claim is filed for them."""
        balances = self.app.balances()
        active = set(balances.active_members(self.summary.plans[plan_name]))
        self.ended |= {m.id for m in self.members[plan_name] if m.id not in active}

    def top_ups(self, plan_name: str) -> None:
        """Prepaid members warned of a low balance: most top up 10 or 50 yuan, some let it run out."""
        rules = prepaid_rules(self.size)
        balances = dict(self.app.balances().low_balances(self.summary.plans[plan_name], rules.min_balance_fen))
        low = [(account, balances[account]) for account in self.in_join_order(list(balances))]
        deposits = [Deposit(command_id=self.next_id("dep"), member=account,
                            amount_fen=SCALE * self.rng.choice((1000, 5000)),
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
        """Every party receives the trust anchors (out of band, in reality): the operator's root and log keys, the
        custodian's and regulator's own keys, and the witness policy — a checkpoint is trusted once at least one of
        the two witnesses (custodian, regulator) cosigned it — so each can verify the ledger from public material
        alone."""
        anchors = self.app.settings.data_dir / TRUST_ANCHORS_FILE
        witnesses = [Verifier(witness_name(party, self.app.settings.log_origin),
                              self.app.signers.party(party).load(party).public_raw, COSIGNATURE_V1).encode()
                     for party in ("custodian", "regulator")]
        anchor_witnesses(self.app.settings.data_dir, witnesses, 1)
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
             console: Console | None = None, endings: bool = True) -> DemoSummary:
    """Build the demo history in an empty ledger and return its summary: `periods` sharing periods of both plans,
    then (with `endings`) the postpaid plan's final periods paid by the operator, both wind-downs and tail claims."""
    if not app.app.recorder.max_notification_id():
        initialize(app)
        set_up_parties(app)
    columns = (TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console or Console(stderr=True), disable=not progress) as bar:
        demo = Demo(app, members, periods, seed, bar if progress else None, endings)
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

