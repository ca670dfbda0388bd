"""A member's age as the ledger knows it, and who is past the plan's top age band (docs/plans.md, "Ageing out").

The ledger knows a member's age in whole years at joining; after that it counts whole plan years from the plan day
of joining (`ledger.plan_days.whole_years`), the way the claim rules count the age at diagnosis. A member whose age
so counted exceeds the top of the plan's age bands would have every claim refused (no band pays them), so they are
left out of the locked set of every period from then on, and `plan age-out` ends or moves their membership.

Every reader of a join age (the writer, the read models, the log's index, the audit) goes through
`join_age_years`, so that the one place knows where the age is read from.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from ledger.envelope import format_at, parse_at
from ledger.plan_days import day_of, day_start, whole_years
from schemas.events import PlanRules


def join_age_years(joined: Mapping[str, Any]) -> int | None:
    """The age in whole years at joining from a `member.joined` body (as JSON), or None when the body does not
    state it in the clear (a sealed age: the caller needs the revealed value)."""
    age = joined.get("age_years")
    return age if isinstance(age, int) else None


def join_age_bound(joined: Mapping[str, Any]) -> int | None:
    """The most a member's age at joining can be from a `member.joined` body alone: the age (v1), or the top of the
    5-year band a sealed join shows (v2). Public, so the read models can narrow who may be past a top age."""
    age = join_age_years(joined)
    if age is not None:
        return age
    band = joined.get("age_band")
    return int(band.split("-")[1]) if isinstance(band, str) and "-" in band else None


def top_age_years(rules: PlanRules) -> int:
    """The top of the plan's age bands: no band pays a claim at an older age."""
    return rules.aid_bands[-1].up_to_age_years


def age_on(join_age: int, joined_at: datetime, day: date, utc_offset_minutes: int) -> int:
    """The member's age on a plan day: the age at joining plus the whole plan years since the day of joining."""
    return join_age + whole_years(day_of(joined_at, utc_offset_minutes), day)


def past_top_age(join_age: int | None, joined_at: datetime, at: datetime, top_age: int,
                 utc_offset_minutes: int) -> bool:
    """Whether the member is older than the top age on the plan day of `at` (False when the age is not known)."""
    if join_age is None:
        return False
    return age_on(join_age, joined_at, day_of(at, utc_offset_minutes), utc_offset_minutes) > top_age


def past_top_age_at(join_age: int | None, joined_at: str, at: datetime, top_age: int, utc_offset_minutes: int) -> bool:
    """`past_top_age` of a join instant as the log writes it: without parsing it when its year alone shows the member
    cannot be past the top age (the whole plan years since joining are at most the UTC years between the two instants
    plus two), which is nearly every member of a roll."""
    if join_age is None or join_age + at.year - int(joined_at[:4]) + 2 <= top_age:
        return False
    return past_top_age(join_age, parse_at(joined_at), at, top_age, utc_offset_minutes)


class TopAge:
    """`past_top_age` on one plan day for many members, by comparing join instants as the log writes them: a member
    with `k` whole plan years since joining by then is one who joined before an instant that depends on `k` alone,
    computed once per `k`. No join instant is parsed, so a million candidates cost a million string comparisons."""

    def __init__(self, at: datetime, top_age: int, utc_offset_minutes: int) -> None:
        self.today, self.top_age, self.utc_offset_minutes = day_of(at, utc_offset_minutes), top_age, utc_offset_minutes
        self._before: dict[int, str] = {}

    def joined_before(self, years: int) -> str:
        """The instant (as `format_at` writes it) before which a member joined iff they have at least `years` (>= 1)
        whole plan years on the plan day: joined on or before the same day `years` years earlier (`whole_years`:
        a 29 February then in a common year counts as 28 February); "" (before every instant) when that is before
        year 1."""
        before = self._before.get(years)
        if before is None:
            year = self.today.year - years
            if year < 1:
                before = ""
            else:
                try:
                    last = date(year, self.today.month, self.today.day)
                except ValueError:  # 29 February in a common year
                    last = date(year, 2, 28)
                before = format_at(day_start(last + timedelta(days=1), self.utc_offset_minutes))
            self._before[years] = before
        return before

    def past(self, join_age: int, joined_at: str) -> bool:
        """Whether a member of this age at joining, joined at `joined_at` (at or before the plan day), is older than
        the top age on the plan day: as `past_top_age`."""
        years = self.top_age + 1 - join_age  # the whole plan years since joining that make them older
        return years <= 0 or joined_at < self.joined_before(years)
