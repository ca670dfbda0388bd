"""The command line: init, generated subcommands, apply, export, verify, demo, and exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger.cli import main
from tests.support import commitment, rules


def run(data: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], input=input, catch_exceptions=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "ledger"
    assert run(directory, "init").exit_code == 0
    return directory


def create_plan(data: Path, tmp_path: Path) -> str:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(rules().model_dump_json())
    result = run(data, "create-plan", "--command-id", "p1", "--name", "Cancer", "--kind", "cancer",
                 "--rules", f"@{rules_file}", "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["plan"])


def join_line(plan: str, command_id: str, age: int = 30) -> str:
    return json.dumps({"command": "join", "command_id": command_id, "plan": plan, "age_years": age, "sex": "f",
                       "province": "zj", "consent_commitment": commitment(),
                       "health_declaration_commitment": commitment()})


def count_events(data: Path) -> int:
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        return int(db.execute("SELECT COUNT(*) FROM stored_events").fetchone()[0])


def test_init_twice_is_refused(data: Path) -> None:
    result = run(data, "init")
    assert result.exit_code == 2 and "already holds a log" in result.output


def test_subcommands_validate_and_name_the_field_and_rule(data: Path, tmp_path: Path) -> None:
    plan = create_plan(data, tmp_path)
    before = count_events(data)
    bad = run(data, "join", "--command-id", "j1", "--plan", plan, "--age-years", "12.5", "--sex", "f",
              "--province", "zj", "--consent-commitment", commitment(), "--health-declaration-commitment",
              commitment())
    assert bad.exit_code == 2 and "age_years: int_type" in bad.output
    too_old = run(data, "join", "--command-id", "j1", "--plan", plan, "--age-years", "70", "--sex", "f",
                  "--province", "zj", "--consent-commitment", commitment(), "--health-declaration-commitment",
                  commitment())
    assert too_old.exit_code == 2 and "age_years: age_must_be_within_the_plan_band" in too_old.output
    assert count_events(data) == before
    good = run(data, "join", "--command-id", "j1", "--plan", plan, "--age-years", "30", "--sex", "f",
               "--province", "zj", "--consent-commitment", commitment(), "--health-declaration-commitment",
               commitment(), "--json")
    assert good.exit_code == 0
    repeat = run(data, "join", "--command-id", "j1", "--plan", plan, "--age-years", "30", "--sex", "f",
                 "--province", "zj", "--consent-commitment", commitment(), "--health-declaration-commitment",
                 commitment(), "--json")
    assert json.loads(repeat.output)["repeated"] is True
    assert json.loads(repeat.output)["member"] == json.loads(good.output)["member"]
    assert count_events(data) == before + 1


def test_apply_stops_at_the_first_rejected_line_unless_told_to_keep_going(data: Path, tmp_path: Path) -> None:
    plan = create_plan(data, tmp_path)
    lines = [join_line(plan, "a1"), join_line(plan, "a2", age=99), "not json", join_line(plan, "a3")]
    commands = tmp_path / "commands.jsonl"
    commands.write_text("\n".join(lines) + "\n")
    before = count_events(data)
    stopped = run(data, "apply", str(commands))
    reports = [json.loads(line) for line in stopped.output.splitlines()]
    assert stopped.exit_code == 2
    assert [r["ok"] for r in reports] == [True, False]
    assert "age_years: age_must_be_within_the_plan_band" in reports[1]["error"]
    assert count_events(data) == before + 1
    kept = run(data, "apply", "--keep-going", str(commands))
    reports = [json.loads(line) for line in kept.output.splitlines()]
    assert kept.exit_code == 2
    assert [r["ok"] for r in reports] == [True, False, False, True]
    assert reports[0]["result"]["repeated"] is True
    assert count_events(data) == before + 2


def test_export_is_canonical_and_verify_pinpoints_a_tampered_store(data: Path, tmp_path: Path) -> None:
    create_plan(data, tmp_path)
    exported = run(data, "export").stdout_bytes.splitlines()
    assert len(exported) == 7
    export_file = tmp_path / "log.jsonl"
    export_file.write_bytes(b"\n".join(exported) + b"\n")
    assert run(data, "verify").exit_code == 0
    assert run(data, "verify", "--input", str(export_file), "--json").exit_code == 0
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        state, = db.execute("SELECT state FROM stored_events WHERE originator_version = 1 "
                            "AND topic = 'plan.created@1'").fetchone()
        db.execute("UPDATE stored_events SET state = ? WHERE state = ?",
                   (state.replace(b'"fee_bps":800', b'"fee_bps":900'), state))
    result = run(data, "verify", "--json")
    assert result.exit_code == 3
    report = json.loads(result.output)
    assert report["failures"][0]["index"] == 6 and report["failures"][0]["check"] == "6 signature"


def test_demo_runs_in_a_fresh_directory_and_refuses_a_foreign_one(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    refused = run(foreign, "demo", "--members", "60", "--periods", "1")
    assert refused.exit_code == 2 and (foreign / "thesis.txt").exists()
    demo_dir = tmp_path / "demo"
    first = run(demo_dir, "demo", "--members", "200", "--periods", "1", "--seed", "4", "--json")
    assert first.exit_code == 0, first.output
    again = run(demo_dir, "demo", "--members", "200", "--periods", "1", "--seed", "4", "--json")
    one, two = json.loads(first.output), json.loads(again.output)
    assert one["periods"] == two["periods"] and one["counts"] == two["counts"] and one["plans"] == two["plans"]
    assert run(demo_dir, "verify").exit_code == 0


def test_read_model_commands_on_a_demo(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    assert run(data, "demo", "--members", "300", "--periods", "2", "--seed", "9", "--json").exit_code == 0
    summary = json.loads((data / "demo-summary.json").read_text())
    assert "爱心账单" in summary["statement"] and summary["last_disclosure"]["patients_helped"] >= 0
    journal = run(data, "journal", "--json")
    assert journal.exit_code == 0
    assert json.loads(journal.output)["trial_balance_fen"] == 0 and json.loads(journal.output)["custody_gap_fen"] == 0
    live = run(data, "projections", "digest").output.splitlines()
    assert [line.split()[0] for line in live] == ["balances", "journal", "periods", "cases"]
    assert run(data, "projections", "digest", "--fresh").output.splitlines() == live
    export = [json.loads(line) for line in run(data, "export").output.splitlines()]
    published = [e for e in export if e["type"] == "disclosure.published"]
    period = next(p["body"]["period"] for p in reversed(published)
                  if json.loads(run(data, "period", "show", p["body"]["period"], "--json").output)["cases"])
    shown = run(data, "disclosure", "show", period)
    assert shown.exit_code == 0 and "matches the published hash" in shown.output
    record = json.loads(run(data, "period", "show", period, "--json").output)
    assert record["status"] == "settled" and record["share_fen"] is not None
    member = next(e["stream"] for e in export if e["type"] == "member.deposit_received")
    statement = json.loads(run(data, "statement", member, "--year", "2026", "--json").output)
    assert statement["member"] == member and statement["top_ups_fen"] > 0
    metrics = json.loads(run(data, "metrics", "--json").output)
    assert len(metrics["plans"]) == 2 and metrics["custody_gap_fen"] == 0
    assert run(data, "statement", "5e0a4a3e-8d3c-4b43-9f4c-1f1f6f0c2a11").exit_code == 2
    import sqlite3

    with sqlite3.connect(data / "ledger.sqlite3") as db:  # a read model edited behind the ledger's back
        db.execute("UPDATE case_cards SET condition = 'edited' WHERE period = ?", (period,))
    assert run(data, "disclosure", "show", period).exit_code == 3
    assert run(data, "projections", "digest").output.splitlines() != live
    assert run(data, "projections", "rebuild").exit_code == 0
    assert run(data, "projections", "digest").output.splitlines() == live
