"""Custodian reconciliation: the custodian's own bank statement against the fund movements in the ledger.

Statement format (CSV with a header row; one line per bank movement):

    date,reference,direction,amount_fen,counterparty
    2026-04-28,bank-1234,in,5000,member:3f2a****

- `date`: the booking date, YYYY-MM-DD; `direction`: `in` or `out`; `amount_fen`: a positive integer;
- `reference`: the bank reference the ledger records (deposits, subsidies, payouts, refunds); a postpaid period's
  channel collection is booked as one line with reference `period:<period id>` and amount = shares assessed − debits
  failed + debits recovered; a payout is booked gross (the aid paid plus any arrears deducted from it, which the
  ledger records as recovered debits of their period);
- `counterparty`: a pseudonym, never a name.

Findings: `missing_in_statement`, `missing_in_ledger`, `amount_mismatch`, `direction_mismatch`, `duplicate`
(a reference twice on either side), `outside_window` (booked more than the allowed days from the ledger's time),
and the custody gap: the statement's cash (in − out) against what the fund owes (member balances, surplus, aid and
refunds not yet paid, fee held, less subsidy and member shares still owed), from the ledger's journal rebuilt from
the events.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.sqlite import SQLiteDatastore

from ledger.projections.base import EntriesInMemory
from ledger.projections.journal import Journal, covered_fen
from ledger.projections.sql import SqlStore
from ledger.sharing import raised_of

HEADER = ["date", "reference", "direction", "amount_fen", "counterparty"]


@dataclass(frozen=True)
class Movement:
    """One fund movement, from the ledger or from the bank."""

    date: str
    reference: str
    direction: str
    amount_fen: int
    counterparty: str = ""


@dataclass
class Reconciliation:
    """What matched, what did not, and the custody gap."""

    matched: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    statement_cash_fen: int = 0
    owed_fen: int = 0

    @property
    def custody_gap_fen(self) -> int:
        """Cash held per the statement minus what the fund owes."""
        return self.statement_cash_fen - self.owed_fen

    @property
    def ok(self) -> bool:
        """No finding and no gap."""
        return not self.findings and self.custody_gap_fen == 0

    def to_json(self) -> dict[str, Any]:
        """Machine-readable."""
        return {"ok": self.ok, "matched": self.matched, "findings": self.findings,
                "statement_cash_fen": self.statement_cash_fen, "owed_fen": self.owed_fen,
                "custody_gap_fen": self.custody_gap_fen}

    def render(self) -> str:
        """A readable report."""
        lines = [f"{self.matched} movements matched; {len(self.findings)} findings; custody gap "
                 f"{self.custody_gap_fen / 100:.2f} yuan (statement cash {self.statement_cash_fen / 100:.2f}, owed "
                 f"{self.owed_fen / 100:.2f})"]
        lines += [f"  {f['kind']}: {f['reference']} — {f['detail']}" for f in self.findings]
        return "\n".join(lines)


def ledger_movements(entries: list[bytes]) -> list[Movement]:
    """Every fund movement the events record, in the statement's terms."""
    movements: list[Movement] = []
    plans: dict[str, str] = {}
    collections: dict[str, list[Any]] = {}
    for entry in entries:
        e = json.loads(entry)
        kind, body, day = e["type"], e["body"], e["at"][:10]
        if kind == "plan.created":
            plans[e["stream"]] = body["rules"]["payment_model"]
        elif kind == "member.deposit_received":
            movements.append(Movement(day, body["reference"], "in", body["amount_fen"],
                                      f"member:{e['stream'][:4]}****"))
        elif kind == "period.subsidy_received":
            movements.append(Movement(day, body["reference"], "in", body["amount_fen"], "operator"))
        elif kind == "claim.paid":
            movements.append(Movement(day, body["reference"], "out", body["amount_fen"] + body["arrears_deducted_fen"],
                                      f"claim:{e['stream'][:4]}****"))
        elif kind == "member.refund_disbursed":
            movements.append(Movement(day, body["reference"], "out", body["amount_fen"],
                                      f"member:{e['stream'][:4]}****"))
        elif kind == "period.assessed" and plans.get(body["plan"]) == "postpaid":
            collections[e["stream"]] = [day, raised_of(body)]
        elif kind in ("member.debit_failed", "member.debit_recovered") and body["period"] in collections:
            collections[body["period"]][1] += body["amount_fen"] * (-1 if kind == "member.debit_failed" else 1)
    movements += [Movement(day, f"period:{period}", "in", amount, "channel")
                  for period, (day, amount) in collections.items() if amount]
    return movements


