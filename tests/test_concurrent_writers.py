"""Concurrent writers on one PostgreSQL store, as a new user runs them: three `apply` processes at once, each
retrying from the line that answered exit 75. Every outcome is done, the first result of that command id, or exit
75 — never a traceback, never a rule error for a command another process applied — and the schema is made once,
by a migration, not by every process that starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger.bootstrap import bootstrap
from ledger.errors import InputError, StoreBusyError
from ledger.migrations import SCHEMA_VERSION, VERSION_TABLE
from ledger.rules import Rule
from ledger.store import PostgresLedgerRecorder
from ledger.vault import Vault, keyed_id, load_vault_key
from sim.fixtures import commitment
from tests.support import new_ledger, prepaid_rules

pytestmark = pytest.mark.postgres


def cli(data: Path, url: str, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_SIGNING_WORKERS": "0"}
    return subprocess.run([sys.executable, "-m", "ledger.cli", "--data-dir", str(data), *args], env=env,
                          input=stdin, capture_output=True, timeout=300)


def commands(members: int, id_key: bytes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The operator's lines (a plan, its members) and the custodian's (two deposits per member, each member's
    deposits touching the same stream)."""
    plan = str(keyed_id(id_key, "plan", "cw-plan"))  # the ids the operator's vault key gives
    operator: list[dict[str, Any]] = [{"command": "create_plan", "command_id": "cw-plan", "name": "P",
                                       "kind": "cancer", "rules": prepaid_rules().model_dump(mode="json")}]
    custodian: list[dict[str, Any]] = []
    for i in range(members):
        operator.append({"command": "join", "command_id": f"cw-join-{i}", "plan": plan, "age_years": 30, "sex": "f",
                         "province": "zj", "consent_commitment": commitment("c"),
                         "health_declaration_commitment": commitment("h")})
        member = str(keyed_id(id_key, "member", f"cw-join-{i}"))
        custodian += [{"command": "deposit", "command_id": f"cw-dep-{i}-{k}", "member": member, "amount_fen": 100,
                       "reference": f"cw-ref-{i}-{k}"} for k in range(2)]
    return operator, custodian


