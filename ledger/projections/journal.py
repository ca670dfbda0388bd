"""The fund journal: double-entry postings for every event that moves money, in named accounts.

Accounts (a debit balance is positive): `custodian_cash` (money the custodian holds), `member_balances` (owed to
members: prepaid balances, never a debit balance), `member_receivables` (owed by members: postpaid arrears, and the
part of a prepaid period's charges an account's balance could not cover when it was assessed, until a deposit pays
it or the collection records the debit failed), `surplus` (carried to the next period), `aid_payable`
(aid assessed), `aid_paid` (aid the custodian paid out), `fee_income` (the operator's fee, held until paid out),
`operator_subsidy` (what the caps cut off, receivable from the operator until received), `refunds_payable`,
`refunds_paid`. Every event's postings balance (checked as they are written), so the trial balance is zero after
every event, and custody holds: cash = member balances + surplus + aid outstanding + refunds outstanding + fee held
− subsidy receivable − member receivables (with liabilities counted as credit balances).

Postings by event (R = share × locked or, schema 3, the sum of the charges, S subsidy, I / O surplus in and out,
FA / FF funded aid and fee):

- deposit received: Dr cash; Cr member receivables (what the account owes, paid first), Cr member balances (the
  rest).
- period assessed: Dr member balances R − U and Dr member receivables U (prepaid, U the uncovered amounts of schema
  4, owed by each account holder as the `period.uncovered_listed` right after it says) or Dr cash R (postpaid: the
  channel collected) — the payment model of the rules version the period was assessed under, so a plan that
  switches keeps each period's own — Dr subsidy S; Cr aid payable FA, Cr fee FF, Cr surplus O − I.
- debit failed: prepaid — Dr surplus; Cr member receivables (what the account still owes, up to the charge), Cr
  member balances (the rest: the share was not taken); postpaid — Dr member receivables (arrears), Cr cash. A
  recovery (prepaid: from a balance that covers it) reverses its failure.
- member lapsed with postpaid arrears (grace expired): Dr surplus, Cr member receivables (written off); a lapse's
  remaining prepaid balance (schema 2): Dr member balances, Cr refunds payable.
- advance received (an operator advance toward a shortfall): Dr cash, Cr surplus.
- period settled (schema 2): what the settlement cut from the funded aid and fee goes back to the surplus: Dr aid
  payable (Σ funded − payable), Dr fee (funded fee − fee payable), Cr surplus.
- surplus released (a terminated plan's last surplus, paid out by the custodian): Dr surplus, Cr cash.
- subsidy received: Dr cash, Cr subsidy. Claim paid (amount + arrears deducted): Dr aid paid, Cr cash.
- exit or wind-down refund due: Dr member balances, Cr refunds payable. Excluded for a waiting-period illness:
  Dr member balances (the balance), Dr surplus (the shares paid), Cr refunds payable.
- refund disbursed: Dr refunds paid, Cr cash.
"""

from __future__ import annotations

from typing import Any

from ledger.projections.base import Applier, Projection
from ledger.projections.sql import SqlCursor
from ledger.sharing import raised_of

ACCOUNTS = ("custodian_cash", "member_balances", "member_receivables", "surplus", "aid_payable", "aid_paid",
            "fee_income", "operator_subsidy", "refunds_payable", "refunds_paid")

Line = tuple[str, int, str | None]
"""(account, amount: positive debit / negative credit, member or None)."""


def covered_fen(balances: dict[str, int]) -> int:
    """What the custodian's cash must cover, from the accounts' balances: every liability (credit balances) less
    every receivable (the operator's subsidy, what members owe) and what was paid out."""
    return -sum(amount for account, amount in balances.items() if account != "custodian_cash")


class UnbalancedPostingError(AssertionError):
    """An event's postings do not balance (a bug in this projection, never accepted)."""


