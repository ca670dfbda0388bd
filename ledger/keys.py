"""Ed25519 keys: key ids, event signatures, and the key directory.

Contract (DESIGN.md, "Signed events"): `key_id` is the first 16 hex characters of SHA-256 of the raw 32-byte
public key, and an event signature is `Ed25519(key, b"mutual-ledger/event/v1\\n" + event_hash)`. Private keys
live in a key directory as PKCS#8 PEM files, encrypted at rest when a passphrase is configured.

Ed25519 (RFC 8032) signing and verification — events, checkpoints, cosignatures — go through `ed25519_sign` and
`ed25519_verify`, on libsodium (PyNaCl): on the machines the ledger is measured on it signs about 1.4x and verifies
about 1.7x as fast as OpenSSL through `cryptography`, which still reads and writes the key files. Ed25519 is
deterministic, so the signatures are the same bytes either way. libsodium's verification is the strict one: it
refuses a non-canonical `S` (no malleated signature verifies), non-canonical point encodings and small-order
public keys or `R`; a signature an honest signer made verifies under both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

EVENT_SIGNATURE_PREFIX = b"mutual-ledger/event/v1\n"
"""Domain separation: an event signature can never be replayed as a signature over anything else."""


def key_id(public_key_raw: bytes) -> str:
    """Return the key id: the first 16 hex characters of SHA-256(raw public key)."""
    return hashlib.sha256(public_key_raw).hexdigest()[:16]


def public_key_raw(public_key: Ed25519PublicKey) -> bytes:
    """Return the raw 32-byte encoding of an Ed25519 public key."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def ed25519_sign(secret_key: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of `message` by a libsodium secret key (the 32-byte seed, then the public
    key: `SigningKey.secret_key`)."""
    return bytes(nacl.bindings.crypto_sign(message, secret_key)[:64])


def ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is a valid Ed25519 signature of `message` by the raw 32-byte `public_key` (the strict
    checks of the module docstring)."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def secret_key_of(private_key: Ed25519PrivateKey) -> bytes:
    """A private key as `ed25519_sign` takes it: the 32-byte seed, then the raw public key."""
    seed = private_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                     serialization.NoEncryption())
    return seed + public_key_raw(private_key.public_key())


def public_key_from_base64(text: str) -> bytes:
    """Decode a base64 raw 32-byte Ed25519 public key; raise ValueError when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError("public key is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"public key must be 32 bytes, found {len(raw)}")
    return raw


def sign_event_hash(secret_key: bytes, event_hash: bytes) -> str:
    """Sign an event hash with the domain-separation prefix; return the base64 signature."""
    return base64.b64encode(ed25519_sign(secret_key, EVENT_SIGNATURE_PREFIX + event_hash)).decode("ascii")


def event_signature_is_valid(public_key: bytes, event_hash: bytes, sig: str) -> bool:
    """Whether `sig` (base64) is a valid event signature over `event_hash` by the raw `public_key`."""
    try:
        signature = binascii.a2b_base64(sig, strict_mode=True)  # only the alphabet, and the padding at the end
    except binascii.Error:
        return False
    return ed25519_verify(public_key, signature, EVENT_SIGNATURE_PREFIX + event_hash)


@dataclass(frozen=True)
class SigningKey:
    """A private key with the role it signs for and, for member and juror keys, the member it belongs to."""

    name: str
    role: str
    private_key: Ed25519PrivateKey
    member: str | None = None

    @cached_property
    def public_raw(self) -> bytes:
        """The raw 32-byte public key."""
        return public_key_raw(self.private_key.public_key())

    @property
    def public_base64(self) -> str:
        """The public key as base64 of its raw bytes, as carried by `key.registered` events."""
        return base64.b64encode(self.public_raw).decode("ascii")

    @cached_property
    def key_id(self) -> str:
        """The key id that envelopes carry in `actor.key`."""
        return key_id(self.public_raw)

    @cached_property
    def secret_key(self) -> bytes:
        """The key as `ed25519_sign` takes it (`secret_key_of`), computed once."""
        return secret_key_of(self.private_key)

    def sign(self, event_hash: bytes) -> str:
        """Sign an event hash (see `sign_event_hash`)."""
        return sign_event_hash(self.secret_key, event_hash)

    @staticmethod
    def generate(name: str, role: str, member: str | None = None) -> SigningKey:
        """Create a new random key."""
        return SigningKey(name, role, Ed25519PrivateKey.generate(), member)


class KeyDirectoryError(Exception):
    """A key file is missing, unreadable, or the passphrase does not open it."""


class KeyDirectory:
    """Private keys on disk: `<name>.pem` (PKCS#8, encrypted when a passphrase is set) and `<name>.json`.

    The JSON sidecar holds only public facts (role, member, key id) so that listing keys needs no passphrase.
    """

    def __init__(self, path: Path, passphrase: bytes | None = None) -> None:
        self.path = path
        self.passphrase = passphrase

    def save(self, key: SigningKey) -> None:
        """Write a key; refuse to overwrite an existing one (a lost key cannot be recovered)."""
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem_path = self.path / f"{key.name}.pem"
        if pem_path.exists():
            raise KeyDirectoryError(f"key {key.name!r} already exists in {self.path}")
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(self.passphrase)
            if self.passphrase
            else serialization.NoEncryption()
        )
        pem = key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        descriptor = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        meta = {"name": key.name, "role": key.role, "member": key.member, "key_id": key.key_id}
        (self.path / f"{key.name}.json").write_text(json.dumps(meta, sort_keys=True) + "\n")

    def load(self, name: str) -> SigningKey:
        """Read a key by name."""
        pem_path = self.path / f"{name}.pem"
        try:
            meta = json.loads((self.path / f"{name}.json").read_text())
            pem = pem_path.read_bytes()
        except FileNotFoundError:
            raise KeyDirectoryError(f"no key named {name!r} in {self.path}") from None
        try:
            private_key = serialization.load_pem_private_key(pem, password=self.passphrase)
        except (TypeError, ValueError) as error:
            raise KeyDirectoryError(f"cannot open key {name!r}: {error}") from None
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyDirectoryError(f"key {name!r} is not an Ed25519 key")
        return SigningKey(name, str(meta["role"]), private_key, meta.get("member"))

    def exists(self, name: str) -> bool:
        """Whether a key of that name is stored."""
        return (self.path / f"{name}.pem").exists()

    def names(self) -> Iterator[str]:
        """Names of the stored keys, sorted."""
        if self.path.exists():
            yield from sorted(p.stem for p in self.path.glob("*.pem"))
