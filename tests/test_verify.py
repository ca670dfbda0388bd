"""Verification: an independent verifier written from docs/design.md alone accepts every exported event, and the
ledger's own verifier pinpoints each kind of tampering."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.anchors import TrustAnchors
from ledger.bootstrap import Ledger
from ledger.demo import run_demo
from ledger.envelope import cut_entry, read_entry
from ledger.verify import verify_entries
from schemas.common import _model_is_flat
from schemas.events import EVENT_BODIES
from sim.fixtures import START
from tests.support import demo_ledger

ENVELOPE_KEYS = {"v", "stream", "seq", "type", "schema", "at", "actor", "prev", "body", "sig"}
PREFIX = b"mutual-ledger/event/v1\n"


def independent_verify(lines: list[bytes]) -> int:
    """docs/design.md's contract, with nothing from this code base: JCS, SHA-256, Ed25519, per-stream chains."""
    keys: dict[str, Ed25519PublicKey] = {}
    last: dict[str, tuple[int, str]] = {}
    for line in lines:
        envelope = json.loads(line)
        assert set(envelope) == ENVELOPE_KEYS and envelope["v"] == 1
        assert rfc8785.dumps(envelope) == line, "entry is not in canonical form"
        unsigned = {k: v for k, v in envelope.items() if k != "sig"}
        event_hash = hashlib.sha256(rfc8785.dumps(unsigned)).digest()
        if envelope["type"] == "key.registered":
            raw = base64.b64decode(envelope["body"]["public_key"])
            assert hashlib.sha256(raw).hexdigest()[:16] == envelope["body"]["key_id"]
            keys.setdefault(envelope["body"]["key_id"], Ed25519PublicKey.from_public_bytes(raw))
        keys[envelope["actor"]["key"]].verify(base64.b64decode(envelope["sig"]), PREFIX + event_hash)
        seq, prev = last.get(envelope["stream"], (0, None))
        assert envelope["seq"] == seq + 1 and envelope["prev"] == prev
        last[envelope["stream"]] = (envelope["seq"], event_hash.hex())
    return len(lines)


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], TrustAnchors]:
    """A small demo history, exported."""
    data = tmp_path_factory.mktemp("demo")
    app = demo_ledger(data)
    run_demo(app, members=300, periods=2, seed=3)
    lines = [entry for _, entry in app.entries()]
    app.close()
    return lines, TrustAnchors.load(data / "operator" / "trust-anchors.json")


