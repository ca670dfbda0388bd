"""Regulator queries and the signed regulator report: filters, exports, no personal data, the regulator's key."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from audit.report import CASE_FIELDS, query_cases, query_periods, query_refunds, to_csv
from ledger.bootstrap import Ledger
from ledger.canonical import document_digest
from ledger.cli import main
from ledger.projections.metrics import report_document
from ledger.store import decode_entry
from schemas.commands.report import PublishReport
from tests.support import cid, clock_of, rejected
from tests.test_audit import history

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def member_ids(app: Ledger) -> set[str]:
    return {decode_entry(e).stream for _, e in app.entries() if b'"member.joined"' in e}


def test_queries_filter_and_never_show_a_member(ledger_app: Ledger) -> None:
    history(ledger_app)
    models = ledger_app.read_models()
    cases = query_cases(models)
    assert len(cases) == 1 and cases[0]["decision"] == "approved" and "member" not in cases[0]
    assert (cases[0]["age_band"], len(cases[0]["diagnosed_month"])) == ("30-34", 7)  # coarse values only
    assert query_cases(models, category="accident") == [] and query_cases(models, reason="fraud") == []
    assert len(query_cases(models, since="2026-04-01", until="2026-05-01")) == 1
    assert [p["number"] for p in query_periods(models)] == [1]
    outputs = json.dumps([cases, query_periods(models), query_refunds(models, None, "2027")]) + to_csv(
        cases, list(CASE_FIELDS))
    assert not member_ids(ledger_app) & set(UUID.findall(outputs))


def test_the_report_is_signed_by_the_regulator_and_reproducible(ledger_app: Ledger) -> None:
    history(ledger_app)
    command = PublishReport(command_id=cid(), since="2026-01-01", until="2027-01-01")
    rejected(ledger_app, lambda: ledger_app.execute(command, sign_as="operator"), "signer",
             "regulator_reports_must_be_signed_by_a_regulator_key")
    empty = PublishReport(command_id=cid(), since="2027-01-01", until="2027-01-01")
    rejected(ledger_app, lambda: ledger_app.execute(empty), "until", "report_range_must_not_be_empty")
    result = ledger_app.execute(command)
    event = [decode_entry(e) for _, e in ledger_app.entries()][-1]
    assert (event.type, event.actor.role) == ("report.published", "regulator")
    assert event.body["document_hash"] == result["document_hash"] == document_digest(result["document"])[0]
    again = report_document(ledger_app.read_models(), "2026-01-01", "2027-01-01", clock_of(ledger_app).current)
    assert document_digest(again)[0] == result["document_hash"]
    assert not member_ids(ledger_app) & set(UUID.findall(json.dumps(result["document"])))
    assert result["document"]["custody_gap_fen"] == 0


def test_query_and_report_commands(sqlite_app: Ledger, tmp_path: Path) -> None:
    history(sqlite_app)
    data = str(sqlite_app.settings.data_dir)
    runner = CliRunner()
    regulator = str(sqlite_app.signers.party("regulator").path.parent)
    csv_out = runner.invoke(main, ["--data-dir", regulator, "--ledger", data, "audit", "query", "cases", "--format",
                                   "csv"])
    assert csv_out.exit_code == 0 and csv_out.output.startswith("claim,plan,category,"), csv_out.output
    report = runner.invoke(main, ["--data-dir", regulator, "--ledger", data, "audit", "report", "--from",
                                  "2026-01-01", "--to", "2027-01-01", "--out", str(tmp_path / "report.json")])
    assert report.exit_code == 0, report.output
    assert json.loads((tmp_path / "report.json").read_text())["format"] == "mutual-ledger/regulator-report/v1"
