"""The command line: init, the generated `NOUN VERB` commands, apply, export, the demo, the reads, exit codes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger.anchors import TrustAnchors
from ledger.cli import main
from sim.fixtures import commitment, rules


def run(data: Path, *args: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], input=input, catch_exceptions=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "ledger"
    assert run(directory, "init").exit_code == 0
    return directory


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo's operator directory (its parties beside it, in `ledger-parties`); tests that change it copy it."""
    data = tmp_path_factory.mktemp("cli-demo") / "ledger"
    result = run(data, "demo", "--members", "300", "--periods", "2", "--seed", "9", "--json")
    assert result.exit_code == 0, result.output
    return data


def copy_of(demo: Path, tmp_path: Path) -> Path:
    """A copy of the demo (operator and parties) that a test may change."""
    shutil.copytree(demo.parent, tmp_path / "copy")
    return tmp_path / "copy" / "ledger"


def create_plan(data: Path, tmp_path: Path) -> str:
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(rules().model_dump_json())
    result = run(data, "plan", "create", "--command-id", "p1", "--name", "Cancer", "--kind", "cancer",
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


def test_init_creates_only_the_operators_keys_and_anchors_the_log(data: Path) -> None:
    assert sorted(p.stem for p in (data / "keys").glob("*.pem")) == ["log", "operator", "operator-root"]
    anchors = json.loads((data / "trust-anchors.json").read_text())
    assert set(anchors) == {"operator-root", "log"} and anchors["log"]["verifier_key"].startswith(
        "mutual-ledger.local/log+")
    again = run(data, "init")
    assert again.exit_code == 2 and "data_dir: data_dir_must_not_hold_a_ledger_already" in again.output


def test_subcommands_validate_and_name_the_field_and_rule(data: Path, tmp_path: Path) -> None:
    plan = create_plan(data, tmp_path)
    before = count_events(data)
    join = ["member", "join", "--command-id", "j1", "--sex", "f", "--province", "zj", "--consent-commitment",
            commitment(), "--health-declaration-commitment", commitment()]
    bad = run(data, *join, "--plan", plan, "--age-years", "12.5")
    assert bad.exit_code == 2 and "age_years: int_type" in bad.output
    too_old = run(data, *join, "--plan", plan, "--age-years", "70")
    assert too_old.exit_code == 2 and "age_years: age_must_be_within_the_plan_band" in too_old.output
    assert count_events(data) == before
    good = run(data, *join, "--plan", "cancer", "--age-years", "30", "--json")  # the plan by its name
    assert good.exit_code == 0, good.output
    repeat = run(data, *join, "--plan", plan, "--age-years", "30", "--json")
    assert json.loads(repeat.output)["repeated"] is True
    assert json.loads(repeat.output)["member"] == json.loads(good.output)["member"]
    assert count_events(data) == before + 1
    human = run(data, *join[:3], "j2", *join[4:], "--plan", plan, "--age-years", "31")
    assert human.exit_code == 0 and "wrote member.joined" in human.output and not human.output.startswith("{")


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


def test_apply_reports_invalid_utf8_and_deep_nesting_as_lines_after_applying_what_came_before(
        data: Path, tmp_path: Path) -> None:
    plan = create_plan(data, tmp_path)
    commands = tmp_path / "commands.jsonl"
    commands.write_bytes(join_line(plan, "u1").encode() + b"\n" + b'{"command": "join", "x": "\xff\xfe"}\n'
                         + b"[" * 100_000 + b"\n" + join_line(plan, "u2").encode() + b"\n")
    before = count_events(data)
    result = run(data, "apply", "--keep-going", str(commands))
    reports = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 2 and [r["ok"] for r in reports] == [True, False, False, True]
    assert "line: line_must_be_a_json_object (not UTF-8)" in reports[1]["error"]
    assert "line: line_must_be_a_json_object" in reports[2]["error"]
    assert count_events(data) == before + 2


def test_export_is_canonical_and_audit_verify_pinpoints_a_tampered_store(data: Path, tmp_path: Path) -> None:
    create_plan(data, tmp_path)
    exported = run(data, "export").stdout_bytes.splitlines()
    assert len(exported) == 3
    export_file = tmp_path / "log.jsonl"
    assert run(data, "export", "--out", str(export_file)).exit_code == 0
    assert export_file.read_bytes().splitlines() == exported
    assert run(data, "audit", "verify").exit_code == 0
    assert run(data, "audit", "verify", "--input", str(export_file), "--json").exit_code == 0
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        state, = db.execute("SELECT state FROM stored_events WHERE originator_version = 1 "
                            "AND topic = 'plan.created@1'").fetchone()
        db.execute("UPDATE stored_events SET state = ? WHERE state = ?",
                   (state.replace(b'"fee_bps":800', b'"fee_bps":900'), state))
    result = run(data, "audit", "verify", "--json")
    assert result.exit_code == 3
    report = json.loads(result.output)
    assert report["failures"][0]["index"] == 2 and report["failures"][0]["check"] == "6 signature"


def test_audit_verify_says_when_nothing_anchors_the_keys_and_no_checkpoint_covers_the_tail(
        data: Path, tmp_path: Path) -> None:
    create_plan(data, tmp_path)
    export_file = tmp_path / "log.jsonl"
    run(data, "export", "--out", str(export_file))
    elsewhere = tmp_path / "stranger"
    elsewhere.mkdir()
    result = run(elsewhere, "audit", "verify", "--input", str(export_file))
    assert result.exit_code == 0
    assert "no trust anchors" in result.output and "entries 0..2 are covered by no checkpoint you hold" in result.output
    shutil.copy(data / "trust-anchors.json", elsewhere / "trust-anchors.json")
    result = run(elsewhere, "audit", "verify", "--input", str(export_file))
    assert "no trust anchors" not in result.output and "covered by no checkpoint" in result.output


def test_demo_refuses_a_foreign_directory_and_replaces_only_its_own(tmp_path: Path) -> None:
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    refused = run(foreign, "demo", "--members", "60", "--periods", "1")
    assert refused.exit_code == 2 and "demo_needs_an_empty_directory" in refused.output
    refused = run(foreign, "demo", "--members", "60", "--periods", "1", "--replace")
    assert refused.exit_code == 2 and "demo_replaces_only_its_own_data" in refused.output
    assert (foreign / "thesis.txt").read_text() == "keep me"
    ledger = tmp_path / "ledger"
    assert run(ledger, "init").exit_code == 0  # a real ledger with its keys: never replaced
    refused = run(ledger, "demo", "--members", "60", "--periods", "1", "--replace")
    assert refused.exit_code == 2 and (ledger / "keys" / "operator-root.pem").exists()
    demo_dir = tmp_path / "demo"
    first = run(demo_dir, "demo", "--members", "200", "--periods", "1", "--seed", "4", "--json")
    assert first.exit_code == 0, first.output
    again = run(demo_dir, "demo", "--members", "200", "--periods", "1", "--seed", "4", "--json")
    assert again.exit_code == 2 and "--replace" in again.output
    again = run(demo_dir, "demo", "--members", "200", "--periods", "1", "--seed", "4", "--json", "--replace")
    one, two = json.loads(first.output), json.loads(again.output)
    assert one["periods"] == two["periods"] and one["counts"] == two["counts"]
    assert one["plans"].keys() == two["plans"].keys()
    assert set(one["plans"].values()).isdisjoint(two["plans"].values())  # ids are keyed by the new vault key
    assert run(demo_dir, "audit", "verify").exit_code == 0


def test_read_model_commands_on_a_demo(demo: Path, tmp_path: Path) -> None:
    summary = json.loads((demo / "demo-summary.json").read_text())
    assert "爱心账单" in summary["statement"] and summary["last_disclosure"]["patients_helped"] >= 0
    journal = run(demo, "journal", "show", "--json")
    assert journal.exit_code == 0
    assert json.loads(journal.output)["trial_balance_fen"] == 0 and json.loads(journal.output)["custody_gap_fen"] == 0
    live = run(demo, "projections", "digest").output.splitlines()
    assert [line.split()[0] for line in live] == ["balances", "journal", "periods", "cases", "charges"]
    assert run(demo, "projections", "digest", "--fresh").output.splitlines() == live
    plans = {p["name"]: p for p in json.loads(run(demo, "plan", "list", "--json").output)}
    assert sorted(plans) == ["postpaid cancer plan", "prepaid cancer plan"]
    periods = json.loads(run(demo, "period", "list", "--plan", "prepaid cancer plan", "--json").output)
    assert [p["number"] for p in periods] == [1, 2, 3]  # two periods, then the tail period after the plan's end
    assert all(p["plan"] == plans["prepaid cancer plan"]["id"] for p in periods)
    by_number = json.loads(run(demo, "period", "show", "prepaid cancer plan:2", "--json").output)
    assert by_number == json.loads(run(demo, "period", "show", periods[1]["id"], "--json").output)
    disclosures = json.loads(run(demo, "disclosure", "list", "--json").output)
    assert disclosures and all(d["published"] for d in disclosures)
    period = next(d["period"] for d in reversed(disclosures)
                  if json.loads(run(demo, "period", "show", d["period"], "--json").output)["cases"])
    shown = run(demo, "disclosure", "show", period)
    assert shown.exit_code == 0 and "公示" in shown.output and "matches the published hash" in shown.output
    document = run(demo, "disclosure", "show", period, "--json").stdout_bytes.split(b"\n")[0]
    assert json.loads(document)["period"] == period
    export = [json.loads(line) for line in run(demo, "export").output.splitlines()]
    member = next(e["stream"] for e in export if e["type"] == "member.deposit_received")
    statement = json.loads(run(demo, "member", "statement", member, "--year", "2026", "--json").output)
    assert statement["member"] == member and statement["top_ups_fen"] > 0
    metrics = json.loads(run(demo, "metrics", "show", "--json").output)
    assert len(metrics["plans"]) == 2 and metrics["custody_gap_fen"] == 0
    assert run(demo, "member", "statement", "5e0a4a3e-8d3c-4b43-9f4c-1f1f6f0c2a11").exit_code == 2
    changed = copy_of(demo, tmp_path)
    with sqlite3.connect(changed / "ledger.sqlite3") as db:  # a read model edited behind the ledger's back
        db.execute("UPDATE case_cards SET condition = 'edited' WHERE period = ?", (period,))
    assert run(changed, "disclosure", "show", period).exit_code == 3
    assert run(changed, "projections", "digest").output.splitlines() != live
    assert run(changed, "projections", "rebuild").exit_code == 0
    assert run(changed, "projections", "digest").output.splitlines() == live


def test_reads_never_write(demo: Path) -> None:
    before = (demo / "ledger.sqlite3").read_bytes()
    member = next(json.loads(line)["stream"] for line in run(demo, "export").output.splitlines()
                  if '"member.joined"' in line)
    for args in (("log", "checkpoint", "show"), ("log", "checkpoint", "list"), ("log", "entry", "3"),
                 ("log", "proof", "inclusion", "--index", "3", "--size", "10"),
                 ("log", "proof", "consistency", "--old", "3", "--size", "10"), ("log", "proof", "member", member),
                 ("member", "statement", member), ("period", "list"), ("disclosure", "list"), ("plan", "list"),
                 ("journal", "show"), ("metrics", "show"), ("log", "key")):
        result = run(demo, *args)
        assert result.exit_code == 0, (args, result.output)
    assert (demo / "ledger.sqlite3").read_bytes() == before


def test_the_help_shows_the_noun_groups_and_no_operation_twice() -> None:
    result = CliRunner().invoke(main, ["--help"])
    nouns = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert {"plan", "member", "claim", "period", "disclosure", "log", "witness", "audit", "keys", "projections",
            "kafka"} <= nouns
    assert not {"verify", "log-key", "publish-disclosure", "checkpoint", "statement", "create-plan"} & nouns
    seen: dict[str, str] = {}
    for path, command in walk(main):
        function = getattr(command, "callback", None)
        callback = f"{function.__module__}.{function.__qualname__}" if function else None
        if callback and not callback.endswith("domain_command.<locals>.run"):
            assert callback not in seen, f"{path} and {seen[callback]} run the same operation"
            seen[callback] = path


def walk(group: object, prefix: str = "") -> list[tuple[str, object]]:
    import click

    assert isinstance(group, click.Group)
    found: list[tuple[str, object]] = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}".strip()
        if isinstance(command, click.Group):
            found += walk(command, path)
        else:
            found.append((path, command))
    return found


