"""Plan days: every rule that counts days counts calendar days in the plan's civil time zone.

The plans are Chinese (Asia/Shanghai, UTC+8 all year, no daylight saving): a plan's rules state it as
`utc_offset_minutes` (480). A day starts at 00:00 plan time, so 2026-03-01T20:00Z is already 2 March. The waiting
period, the rules version in force on a diagnosis day, the claim window, a member's age and a juror's years in the
plan are all counted on these days (docs/plans.md, "Plan days"). The audit uses the same functions.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

_ONE_MICROSECOND = timedelta(microseconds=1)


def zone_of(utc_offset_minutes: int) -> timezone:
    """The fixed-offset zone of a plan (480 minutes: China)."""
    return timezone(timedelta(minutes=utc_offset_minutes))


def day_of(moment: datetime, utc_offset_minutes: int) -> date:
    """The plan-time calendar day of an instant."""
    return moment.astimezone(zone_of(utc_offset_minutes)).date()


def day_start(day: date, utc_offset_minutes: int) -> datetime:
    """00:00 plan time on `day`, as a UTC instant."""
    return datetime.combine(day, time(0, 0), zone_of(utc_offset_minutes)).astimezone(UTC)


def day_end(day: date, utc_offset_minutes: int) -> datetime:
    """The last instant (microsecond) of `day` in plan time, as a UTC instant: the rules in force then are the rules
    of that day."""
    return day_start(day + timedelta(days=1), utc_offset_minutes) - _ONE_MICROSECOND


def waiting_ends_on(joined_at: datetime, waiting_days: int, utc_offset_minutes: int) -> date:
    """The first plan day an illness is covered: `waiting_days` plan days after the day of joining."""
    return day_of(joined_at, utc_offset_minutes) + timedelta(days=waiting_days)


def whole_years(since: date, until: date) -> int:
    """Whole years from one plan day to another (a birthday-style count; 29 February counts on 1 March)."""
    return until.year - since.year - ((until.month, until.day) < (since.month, since.day))