def apply_until_done(data: Path, url: str, lines: list[dict[str, Any]], name: str, *key: str
                     ) -> subprocess.Popen[bytes]:
    """An `apply` process that, like a user, runs again from the line that answered 75 until none does."""
    script = (
        "import json, os, subprocess, sys\n"
        "lines = open(sys.argv[1], 'rb').read().splitlines()\n"
        "start, outcomes = 0, []\n"
        "while True:\n"
        f"    run = subprocess.run([sys.executable, '-m', 'ledger.cli', '--data-dir', {str(data)!r}, *{list(key)!r},\n"
        "                          'apply', '-'], input=b'\\n'.join(lines[start:]) + b'\\n', capture_output=True)\n"
        "    out = [json.loads(line) for line in run.stdout.splitlines()]\n"
        "    outcomes.append({'exit': run.returncode, 'stderr': run.stderr.decode(), 'lines': out})\n"
        "    if run.returncode != 75:\n"
        "        break\n"
        "    start += out[-1]['line'] - 1\n"
        "print(json.dumps(outcomes))\n"
    )
    env = {**os.environ, "LEDGER_DATABASE_URL": url, "LEDGER_SIGNING_WORKERS": "0"}
    file = data.parent / f"{name}.jsonl"
    file.write_text("\n".join(json.dumps(line) for line in lines))
    return subprocess.Popen([sys.executable, "-c", script, str(file)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_three_apply_processes_on_one_postgresql_store(tmp_path: Path, postgres_dsn: str) -> None:
    data = tmp_path / "operator"
    migrations = [subprocess.Popen([sys.executable, "-m", "ledger.cli", "--data-dir", str(data), "--json",
                                    "migrate"], env={**os.environ, "LEDGER_DATABASE_URL": postgres_dsn},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    ran = [(p.wait(timeout=120), json.loads(p.communicate()[0])) for p in migrations]
    assert [code for code, _ in ran] == [0, 0, 0], ran
    assert sorted(r["from"] for _, r in ran) == [0, SCHEMA_VERSION, SCHEMA_VERSION], ran  # one migrated, in turn
    assert cli(data, postgres_dsn, "init").returncode == 0
    for step in (("keys", "generate", "--role", "custodian", "--out", str(tmp_path / "c.json")),
                 ("keys", "anchor", str(tmp_path / "c.json")), ("keys", "register", str(tmp_path / "c.json"))):
        assert cli(data, postgres_dsn, *step).returncode == 0
    operator, custodian = commands(12, Vault(None, load_vault_key(data / "keys")).id_key)
    results: dict[str, list[dict[str, Any]]] = {}
    joining = [apply_until_done(data, postgres_dsn, operator, f"operator-{i}") for i in range(3)]
    outputs = [(*process.communicate(timeout=600), process.returncode) for process in joining]
    depositing = [apply_until_done(data, postgres_dsn, custodian[i::2] + custodian, f"custodian-{i}", "--key",
                                   "custodian") for i in range(3)]
    outputs += [(*process.communicate(timeout=600), process.returncode) for process in depositing]
    for stdout, stderr, returncode in outputs:
        assert returncode == 0, stderr.decode()
        for run in json.loads(stdout):
            assert run["exit"] in (0, 75), run
            assert "Traceback" not in run["stderr"] and "error" not in run["stderr"], run["stderr"]
            for outcome in run["lines"]:
                assert outcome["ok"] or outcome.get("retry"), outcome
                if outcome["ok"]:
                    results.setdefault(outcome["result"]["command_id"], []).append(outcome["result"])
            assert run["exit"] == 0 or run["lines"][-1].get("retry")
    assert set(results) == {line["command_id"] for line in operator + custodian}
    assert any(result.get("repeated") for seen in results.values() for result in seen)
    for command_id, seen in results.items():  # every process got the first result of each command id
        first = {k: v for k, v in seen[0].items() if k != "repeated"}
        assert all({k: v for k, v in other.items() if k != "repeated"} == first for other in seen), command_id
    with psycopg.connect(postgres_dsn.split("?")[0]) as conn:
        schema = postgres_dsn.split("schema=")[1]
        deposits = conn.execute(f'SELECT count(*) FROM "{schema}".ledger_events WHERE topic LIKE %s',
                                ("member.deposit_received%",)).fetchone()
        receipts = conn.execute(f'SELECT count(*) FROM "{schema}".command_receipts').fetchone()
        versions = conn.execute(f'SELECT version FROM "{schema}".{VERSION_TABLE} ORDER BY version').fetchall()
    assert deposits == (len(custodian),)
    assert versions == [(version,) for version in range(1, SCHEMA_VERSION + 1)]  # each step once
    assert receipts is not None and receipts[0] == len(operator) + len(custodian) + 2  # + init's and the key's


def test_a_store_whose_schema_is_behind_is_refused_until_migrated(tmp_path: Path, postgres_dsn: str) -> None:
    ledger = new_ledger(tmp_path, postgres_dsn)
    ledger.close()
    schema = postgres_dsn.split("schema=")[1]
    with psycopg.connect(postgres_dsn.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DELETE FROM "{schema}".{VERSION_TABLE}')
    with pytest.raises(InputError) as caught:
        bootstrap(ledger.settings)
    assert (caught.value.field, caught.value.rule) == ("LEDGER_DATABASE_URL", Rule.STORE_SCHEMA_MUST_BE_CURRENT)
    assert "mutual-ledger migrate" in str(caught.value)
    migrated = cli(ledger.settings.data_dir, postgres_dsn, "--json", "migrate")
    assert json.loads(migrated.stdout) == {"from": 0, "to": SCHEMA_VERSION}
    bootstrap(ledger.settings).close()
    with psycopg.connect(postgres_dsn.split("?")[0], autocommit=True) as conn:
        conn.execute(f'INSERT INTO "{schema}".{VERSION_TABLE} VALUES (%s, %s)', (SCHEMA_VERSION + 1, "later"))
    newer = cli(ledger.settings.data_dir, postgres_dsn, "export")
    assert newer.returncode == 2 and b"store_schema_must_be_current" in newer.stderr
    assert b"newer than this program" in newer.stderr


def test_a_write_the_database_fails_is_retryable_and_writes_nothing(tmp_path: Path, postgres_dsn: str) -> None:
    ledger = new_ledger(tmp_path, postgres_dsn)
    schema = postgres_dsn.split("schema=")[1]
    before = ledger.app.recorder.max_notification_id()
    with psycopg.connect(postgres_dsn.split("?")[0]) as holder:  # another session holds the events' write lock
        holder.execute(f'LOCK TABLE "{schema}".ledger_events IN EXCLUSIVE MODE')
        recorder = ledger.app.ledger_recorder
        assert isinstance(recorder, PostgresLedgerRecorder)
        recorder.lock_table_statements[0] = psycopg.sql.SQL("SET LOCAL lock_timeout = '200ms'")
        from tests.support import create_plan

        with pytest.raises(StoreBusyError) as caught:
            create_plan(ledger)
        assert caught.value.exit_code == 75 and "retry with the same command id" in str(caught.value)
    assert ledger.app.recorder.max_notification_id() == before
    ledger.close()


def test_a_lost_race_read_while_the_batch_is_still_sent_is_a_conflict_not_a_busy_store(
        tmp_path: Path, postgres_dsn: str) -> None:
    """A pipelined transaction whose receipt insert meets another writer's receipt: the server skips every later
    statement ("pipeline aborted"), and with a few megabytes still to send, psycopg reads the unique violation while
    sending — the timing that made a lost race look like a busy store. The cause is found whatever the timing."""
    from eventsourcing.persistence import IntegrityError, StoredEvent

    from ledger.store import CommandReceipt
    from tests.support import create_plan

    ledger = new_ledger(tmp_path, postgres_dsn)
    create_plan(ledger)
    recorder = ledger.app.ledger_recorder
    assert isinstance(recorder, PostgresLedgerRecorder)
    before = recorder.max_notification_id()
    receipt = CommandReceipt("race-id", "h", "{}")
    recorder.insert_events([], receipts=[receipt])  # the other writer's
    rows = [StoredEvent(uuid.uuid4(), 1, "member.joined@1", os.urandom(20_000)) for _ in range(200)]
    for _ in range(3):
        with pytest.raises(IntegrityError, match="command_receipts"):
            recorder.insert_events(rows, receipts=[receipt])
    assert recorder.max_notification_id() == before
    create_plan(ledger, name="After the conflict")  # the connection is usable again
    assert (recorder.max_notification_id() or 0) > (before or 0)
    ledger.close()
