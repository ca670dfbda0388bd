"""C2SP signed-note, tlog-checkpoint and tlog-cosignature: published vectors, round trips, and tampering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.log.note import (
    COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    add_signature,
    cosign_line,
    sign_note,
    verify_cosignature,
    verify_note,
)

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "signed-note.json").read_text())["vectors"]


def vector(name: str) -> dict[str, object]:
    return next(v for v in VECTORS if v["name"] == name)


def test_signing_reproduces_the_published_note_exactly() -> None:
    case = vector("go-sumdb-note-sign")
    signer = Signer.parse(str(case["signer_key"]))
    assert signer.verifier().encode() == case["verifier_key"]
    assert sign_note(str(case["text"]), signer) == case["signed_note"]
    assert verify_note(str(case["signed_note"]), Verifier.parse(str(case["verifier_key"]))) == case["text"]


def test_the_spec_example_verifies_and_tampering_fails() -> None:
    case = vector("c2sp-signed-note-example")
    verifier = Verifier.parse(str(case["verifier_key"]))
    note = str(case["signed_note"])
    assert verify_note(note, verifier) == "This is an example message.\n"
    with pytest.raises(NoteError):
        verify_note(note.replace("example message", "exemplary message"), verifier)


@pytest.mark.parametrize("key", vector("go-sumdb-note-bad-keys")["bad_verifier_keys"])  # type: ignore[arg-type]
def test_bad_verifier_keys_are_rejected(key: str) -> None:
    with pytest.raises(NoteError):
        Verifier.parse(key)


def test_checkpoint_round_trip_and_strict_parsing() -> None:
    checkpoint = Checkpoint("example.com/log", 42, bytes(range(32)), ("ext one",))
    assert Checkpoint.parse(checkpoint.text()) == checkpoint
    for bad in ("example.com/log\n042\nAAAA\n", "example.com/log\n1\nAAAA\n", "\n1\n" + "A" * 44 + "\n",
                "example.com/log\n1\n" + "A" * 43 + "=\n" + "x"):
        with pytest.raises(NoteError):
            Checkpoint.parse(bad)


def test_cosignature_round_trip_and_tampering() -> None:
    operator = Signer("example.com/log", Ed25519PrivateKey.generate())
    witness = Signer("witness.example", Ed25519PrivateKey.generate())
    text = Checkpoint("example.com/log", 7, bytes(32)).text()
    note = add_signature(sign_note(text, operator), cosign_line(text, witness, 1_700_000_000))
    assert verify_note(note, operator.verifier()) == text
    assert verify_cosignature(note, witness.verifier(COSIGNATURE_V1)) == 1_700_000_000
    with pytest.raises(NoteError):  # a cosignature is not a note signature, and vice versa
        verify_note(note, witness.verifier())
    with pytest.raises(NoteError):
        verify_cosignature(note.replace("\n7\n", "\n8\n"), witness.verifier(COSIGNATURE_V1))
    other = Signer("witness.example", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError):
        verify_cosignature(note, other.verifier(COSIGNATURE_V1))
