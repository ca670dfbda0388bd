"""The Python bundle verifier on the fixed corpus shared with the browser (`tests/vectors/bundles/`): every vector
gives its expected outcome, the failing step named by a stable id, and `verify_bundle` keeps its old contract."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit.bundle import STEPS, BundleError, check_bundle, verify_bundle
from ledger.log.note import Verifier

VECTORS = Path(__file__).parent / "vectors" / "bundles"
NAMES = sorted(path.stem for path in VECTORS.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    """One vector file."""
    data: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text())
    return data


def keys(vector: dict[str, Any]) -> tuple[Verifier, list[Verifier]]:
    """The log's and the witnesses' verifier keys of a vector."""
    return Verifier.parse(vector["log_key"]), [Verifier.parse(k) for k in vector["witness_keys"]]


def test_the_corpus_covers_a_good_bundle_and_a_failure_of_every_step() -> None:
    expected = [load(name)["expected"] for name in NAMES]
    assert len(NAMES) >= 25
    assert sum(e["ok"] for e in expected) == 3  # good, upgrade-consistent, legacy-v1-good
    assert {e["step"] for e in expected if not e["ok"]} == {step for step, _, _ in STEPS}


@pytest.mark.parametrize("name", NAMES)
def test_the_python_verifier_gives_the_expected_outcome(name: str) -> None:
    vector = load(name)
    report = check_bundle(vector["bundle"], *keys(vector))
    first = report.first_failure
    found = {"ok": True} if first is None else {"ok": False, "step": first.step, "subject": first.subject}
    assert found == vector["expected"], first
    assert report.ok == vector["expected"]["ok"]


@pytest.mark.parametrize("name", [n for n in NAMES if not load(n)["expected"]["ok"]])
def test_verify_bundle_raises_naming_the_section_the_step_and_the_event(name: str) -> None:
    vector = load(name)
    log_key, witness_keys = keys(vector)
    with pytest.raises(BundleError) as caught:
        verify_bundle(vector["bundle"], log_key, witness_keys)
    expected = vector["expected"]
    assert (caught.value.step, caught.value.subject) == (expected["step"], expected["subject"])
    number, word = next((number, word) for step, number, word in STEPS if step == expected["step"])
    assert str(caught.value).startswith(f"{number} {word}")
    assert f"[{expected['step']}]" in str(caught.value)
    if "index" in expected["subject"]:
        assert f"of entry {expected['subject']['index']}" in str(caught.value)


def test_the_good_bundle_proves_the_members_statement() -> None:
    vector = load("good")
    statement = verify_bundle(vector["bundle"], *keys(vector))
    assert statement.member == vector["bundle"]["member"]
    assert [p["share_fen"] for p in statement.periods] == [r["amount"] for r in vector["bundle"]["rolls"]]
    assert statement.shared_fen == sum(r["amount"] for r in vector["bundle"]["rolls"])
    assert statement.deposits_fen == 12_000
    assert statement.people_helped == 2
    assert [c["status"] for c in statement.claims] == ["paid"]
    assert statement.witnesses == ["custodian.mutual-ledger.test.vectors", "regulator.mutual-ledger.test.vectors"]


def test_every_check_of_the_good_bundle_is_listed_with_what_it_was_about() -> None:
    vector = load("good")
    report = check_bundle(vector["bundle"], *keys(vector))
    events = len(vector["bundle"]["events"])
    steps = [f.step for f in report.findings]
    for step in ("event.inclusion", "event.envelope", "event.key", "event.signature"):
        assert steps.count(step) == events
    assert steps.count("checkpoint.cosignature") == 2
    assert steps.count("roll.inclusion") == len(vector["bundle"]["rolls"])
    order = [step for step, _, _ in STEPS]
    assert [order.index(s) for s in steps] == sorted(order.index(s) for s in steps)
    assert all(f.ok for f in report.findings)
    assert report.to_json()["failing_step"] is None


def test_a_failure_leaves_the_independent_checks_reported() -> None:
    vector = load("entry-byte-changed")
    report = check_bundle(vector["bundle"], *keys(vector))
    failing = [(f.step, f.subject.get("index")) for f in report.findings if not f.ok]
    index = vector["expected"]["subject"]["index"]
    assert failing[0] == ("event.inclusion", index)
    assert sum(f.step == "event.signature" and f.ok for f in report.findings) >= len(vector["bundle"]["events"]) - 1
    assert report.statement is None


def test_a_bundle_that_is_not_an_object_or_lacks_fields_fails_the_format_step() -> None:
    log_key, witness_keys = keys(load("good"))
    bundles: list[Any] = [[], {"format": "mutual-ledger/proof-bundle/v1"},
                   {**load("good")["bundle"], "events": [{"index": -1, "entry": "{}", "proof": []}]},
                   {**load("good")["bundle"], "rolls": [{"period": "p"}]}]
    for bundle in bundles:
        report = check_bundle(bundle, log_key, witness_keys)
        assert [(f.step, f.ok) for f in report.findings] == [("bundle.format", False)]
