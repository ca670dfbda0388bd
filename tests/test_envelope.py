"""The envelope contract: canonical bytes, signature splicing, strict parsing, and signatures that tamper breaks."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.envelope import Actor, Envelope, EnvelopeError, entry_with_signature, parse_entry
from ledger.errors import KeyDirectoryError
from ledger.keys import (
    EVENT_SIGNATURE_PREFIX,
    KeyDirectory,
    SigningKey,
    ed25519_sign,
    ed25519_verify,
    event_signature_is_valid,
    key_id,
)

STREAM = "6f1c9d2e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"
SPLICE_KEY = SigningKey.generate("k", "custodian")


def signed_envelope(key: SigningKey, body: dict[str, Any], seq: int = 2) -> Envelope:
    unsigned = Envelope(
        stream=STREAM, seq=seq, type="member.deposit_received", schema=1,
        at="2026-03-01T08:00:00.000000Z", actor=Actor("custodian", key.key_id),
        prev=None if seq == 1 else "ab" * 32, body=body, sig="",
    )
    return Envelope(
        unsigned.stream, unsigned.seq, unsigned.type, unsigned.schema, unsigned.at, unsigned.actor,
        unsigned.prev, unsigned.body, key.sign(unsigned.event_hash()),
    )


@pytest.fixture(scope="module")
def custodian() -> SigningKey:
    return SigningKey.generate("custodian", "custodian")


def test_entry_is_rfc8785_of_the_full_envelope(custodian: SigningKey) -> None:
    envelope = signed_envelope(custodian, {"plan": STREAM, "amount_fen": 1000, "reference": "B-1"})
    assert envelope.entry() == rfc8785.dumps(envelope.to_json())
    assert envelope.event_hash() == hashlib.sha256(rfc8785.dumps(envelope.unsigned_json())).digest()


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["stream", "sig", "seq", "x", "v"]),
                       st.text(max_size=8) | st.integers(0, 99), max_size=4))
def test_splicing_the_signature_equals_canonicalizing_the_full_envelope(body: dict[str, Any]) -> None:
    envelope = signed_envelope(SPLICE_KEY, body)
    assert entry_with_signature(envelope.canonical_unsigned(), envelope.sig) == rfc8785.dumps(envelope.to_json())


_NESTED = st.recursive(st.text(max_size=6) | st.integers(0, 99) | st.none(),
                       lambda inner: st.dictionaries(st.sampled_from(["body", "prev", "sig", "stream", "actor", "x"]),
                                                     inner, max_size=3), max_leaves=6)


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["body", "prev", "sig", "stream", "type", "v", "x"]), _NESTED, max_size=4))
def test_parse_entry_cuts_the_unsigned_bytes_and_the_body_out_of_the_entry_exactly(body: dict[str, Any]) -> None:
    """Keys named like the envelope's, nested in the body, never confuse where the signature and the body are."""
    envelope = signed_envelope(SPLICE_KEY, body)
    parsed = parse_entry(envelope.entry())
    assert parsed == envelope
    assert parsed.unsigned_bytes == rfc8785.dumps(envelope.unsigned_json())
    assert parsed.body_json == rfc8785.dumps(body)
    assert parsed.parsed == envelope.to_json()


def test_signature_verifies_and_any_change_breaks_it(custodian: SigningKey) -> None:
    envelope = signed_envelope(custodian, {"amount_fen": 1000})
    public = custodian.public_raw
    assert event_signature_is_valid(public, envelope.event_hash(), envelope.sig)
    changed = Envelope(envelope.stream, envelope.seq, envelope.type, envelope.schema, envelope.at,
                       envelope.actor, envelope.prev, {"amount_fen": 1001}, envelope.sig)
    assert not event_signature_is_valid(public, changed.event_hash(), envelope.sig)
    other = SigningKey.generate("other", "custodian").public_raw
    assert not event_signature_is_valid(other, envelope.event_hash(), envelope.sig)


def test_signature_without_the_domain_prefix_is_refused(custodian: SigningKey) -> None:
    import base64

    envelope = signed_envelope(custodian, {"amount_fen": 5})
    bare = base64.b64encode(custodian.private_key.sign(envelope.event_hash())).decode()
    assert not event_signature_is_valid(custodian.public_raw, envelope.event_hash(), bare)


