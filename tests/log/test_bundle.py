"""Proof bundles end to end through the CLI: publish, cosign, bundle, verify offline, upgrade, and tampering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from audit.bundle import BundleError, verify_bundle
from ledger.cli import main
from ledger.log.note import Verifier


def run(data: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--data-dir", str(data), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A demo ledger with a cosigned checkpoint and the bundle of a member who paid into every period."""
    tmp = tmp_path_factory.mktemp("bundle")
    data = tmp / "ledger"
    assert run(data, "demo", "--members", "300", "--periods", "2", "--seed", "11", "--json").exit_code == 0
    keys = {"log": run(data, "log", "key").output.strip()}
    for role in ("custodian", "regulator"):  # each witness in its own directory, with its own key
        keys[role] = run(tmp / "ledger-parties" / role, "witness", "key").output.strip()
    summary = json.loads((data / "demo-summary.json").read_text())
    export = [json.loads(line) for line in run(data, "export").output.splitlines()]
    deposits = {e["stream"] for e in export if e["type"] == "member.deposit_received"}
    ended = {e["stream"] for e in export if e["type"] in ("member.lapsed", "member.exited")}
    member = next(e["stream"] for e in export if e["type"] == "member.joined" and e["stream"] in deposits
                  and e["stream"] not in ended and e["body"]["plan"] == summary["plans"]["prepaid"])
    bundle_file = tmp / "bundle.json"
    assert run(data, "log", "proof", "member", member, "--out", str(bundle_file)).exit_code == 0
    return {"data": data, "tmp": tmp, "keys": keys, "member": member, "bundle": bundle_file, "summary": summary}


def test_a_member_verifies_their_bundle_offline(ledger: dict[str, Any]) -> None:
    keys = ledger["keys"]
    result = run(ledger["data"], "audit", "verify-bundle", str(ledger["bundle"]), "--log-key", keys["log"],
                 "--witness-key", keys["custodian"], "--witness-key", keys["regulator"], "--json")
    assert result.exit_code == 0, result.output
    statement = json.loads(result.output)
    prepaid = [p for p in ledger["summary"]["periods"] if p["plan"] == "prepaid" and p["funded_by"] == "members"]
    assert len(statement["periods"]) == len(prepaid) == 2  # the tail period after the end locks no member
    assert statement["shared_fen"] == sum(p["share_fen"] for p in prepaid)
    assert statement["people_helped"] == sum(p["cases"] for p in prepaid)
    assert statement["deposits_fen"] > 0
    assert statement["witnesses"] == [Verifier.parse(keys["custodian"]).name, Verifier.parse(keys["regulator"]).name]


