"""Sharing periods: one record per period with every term of the DESIGN formula and what collection did.

From `period.opened` (calendar), the one `period.assessed` (locked members, cases and amounts, aid, fee, surplus in
and out, caps applied, subsidy or pro-rata funding, per-person share, roll root), subsidies received, the failed and
recovered debits of the period (count and fen), and `period.settled` (collected, uncollected, surplus carried).
"""

from __future__ import annotations

from typing import Any

from ledger.projections.base import Applier, Projection
from ledger.projections.sql import SqlCursor

ASSESSED_TERMS = ("rules_version", "locked_members", "aid_fen", "fee_bps", "fee_fen", "surplus_in_fen", "need_fen",
                  "uncapped_share_fen", "per_case_cap_fen", "annual_cap_remaining_fen", "cap_applied", "share_fen",
                  "excess_policy", "subsidy_fen", "funded_aid_fen", "funded_fee_fen", "surplus_out_fen", "roll_root",
                  "roll_size")
SETTLED_TERMS = ("collected_fen", "uncollected_fen", "surplus_carried_fen")
COLUMNS = ("id", "plan", "number", "notice_on", "collection_on", "cutoff_at", "status", "assessed_at",
           *ASSESSED_TERMS, "subsidy_received_fen", "failed_debits", "failed_fen", "recovered_debits",
           "recovered_fen", "settled_at", *SETTLED_TERMS, "disclosure_hash", "disclosed_at", "disclosure_format")
PLAN_COLUMNS = ("id", "name", "kind", "status", "created_at", "rules_version", "payment_model", "ends_at")


