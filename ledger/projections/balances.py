"""Balances: who is in which plan, since when, with which payer, what they paid and owe, and their claims.

Command validation needs set questions the aggregates cannot answer one stream at a time — the members locked at a
cutoff, a payer's family, a prepaid account's balance, the approved claims waiting for a period — and members read
their balance, arrears, warning and lapse state. This projection answers both from its tables beside the events.

Applying a `period.assessed` event writes one row, whatever the number of members: the shares a member was charged
are the shares of the plan's periods whose cutoff fell while they were in it, computed in SQL when asked.
Account balances (prepaid): deposits − shares of prepaid periods paid by the account holder and their family −
balance refunded (a period is prepaid or postpaid by the rules version it was assessed under).
A share is paid unless a `member.debit_failed` for it is outstanding; postpaid arrears are those failed debits.

From schema 3 of `period.assessed` on, a member's charge may differ from the share: a member past the plan's top
age is not locked (charged nothing) and a member whose own charges of the plan year leave less than the share of
the annual cap is charged the remainder. Who they are depends on the whole plan, so the read model that follows the
whole log in order keeps them (`ledger.projections.charges`, one row each); every sum of shares here subtracts what
they were not charged, at query time, so that this model's appliers stay stream-local.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger.ages import TopAge, join_age_bound, join_age_years
from ledger.envelope import parse_at
from ledger.projections.base import Applier, Projection
from ledger.projections.charges import Charges, near_cap_sql
from ledger.projections.sql import Snapshot, SqlCursor
from ledger.sharing import streamed_roll

OPEN_CLAIM_STATUSES = ("filed", "investigated", "noticed", "approved", "included")
AGE_BATCH = 2_000
"""How many of the age rule's candidates are read, and their sealed ages opened, at a time (`age_candidates`): few
enough that opening a batch's ages takes a fraction of a second, while the read transaction waits between batches
(PostgreSQL ends one idle for 5 s)."""


class Balances(Projection):
    """The balances read model (see module docstring)."""

    NAME = "balances"
    TABLES = ("roster_plans", "roster_members", "roster_claims", "roster_debits", "roster_periods")
    STREAM_LOCAL = True

    def schema(self) -> list[str]:
        """Members, claims, failed debits, assessed periods, and each plan's payment model and warning level."""
        self.plans, self.members, self.claims, self.debits, self.periods = (self.t(n) for n in self.TABLES)
        self.charges = self.t(Charges.TABLES[2])  # the exceptions, kept by the charges read model
        return [
            f"CREATE TABLE IF NOT EXISTS {self.plans} (id TEXT PRIMARY KEY, payment_model TEXT NOT NULL, "
            "min_balance_fen BIGINT NOT NULL, utc_offset_minutes INTEGER NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.members} (id TEXT PRIMARY KEY, plan TEXT NOT NULL, payer TEXT, "
            "family_order INTEGER NOT NULL, age_max INTEGER, age_sealed INTEGER NOT NULL DEFAULT 0, "
            "joined_at TEXT NOT NULL, ended_at TEXT, "
            "status TEXT NOT NULL, deposits BIGINT NOT NULL DEFAULT 0, "
            "failed BIGINT NOT NULL DEFAULT 0, refunded_from_balance BIGINT NOT NULL DEFAULT 0)",
            # the roll's order, covering its filter: the locked set is read in order, with no sort and no table row
            f"CREATE INDEX IF NOT EXISTS roster_members_roll ON {self.members} "
            + ('(plan, id COLLATE "C") INCLUDE (joined_at, ended_at)' if self.sql.postgres
               else "(plan, id, joined_at, ended_at)"),
            f"CREATE INDEX IF NOT EXISTS roster_members_payer ON {self.members} (payer)",
            f"CREATE INDEX IF NOT EXISTS roster_members_age ON {self.members} (plan, age_max, joined_at)",
            f"CREATE TABLE IF NOT EXISTS {self.claims} (id TEXT PRIMARY KEY, plan TEXT NOT NULL, "
            "member TEXT, status TEXT NOT NULL, amount_fen BIGINT NOT NULL DEFAULT 0, decided_at TEXT, "
            "period TEXT)",
            f"CREATE INDEX IF NOT EXISTS roster_claims_member ON {self.claims} (member)",
            f"CREATE INDEX IF NOT EXISTS roster_claims_plan ON {self.claims} (plan, status)",
            f"CREATE TABLE IF NOT EXISTS {self.debits} (member TEXT NOT NULL, period TEXT NOT NULL, "
            "amount_fen BIGINT NOT NULL, outstanding INTEGER NOT NULL, PRIMARY KEY (period, member))",
            f"CREATE INDEX IF NOT EXISTS roster_debits_member ON {self.debits} (member)",
            f"CREATE TABLE IF NOT EXISTS {self.periods} (id TEXT PRIMARY KEY, plan TEXT NOT NULL, "
            "number INTEGER NOT NULL, cutoff_at TEXT NOT NULL, share_fen BIGINT NOT NULL, "
            "prepaid INTEGER NOT NULL DEFAULT 1)",
            f"CREATE INDEX IF NOT EXISTS roster_periods_plan ON {self.periods} (plan, cutoff_at)",
        ]

    def appliers(self) -> dict[str, Applier]:
        """The events that change balances."""
        return {
            "plan.created": self._plan,
            "plan.rules_amended": self._plan,
            "member.joined": self._joined,
            "member.deposit_received": self._deposit,
            "member.debit_failed": self._debit_failed,
            "member.debit_recovered": self._debit_recovered,
            "member.lapsed": self._ended,
            "member.exited": self._ended,
            "member.excluded": self._ended,
            "member.wind_down_refund_due": self._ended,
            "member.aged_out": self._ended,
            "period.assessed": self._assessed,
            "claim.filed": self._claim_filed,
            "claim.approved": self._claim_approved,
            "claim.rejected": self._claim_status,
            "claim.included": self._claim_included,
            "claim.paid": self._claim_status,
        }

    def charged(self, alias: str) -> str:
        """SQL for the shares assessed to member row `alias`: the shares of its plan's periods whose cutoff fell
        while it was in the plan, less what its exceptions (schema 3) did not charge. Nothing is written per member
        when a period is assessed, but for the exceptions."""
        return (f"((SELECT COALESCE(SUM(p.share_fen), 0) FROM {self.periods} p WHERE p.plan = {alias}.plan "
                f"AND p.cutoff_at >= {alias}.joined_at "
                f"AND ({alias}.ended_at IS NULL OR p.cutoff_at < {alias}.ended_at)) - {self.spared(alias, False)})")

    def spared(self, alias: str, prepaid_only: bool) -> str:
        """SQL for what the exceptions of member row `alias` spared it of the shares (of prepaid periods only)."""
        return (f"(SELECT COALESCE(SUM(q.share_fen - x.amount_fen), 0) FROM {self.charges} x JOIN {self.periods} q "
                f"ON q.id = x.period WHERE x.member = {alias}.id{' AND q.prepaid = 1' if prepaid_only else ''})")

    def spent(self, alias: str) -> str:
        """SQL for what member row `alias` took from a prepaid account: its charges in prepaid periods (by the rules
        version each was assessed under: a plan may switch to postpaid) less its failed debits outstanding in them."""
        return (f"((SELECT COALESCE(SUM(p.share_fen), 0) FROM {self.periods} p WHERE p.plan = {alias}.plan "
                f"AND p.prepaid = 1 AND p.cutoff_at >= {alias}.joined_at "
                f"AND ({alias}.ended_at IS NULL OR p.cutoff_at < {alias}.ended_at)) - {self.spared(alias, True)} - "
                f"(SELECT COALESCE(SUM(d.amount_fen), 0) FROM {self.debits} d JOIN {self.periods} q "
                f"ON q.id = d.period WHERE d.member = {alias}.id AND d.outstanding = 1 AND q.prepaid = 1))")

    def _plan(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        rules = e["body"]["rules"]
        cursor.execute(f"DELETE FROM {self.plans} WHERE id = ?", (e["stream"],))
        cursor.execute(f"INSERT INTO {self.plans} VALUES (?, ?, ?, ?)",
                       (e["stream"], rules["payment_model"], rules["min_balance_fen"], rules["utc_offset_minutes"]))

    def _joined(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        body = e["body"]
        bound = join_age_bound(body)
        cursor.execute(
            f"INSERT INTO {self.members} (id, plan, payer, family_order, age_max, age_sealed, joined_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'active')",
            (e["stream"], body["plan"], body["payer"], body["family_order"], bound,
             int(bound is not None and join_age_years(body) is None), e["at"]))

    def _deposit(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.members} SET deposits = deposits + ? WHERE id = ?",
                       (e["body"]["amount_fen"], e["stream"]))

    def _debit_failed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.members} SET failed = failed + ? WHERE id = ?",
                       (e["body"]["amount_fen"], e["stream"]))
        cursor.execute(f"INSERT INTO {self.debits} VALUES (?, ?, ?, 1)",
                       (e["stream"], e["body"]["period"], e["body"]["amount_fen"]))

    def _debit_recovered(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.members} SET failed = failed - ? WHERE id = ?",
                       (e["body"]["amount_fen"], e["stream"]))
        cursor.execute(f"UPDATE {self.debits} SET outstanding = 0 WHERE period = ? AND member = ?",
                       (e["body"]["period"], e["stream"]))

    def _ended(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        body, kind = e["body"], e["type"]
        from_balance = {
            "member.exited": body.get("refund_due_fen", 0),
            "member.lapsed": body.get("refund_due_fen", 0),
            "member.excluded": body.get("refund_due_fen", 0) - body.get("shares_paid_fen", 0),
            "member.wind_down_refund_due": body.get("refund_due_fen", 0),
            "member.aged_out": body.get("refund_due_fen", 0),
        }.get(kind, 0)
        status = {"member.lapsed": "lapsed", "member.exited": "exited", "member.excluded": "excluded",
                  "member.wind_down_refund_due": "wound_down", "member.aged_out": "aged_out"}[kind]
        cursor.execute(
            f"UPDATE {self.members} SET refunded_from_balance = refunded_from_balance + ?, "
            "ended_at = COALESCE(ended_at, ?), status = CASE WHEN ended_at IS NULL THEN ? ELSE status END "
            "WHERE id = ?", (from_balance, e["at"], status, e["stream"]))

    def _assessed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        body = e["body"]
        model = body.get("payment_model")  # schema 2; under schema 1 the plan's model, in the same statement
        cursor.execute(f"INSERT INTO {self.periods} VALUES (?, ?, ?, ?, ?, COALESCE(CAST(? AS INTEGER), (SELECT "
                       f"CASE WHEN payment_model = 'prepaid' THEN 1 ELSE 0 END FROM {self.plans} WHERE id = ?), 1))",
                       (e["stream"], body["plan"], body["number"], body["cutoff_at"], body["share_fen"],
                        None if model is None else int(model == "prepaid"), body["plan"]))

    def _claim_filed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"INSERT INTO {self.claims} (id, plan, member, status) VALUES (?, ?, ?, 'filed')",
                       (e["stream"], e["body"]["plan"], e["body"].get("member")))  # sealed from v2 on: NULL

    def _claim_approved(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.claims} SET status = 'approved', amount_fen = ?, decided_at = ? WHERE id = ?",
                       (e["body"]["amount_fen"], e["at"], e["stream"]))

    def _claim_status(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        status = {"claim.rejected": "rejected", "claim.paid": "paid"}[e["type"]]
        cursor.execute(f"UPDATE {self.claims} SET status = ?, decided_at = COALESCE(decided_at, ?) WHERE id = ?",
                       (status, e["at"], e["stream"]))

    def _claim_included(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.claims} SET status = 'included', period = ? WHERE id = ?",
                       (e["body"]["period"], e["stream"]))

    # -- queries -----------------------------------------------------------------------------------------

    def _query(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self.sql.transaction(commit=False) as cursor:
            return cursor.execute(statement, params).fetchall()

    def locked_members(self, plan: str, cutoff: str) -> list[str]:
        """Members of the plan active at the cutoff instant (waiting period included), sorted by id; once a period
        with that cutoff is assessed (schema 3), without those it left out for their age."""
        rows = self._query(f"SELECT id FROM {self.members} m WHERE plan = ? AND joined_at <= ? "
                           "AND (ended_at IS NULL OR ended_at > ?) AND NOT EXISTS (SELECT 1 FROM "
                           f"{self.charges} x JOIN {self.periods} p ON p.id = x.period WHERE x.member = m.id "
                           "AND p.plan = m.plan AND p.cutoff_at = ? AND x.locked = 0) ORDER BY id",
                           (plan, cutoff, cutoff, cutoff))
        return [row[0] for row in rows]

    def age_candidates(self, plan: str, at: str, top_age: int,
                       utc_offset_minutes: int) -> Iterator[list[tuple[str, int, str, bool]]]:
        """(member, age bound, joined at, sealed) of the plan's members active at `at` whose public age bound (the
        exact age of a v1 join, the top of a sealed join's 5-year band: `sealed`) plus their whole plan years since
        joining exceed the top age then (`ledger.ages.TopAge`): those among whom the writer looks, `AGE_BATCH` at a
        time, so that the caller's memory does not grow with them (at 10M members they are millions). One indexed
        range per bound (those who joined before the instant that makes that bound too old), in one read
        transaction: the members the bound rules out are never read. Each batch is handed on as it is read: a
        PostgreSQL transaction left waiting while one whole answer is turned into rows is ended by the server
        (`idle_in_transaction_session_timeout`, seen at 10M members)."""
        rule = TopAge(parse_at(at), top_age, utc_offset_minutes)
        where = (f"FROM {self.members} WHERE plan = ? AND joined_at <= ? AND (ended_at IS NULL OR ended_at > ?) "
                 "AND age_max")
        queries: list[tuple[str, tuple[Any, ...]]] = [
            (f"SELECT id, age_max, joined_at, age_sealed {where} > ?", (plan, at, at, top_age))]
        for bound in range(top_age + 1):
            before = rule.joined_before(top_age + 1 - bound)
            if before:
                queries.append((f"SELECT id, age_max, joined_at, age_sealed {where} = ? AND joined_at < ?",
                                (plan, at, at, bound, before)))
        with self.sql.snapshot() as snapshot:
            for statement, params in queries:
                for batch in snapshot.batches(statement, params, AGE_BATCH):
                    yield [(str(r[0]), int(r[1]), str(r[2]), bool(r[3])) for r in batch]

    def charge_fen(self, member: str, period: str) -> int | None:
        """What a member was charged by an assessed period: the share, or their exception's charge; None when they
        were not locked in it (not a member at the cutoff, or left out for their age)."""
        rows = self._query(f"{self._charges_sql()} AND p.id = ?", (member, period))
        return int(rows[0][1]) if rows else None

    def charges_of(self, member: str) -> dict[str, int]:
        """What each assessed period of their plan charged a member (`charge_fen`), by period id, in one query: the
        periods they were not locked in left out."""
        return {str(period): int(charged) for period, charged in self._query(self._charges_sql(), (member,))}

    def _charges_sql(self) -> str:
        """SQL for (period, charge) of the assessed periods of its plan member `?` was locked in (a member at the
        cutoff, not left out for their age): the share, or the exception's charge."""
        return (f"SELECT p.id, COALESCE(x.amount_fen, p.share_fen) FROM {self.periods} p JOIN {self.members} m "
                "ON m.id = ? AND m.plan = p.plan AND m.joined_at <= p.cutoff_at "
                f"AND (m.ended_at IS NULL OR m.ended_at > p.cutoff_at) LEFT JOIN {self.charges} x "
                "ON x.period = p.id AND x.member = m.id WHERE COALESCE(x.locked, 1) = 1")

    @contextmanager
    def locked_set(self, plan: str, cutoff: str, left_out: frozenset[str] = frozenset()) -> Iterator[LockedMembers]:
        """The members locked at the cutoff, counted and rolled in one snapshot, streamed, without `left_out` (schema
        3: those of them past the top age)."""
        with self.sql.snapshot() as snapshot:
            yield LockedMembers(self, snapshot, plan, cutoff, left_out)

    def active_members(self, plan: str) -> list[str]:
        """Members of the plan who have not left."""
        rows = self._query(f"SELECT id FROM {self.members} WHERE plan = ? AND ended_at IS NULL ORDER BY id", (plan,))
        return [row[0] for row in rows]

    def family_count(self, payer: str) -> int:
        """Family members who ever joined under this payer."""
        return int(self._query(f"SELECT COUNT(*) FROM {self.members} WHERE payer = ?", (payer,))[0][0])

    def active_family(self, payer: str) -> list[str]:
        """Family members under this payer still in the plan."""
        rows = self._query(f"SELECT id FROM {self.members} WHERE payer = ? AND ended_at IS NULL ORDER BY family_order",
                           (payer,))
        return [row[0] for row in rows]

    def shares_charged_fen(self, member: str) -> int:
        """Shares assessed to this member and not failed (what they paid in)."""
        rows = self._query(f"SELECT {self.charged('m')} - m.failed FROM {self.members} m WHERE m.id = ?", (member,))
        return int(rows[0][0]) if rows else 0

    def position_fen(self, account: str) -> int:
        """A prepaid account's position: deposits − shares charged to it and its family and not failed − balance
        refunded. Below zero between an assessment and its collection when the account cannot cover the charges."""
        rows = self._query(f"SELECT {self.account_position('a')} FROM {self.members} a WHERE a.id = ?", (account,))
        return int(rows[0][0]) if rows else 0

    def account_position(self, alias: str) -> str:
        """SQL for the position (`position_fen`) of the account held by member row `alias`."""
        return (f"{alias}.deposits - {alias}.refunded_from_balance - COALESCE((SELECT SUM({self.spent('f')}) "
                f"FROM {self.members} f WHERE f.id = {alias}.id OR f.payer = {alias}.id), 0)")

    def account_state(self, account: str) -> tuple[int, bool]:
        """An account's position (`position_fen`) and whether it is warned of a low balance, in one query: a prepaid
        account still in the plan whose balance is below its plan's warning threshold (a member who left, or was
        wound down, is not asked to top up)."""
        rows = self._query(f"SELECT {self.account_position('a')}, a.payer, a.ended_at, l.payment_model, "
                           f"l.min_balance_fen FROM {self.members} a LEFT JOIN {self.plans} l ON l.id = a.plan "
                           "WHERE a.id = ?", (account,))
        if not rows:
            return 0, False
        position, payer, ended_at, payment_model, min_balance_fen = rows[0]
        return int(position), (payer is None and ended_at is None and payment_model == "prepaid"
                               and max(0, int(position)) < int(min_balance_fen))

    def balance_fen(self, account: str) -> int:
        """A prepaid account's balance, never negative: its position when it covers every charge, else 0."""
        return max(0, self.position_fen(account))

    def due_fen(self, account: str) -> int:
        """What a prepaid account owes: the charges its balance could not cover (the uncovered part of the shares
        assessed and not yet collected or failed), which its next deposit pays first."""
        return max(0, -self.position_fen(account))

    def _accounts(self, plan: str, condition: str, params: tuple[Any, ...] = ()) -> list[tuple[str, int]]:
        """Prepaid accounts of a plan with their balance, filtered by `condition` on `a` (the account holder) and
        `balance`; one grouped query, not one per account."""
        rows = self._query(
            f"SELECT id, balance FROM (SELECT a.id AS id, a.payer AS payer, a.ended_at AS ended_at, "
            f"a.deposits - a.refunded_from_balance - fam.spent AS balance FROM {self.members} a JOIN "
            f"(SELECT COALESCE(m.payer, m.id) AS account, SUM({self.spent('m')}) AS spent "
            f"FROM {self.members} m WHERE m.plan = ? GROUP BY COALESCE(m.payer, m.id)) fam ON fam.account = a.id) "
            "accounts "
            f"WHERE {condition} ORDER BY id", (plan, *params))
        return [(row[0], int(row[1])) for row in rows]

    def short_accounts(self, plan: str) -> list[tuple[str, int]]:
        """Prepaid accounts of the plan whose position is below zero after the last assessment, with it."""
        return self._accounts(plan, "balance < 0")

    def accounts_with_balance(self, plan: str) -> list[tuple[str, int]]:
        """Self-paying members of the plan whose account holds a positive balance, with it."""
        return self._accounts(plan, "payer IS NULL AND balance > 0")

    def low_balances(self, plan: str, threshold_fen: int) -> list[tuple[str, int]]:
        """Active prepaid accounts whose balance is below the plan's warning threshold."""
        return self._accounts(plan, "ended_at IS NULL AND balance < ?", (threshold_fen,))

    def family_charges(self, account: str, period: str) -> list[tuple[str, int]]:
        """The account holder then their family in join order, as locked in an assessed period, with what the
        period charged each (the share, or their exception's charge)."""
        rows = self._query(
            f"SELECT m.id, COALESCE(x.amount_fen, p.share_fen) FROM {self.members} m JOIN {self.periods} p "
            "ON p.id = ? AND m.joined_at <= p.cutoff_at AND (m.ended_at IS NULL OR m.ended_at > p.cutoff_at) "
            f"LEFT JOIN {self.charges} x ON x.period = p.id AND x.member = m.id "
            "WHERE (m.id = ? OR m.payer = ?) AND COALESCE(x.locked, 1) = 1 ORDER BY m.family_order",
            (period, account, account))
        return [(str(row[0]), int(row[1])) for row in rows]

    def outstanding_debits(self, period: str) -> list[tuple[str, int]]:
        """Failed debits of a period not recovered: (member, amount)."""
        rows = self._query(f"SELECT member, amount_fen FROM {self.debits} WHERE period = ? AND outstanding = 1 "
                           "ORDER BY member", (period,))
        return [(row[0], int(row[1])) for row in rows]

    def outstanding_debits_of(self, member: str) -> list[tuple[str, int]]:
        """A member's failed debits not recovered: (period, amount)."""
        rows = self._query(f"SELECT period, amount_fen FROM {self.debits} WHERE member = ? AND outstanding = 1 "
                           "ORDER BY period", (member,))
        return [(str(row[0]), int(row[1])) for row in rows]

    def failed_periods(self) -> dict[str, set[str]]:
        """Member → periods whose debit for them is still failed."""
        failed: dict[str, set[str]] = {}
        for member, period in self._query(f"SELECT member, period FROM {self.debits} WHERE outstanding = 1", ()):
            failed.setdefault(str(member), set()).add(str(period))
        return failed

    def member(self, member: str) -> dict[str, Any] | None:
        """A member's row: plan, payer, join and end, status, deposits, shares charged, failed, refunded."""
        columns = ("id", "plan", "payer", "family_order", "joined_at", "ended_at", "status", "deposits",
                   "charged", "failed", "refunded_from_balance")
        rows = self._query(f"SELECT m.id, m.plan, m.payer, m.family_order, m.joined_at, m.ended_at, "
                           f"m.status, m.deposits, {self.charged('m')}, m.failed, m.refunded_from_balance "
                           f"FROM {self.members} m WHERE m.id = ?", (member,))
        return dict(zip(columns, rows[0], strict=True)) if rows else None

    def plan_zone(self, plan: str) -> int:
        """The plan's civil time zone (its current rules'), in minutes east of UTC: where its days start."""
        rows = self._query(f"SELECT utc_offset_minutes FROM {self.plans} WHERE id = ?", (plan,))
        return int(rows[0][0]) if rows else 0

    def open_claims(self, member: str) -> list[str]:
        """Claims of this member not yet rejected or paid."""
        marks = ",".join("?" * len(OPEN_CLAIM_STATUSES))
        rows = self._query(f"SELECT id FROM {self.claims} WHERE member = ? AND status IN ({marks}) ORDER BY id",
                           (member, *OPEN_CLAIM_STATUSES))
        return [row[0] for row in rows]

    def included_claims(self, period: str) -> list[str]:
        """Claims included in a period."""
        rows = self._query(f"SELECT id FROM {self.claims} WHERE period = ? ORDER BY id", (period,))
        return [row[0] for row in rows]

    def approved_claims(self, plan: str, decided_by: str) -> list[str]:
        """Approved claims of the plan not yet included in a period, decided at or before an instant."""
        rows = self._query(f"SELECT id FROM {self.claims} WHERE plan = ? AND status = 'approved' AND decided_at <= ? "
                           "ORDER BY id", (plan, decided_by))
        return [row[0] for row in rows]

    def year_shares_fen(self, plan: str, year_start: str, cutoff: str) -> int:
        """Sum of this plan's assessed shares with cutoffs in [year_start, cutoff): what a member locked in every
        one of them paid this year (the annual cap's basis)."""
        rows = self._query(f"SELECT COALESCE(SUM(share_fen), 0) FROM {self.periods} WHERE plan = ? "
                           "AND cutoff_at >= ? AND cutoff_at < ?", (plan, year_start, cutoff))
        return int(rows[0][0])


class LockedMembers:
    """`ledger.ports.LockedSet` over the balances' members in one snapshot: the count is one query, the roll one
    streamed query in code-point order of ids (PostgreSQL's "C" collation, SQLite's BINARY), both read from the
    covering index `roster_members_roll` in that order: no sort, no table row. The
    members past the top age (schema 3) are found by one query over the few whose age at joining and year of joining
    allow it, and left out of both; the members near their annual cap by one grouped query (`near_cap`)."""

    def __init__(self, balances: Balances, snapshot: Snapshot, plan: str, cutoff: str,
                 left_out: frozenset[str]) -> None:
        self.balances, self.snapshot, self.plan, self.cutoff = balances, snapshot, plan, cutoff
        self._where = (f"FROM {balances.members} WHERE plan = ? AND joined_at <= ? "
                       "AND (ended_at IS NULL OR ended_at > ?)")
        self.aged = left_out
        row = snapshot.execute(f"SELECT COUNT(*) {self._where}", (plan, cutoff, cutoff)).fetchone()
        self.count = (int(row[0]) if row else 0) - len(self.aged)
        order = 'id COLLATE "C"' if balances.sql.postgres else "id"
        self.roll_query = f"SELECT id {self._where} ORDER BY {order}"
        """The locked members in the roll's order (params: plan, cutoff, cutoff)."""

    def roll(self, period: str, amount_fen: int) -> tuple[bytes, int]:
        """The roll's root and size, hashed as the members stream in."""
        batches = self.snapshot.batches(self.roll_query, (self.plan, self.cutoff, self.cutoff))
        return streamed_roll(period, ([row[0] for row in batch if row[0] not in self.aged] for batch in batches),
                             amount_fen)

    def short_of(self, share_fen: int) -> list[tuple[str, int, list[str]]]:
        """(account, position, its members locked at the cutoff in family order) of the plan's accounts whose
        position cannot cover the share for each of their locked members (their charges are at most that): the few
        that may be short once the period is assessed. One grouped query, then one per account found."""
        b = self.balances
        rows = self.snapshot.execute(
            f"SELECT a.id, a.deposits - a.refunded_from_balance - fam.spent FROM {b.members} a JOIN "
            f"(SELECT COALESCE(m.payer, m.id) AS account, SUM({b.spent('m')}) AS spent, "
            "SUM(CASE WHEN m.joined_at <= ? AND (m.ended_at IS NULL OR m.ended_at > ?) THEN 1 ELSE 0 END) AS locked "
            f"FROM {b.members} m WHERE m.plan = ? GROUP BY COALESCE(m.payer, m.id)) fam ON fam.account = a.id "
            "WHERE fam.locked > 0 AND a.deposits - a.refunded_from_balance - fam.spent < ? * fam.locked ORDER BY a.id",
            (self.cutoff, self.cutoff, self.plan, share_fen)).fetchall()
        found = []
        for account, position in rows:
            family = self.snapshot.execute(
                f"SELECT id {self._where} AND (id = ? OR payer = ?) ORDER BY family_order, id",
                (self.plan, self.cutoff, self.cutoff, account, account)).fetchall()
            found.append((str(account), int(position), [str(row[0]) for row in family]))
        return found

    def near_cap(self, year_start: str, threshold_fen: int) -> list[tuple[str, int]]:
        """(member, charged this plan year) of the locked members charged more than `threshold_fen` by the periods
        with cutoffs from `year_start` up to the cutoff: those whose annual cap may leave less than the share."""
        b = self.balances
        rows = self.snapshot.execute(near_cap_sql(b.members, b.periods, b.charges),
                                     (self.plan, year_start, self.cutoff, self.cutoff, self.cutoff,
                                      threshold_fen)).fetchall()
        return [(str(m), int(y)) for m, y in rows if str(m) not in self.aged]
