"""Custodian reconciliation finds every discrepancy planted in a statement generated from the ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.reconcile import Movement, ledger_movements, read_statement, reconcile, write_statement
from ledger.bootstrap import Ledger
from ledger.cli import main
from tests.test_audit import history


@pytest.fixture
def entries(ledger_app: Ledger) -> list[bytes]:
    history(ledger_app)
    return [entry for _, entry in ledger_app.entries()]


def test_a_faithful_statement_reconciles(entries: list[bytes]) -> None:
    statement = ledger_movements(entries)
    kinds = {m.reference.split(":")[0] if ":" in m.reference else m.direction for m in statement}
    assert {"in", "out"} <= kinds
    result = reconcile(entries, read_statement(write_statement(statement)))
    assert result.ok, result.findings
    assert result.matched == len(statement) and result.custody_gap_fen == 0


def test_every_planted_discrepancy_is_found(entries: list[bytes]) -> None:
    honest = ledger_movements(entries)
    deposits = [m for m in honest if m.direction == "in"]
    payout = next(m for m in honest if m.direction == "out")
    dropped, changed, late = deposits[0], deposits[1], deposits[2]
    planted = [m for m in honest if m not in (dropped, changed, late)]
    planted += [replace(changed, amount_fen=changed.amount_fen - 100), replace(late, date="2027-02-01"),
                Movement("2026-05-01", "bank-unknown", "in", 777, "member:zzzz****"), payout]
    result = reconcile(entries, planted)
    found = {(f["kind"], f["reference"]) for f in result.findings}
    assert found == {("missing_in_statement", dropped.reference), ("amount_mismatch", changed.reference),
                     ("outside_window", late.reference), ("missing_in_ledger", "bank-unknown"),
                     ("duplicate", payout.reference)}
    assert result.custody_gap_fen == -dropped.amount_fen - 100 + 777 - payout.amount_fen
    assert not result.ok


def test_the_command_reports_and_rejects_a_malformed_statement(entries: list[bytes], tmp_path: Path) -> None:
    export = tmp_path / "log.jsonl"
    export.write_bytes(b"\n".join(entries) + b"\n")
    statement = tmp_path / "statement.csv"
    statement.write_text(write_statement(ledger_movements(entries)))
    ok = CliRunner().invoke(main, ["audit", "reconcile", "--statement", str(statement), "--input", str(export),
                                   "--json"])
    assert ok.exit_code == 0, ok.output
    statement.write_text("date,reference,direction,amount_fen,counterparty\n2026-01-01,x,in,12.5,member\n")
    bad = CliRunner().invoke(main, ["audit", "reconcile", "--statement", str(statement), "--input", str(export)])
    assert bad.exit_code == 2 and "line 2: amount_fen must be a positive integer" in bad.output
    assert "statement: statement_must_follow_the_format" in bad.output
