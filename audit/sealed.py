"""Check 13 of `audit verify`: the rules that need a sealed value (docs/privacy.md), re-checked from revealed values.

A sealed `claim.filed`, `member.excluded`, `member.joined`, `member.juror_qualified` or `member.fraud_recorded` (each
v2) shows only coarse values; the rules about the exact ones — the claimant is a member of the plan who joined at
the sealed instant, the diagnosis day lies after joining and not after filing, within the claim window (or the
wind-down tail), outside the waiting period for an illness, the rules version is the one in force on the diagnosis
day, the age at diagnosis is covered and follows from the age at joining, an exclusion's diagnosis lies in the
waiting period, the age at joining lies within the plan's ages, a juror is of the plan's juror age (at the exam and,
by the age at joining, at each vote), and a fraud
finding concerns a claim on the log — hold only if the operator sealed the values it checked. Given the revealed
records (value and salt, checked against each commitment with `ledger.sealing.check_revealed`), the auditor
re-checks every one.
Without them (for all events, or for those of members whose values it was not given) it checks everything else and
counts, per check, the events whose check needed the sealed values, so the report says what it could not see: an
operator that checks one value and seals another is caught only with the values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from ledger.envelope import parse_at
from ledger.plan_days import day_of, waiting_ends_on, whole_years
from ledger.sealing import Revealed, check_revealed, plan_month, sealed_fields

NEEDS = "13 sealed"
"""The check name every sealed-value check starts with."""


def plan_day(instant: str, plan: Any, at: str) -> date:
    """The plan day (China day: the plan's `utc_offset_minutes` in force at `at`) of an instant, as the writer counts
    days (`ledger.plan_days`)."""
    _, rules = plan.rules_at(at)
    return day_of(parse_at(instant), rules.utc_offset_minutes)


@dataclass
class SealedChecks:
    """The revealed values an auditor was given (by event and field), and the checks it could not make without."""

    revealed: dict[tuple[str, int, str], Revealed] | None
    needed: dict[str, int] = field(default_factory=dict)
    """Check → how many events it needed sealed values for (only when no values were given)."""

    @classmethod
    def of(cls, records: Iterable[Revealed] | None) -> SealedChecks:
        """Checks over these revealed records (None: no values given)."""
        if records is None:
            return cls(None)
        return cls({(r.stream, r.seq, r.field): r for r in records})

    def need(self, check: str) -> None:
        """Count an event whose `check` needed sealed values."""
        self.needed[check] = self.needed.get(check, 0) + 1

    def given(self, e: dict[str, Any]) -> bool:
        """Whether any value of the event's sealed fields was given: an auditor given some members' values checks
        theirs and counts the others' events as needed, but a value missing beside one given is a failure."""
        return self.revealed is not None and any(
            (e["stream"], e["seq"], spec.name) in self.revealed for spec in sealed_fields(e["type"], e["schema"]))

    def values(self, e: dict[str, Any], fail: Any) -> dict[str, Any] | None:
        """The opened values of an event's sealed fields, each checked against its commitment and coarse value;
        None when none was given (the event's checks are counted as needed) or when one is missing or does not
        open (a failure)."""
        fields = sealed_fields(e["type"], e["schema"])
        if self.revealed is None or not self.given(e):
            return None
        opened: dict[str, Any] = {}
        for spec in fields:
            record = self.revealed.get((e["stream"], e["seq"], spec.name))
            if record is None:
                fail(f"{NEEDS} (revealed {spec.name})", "the value and salt of the sealed field", "none given")
                return None
            problem = check_revealed(e["type"], e["schema"], e["body"], record)
            if problem is not None:
                fail(f"{NEEDS} (commitment {spec.name})", "a value that opens its commitment", problem)
                return None
            opened[spec.name] = record.value
        return opened


def check_filing(e: dict[str, Any], values: dict[str, Any], members: dict[str, str], ages: Mapping[str, int],
                 plan: Any, fail: Any) -> None:
    """Re-check a sealed filing's rules from its opened values, counting days as the writer does (plan days,
    `ledger.plan_days`). `members` maps the plan's members to when they joined, `ages` to their age at joining;
    `plan` is the auditor's plan
    (`rules_at`, `rules_on_day`, `closing_tail_days`: the tail once the plan's closing was announced)."""
    body, at = e["body"], e["at"]
    member, joined_at = values["member"], values["joined_at"]
    if members.get(member) != joined_at:
        fail(f"{NEEDS} (claimant)", f"a member of plan {body['plan']} who joined at the sealed instant",
             f"{member} joined at {members.get(member)}")
        return
    _, now_rules = plan.rules_at(at)
    offset = now_rules.utc_offset_minutes
    if body["joined_month"] != plan_month(joined_at, offset):
        fail(f"{NEEDS} (joined_month)", plan_month(joined_at, offset), body["joined_month"])
    diagnosed = date.fromisoformat(values["diagnosed_on"])
    filed = plan_day(at, plan, at)
    if not plan_day(joined_at, plan, at) <= diagnosed <= filed:
        fail(f"{NEEDS} (diagnosis date)", "from the joining day to the filing day", values["diagnosed_on"])
    version, rules = plan.rules_on_day(values["diagnosed_on"], at)
    if body["rules_version"] != version:
        fail(f"{NEEDS} (rules version)", version, body["rules_version"])
    window = rules.claim_window_days if plan.closing_tail_days is None else plan.closing_tail_days
    if filed > diagnosed + timedelta(days=window):
        fail(f"{NEEDS} (claim window)", f"filed within {window} days of diagnosis", filed.isoformat())
    _, joined_rules = plan.rules_at(joined_at)
    covered_from = waiting_ends_on(parse_at(joined_at), joined_rules.waiting_days, offset)
    if body["category"] == "illness" and diagnosed < covered_from:
        fail(f"{NEEDS} (waiting period)", f"an illness diagnosed on or after {covered_from}", values["diagnosed_on"])
    joined_age, age = ages.get(member), values["age_at_diagnosis"]  # None: the join's own value failed there
    if joined_age is not None and not (
            joined_age <= age <= joined_age + whole_years(plan_day(joined_at, plan, at), diagnosed) + 1):
        fail(f"{NEEDS} (age at diagnosis)", f"from the age at joining, {joined_age}, plus the years since", age)
    if rules.max_aid_fen(values["age_at_diagnosis"]) <= 0:
        fail(f"{NEEDS} (age covered)", "an age some aid band covers", values["age_at_diagnosis"])


def check_joining_age(e: dict[str, Any], values: dict[str, Any], plan: Any, fail: Any) -> None:
    """Re-check a sealed join: the age lies within the plan's ages of the rules version in force at joining."""
    version, rules = plan.rules_at(e["at"])
    age = values["age_years"]
    if e["body"]["rules_version"] != version:
        fail(f"{NEEDS} (joining rules version)", version, e["body"]["rules_version"])
    if not rules.min_age_years <= age <= rules.max_age_years:
        fail(f"{NEEDS} (age at joining)", f"{rules.min_age_years}..{rules.max_age_years}", age)


def check_juror_age(e: dict[str, Any], values: dict[str, Any], plan: Any, fail: Any) -> None:
    """Re-check a sealed juror qualification: the age attested is at least the plan's juror age."""
    _, rules = plan.rules_at(e["at"])
    if values["age_years"] < rules.juror_min_age_years:
        fail(f"{NEEDS} (juror age)", f"at least {rules.juror_min_age_years}", values["age_years"])


def check_exclusion(e: dict[str, Any], values: dict[str, Any], joined_at: str | None, plan: Any, fail: Any) -> None:
    """Re-check a sealed exclusion: the diagnosis lies from the joining day into the waiting period (plan days)."""
    if joined_at is None:
        fail(f"{NEEDS} (excluded member)", "a member of the plan", e["stream"])
        return
    _, now_rules = plan.rules_at(e["at"])
    _, joined_rules = plan.rules_at(joined_at)
    diagnosed = date.fromisoformat(values["diagnosed_on"])
    start = plan_day(joined_at, plan, e["at"])
    covered_from = waiting_ends_on(parse_at(joined_at), joined_rules.waiting_days, now_rules.utc_offset_minutes)
    if not start <= diagnosed < covered_from:
        fail(f"{NEEDS} (waiting period)", f"a diagnosis from {start} to before {covered_from}",
             values["diagnosed_on"])
