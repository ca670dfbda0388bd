"""Parties apart: each holds its own keys, and outsiders check the ledger with public material only.

A custodian, regulator or member works in a directory of its own. The outsider commands — `audit …`, `log` reads and
proofs, `witness …` — run there with nothing but the trust anchors (and, for a witness, its own key), read the
operator's ledger read-only, and never change it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from audit.reconcile import ledger_movements, write_statement
from ledger.cli import main


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo: the operator's ledger in `ledger`, the parties in `ledger-parties`."""
    data = tmp_path_factory.mktemp("parties") / "ledger"
    result = run(data, "demo", "--members", "200", "--periods", "2", "--seed", "5", "--json")
    assert result.exit_code == 0, result.output
    return data


def digest(directory: Path) -> dict[str, str]:
    """The SHA-256 of every file under a directory: what 'nothing changed' means. SQLite's shared-memory index and
    an empty write-ahead log, which a read-only reader of a WAL database may create, are not data."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file() and not p.name.endswith("-shm")
            and not (p.name.endswith("-wal") and p.stat().st_size == 0)}


def private_keys(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.pem"))


def test_every_party_holds_only_its_own_keys(demo: Path) -> None:
    parties = demo.parent / "ledger-parties"
    assert sorted(p.stem for p in private_keys(demo)) == ["log", "operator", "operator-root"]
    for party in ("custodian", "investigator", "regulator"):
        assert [p.stem for p in private_keys(parties / party)] == [party]
    assert all(p.stem.startswith("juror-") for p in private_keys(parties / "members"))
    anchors = json.loads((demo / "trust-anchors.json").read_text())
    assert set(anchors) == {"operator-root", "log", "custodian", "regulator", "witnesses"}
    assert anchors["witnesses"]["threshold"] == 1 and [k.split(".", 1)[0] for k in anchors["witnesses"]["keys"]] == [
        "custodian", "regulator"]  # the witness policy: one of the two witnesses' cosignatures


def test_outsider_commands_need_no_private_key_and_change_nothing(demo: Path, tmp_path: Path) -> None:
    outsider = tmp_path / "outsider"
    outsider.mkdir()
    shutil.copy(demo / "trust-anchors.json", outsider / "trust-anchors.json")
    export = tmp_path / "log.jsonl"
    assert run(demo, "export", "--out", str(export)).exit_code == 0
    entries = export.read_bytes().splitlines()
    statement = tmp_path / "bank.csv"
    statement.write_text(write_statement(ledger_movements(entries)))
    member = next(json.loads(e)["stream"] for e in entries if b'"member.deposit_received"' in e)
    bundle = tmp_path / "bundle.json"
    before = digest(demo)
    ledger = ["--ledger", str(demo)]
    commands = [
        ("log", "key"), ("log", "checkpoint", "show"), ("log", "checkpoint", "list"), ("log", "entry", "7"),
        ("log", "proof", "inclusion", "--index", "7", "--size", "20"),
        ("log", "proof", "consistency", "--old", "7", "--size", "20"),
        ("log", "proof", "member", member, "--out", str(bundle)),
        ("audit", "verify-bundle", str(bundle)),
        ("audit", "verify", "--input", str(export)),
        ("audit", "verify"),
        ("audit", "reconcile", "--statement", str(statement)),
        ("audit", "query", "cases"), ("audit", "query", "periods", "--format", "csv"), ("audit", "query", "refunds"),
        ("audit", "monitor"),
    ]
    for command in commands:
        result = run(outsider, *ledger, *command)
        assert result.exit_code == 0, (command, result.output)
        assert not private_keys(outsider)
    assert digest(demo) == before, "an outsider's command changed the operator's ledger"
    assert (outsider / "monitor-state.json").exists()  # the outsider's own state, in its own directory
    audit = json.loads(run(outsider, *ledger, "audit", "verify", "--json").output)
    assert audit["ok"] and audit["covered_entries"] == audit["entries"]
    # an outsider holds no sealed values: the only note says which checks needed them (docs/privacy.md)
    assert audit["needs_sealed_values"] and [n.split(":")[0] for n in audit["notes"]] == [
        "checks that needed sealed values were not made (give --revealed)"]


def test_a_witness_cosigns_with_its_own_key_and_state_and_the_operator_stores_it(demo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo.parent, copy)
    data, custodian = copy / "ledger", copy / "ledger-parties" / "custodian"
    assert run(data, "plan", "create", "--command-id", "later", "--name", "Later", "--kind", "accident", "--rules",
               json.dumps(json.loads(next(line for line in run(data, "export").output.splitlines()
                                          if '"plan.created"' in line))["body"]["rules"])).exit_code == 0
    published = run(data, "log", "checkpoint", "publish")
    assert published.exit_code == 0
    cosigned = tmp_path / "cosigned.txt"
    before = digest(data)
    result = run(custodian, "--ledger", str(data), "witness", "cosign", "--out", str(cosigned))
    assert result.exit_code == 0, result.output
    assert digest(data) == before  # the witness only read
    stored = run(data, "log", "checkpoint", "add-cosignature", str(cosigned))
    assert stored.exit_code == 0, stored.output
    listed = json.loads(run(data, "log", "checkpoint", "list", "--json").output)
    assert len(listed[-1]["witnesses"]) == 1
    refused = run(custodian, "--ledger", str(data), "--key", "operator", "witness", "cosign")
    assert refused.exit_code == 2 and "key" in refused.output  # no such key here, and never an operator's
    operator = run(data, "witness", "cosign")
    assert operator.exit_code == 2 and "witness_key_must_be_a_custodians_or_regulators" in operator.output


def test_the_operator_cannot_forge_the_custodian(demo: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo.parent, copy)
    data = copy / "ledger"
    forged = copy / "forged"
    assert run(forged, "keys", "generate", "--role", "custodian", "--out", str(tmp_path / "forged.json")
               ).exit_code == 0
    refused = run(data, "keys", "register", str(tmp_path / "forged.json"))
    assert refused.exit_code == 2 and "custodian_and_regulator_keys_must_be_trust_anchors" in refused.output
    # the custodian's own deposits are signed with a key the operator does not hold
    export = [json.loads(line) for line in run(data, "export").output.splitlines()]
    custodian_key = json.loads((copy / "ledger-parties" / "custodian" / "keys" / "custodian.json").read_text())
    deposits = [e for e in export if e["type"] == "member.deposit_received"]
    assert deposits and {e["actor"]["key"] for e in deposits} == {custodian_key["key_id"]}
    assert not (data / "keys" / "custodian.pem").exists()


@pytest.mark.parametrize("tamper", ["delete_the_last_event", "delete_a_stream_tail", "swap_two_rows"])
def test_the_demos_witnessed_checkpoints_catch_a_rewritten_store(demo: Path, tmp_path: Path, tamper: str) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo.parent, copy)
    data, regulator = copy / "ledger", copy / "ledger-parties" / "regulator"
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        rows = db.execute("SELECT rowid, originator_id, originator_version, state FROM stored_events "
                          "ORDER BY rowid").fetchall()
        if tamper == "delete_the_last_event":
            db.execute("DELETE FROM stored_events WHERE rowid = ?", (rows[-1][0],))
        elif tamper == "delete_a_stream_tail":
            last_of_stream = {row[1]: row for row in rows}
            row = next(r for r in reversed(rows[: len(rows) // 2]) if last_of_stream[r[1]] == r)
            db.execute("DELETE FROM stored_events WHERE rowid = ?", (row[0],))
        else:
            first, second = rows[40], rows[41]
            db.execute("DELETE FROM stored_events WHERE rowid IN (?, ?)", (first[0], second[0]))
            for row in (second, first):
                db.execute("INSERT INTO stored_events (originator_id, originator_version, topic, state) VALUES "
                           "(?, ?, ?, ?)", (row[1], row[2], "x", row[3]))
    # the operator also deletes every checkpoint it published: the regulator's own state still holds one
    with sqlite3.connect(data / "ledger.sqlite3") as db:
        db.execute("DELETE FROM log_checkpoints")
    result = run(regulator, "--ledger", str(data), "audit", "verify")
    assert result.exit_code == 3, result.output
