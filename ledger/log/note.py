"""C2SP signed notes (Ed25519), tlog-checkpoint bodies, and tlog-cosignature/v1 lines.

- signed-note: the text (UTF-8, ending in a newline), a blank line, then one line per signature:
  `— <name> <base64(key hash (4 bytes) || signature)>`. An Ed25519 key (signature type 0x01) has key hash
  SHA-256(name || "\\n" || 0x01 || public key)[:4]; its verifier key is written `<name>+<hex key hash>+<base64(0x01
  || public key)>`, and its signature is over the text.
- tlog-checkpoint: the text is `<origin>\\n<tree size>\\n<base64 root hash>\\n` then optional extension lines.
- tlog-cosignature/v1 (signature type 0x04): key hash SHA-256(name || "\\n" || 0x04 || public key)[:4]; the
  signature is over `cosignature/v1\\ntime <T>\\n` + the checkpoint text, and the line carries
  base64(key hash || T as 8 bytes big-endian || signature), T in seconds since the Unix epoch.

A note or key that does not parse or verify raises `NoteError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.keys import ed25519_sign, ed25519_verify, secret_key_of

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
DASH = "\u2014"
_NAME = re.compile(r"^[^\s+]+$")


class NoteError(ValueError):
    """A signed note, checkpoint or key is malformed or does not verify."""


def key_hash(name: str, kind: int, public_key: bytes) -> bytes:
    """The 4-byte key hash of a signed-note key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public_key).digest()[:4]