class Periods(Projection):
    """The sharing periods read model (see module docstring)."""

    NAME = "periods"
    TABLES = ("period_records", "period_cases", "period_plans", "period_parties")

    def schema(self) -> list[str]:
        """One row per period and one per case it funds; one per plan (name, status, current rules version)."""
        self.records, self.cases, self.plans, self.parties = (self.t(n) for n in self.TABLES)
        integer = {"number", "subsidy_received_fen", "failed_debits", "failed_fen", "recovered_debits",
                   "recovered_fen", *SETTLED_TERMS, *(t for t in ASSESSED_TERMS if t not in ("cap_applied",
                                                                                           "excess_policy",
                                                                                           "roll_root"))}
        columns = ", ".join(f"{c} {'BIGINT' if c in integer else 'TEXT'}" + (" PRIMARY KEY" if c == "id" else "")
                            for c in COLUMNS)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.records} ({columns})",
            f"CREATE INDEX IF NOT EXISTS period_records_plan ON {self.records} (plan, number)",
            f"CREATE TABLE IF NOT EXISTS {self.cases} (period TEXT NOT NULL, claim TEXT NOT NULL, "
            "approved_fen BIGINT NOT NULL, funded_fen BIGINT NOT NULL, PRIMARY KEY (period, claim))",
            f"CREATE TABLE IF NOT EXISTS {self.plans} (id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, "
            "status TEXT NOT NULL, created_at TEXT NOT NULL, rules_version BIGINT NOT NULL, "
            "payment_model TEXT NOT NULL, ends_at TEXT)",
            f"CREATE TABLE IF NOT EXISTS {self.parties} (key_id TEXT PRIMARY KEY, role TEXT NOT NULL, "
            "party_name TEXT)",
        ]

    def appliers(self) -> dict[str, Applier]:
        """Period events and the debits that belong to a period."""
        return {
            "plan.created": self._plan_created,
            "plan.rules_amended": self._plan_amended,
            "plan.closing_announced": self._plan_closing,
            "plan.terminated": self._plan_terminated,
            "disclosure.published": self._disclosed,
            "key.registered": self._key,
            "period.opened": self._opened,
            "period.assessed": self._assessed,
            "period.subsidy_received": self._subsidy,
            "period.settled": self._settled,
            "member.debit_failed": self._debit,
            "member.debit_recovered": self._debit,
        }

    def _plan_created(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        cursor.execute(f"INSERT INTO {self.plans} VALUES (?, ?, ?, 'open', ?, 1, ?, NULL)",
                       (e["stream"], b["name"], b["kind"], e["at"], b["rules"]["payment_model"]))

    def _plan_amended(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        cursor.execute(f"UPDATE {self.plans} SET rules_version = ?, payment_model = ? WHERE id = ?",
                       (b["version"], b["rules"]["payment_model"], e["stream"]))

    def _plan_closing(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.plans} SET status = 'closing', ends_at = ? WHERE id = ?",
                       (e["body"]["ends_at"], e["stream"]))

    def _plan_terminated(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.plans} SET status = 'terminated' WHERE id = ?", (e["stream"],))

    def _disclosed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.records} SET disclosure_hash = ?, disclosed_at = ?, disclosure_format = ? "
                       "WHERE id = ?", (e["body"]["document_hash"], e["at"], e["body"].get("format"),
                                        e["body"]["period"]))

    def _key(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        if b["member"] is None:  # the parties' keys only: a member's key is nobody's public business
            cursor.execute(f"INSERT INTO {self.parties} VALUES (?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
                           (b["key_id"], b["role"], b.get("party_name")))  # a key id registered again keeps its first

    def party(self, key_id: str) -> tuple[str, str | None] | None:
        """(role, public name) of a party's registered key, or None."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT role, party_name FROM {self.parties} WHERE key_id = ?", (key_id,)).fetchone()
        return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))

    def _opened(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        cursor.execute(f"INSERT INTO {self.records} (id, plan, number, notice_on, collection_on, cutoff_at, status, "
                       "subsidy_received_fen, failed_debits, failed_fen, recovered_debits, recovered_fen) "
                       "VALUES (?, ?, ?, ?, ?, ?, 'opened', 0, 0, 0, 0, 0)",
                       (e["stream"], b["plan"], b["number"], b["notice_on"], b["collection_on"], b["cutoff_at"]))

    def _assessed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        assignments = ", ".join(f"{term} = ?" for term in ASSESSED_TERMS)
        cursor.execute(f"UPDATE {self.records} SET status = 'assessed', assessed_at = ?, {assignments} WHERE id = ?",
                       (e["at"], *(b[term] for term in ASSESSED_TERMS), e["stream"]))
        cursor.executemany(f"INSERT INTO {self.cases} VALUES (?, ?, ?, ?)",
                           [(e["stream"], c["claim"], c["approved_fen"], c["funded_fen"]) for c in b["cases"]])

    def _subsidy(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.records} SET subsidy_received_fen = subsidy_received_fen + ? WHERE id = ?",
                       (e["body"]["amount_fen"], e["stream"]))

    def _settled(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        cursor.execute(f"UPDATE {self.records} SET status = 'settled', settled_at = ?, collected_fen = ?, "
                       "uncollected_fen = ?, surplus_carried_fen = ? WHERE id = ?",
                       (e["at"], b["collected_fen"], b["uncollected_fen"], b["surplus_carried_fen"], e["stream"]))

    def _debit(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        kind = "failed" if e["type"] == "member.debit_failed" else "recovered"
        cursor.execute(f"UPDATE {self.records} SET {kind}_debits = {kind}_debits + 1, {kind}_fen = {kind}_fen + ? "
                       "WHERE id = ?", (e["body"]["amount_fen"], e["body"]["period"]))

    # -- reading -----------------------------------------------------------------------------------------

    def record(self, period: str) -> dict[str, Any] | None:
        """One period with its cases."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {self.records} WHERE id = ?", (period,)).fetchone()
            cases = cursor.execute(f"SELECT claim, approved_fen, funded_fen FROM {self.cases} WHERE period = ? "
                                   "ORDER BY claim", (period,)).fetchall()
        if row is None:
            return None
        return {**dict(zip(COLUMNS, row, strict=True)),
                "cases": [{"claim": c, "approved_fen": a, "funded_fen": f} for c, a, f in cases]}

    def find(self, plan: str, number: int) -> str | None:
        """A period's id from its plan and number."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT id FROM {self.records} WHERE plan = ? AND number = ?", (plan, number)
                                 ).fetchone()
        return None if row is None else str(row[0])

    def all(self, plan: str | None = None) -> list[dict[str, Any]]:
        """Every period (of a plan), in plan and number order, without their cases."""
        where, params = ("WHERE plan = ?", (plan,)) if plan else ("", ())
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT {', '.join(COLUMNS)} FROM {self.records} {where} ORDER BY plan, number",
                                  params).fetchall()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def case_counts(self, plan: str) -> dict[str, int]:
        """How many cases each of a plan's periods funds, by period id (periods without cases left out)."""
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT c.period, COUNT(*) FROM {self.cases} c JOIN {self.records} r "
                                  "ON r.id = c.period WHERE r.plan = ? GROUP BY c.period", (plan,)).fetchall()
        return {str(period): int(count) for period, count in rows}

    def plans_list(self) -> list[dict[str, Any]]:
        """Every plan, oldest first."""
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT {', '.join(PLAN_COLUMNS)} FROM {self.plans} ORDER BY created_at, id"
                                  ).fetchall()
        return [dict(zip(PLAN_COLUMNS, row, strict=True)) for row in rows]
