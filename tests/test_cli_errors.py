"""No command ever prints a traceback: every subcommand, given missing, malformed and out-of-range arguments, exits
with a status of the error tree (2 bad input, 3 verification failed) and one line naming the field — and the
failures once seen, each by name."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from uuid import UUID

import click
import pytest
from click.testing import CliRunner, Result

from ledger.cli import main
from sim.fixtures import rules


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)


def one_error_line(result: Result) -> str:
    """The error's one line (stderr), checked: no traceback, a single `error:` line."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output + result.stderr, result.output
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("errors") / "ledger"
    # the plans stay open (--no-endings): the tests add to them
    assert run(data, "demo", "--members", "120", "--periods", "1", "--seed", "3", "--no-endings", "--json"
               ).exit_code == 0
    return data


def leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += leaves(command, (*prefix, name))
        else:
            found.append(((*prefix, name), command))
    return found


GLOBAL = {"--data-dir", "--ledger", "--key", "--json", "--help"}
NEVER_RUN = {("kafka", "relay"), ("kafka", "consume"), ("demo",), ("serve",), ("witness", "serve")}
"""Commands that would start a long-running process or a demo when their arguments are right; their bad-argument
cases are still run below."""


def bad_values(parameter: click.Parameter, nowhere: Path) -> list[str]:
    """Values a parameter must refuse or survive: malformed, out of range, pointing nowhere."""
    kind = parameter.type
    if isinstance(kind, click.IntRange | click.FloatRange) or kind in (click.INT, click.FLOAT):
        return ["-99999999", "twelve", "99999999999999999999"]
    if isinstance(kind, click.Choice):
        return ["no-such-choice"]
    if isinstance(kind, click.Path):
        return [str(nowhere / "dir" / "file.json")]
    return ["%%%", "2026-13-01", ""]


def test_every_subcommand_refuses_bad_arguments_in_one_line_without_a_traceback(demo: Path,
                                                                                 tmp_path: Path) -> None:
    data = tmp_path / "ledger"
    shutil.copytree(demo.parent, tmp_path, dirs_exist_ok=True)
    checked = 0
    for path, command in leaves(main):
        params = [p for p in command.params if not set(p.opts) & GLOBAL]
        attempts: list[list[str]] = [[]]
        for parameter in params:
            for value in bad_values(parameter, tmp_path / "nowhere"):
                if isinstance(parameter, click.Argument):
                    attempts.append([value])
                elif not (isinstance(parameter, click.Option) and parameter.is_flag):
                    attempts.append([parameter.opts[0], value])
        for arguments in attempts:
            if not arguments and path in NEVER_RUN:
                continue
            if path in NEVER_RUN and all(isinstance(p, click.Option) and not p.required for p in params) and (
                    arguments and arguments[0].startswith("--") and "-99999999" not in arguments
                    and "twelve" not in arguments and "no-such-choice" not in arguments
                    and "99999999999999999999" not in arguments):
                continue
            result = run(data, *path, *arguments)
            checked += 1
            assert result.exit_code in (0, 2, 3), (path, arguments, result.exit_code, result.output)
            assert "Traceback" not in result.output + result.stderr, (path, arguments, result.output)
            if result.exit_code == 2:
                line = one_error_line(result)
                assert line.startswith("error: ") and len(line) > 10, (path, arguments, line)
    assert checked > 150


@pytest.mark.parametrize(("args", "field", "rule"), [
    (("audit", "report", "--from", "2026-1-1", "--to", "2027-01-01", "--out", "r.json"), "from", "must_be_a_date"),
    (("audit", "query", "cases", "--from", "2026-13-01"), "from", "must_be_a_date"),
    (("audit", "query", "cases", "--reason", "bogus"), "reason", "must_be_one_of_the_known_values"),
    (("audit", "query", "cases", "--plan", "nope"), "plan", "plan_must_exist"),
    (("metrics", "show", "--plan", "nope"), "plan", "plan_must_exist"),
    (("member", "statement", "5e0a4a3e-8d3c-4b43-9f4c-1f1f6f0c2a11", "--from", "2026-07-01", "--to", "2026-01-01"),
     "to", "date_range_must_not_be_empty"),
    (("disclosure", "show", "abc"), "period", "period_reference_must_be_an_id_or_plan_number"),
    (("log", "proof", "member", "5e0a4a3e-8d3c-4b43-9f4c-1f1f6f0c2a11", "--out", "nodir/b.json"), "out",
     "output_directory_must_exist"),
    (("audit", "verify-bundle", "garbage.json"), "file", "file_must_exist"),
    (("audit", "verify", "--log-key", "not-a-key"), "log_key", "log_verifier_key_must_be_valid"),
    (("audit", "verify", "--input", "export.jsonl", "--log-url", "http://127.0.0.1:9"), "log_url",
     "input_or_log_url_not_both"),
    (("plan", "create", "--command-id", "p", "--name", "x", "--kind", "cancer", "--rules", "@missing.json"),
     "rules", "file_must_exist"),
    (("plan", "create", "--command-id", "p", "--name", "x", "--kind", "cancer", "--rules", "@."),
     "rules", "file_must_be_a_readable_text_file"),
    (("--key", "../../x", "plan", "list"), "key", "key_name_must_name_a_key_in_the_key_directory"),
    (("--key", "/etc/passwd", "plan", "list"), "key", "key_name_must_name_a_key_in_the_key_directory"),
])
def test_each_failure_once_seen_is_a_clear_input_error(demo: Path, args: tuple[str, ...], field: str,
                                                       rule: str) -> None:
    result = run(demo, *args)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert f"{field}: {rule}" in line and "http" not in line, line