class Journal(Projection):
    """The fund journal (see module docstring)."""

    NAME = "journal"
    TABLES = ("journal_plans", "journal_postings", "journal_refunds", "journal_periods", "journal_claims",
              "journal_accounts")

    def schema(self) -> list[str]:
        """Postings keyed by (stream, seq, line); each plan's payment model; refund obligations; each member's
        account (who pays for them) and what each account owes."""
        self.plans, self.postings, self.refunds, self.periods, self.claims, self.accounts = (
            self.t(n) for n in self.TABLES)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.accounts} (member TEXT PRIMARY KEY, account TEXT NOT NULL, "
            "due_fen BIGINT NOT NULL DEFAULT 0)",
            f"CREATE TABLE IF NOT EXISTS {self.periods} (id TEXT PRIMARY KEY, payment_model TEXT NOT NULL, "
            "plan TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.claims} (id TEXT PRIMARY KEY, plan TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.plans} (id TEXT PRIMARY KEY, payment_model TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.postings} (stream TEXT NOT NULL, seq INTEGER NOT NULL, "
            "line INTEGER NOT NULL, at TEXT NOT NULL, event TEXT NOT NULL, plan TEXT, account TEXT NOT NULL, "
            "member TEXT, debit_fen BIGINT NOT NULL, credit_fen BIGINT NOT NULL, PRIMARY KEY (stream, seq, line))",
            f"CREATE INDEX IF NOT EXISTS journal_postings_member ON {self.postings} (member)",
            f"CREATE INDEX IF NOT EXISTS journal_postings_account ON {self.postings} (account)",
            f"CREATE TABLE IF NOT EXISTS {self.refunds} (member TEXT NOT NULL, plan TEXT NOT NULL, "
            "reason TEXT NOT NULL, due_fen BIGINT NOT NULL, due_at TEXT NOT NULL, deadline TEXT, "
            "paid_fen BIGINT NOT NULL DEFAULT 0, paid_at TEXT, PRIMARY KEY (member, reason))",
        ]

    def appliers(self) -> dict[str, Applier]:
        """Every money-moving event."""
        return {
            "plan.created": self._plan,
            "member.joined": self._joined,
            "member.deposit_received": self._deposit,
            "period.assessed": self._assessed,
            "period.uncovered_listed": self._uncovered_listed,
            "member.debit_failed": self._failed,
            "member.debit_recovered": self._recovered,
            "member.lapsed": self._lapsed,
            "period.subsidy_received": self._subsidy,
            "period.advance_received": self._advance,
            "period.settled": self._settled,
            "claim.filed": self._claim_filed,
            "plan.surplus_released": self._surplus_released,
            "claim.paid": self._paid,
            "member.exited": self._refund_due,
            "member.aged_out": self._refund_due,
            "member.wind_down_refund_due": self._refund_due,
            "member.excluded": self._excluded,
            "member.refund_disbursed": self._refund_paid,
        }

    def post(self, cursor: SqlCursor, e: dict[str, Any], plan: str | None, lines: list[Line]) -> None:
        """Write one event's postings; they must balance."""
        lines = [line for line in lines if line[1] != 0]
        if sum(amount for _, amount, _ in lines) != 0:
            raise UnbalancedPostingError(f"{e['type']} {e['stream']}#{e['seq']}: {lines}")
        cursor.executemany(
            f"INSERT INTO {self.postings} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(e["stream"], e["seq"], n, e["at"], e["type"], plan, account, member, max(amount, 0), max(-amount, 0))
             for n, (account, amount, member) in enumerate(lines)])

    def _model(self, cursor: SqlCursor, plan: str) -> str:
        row = cursor.execute(f"SELECT payment_model FROM {self.plans} WHERE id = ?", (plan,)).fetchone()
        return str(row[0]) if row else "prepaid"

    def _plan(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"INSERT INTO {self.plans} VALUES (?, ?)", (e["stream"], e["body"]["rules"]["payment_model"]))

    def _period_model(self, cursor: SqlCursor, period: str, plan: str) -> str:
        """The payment model a period was assessed under (its rules version's), which an amendment can change."""
        row = cursor.execute(f"SELECT payment_model FROM {self.periods} WHERE id = ?", (period,)).fetchone()
        return str(row[0]) if row else self._model(cursor, plan)

    def _joined(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"INSERT INTO {self.accounts} (member, account) VALUES (?, ?)",
                       (e["stream"], e["body"]["payer"] or e["stream"]))

    def _account(self, cursor: SqlCursor, member: str) -> tuple[str, int]:
        """The account paying for a member (their payer's, or their own) and what it owes."""
        row = cursor.execute(f"SELECT account FROM {self.accounts} WHERE member = ?", (member,)).fetchone()
        account = member if row is None else str(row[0])
        due = cursor.execute(f"SELECT due_fen FROM {self.accounts} WHERE member = ?", (account,)).fetchone()
        return account, 0 if due is None else int(due[0])

    def _owed(self, cursor: SqlCursor, account: str, change: int) -> None:
        """Add to what an account owes (negative: paid or written back)."""
        if change:
            cursor.execute(f"UPDATE {self.accounts} SET due_fen = due_fen + ? WHERE member = ?", (change, account))

    def _deposit(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        amount, member = e["body"]["amount_fen"], e["stream"]
        account, due = self._account(cursor, member)
        paid = min(amount, due)  # what the account owes is paid first
        self._owed(cursor, account, -paid)
        self.post(cursor, e, e["body"]["plan"], [("custodian_cash", amount, member),
                                                 ("member_receivables", -paid, member),
                                                 ("member_balances", -(amount - paid), member)])

    def _assessed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        raised = raised_of(b)
        model = b.get("payment_model") or self._model(cursor, b["plan"])  # schema 1: the plan's first model
        cursor.execute(f"INSERT INTO {self.periods} VALUES (?, ?, ?)", (e["stream"], model, b["plan"]))
        uncovered = b.get("uncovered_fen", 0)  # schema 4 (each account's by `period.uncovered_listed`); before it,
        # every charge was taken from the balances
        lines: list[Line] = [("member_balances", raised - uncovered, None), ("member_receivables", uncovered, None)]
        if model != "prepaid":
            lines = [("custodian_cash", raised, None)]
        self.post(cursor, e, b["plan"], [
            *lines, ("operator_subsidy", b["subsidy_fen"], None),
            ("aid_payable", -b["funded_aid_fen"], None), ("fee_income", -b["funded_fee_fen"], None),
            ("surplus", -(b["surplus_out_fen"] - b["surplus_in_fen"]), None)])

    def _uncovered_listed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        for share in e["body"]["uncovered"]:  # the assessment right before it booked their sum
            self._owed(cursor, share["account"], share["amount_fen"])

    def _failed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b, member = e["body"], e["stream"]
        if self._period_model(cursor, b["period"], b["plan"]) == "prepaid":
            account, due = self._account(cursor, member)
            owed = min(b["amount_fen"], due)  # the charge not taken: what the account owes of it first
            self._owed(cursor, account, -owed)
            lines: list[Line] = [("surplus", b["amount_fen"], None), ("member_receivables", -owed, member),
                                 ("member_balances", -(b["amount_fen"] - owed), member)]
        else:  # postpaid arrears: owed by the member, not a balance of theirs
            lines = [("member_receivables", b["amount_fen"], member), ("custodian_cash", -b["amount_fen"], None)]
        self.post(cursor, e, b["plan"], lines)

    def _recovered(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b, member = e["body"], e["stream"]
        if self._period_model(cursor, b["period"], b["plan"]) == "prepaid":
            lines: list[Line] = [("member_balances", b["amount_fen"], member), ("surplus", -b["amount_fen"], None)]
        else:
            lines = [("custodian_cash", b["amount_fen"], None), ("member_receivables", -b["amount_fen"], member)]
        self.post(cursor, e, b["plan"], lines)

    def _lapsed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        if b["reason"] == "grace_expired":  # postpaid arrears, whatever the plan's payment model became
            self.post(cursor, e, b["plan"], [("surplus", b["arrears_fen"], None),
                                             ("member_receivables", -b["arrears_fen"], e["stream"])])
        refund = b.get("refund_due_fen", 0)
        if refund:
            self._owe(cursor, e, "lapse", refund, None)
            self.post(cursor, e, b["plan"], [("member_balances", refund, e["stream"]),
                                             ("refunds_payable", -refund, e["stream"])])

    def _plan_of(self, cursor: SqlCursor, table: str, stream: str) -> str | None:
        """The plan of a period or claim this journal has seen (every posting names its plan)."""
        row = cursor.execute(f"SELECT plan FROM {table} WHERE id = ?", (stream,)).fetchone()
        return None if row is None else str(row[0])

    def _surplus_released(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        amount = e["body"]["amount_fen"]
        self.post(cursor, e, e["stream"], [("surplus", amount, None), ("custodian_cash", -amount, None)])

    def _claim_filed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"INSERT INTO {self.claims} VALUES (?, ?)", (e["stream"], e["body"]["plan"]))

    def _subsidy(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        amount = e["body"]["amount_fen"]
        self.post(cursor, e, self._plan_of(cursor, self.periods, e["stream"]),
                  [("custodian_cash", amount, None), ("operator_subsidy", -amount, None)])

    def _advance(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        amount = e["body"]["amount_fen"]
        self.post(cursor, e, self._plan_of(cursor, self.periods, e["stream"]),
                  [("custodian_cash", amount, None), ("surplus", -amount, None)])

    def _settled(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        if "cases" not in b:  # schema 1: the funded amounts are paid as assessed
            return
        aid_cut = sum(case["funded_fen"] - case["payable_fen"] for case in b["cases"])
        fee_cut = b["owed_fen"] - sum(case["funded_fen"] for case in b["cases"]) - b["fee_payable_fen"]
        self.post(cursor, e, self._plan_of(cursor, self.periods, e["stream"]),
                  [("aid_payable", aid_cut, None), ("fee_income", fee_cut, None), ("surplus", -(aid_cut + fee_cut),
                                                                                     None)])

    def _paid(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        total = e["body"]["amount_fen"] + e["body"]["arrears_deducted_fen"]
        self.post(cursor, e, self._plan_of(cursor, self.claims, e["stream"]),
                  [("aid_paid", total, None), ("custodian_cash", -total, None)])

    def _refund_due(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b, member = e["body"], e["stream"]
        reason = "wind_down" if e["type"] == "member.wind_down_refund_due" else "exit"  # an age-out refunds as an exit
        self._owe(cursor, e, reason, b["refund_due_fen"], b.get("deadline"))
        self.post(cursor, e, b["plan"], [("member_balances", b["refund_due_fen"], member),
                                         ("refunds_payable", -b["refund_due_fen"], member)])

    def _excluded(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b, member = e["body"], e["stream"]
        self._owe(cursor, e, "waiting_period_illness", b["refund_due_fen"], None)
        self.post(cursor, e, b["plan"], [("member_balances", b["refund_due_fen"] - b["shares_paid_fen"], member),
                                         ("surplus", b["shares_paid_fen"], None),
                                         ("refunds_payable", -b["refund_due_fen"], member)])

    def _owe(self, cursor: SqlCursor, e: dict[str, Any], reason: str, amount: int, deadline: str | None) -> None:
        cursor.execute(f"INSERT INTO {self.refunds} (member, plan, reason, due_fen, due_at, deadline) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (e["stream"], e["body"]["plan"], reason, amount, e["at"], deadline))

    def _refund_paid(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b, member = e["body"], e["stream"]
        cursor.execute(f"UPDATE {self.refunds} SET paid_fen = paid_fen + ?, paid_at = ? "
                       "WHERE member = ? AND reason = ?", (b["amount_fen"], e["at"], member, b["reason"]))
        self.post(cursor, e, b["plan"], [("refunds_paid", b["amount_fen"], member),
                                         ("custodian_cash", -b["amount_fen"], None)])

    # -- reading -----------------------------------------------------------------------------------------

    def balances(self, plan: str | None = None, until: str | None = None) -> dict[str, int]:
        """Each account's balance (debits − credits), optionally for one plan's postings and up to an instant."""
        conditions, params = [], []
        if plan is not None:
            conditions.append("plan = ?")
            params.append(plan)
        if until is not None:
            conditions.append("at <= ?")
            params.append(until)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT account, SUM(debit_fen) - SUM(credit_fen) AS total FROM {self.postings} "
                                  f"{where} GROUP BY account", tuple(params)).fetchall()
        found = {str(account): int(total) for account, total in rows}
        return {account: found.get(account, 0) for account in ACCOUNTS}

    def trial_balance(self) -> int:
        """Σ debits − Σ credits over every posting: zero when the books balance."""
        return sum(self.balances().values())

    def custody_gap(self) -> int:
        """Cash held minus what it must cover (module docstring); zero when custody is complete."""
        b = self.balances()
        return b["custodian_cash"] - covered_fen(b)

    def member_movements(self, member: str, since: str | None = None, until: str | None = None) -> dict[str, int]:
        """A member's own money movements by event type (deposits, refunds due and paid), in a time range."""
        conditions = ["member = ?", "account IN ('member_balances', 'member_receivables', 'refunds_paid')"]
        params = [member]
        if since is not None:
            conditions.append("at >= ?")
            params.append(since)
        if until is not None:
            conditions.append("at < ?")
            params.append(until)
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT event, SUM(debit_fen) AS d, SUM(credit_fen) AS c FROM {self.postings} "
                                  f"WHERE {' AND '.join(conditions)} GROUP BY event", tuple(params)).fetchall()
        return {str(event): int(debit) - int(credit) for event, debit, credit in rows}

    def refund_obligations(self, plan: str | None = None) -> list[tuple[Any, ...]]:
        """(member, plan, reason, due, due_at, deadline, paid, paid_at) of every refund owed."""
        where, params = ("WHERE plan = ?", (plan,)) if plan else ("", ())
        with self.sql.transaction(commit=False) as cursor:
            return cursor.execute(f"SELECT member, plan, reason, due_fen, due_at, deadline, paid_fen, paid_at "
                                  f"FROM {self.refunds} {where} ORDER BY member, reason", params).fetchall()