def test_signatures_are_rfc8032_ed25519_the_same_bytes_as_openssl_makes(custodian: SigningKey) -> None:
    message = EVENT_SIGNATURE_PREFIX + hashlib.sha256(b"event").digest()
    ours = ed25519_sign(custodian.secret_key, message)
    assert ours == custodian.private_key.sign(message)
    custodian.private_key.public_key().verify(ours, message)  # OpenSSL accepts it
    assert ed25519_verify(custodian.public_raw, ours, message)


def test_a_malleated_signature_and_a_small_order_key_are_refused(custodian: SigningKey) -> None:
    message = EVENT_SIGNATURE_PREFIX + hashlib.sha256(b"event").digest()
    signature = ed25519_sign(custodian.secret_key, message)
    group_order = 2**252 + 27742317777372353535851937790883648493  # L, RFC 8032 §5.1
    s_plus_l = int.from_bytes(signature[32:], "little") + group_order
    assert not ed25519_verify(custodian.public_raw, signature[:32] + s_plus_l.to_bytes(32, "little"), message)
    identity = (1).to_bytes(32, "little")  # the neutral point: every R = identity, S = 0 "verifies" unchecked
    assert not ed25519_verify(identity, identity + bytes(32), message)
    assert not ed25519_verify(custodian.public_raw[:31], signature, message)


def test_parse_entry_round_trips(custodian: SigningKey) -> None:
    envelope = signed_envelope(custodian, {"amount_fen": 1000})
    assert parse_entry(envelope.entry()) == envelope


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("sig"), "envelope"),
        (lambda d: d.update(extra=1), "envelope"),
        (lambda d: d.update(v=2), "v"),
        (lambda d: d.update(seq=0), "seq"),
        (lambda d: d.update(stream="not-a-uuid"), "stream"),
        (lambda d: d.update(stream=d["stream"].upper()), "stream"),
        (lambda d: d.update(stream=d["stream"].replace("-", "")), "stream"),
        (lambda d: d.update(type="MemberJoined"), "type"),
        (lambda d: d.update(at="2026-03-01T08:00:00Z"), "at"),
        (lambda d: d["actor"].update(role="public"), "actor.role"),
        (lambda d: d["actor"].update(key="XYZ"), "actor.key"),
        (lambda d: d.update(prev="00"), "prev"),
        (lambda d: d.update(sig="short"), "sig"),
        (lambda d: d.update(body=[]), "body"),
    ],
)
def test_malformed_envelopes_are_refused_naming_the_field(
    custodian: SigningKey, change: Any, field: str
) -> None:
    data = signed_envelope(custodian, {"amount_fen": 1}).to_json()
    data["actor"] = dict(data["actor"])
    change(data)
    with pytest.raises(EnvelopeError) as error:
        parse_entry(rfc8785.dumps(data))
    assert error.value.field == field


def test_non_canonical_entries_are_refused(custodian: SigningKey) -> None:
    data = signed_envelope(custodian, {"amount_fen": 1}).to_json()
    with pytest.raises(EnvelopeError, match="canonical"):
        parse_entry(json.dumps(data, indent=1).encode())


def test_key_id_is_the_first_16_hex_of_sha256_of_the_raw_key(custodian: SigningKey) -> None:
    assert custodian.key_id == hashlib.sha256(custodian.public_raw).hexdigest()[:16] == key_id(custodian.public_raw)


def test_keys_are_encrypted_at_rest_with_a_passphrase(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path, b"correct horse")
    key = SigningKey.generate("custodian", "custodian")
    directory.save(key)
    assert b"ENCRYPTED" in (tmp_path / "custodian.pem").read_bytes()
    assert directory.load("custodian").key_id == key.key_id
    with pytest.raises(KeyDirectoryError):
        KeyDirectory(tmp_path, b"wrong").load("custodian")
    with pytest.raises(KeyDirectoryError):
        KeyDirectory(tmp_path, None).load("custodian")


def test_a_stored_key_is_never_overwritten(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    directory.save(SigningKey.generate("operator", "operator"))
    with pytest.raises(KeyDirectoryError):
        directory.save(SigningKey.generate("operator", "operator"))
