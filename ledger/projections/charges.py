"""Charges: the members a schema-3 assessment charged otherwise than its share (docs/plans.md, "Ageing out" and
"The annual cap per member").

A schema-3 `period.assessed` leaves out of its roll the members past the plan's top age (charged nothing: it lists
them, `left_out`, since a sealed age is the writer's to open) and charges
a member whose own charges of the plan year leave less than the share of the annual cap only that remainder. Who
they are depends on every member of the plan, so this read model follows the whole log in order (it is not
stream-local, unlike the roster of `ledger.projections.balances`, whose appliers touch only their event's own stream):
its own copy of each membership's span, each period's share, and one row per exception (`locked` 0 for
a member left out of the roll). The roster's sums subtract what the exceptions spared each member, at query time.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ledger.envelope import format_at
from ledger.plan_days import day_start
from ledger.projections.base import Applier, Projection
from ledger.projections.sql import SqlCursor
from ledger.sharing import member_charge

ENDED = ("member.lapsed", "member.exited", "member.excluded", "member.wind_down_refund_due", "member.aged_out")
"""The events that end a membership (the first one counts)."""


def near_cap_sql(members: str, periods: str, exceptions: str) -> str:
    """SQL for (member, charged) of the members whose span holds a cutoff and whom the periods with cutoffs in
    [year_start, cutoff) charged more than a threshold (params: plan, year_start, cutoff, cutoff, cutoff, threshold):
    the members whose annual cap may leave less than the share, found without listing the others."""
    return (f"SELECT m.id, SUM(COALESCE(x.amount_fen, p.share_fen)) FROM {members} m JOIN {periods} p "
            "ON p.plan = m.plan AND p.cutoff_at >= m.joined_at AND (m.ended_at IS NULL OR p.cutoff_at < m.ended_at) "
            f"LEFT JOIN {exceptions} x ON x.period = p.id AND x.member = m.id "
            "WHERE m.plan = ? AND p.cutoff_at >= ? AND p.cutoff_at < ? AND m.joined_at <= ? "
            "AND (m.ended_at IS NULL OR m.ended_at > ?) GROUP BY m.id "
            "HAVING SUM(COALESCE(x.amount_fen, p.share_fen)) > ?")


class Charges(Projection):
    """The exceptions read model (see module docstring)."""

    NAME = "charges"
    TABLES = ("charge_members", "charge_periods", "charge_exceptions")

    def schema(self) -> list[str]:
        """Memberships, periods, and the exceptions of schema-3 assessments."""
        self.members, self.periods, self.exceptions = (self.t(n) for n in self.TABLES)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.members} (id TEXT PRIMARY KEY, plan TEXT NOT NULL, "
            "joined_at TEXT NOT NULL, ended_at TEXT)",
            f"CREATE INDEX IF NOT EXISTS charge_members_plan ON {self.members} (plan, joined_at)",
            f"CREATE TABLE IF NOT EXISTS {self.periods} (id TEXT PRIMARY KEY, plan TEXT NOT NULL, "
            "cutoff_at TEXT NOT NULL, share_fen BIGINT NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS charge_periods_plan ON {self.periods} (plan, cutoff_at)",
            f"CREATE TABLE IF NOT EXISTS {self.exceptions} (period TEXT NOT NULL, member TEXT NOT NULL, "
            "amount_fen BIGINT NOT NULL, locked INTEGER NOT NULL, PRIMARY KEY (period, member))",
            f"CREATE INDEX IF NOT EXISTS charge_exceptions_member ON {self.exceptions} (member)",
        ]

    def appliers(self) -> dict[str, Applier]:
        """Joins, ends and assessments."""
        return {"member.joined": self._joined, "period.assessed": self._assessed,
                **dict.fromkeys(ENDED, self._ended)}

    def _joined(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"INSERT INTO {self.members} VALUES (?, ?, ?, NULL)", (e["stream"], e["body"]["plan"], e["at"]))

    def _ended(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.members} SET ended_at = COALESCE(ended_at, ?) WHERE id = ?",
                       (e["at"], e["stream"]))

    def _assessed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        body = e["body"]
        cursor.execute(f"INSERT INTO {self.periods} VALUES (?, ?, ?, ?)",
                       (e["stream"], body["plan"], body["cutoff_at"], body["share_fen"]))
        if "top_age_years" in body:  # schema 3
            cursor.executemany(f"INSERT INTO {self.exceptions} VALUES (?, ?, ?, ?)",
                               [(e["stream"], member, amount, int(locked)) for member, amount, locked
                                in self._exceptions(cursor, body)])

    def _exceptions(self, cursor: SqlCursor, body: dict[str, Any]) -> list[tuple[str, int, bool]]:
        """(member, charge, locked) of the members of a schema-3 assessment not charged the share: those past the
        top age (not locked, 0) and those whose annual cap leaves less (their remainder)."""
        plan, cutoff, share, cap = body["plan"], body["cutoff_at"], int(body["share_fen"]), body[
            "annual_cap_remaining_fen"]
        aged = set(body["left_out"])  # the writer found them with their exact ages (sealed ones from its vault)
        found = [(member, 0, False) for member in sorted(aged)]
        if body["members_capped"]:
            year_start = format_at(day_start(date(body["plan_year"], 1, 1), body["utc_offset_minutes"]))
            for member, charged in cursor.execute(near_cap_sql(self.members, self.periods, self.exceptions), (
                    plan, year_start, cutoff, cutoff, cutoff, cap - share)).fetchall():
                charge = member_charge(share, cap, int(charged))
                if str(member) not in aged and charge < share:
                    found.append((str(member), charge, True))
        return found