def read_statement(text: str) -> list[Movement]:
    """Parse a statement; a malformed line is an error naming the line and the field."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [h.strip() for h in rows[0]] != HEADER:
        raise ValueError(f"statement: header must be {','.join(HEADER)}")
    movements = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(HEADER):
            raise ValueError(f"statement line {number}: must have {len(HEADER)} fields")
        day, reference, direction, amount, counterparty = (v.strip() for v in row)
        try:
            date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"statement line {number}: date must be YYYY-MM-DD") from None
        if direction not in ("in", "out"):
            raise ValueError(f"statement line {number}: direction must be in or out")
        if not amount.isdigit() or int(amount) <= 0:
            raise ValueError(f"statement line {number}: amount_fen must be a positive integer")
        movements.append(Movement(day, reference, direction, int(amount), counterparty))
    return movements


def write_statement(movements: list[Movement]) -> str:
    """A statement in the documented format (used to generate test statements)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for m in movements:
        writer.writerow([m.date, m.reference, m.direction, m.amount_fen, m.counterparty])
    return out.getvalue()


def owed_fen(entries: list[bytes]) -> int:
    """What the fund owes, from the journal rebuilt from the events."""

    with tempfile.TemporaryDirectory() as tmp:
        sql = SqlStore(SQLiteDatastore(str(Path(tmp) / "journal.sqlite3")))
        journal = Journal(EntriesInMemory(entries, sql), sql)
        journal.catch_up()
        return covered_fen(journal.balances())


def reconcile(entries: list[bytes], statement: list[Movement], window_days: int = 3) -> Reconciliation:
    """Match the statement against the ledger (module docstring)."""
    result = Reconciliation()
    ledger = ledger_movements(entries)
    for side, movements in (("ledger", ledger), ("statement", statement)):
        for reference, count in Counter(m.reference for m in movements).items():
            if count > 1:
                result.findings.append({"kind": "duplicate", "reference": reference,
                                        "detail": f"{count} times in the {side}"})
    by_reference = {m.reference: m for m in statement}
    for movement in ledger:
        bank = by_reference.pop(movement.reference, None)
        if bank is None:
            result.findings.append({"kind": "missing_in_statement", "reference": movement.reference,
                                    "detail": f"{movement.direction} {movement.amount_fen} fen on {movement.date}"})
            continue
        if bank.direction != movement.direction:
            result.findings.append({"kind": "direction_mismatch", "reference": movement.reference,
                                    "detail": f"ledger {movement.direction}, statement {bank.direction}"})
        if bank.amount_fen != movement.amount_fen:
            result.findings.append({"kind": "amount_mismatch", "reference": movement.reference,
                                    "detail": f"ledger {movement.amount_fen} fen, statement {bank.amount_fen} fen"})
        lag = abs((date.fromisoformat(bank.date) - date.fromisoformat(movement.date)).days)
        if lag > window_days:
            result.findings.append({"kind": "outside_window", "reference": movement.reference,
                                    "detail": f"booked {bank.date}, ledger {movement.date} ({lag} days)"})
        if bank.direction == movement.direction and bank.amount_fen == movement.amount_fen and lag <= window_days:
            result.matched += 1
    for reference, bank in by_reference.items():
        result.findings.append({"kind": "missing_in_ledger", "reference": reference,
                                "detail": f"{bank.direction} {bank.amount_fen} fen on {bank.date}"})
    result.statement_cash_fen = sum(m.amount_fen if m.direction == "in" else -m.amount_fen for m in statement)
    result.owed_fen = owed_fen(entries)
    return result