def test_python_dash_m_audit_is_the_same_tool(ledger: dict[str, Any]) -> None:
    import subprocess
    import sys

    keys = ledger["keys"]
    result = subprocess.run([sys.executable, "-m", "audit", "verify-bundle", str(ledger["bundle"]), "--log-key",
                             keys["log"]], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "periods paid into: 2" in result.stdout


def tampered(ledger: dict[str, Any], change: Any) -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(Path(ledger["bundle"]).read_text())
    change(bundle)
    return bundle


def check(ledger: dict[str, Any], bundle: dict[str, Any], witnesses: tuple[str, ...] = ()) -> None:
    verify_bundle(bundle, Verifier.parse(ledger["keys"]["log"]), [Verifier.parse(ledger["keys"][w])
                                                                  for w in witnesses])


def test_tampered_bundles_are_rejected(ledger: dict[str, Any]) -> None:
    check(ledger, tampered(ledger, lambda b: None), ("custodian", "regulator"))

    def bump_deposit(b: dict[str, Any]) -> None:
        item = next(e for e in b["events"] if '"member.deposit_received"' in e["entry"])
        envelope = json.loads(item["entry"])
        envelope["body"]["amount_fen"] += 1
        item["entry"] = json.dumps(envelope, separators=(",", ":"), sort_keys=True)

    def wrong_amount(b: dict[str, Any]) -> None:
        b["rolls"][0]["amount"] += 1
        b["rolls"][0]["proof"][0] = b["rolls"][0]["proof"][-1] if len(b["rolls"][0]["proof"]) > 1 else "AA=="

    def drop_event(b: dict[str, Any]) -> None:
        mine = [e for e in b["events"] if f'"stream":"{b["member"]}"' in e["entry"]]
        b["events"].remove(mine[0])

    def other_member(b: dict[str, Any]) -> None:
        b["member"] = b["rolls"][0]["period"]  # claim someone else's history: no join of theirs is proved

    for change, check_name in ((bump_deposit, "3 inclusion"), (wrong_amount, "6 roll"), (drop_event, "5 chain"),
                               (other_member, "5 chain")):
        with pytest.raises(BundleError, match=check_name):
            check(ledger, tampered(ledger, change))
    with pytest.raises(BundleError, match="1 checkpoint"):
        verify_bundle(tampered(ledger, lambda b: None), Verifier.parse(ledger["keys"]["custodian"].replace(
            "+", "+", 1)), [])


def test_an_unwitnessed_checkpoint_fails_a_witness_requirement(ledger: dict[str, Any]) -> None:
    from ledger.log.note import split_note

    def operator_only(b: dict[str, Any]) -> None:
        text, lines = split_note(b["checkpoint"])
        b["checkpoint"] = text + "\n" + lines[0]

    bundle = tampered(ledger, operator_only)
    check(ledger, bundle)
    with pytest.raises(BundleError, match="1 checkpoint"):
        check(ledger, bundle, ("custodian",))


def test_a_later_checkpoint_upgrades_an_old_bundle(ledger: dict[str, Any]) -> None:
    data, tmp = ledger["data"], ledger["tmp"]
    assert run(data, "plan", "create", "--command-id", "later-plan", "--name", "Later", "--kind", "accident",
               "--rules", json.dumps(json.loads(next(
                   line for line in run(data, "export").output.splitlines() if '"plan.created"' in line)
               )["body"]["rules"])).exit_code == 0
    assert run(data, "log", "checkpoint", "publish").exit_code == 0
    upgraded = tmp / "upgraded.json"
    assert run(data, "log", "proof", "upgrade", str(ledger["bundle"]), "--out", str(upgraded)).exit_code == 0
    bundle = json.loads(upgraded.read_text())
    check(ledger, bundle)
    bundle["upgrade"]["consistency"] = bundle["upgrade"]["consistency"][1:]
    with pytest.raises(BundleError, match="2 upgrade"):
        check(ledger, bundle)


def test_cli_proofs_verify_with_the_rfc_algorithms_and_entries_are_the_stored_bytes(ledger: dict[str, Any]) -> None:
    import base64

    from ledger.log.merkle import leaf_hash, verify_consistency, verify_inclusion
    from ledger.log.note import Checkpoint, split_note, verify_note

    data = ledger["data"]
    note = run(data, "log", "checkpoint", "publish").output
    checkpoint = Checkpoint.parse(verify_note(note, Verifier.parse(ledger["keys"]["log"])))
    assert split_note(note)[0] == checkpoint.text()
    raw = run(data, "log", "entry", "5").stdout_bytes.rstrip(b"\n")
    assert raw == run(data, "export").stdout_bytes.splitlines()[5]
    proof = json.loads(run(data, "log", "proof", "inclusion", "--index", "5", "--size", str(checkpoint.size)).output)
    verify_inclusion(5, checkpoint.size, leaf_hash(raw), [base64.b64decode(p) for p in proof["proof"]],
                     checkpoint.root)
    older = json.loads(run(data, "log", "proof", "consistency", "--old", "100", "--size", str(checkpoint.size)).output)
    verify_consistency(100, checkpoint.size, base64.b64decode(older["old_root"]), checkpoint.root,
                       [base64.b64decode(p) for p in older["proof"]])
    assert run(data, "log", "proof", "inclusion", "--index", "5", "--size", str(checkpoint.size + 1000)).exit_code == 2