@dataclass(frozen=True)
class Verifier:
    """A public key that verifies note signatures (type 0x01) or cosignatures (type 0x04) under a name."""

    name: str
    public_key: bytes
    kind: int = ED25519

    @property
    def hash(self) -> bytes:
        """The key hash."""
        return key_hash(self.name, self.kind, self.public_key)

    def encode(self) -> str:
        """The standard verifier key string `name+hash+base64(type || key)`."""
        return f"{self.name}+{self.hash.hex()}+{base64.b64encode(bytes([self.kind]) + self.public_key).decode()}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """Parse a verifier key string; the hash must match and the key must be a 32-byte Ed25519 key."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not _NAME.match(parts[0]):
            raise NoteError("verifier key: must be name+hash+key")
        name, hash_hex, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
            expected = bytes.fromhex(hash_hex)
        except (binascii.Error, ValueError):
            raise NoteError("verifier key: hash must be hex and key base64") from None
        if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
            raise NoteError("verifier key: must be a 32-byte Ed25519 key of type 0x01 or 0x04")
        verifier = cls(name, raw[1:], raw[0])
        if verifier.hash != expected or len(expected) != 4:
            raise NoteError("verifier key: key hash does not match the name and key")
        return verifier

    def verifies(self, signature: bytes, message: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature of `message`."""
        return ed25519_verify(self.public_key, signature, message)


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes (type 0x01) or cosignatures (type 0x04) under a name."""

    name: str
    private_key: Ed25519PrivateKey

    @cached_property
    def secret_key(self) -> bytes:
        """The key as `ledger.keys.ed25519_sign` takes it, computed once."""
        return secret_key_of(self.private_key)

    def verifier(self, kind: int = ED25519) -> Verifier:
        """The matching verifier."""
        return Verifier(self.name, self.private_key.public_key().public_bytes_raw(), kind)

    @classmethod
    def parse(cls, text: str) -> Signer:
        """Parse `PRIVATE+KEY+name+hash+base64(0x01 || seed)`."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("signer key: must be PRIVATE+KEY+name+hash+key")
        raw = base64.b64decode(parts[4])
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("signer key: must be an Ed25519 seed of type 0x01")
        signer = cls(parts[2], Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier().hash.hex() != parts[3]:
            raise NoteError("signer key: key hash does not match")
        return signer


def sign_note(text: str, signer: Signer) -> str:
    """A signed note with one signature."""
    return add_signature(text, signer_line(text, signer))


def signer_line(text: str, signer: Signer) -> str:
    """One signature line over `text`."""
    _check_text(text)
    signature = ed25519_sign(signer.secret_key, text.encode())
    return f"{DASH} {signer.name} {base64.b64encode(signer.verifier().hash + signature).decode()}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n") or "\n\n" in text or text.startswith("\n"):
        raise NoteError("note text: must be non-empty lines ending in a newline, without blank lines")


def split_note(note: str) -> tuple[str, list[str]]:
    """(text, signature lines) of a signed note."""
    head, separator, signatures = note.partition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise NoteError("signed note: must be text, a blank line, then signature lines")
    lines = signatures[:-1].split("\n")
    if not lines or any(not line.startswith(f"{DASH} ") for line in lines):
        raise NoteError("signed note: every signature line starts with an em dash and a space")
    return head + "\n", [line + "\n" for line in lines]


def add_signature(note_or_text: str, line: str) -> str:
    """Append a signature line to a note (or to bare text, starting the signature block)."""
    if "\n\n" in note_or_text:
        return note_or_text + line
    _check_text(note_or_text)
    return note_or_text + "\n" + line


def _parse_line(line: str) -> tuple[str, bytes]:
    parts = line.rstrip("\n").split(" ")
    if len(parts) != 3 or parts[0] != DASH:
        raise NoteError("signature line: must be '— name base64'")
    try:
        return parts[1], base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise NoteError("signature line: signature must be base64") from None


def line_signer(line: str) -> tuple[str, bytes]:
    """(key name, 4-byte key hash) of a signature line: which key it claims to be by (nothing is verified)."""
    name, blob = _parse_line(line)
    return name, blob[:4]


def verify_note(note: str, verifier: Verifier) -> str:
    """Return the text of `note` if it carries a valid signature by `verifier`, else raise NoteError."""
    text, lines = split_note(note)
    for line in lines:
        name, blob = _parse_line(line)
        if name == verifier.name and blob[:4] == verifier.hash and verifier.kind == ED25519:
            if verifier.verifies(blob[4:], text.encode()):
                return text
            raise NoteError(f"signed note: the signature by {name} does not verify")
    raise NoteError(f"signed note: no signature by {verifier.name}")


# -- checkpoints --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint body."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The checkpoint text (the note body)."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse a checkpoint text."""
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[0]:
            raise NoteError("checkpoint: must be origin, size and root hash lines")
        if not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
            raise NoteError("checkpoint: tree size must be a decimal without leading zeros")
        try:
            root = base64.b64decode(lines[2], validate=True)
        except binascii.Error:
            raise NoteError("checkpoint: root hash must be base64") from None
        if len(root) != 32:
            raise NoteError("checkpoint: root hash must be 32 bytes")
        return cls(lines[0], int(lines[1]), root, tuple(lines[3:-1]))


# -- cosignatures -------------------------------------------------------------------------------------------


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What a tlog-cosignature/v1 signs."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def cosign_line(text: str, signer: Signer, timestamp: int) -> str:
    """A cosignature line over a checkpoint text."""
    signature = ed25519_sign(signer.secret_key, cosignature_message(text, timestamp))
    blob = signer.verifier(COSIGNATURE_V1).hash + struct.pack(">Q", timestamp) + signature
    return f"{DASH} {signer.name} {base64.b64encode(blob).decode()}\n"


def verify_cosignature(note: str, verifier: Verifier) -> int:
    """Return the timestamp of a valid cosignature by `verifier` (type 0x04) on `note`, else raise NoteError."""
    text, lines = split_note(note)
    for line in lines:
        name, blob = _parse_line(line)
        if name == verifier.name and blob[:4] == verifier.hash and len(blob) == 4 + 8 + 64:
            (timestamp,) = struct.unpack(">Q", blob[4:12])
            if verifier.verifies(blob[12:], cosignature_message(text, timestamp)):
                return int(timestamp)
            raise NoteError(f"cosignature: the signature by {name} does not verify")
    raise NoteError(f"cosignature: none by {verifier.name}")