def test_keys_anchor_witnesses_sets_the_witness_policy_and_refuses_one_that_cannot_be_met(data: Path,
                                                                                          tmp_path: Path) -> None:
    witness_keys = []
    for role in ("custodian", "regulator"):
        party = tmp_path / role
        assert run(party, "keys", "generate", "--role", role).exit_code == 0
        shutil.copyfile(data / "trust-anchors.json", party / "trust-anchors.json")
        key = run(party, "witness", "key")
        assert key.exit_code == 0, key.output
        witness_keys.append(key.output.strip())
    result = run(data, "keys", "anchor-witnesses", *witness_keys, "--threshold", "2", "--json")
    assert result.exit_code == 0, result.output
    anchors = json.loads((data / "trust-anchors.json").read_text())
    assert anchors["witnesses"] == {"keys": witness_keys, "threshold": 2}
    assert {"operator-root", "log"} <= set(anchors)

    log_key = anchors["log"]["verifier_key"]  # a checkpoint signer's key (type 0x01), not a witness's
    for bad in ([*witness_keys, "--threshold", "3"], [witness_keys[0], witness_keys[0], "--threshold", "1"],
                [log_key, "--threshold", "1"], ["not-a-key", "--threshold", "1"]):
        refused = CliRunner().invoke(main, ["--data-dir", str(data), "keys", "anchor-witnesses", *bad])
        assert refused.exit_code == 2, refused.output
        assert "trust_anchors: trust_anchors_must_be_valid" in refused.stderr and "witnesses" in refused.stderr
        assert json.loads((data / "trust-anchors.json").read_text()) == anchors  # nothing written

    assert run(data, "keys", "anchor-witnesses", witness_keys[1], "--threshold", "1").exit_code == 0
    assert json.loads((data / "trust-anchors.json").read_text())["witnesses"] == {"keys": witness_keys[1:],
                                                                                  "threshold": 1}


def test_keys_fingerprint_prints_what_a_browser_pins_and_the_link_that_carries_it(data: Path) -> None:
    result = run(data, "keys", "fingerprint", "--url", "https://plan.example/", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    fingerprint = TrustAnchors.load(data / "trust-anchors.json").fingerprint()
    assert shown == {"fingerprint": fingerprint, "link": f"https://plan.example/member#anchors={fingerprint}"}
    text = run(data, "keys", "fingerprint").output.strip()
    assert text.replace(" ", "") == fingerprint and len(text.split()) == 8
    (data / "trust-anchors.json").unlink()
    missing = CliRunner().invoke(main, ["--data-dir", str(data), "keys", "fingerprint"])
    assert missing.exit_code == 2 and "trust_anchors: file_must_exist" in missing.stderr
