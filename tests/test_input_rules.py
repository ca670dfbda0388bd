"""Input rules of the command line and the configuration, each broken on purpose: one line naming the field and the
rule, exit 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger.cli import main
from ledger.config import Settings
from ledger.errors import ConfigError, InputError, KeyDirectoryError
from ledger.keys import KeyDirectory
from sim.fixtures import commitment, rules


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)


def refused(result: Result, field: str, rule: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and f"{field}: {rule}" in lines[0], result.stderr


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("input-rules") / "ledger"
    # the plans stay open (--no-endings): the tests add to them
    assert run(data, "demo", "--members", "100", "--periods", "1", "--seed", "2", "--no-endings", "--json"
               ).exit_code == 0
    return data


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    data = tmp_path / "ledger"
    assert run(data, "init").exit_code == 0
    return data


def test_log_reads_refuse_indexes_and_sizes_beyond_the_tree(demo: Path) -> None:
    refused(run(demo, "log", "entry", "999999"), "index", "index_must_be_below_the_integrated_size")
    refused(run(demo, "log", "proof", "inclusion", "--index", "10", "--size", "5"), "index",
            "index_must_be_below_the_tree_size")
    refused(run(demo, "log", "proof", "consistency", "--old", "10", "--size", "5"), "old",
            "old_size_must_not_exceed_the_new")
    refused(run(demo, "log", "proof", "inclusion", "--index", "1", "--size", "999999"), "size",
            "size_must_not_exceed_the_integrated_tree")


def test_a_bundle_cannot_be_verified_without_the_logs_key(demo: Path, tmp_path: Path) -> None:
    member = next(json.loads(line)["stream"] for line in run(demo, "export").output.splitlines()
                  if '"member.joined"' in line)
    bundle = tmp_path / "bundle.json"
    assert run(demo, "log", "proof", "member", member, "--out", str(bundle)).exit_code == 0
    refused(run(tmp_path / "stranger", "audit", "verify-bundle", str(bundle)), "log_key",
            "log_verifier_key_must_be_known")


def test_files_given_must_hold_what_they_are_for(demo: Path, tmp_path: Path) -> None:
    (tmp_path / "notes.json").write_text("[not json")
    refused(run(demo, "audit", "verify", "--checkpoints", str(tmp_path / "notes.json")), "checkpoints",
            "file_must_hold_json")
    (tmp_path / "notes.json").write_text('{"not": "a list"}')
    refused(run(demo, "audit", "verify", "--checkpoints", str(tmp_path / "notes.json")), "checkpoints",
            "checkpoints_file_must_list_notes")
    (tmp_path / "a-directory").mkdir()
    refused(run(demo, "export", "--out", str(tmp_path / "a-directory")), "out", "output_file_must_be_writable")
    commands = tmp_path / "commands.jsonl"
    commands.write_text('{"command": "no_such_command", "command_id": "x"}\n')
    result = run(demo, "apply", str(commands))
    assert result.exit_code == 2 and "command: command_must_be_known" in json.loads(result.output)["error"]


def test_a_statement_takes_a_year_or_a_range_not_both(demo: Path) -> None:
    member = next(json.loads(line)["stream"] for line in run(demo, "export").output.splitlines()
                  if '"member.joined"' in line)
    refused(run(demo, "member", "statement", member, "--year", "2026", "--from", "2026-01-01"), "year",
            "year_or_date_range_not_both")


def test_a_plan_name_that_names_two_plans_must_be_given_as_an_id(ledger: Path, tmp_path: Path) -> None:
    (tmp_path / "rules.json").write_text(rules().model_dump_json())
    for command_id in ("first", "second"):
        assert run(ledger, "plan", "create", "--command-id", command_id, "--name", "Twins", "--kind", "cancer",
                   "--rules", f"@{tmp_path / 'rules.json'}").exit_code == 0
    refused(run(ledger, "plan", "show", "twins"), "plan", "plan_name_must_be_unique")
    refused(run(ledger, "member", "join", "--command-id", "j", "--plan", "Twins", "--age-years", "30", "--sex", "f",
                "--province", "zj", "--consent-commitment", commitment(), "--health-declaration-commitment",
                commitment()), "plan", "plan_name_must_be_unique")


def test_the_operators_own_anchors_cannot_be_replaced_by_a_party_key(ledger: Path, tmp_path: Path) -> None:
    assert run(tmp_path / "custodian", "keys", "generate", "--role", "custodian", "--out",
               str(tmp_path / "custodian.json")).exit_code == 0
    before = (ledger / "trust-anchors.json").read_text()
    for name in ("log", "operator-root"):
        refused(run(ledger, "keys", "anchor", str(tmp_path / "custodian.json"), "--name", name), "name",
                "anchor_name_must_not_replace_the_operators")
    assert (ledger / "trust-anchors.json").read_text() == before
    (tmp_path / "broken.json").write_text('{"role": "custodian"}')
    refused(run(ledger, "keys", "anchor", str(tmp_path / "broken.json")), "file", "public_key_file_must_be_valid")
    (ledger / "trust-anchors.json").write_text('{"operator-root": {"key_id": "x"}}')
    refused(run(ledger, "audit", "verify"), "trust_anchors", "trust_anchors_must_be_valid")


def test_a_key_file_that_is_not_ed25519_is_refused(ledger: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    other = generate_private_key(SECP256R1())
    (ledger / "keys" / "operator.pem").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(KeyDirectoryError, match="key: key_must_be_ed25519"):
        KeyDirectory(ledger / "keys").load("operator")


def test_configuration_errors_name_the_variable() -> None:
    from consumers.views import views_store

    with pytest.raises(ConfigError, match=r"^LEDGER_DATABASE_URL: database_url_must_be_postgresql"):
        Settings.from_env({"LEDGER_DATABASE_URL": "mysql://db/ledger"})
    with pytest.raises(ConfigError, match=r"^LEDGER_VIEWS_URL: views_url_must_be_postgresql_or_sqlite"):
        views_store(Settings(data_dir=Path("unused"), views_url="mysql://db/views"))


def test_the_kafka_commands_need_a_broker_that_answers(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kafka.errors import KafkaConnectionError

    from consumers.topic import TopicMismatchError
    from ledger.cli.operations import topic_errors

    monkeypatch.delenv("LEDGER_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    refused(run(demo, "kafka", "relay", "--once"), "LEDGER_KAFKA_BOOTSTRAP_SERVERS", "kafka_must_be_configured")
    with pytest.raises(InputError, match="LEDGER_KAFKA_PARTITIONS: topic_must_have_the_configured_partitions"), \
            topic_errors():
        raise TopicMismatchError("topic t has 1 partitions, the configuration says 4")
    with pytest.raises(InputError, match="LEDGER_KAFKA_BOOTSTRAP_SERVERS: kafka_broker_must_answer"), topic_errors():
        raise KafkaConnectionError("127.0.0.1:1 refused the connection")


def test_an_outsider_reading_a_directory_without_a_ledger_is_told_so(tmp_path: Path) -> None:
    refused(run(tmp_path / "reader", "--ledger", str(tmp_path / "nothing"), "audit", "verify"), "ledger",
            "ledger_must_be_initialized")
    assert not (tmp_path / "nothing").exists()


def test_a_binary_rules_file_is_refused(ledger: Path, tmp_path: Path) -> None:
    (tmp_path / "rules.bin").write_bytes(b"\xff\xfe\x00binary")
    refused(run(ledger, "plan", "create", "--command-id", "p", "--name", "x", "--kind", "cancer", "--rules",
                f"@{tmp_path / 'rules.bin'}"), "rules", "file_must_be_a_readable_text_file")


def test_an_empty_query_still_has_its_header_and_every_output_has_a_json_form(demo: Path, tmp_path: Path) -> None:
    regulator = demo.parent / "ledger-parties" / "regulator"
    # no refund is overdue (lapses' refunds are paid the same day, and no plan wound down)
    result = run(regulator, "--ledger", str(demo), "audit", "query", "refunds", "--status", "overdue", "--format",
                 "csv")
    assert result.exit_code == 0 and result.output == ("member,plan,reason,due_fen,due_at,deadline,paid_fen,paid_at,"
                                                       "status\n")
    shown = json.loads(run(demo, "log", "checkpoint", "show", "--json").output)
    assert shown["size"] > 0 and len(shown["witnesses"]) == 2 and shown["note"].startswith("mutual-ledger.local/log")
    assert json.loads(run(demo, "log", "key", "--json").output)["verifier_key"].startswith("mutual-ledger.local/log+")
    metrics = run(demo, "metrics", "show")
    assert metrics.exit_code == 0 and not metrics.output.lstrip().startswith("{")  # text unless --json