def test_a_report_whose_output_cannot_be_written_writes_nothing(demo: Path, tmp_path: Path) -> None:
    shutil.copytree(demo.parent, tmp_path, dirs_exist_ok=True)
    data, regulator = tmp_path / "ledger", tmp_path / "ledger-parties" / "regulator"
    before = run(data, "export").output
    result = run(regulator, "--ledger", str(data), "audit", "report", "--from", "2026-01-01", "--to", "2027-01-01",
                 "--out", str(tmp_path / "nodir" / "report.json"))
    assert result.exit_code == 2 and "out: output_directory_must_exist" in result.output
    assert run(data, "export").output == before
    published = run(regulator, "--ledger", str(data), "audit", "report", "--from", "2026-01-01", "--to",
                    "2027-01-01", "--out", str(tmp_path / "report.json"))
    assert published.exit_code == 0, published.output
    assert json.loads((tmp_path / "report.json").read_text())["format"] == "mutual-ledger/regulator-report/v1"


def test_uninitialised_and_corrupt_directories_are_input_errors(demo: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    for args in (("log", "key"), ("plan", "list"), ("audit", "verify"), ("export",)):
        result = run(empty, *args)
        assert result.exit_code == 2 and "ledger_must_be_initialized" in one_error_line(result), result.output
    assert not empty.exists()  # nothing was created where nobody asked
    shutil.copytree(demo.parent, tmp_path / "copy")
    data = tmp_path / "copy" / "ledger"
    (data / "keys" / "operator.json").write_text("{not json")
    (tmp_path / "rules.json").write_text(rules().model_dump_json())
    result = run(data, "plan", "create", "--command-id", "p", "--name", "x", "--kind", "cancer", "--rules",
                 f"@{tmp_path / 'rules.json'}")
    assert result.exit_code == 2 and "key_files_must_agree" in one_error_line(result)
    witness = tmp_path / "copy" / "ledger-parties" / "custodian"
    (witness / "witness.sqlite3").write_text("corrupt" * 1000)
    result = run(witness, "--ledger", str(data), "witness", "cosign")
    assert result.exit_code == 2 and "state" in one_error_line(result)
    nobody = run(witness, "--ledger", str(data), "--key", "nobody", "witness", "cosign")
    assert nobody.exit_code == 2 and "key: key_must_exist" in one_error_line(nobody)


def test_a_malformed_bundle_is_bad_input_and_a_tampered_one_fails_verification(demo: Path, tmp_path: Path) -> None:
    member = next(json.loads(line)["stream"] for line in run(demo, "export").output.splitlines()
                  if '"member.joined"' in line)
    bundle = tmp_path / "bundle.json"
    assert run(demo, "log", "proof", "member", member, "--out", str(bundle)).exit_code == 0
    (tmp_path / "malformed.json").write_text('{"format": 1')
    malformed = run(demo, "audit", "verify-bundle", str(tmp_path / "malformed.json"))
    assert malformed.exit_code == 2 and "file: bundle_must_be_valid" in one_error_line(malformed)
    tampered = json.loads(bundle.read_text())
    entry = tampered["events"][-1]["entry"]
    tampered["events"][-1]["entry"] = entry.replace('"at":"2026', '"at":"2025')
    assert tampered["events"][-1]["entry"] != entry
    (tmp_path / "tampered.json").write_text(json.dumps(tampered))
    result = run(demo, "audit", "verify-bundle", str(tmp_path / "tampered.json"))
    assert result.exit_code == 3 and "bundle does not verify" in one_error_line(result)


def test_a_client_cannot_choose_the_id_of_a_stream_it_creates_nor_guess_it_from_its_command_id(
        demo: Path, tmp_path: Path) -> None:
    from uuid import NAMESPACE_URL, uuid5

    shutil.copytree(demo.parent, tmp_path, dirs_exist_ok=True)
    data = tmp_path / "ledger"
    plan = json.loads(run(data, "plan", "list", "--json").output)[0]["id"]
    unkeyed = str(uuid5(NAMESPACE_URL, "mutual-ledger:member:later-join"))  # what command schema v1 derived
    join = ["member", "join", "--plan", plan, "--age-years", "30", "--sex", "f", "--province", "zj",
            "--consent-commitment", "a" * 64, "--health-declaration-commitment", "b" * 64]
    squatting = run(data, *join, "--command-id", "squatter", "--member", unkeyed)
    assert squatting.exit_code == 2 and "--member" in squatting.output  # no such option: ids are the operator's
    made = json.loads(run(data, "--json", *join, "--command-id", "later-join").output)["member"]
    assert made != unkeyed and UUID(made).version == 8


def test_a_demo_store_with_a_deleted_row_fails_the_operators_own_audit_too(demo: Path, tmp_path: Path) -> None:
    shutil.copytree(demo.parent, tmp_path, dirs_exist_ok=True)
    data = tmp_path / "ledger"
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        db.execute("DELETE FROM stored_events WHERE rowid = (SELECT MAX(rowid) FROM stored_events)")
    result = run(tmp_path / "ledger-parties" / "custodian", "--ledger", str(data), "audit", "verify")
    assert result.exit_code == 3