def test_an_independent_verifier_accepts_every_exported_event(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, anchors = demo_log
    assert independent_verify(lines) == len(lines) > 500
    report = verify_entries(lines, anchors)
    assert report.ok, report.failures[:3]


def test_every_body_is_written_exactly_as_its_model_dumps_it(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    """Flat bodies are written from their own values (`Frozen.json_value`), the rest through `model_dump`: both
    must give what the entry holds."""
    seen: dict[str, bool] = {}
    for line in demo_log[0]:
        data = json.loads(line)
        model = EVENT_BODIES[(data["type"], data["schema"])]
        body = model.from_json_value(data["body"])
        assert body.json_value() == body.model_dump(mode="json") == data["body"], data["type"]
        seen[data["type"]] = _model_is_flat(model)
    assert len(seen) >= 20 and True in seen.values() and False in seen.values(), seen


def test_what_the_audit_workers_cut_from_the_bytes_is_what_decoding_finds(
        demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, _ = demo_log
    for line in lines:
        data, unsigned, body = read_entry(line)
        assert cut_entry(line) == (unsigned, body, data["sig"], data["type"], data["schema"])


def test_the_independent_verifier_rejects_a_flipped_bit(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, _ = demo_log
    tampered = [*lines]
    envelope = json.loads(tampered[400])
    sig = bytearray(base64.b64decode(envelope["sig"]))
    sig[0] ^= 1
    envelope["sig"] = base64.b64encode(bytes(sig)).decode()
    tampered[400] = rfc8785.dumps(envelope)
    with pytest.raises(InvalidSignature):
        independent_verify(tampered)


def reencode(envelope: dict[str, Any]) -> bytes:
    return bytes(rfc8785.dumps(envelope))


def resign(envelope: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    event_hash = hashlib.sha256(rfc8785.dumps(unsigned)).digest()
    envelope["sig"] = base64.b64encode(key.sign(PREFIX + event_hash)).decode()
    return reencode(envelope)


def first_index(lines: list[bytes], event_type: str) -> int:
    return next(i for i, line in enumerate(lines) if json.loads(line)["type"] == event_type)


def failure_of(lines: list[bytes], anchors: TrustAnchors) -> tuple[int, str]:
    report = verify_entries(lines, anchors)
    assert not report.ok
    return report.failures[0].index, report.failures[0].check


def test_a_changed_body_value_is_pinpointed(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, anchors = demo_log
    index = first_index(lines, "member.deposit_received")
    envelope = json.loads(lines[index])
    envelope["body"]["amount_fen"] += 100
    tampered = [*lines[:index], reencode(envelope), *lines[index + 1:]]
    assert failure_of(tampered, anchors) == (index, "6 signature")


def test_a_non_canonical_entry_is_pinpointed(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, anchors = demo_log
    tampered = [*lines]
    tampered[10] = json.dumps(json.loads(lines[10]), indent=1).encode()
    assert failure_of(tampered, anchors)[0] == 10


def test_a_deleted_event_breaks_its_streams_chain(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, anchors = demo_log
    index = first_index(lines, "claim.investigated")
    stream = json.loads(lines[index])["stream"]
    following = next(i for i in range(index + 1, len(lines)) if json.loads(lines[i])["stream"] == stream)
    tampered = [*lines[:index], *lines[index + 1:]]
    assert failure_of(tampered, anchors) == (following - 1, "3 chain (seq)")


def test_two_reordered_events_are_pinpointed(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, anchors = demo_log
    index = first_index(lines, "claim.investigated")
    stream = json.loads(lines[index])["stream"]
    later = next(i for i in range(index + 1, len(lines)) if json.loads(lines[i])["stream"] == stream)
    tampered = [*lines]
    tampered[index], tampered[later] = tampered[later], tampered[index]
    assert failure_of(tampered, anchors) == (index, "3 chain (seq)")


def test_an_event_forged_with_an_unregistered_key_is_pinpointed(
        demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, anchors = demo_log
    index = first_index(lines, "claim.approved")
    envelope = json.loads(lines[index])
    forger = Ed25519PrivateKey.generate()
    raw = forger.public_key().public_bytes_raw()
    envelope["actor"]["key"] = hashlib.sha256(raw).hexdigest()[:16]
    tampered = [*lines[:index], resign(envelope, forger), *lines[index + 1:]]
    assert failure_of(tampered, anchors) == (index, "5 key validity")


def test_a_payout_signed_by_an_operator_key_is_pinpointed(tmp_path: Any) -> None:
    app = demo_ledger(tmp_path)
    run_demo(app, members=200, periods=1, seed=5)
    lines = [entry for _, entry in app.entries()]
    operator = app.signers.load("operator")
    anchors = TrustAnchors.load(tmp_path / "operator" / "trust-anchors.json")
    app.close()
    index = first_index(lines, "claim.paid")
    envelope = json.loads(lines[index])
    envelope["actor"] = {"role": "operator", "key": operator.key_id}
    tampered = [*lines[:index], resign(envelope, operator.private_key), *lines[index + 1:]]
    assert failure_of(tampered, anchors) == (index, "7 role rules")
    # and a key registered by an ordinary operator key, not the root key
    index = first_index(lines, "key.registered") + 1
    envelope = json.loads(lines[index])
    envelope["actor"] = {"role": "operator", "key": operator.key_id}
    tampered = [*lines[:index], resign(envelope, operator.private_key), *lines[index + 1:]]
    assert failure_of(tampered, anchors)[0] == index


def test_a_custodian_key_the_anchors_do_not_know_is_refused(demo_log: tuple[list[bytes], TrustAnchors]) -> None:
    lines, anchors = demo_log
    other = TrustAnchors(anchors.root_key_id, anchors.root_public_key, {"0" * 16: "custodian"})
    index = next(i for i, line in enumerate(lines)
                 if json.loads(line)["type"] == "key.registered" and json.loads(line)["body"]["role"] == "custodian")
    assert failure_of(lines, other) == (index, "4 keyring (trust anchor)")


def test_a_revoked_key_signs_nothing_after_its_revocation(sqlite_app: Ledger) -> None:
    from schemas.commands.keys import RevokeKey
    from tests.support import advance, cid, create_plan, prepaid_rules

    app = sqlite_app
    create_plan(app, prepaid_rules())
    custodian = app.signers.load("custodian")
    advance(app, hours=1)
    app.execute(RevokeKey(command_id=cid(), key_id=custodian.key_id))
    lines = [entry for _, entry in app.entries()]
    envelope = json.loads(lines[-1])  # re-sign a later event with the revoked key, as the custodian
    envelope["actor"] = {"role": "custodian", "key": custodian.key_id}
    envelope["at"] = (START + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    envelope["stream"] = "00000000-0000-4000-8000-000000000001"
    envelope["seq"], envelope["prev"] = 1, None
    envelope["type"], envelope["body"] = "member.deposit_received", {
        "plan": "00000000-0000-4000-8000-000000000002", "amount_fen": 1, "reference": "x"}
    tampered = [*lines, resign(envelope, custodian.private_key)]
    report = verify_entries(tampered, TrustAnchors.load(app.settings.data_dir / "trust-anchors.json"))
    assert [(f.index, f.check) for f in report.failures] == [(len(lines), "5 key validity (time)")]


@pytest.mark.parametrize(("field", "value", "check"), [
    ("at", "2026-02-30T00:00:00.000000Z", "1 envelope (at)"),
    ("body.public_key", "not base64!", "4 keyring (key id)"),
    ("body.valid_from", "2026-02-30T00:00:00.000000Z", "4 keyring (valid_from)"),
])
def test_an_impossible_time_or_key_in_a_key_event_is_reported_not_a_crash(
        demo_log: tuple[list[bytes], TrustAnchors], field: str, value: str, check: str) -> None:
    from audit.verify import Auditor

    lines, anchors = demo_log
    index = first_index(lines, "key.registered") + 1  # a key the root key registers
    envelope = json.loads(lines[index])
    if field == "at":
        envelope["at"] = value
    else:
        envelope["body"][field.removeprefix("body.")] = value
    tampered = [*lines[:index], reencode(envelope), *lines[index + 1:]]
    for report in (verify_entries(tampered, anchors), Auditor(anchors).run(tampered)):
        assert (index, check) in [(f.index, f.check) for f in report.failures]
