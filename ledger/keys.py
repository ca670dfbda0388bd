"""Ed25519 keys: key ids, event signatures, and the key directory.

Contract (docs/design.md, "Signed events"): `key_id` is the first 16 hex characters of SHA-256 of the raw 32-byte
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
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.errors import KeyDirectoryError
from ledger.rules import Rule

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

    def public_facts(self) -> dict[str, str | None]:
        """What may be published about the key: name, role, member, key id and the base64 public key."""
        return {"name": self.name, "role": self.role, "member": self.member, "key_id": self.key_id,
                "public_key": self.public_base64}

    @staticmethod
    def generate(name: str, role: str, member: str | None = None) -> SigningKey:
        """Create a new random key."""
        return SigningKey(name, role, Ed25519PrivateKey.generate(), member)


KEY_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
"""A key's name: a plain file name inside the key directory (no path separators, no leading dot)."""

PARTY_ROLES = ("operator", "custodian", "investigator", "regulator", "member", "juror")
"""Roles whose keys a party generates for itself (`keys generate --role R`)."""


def check_key_name(name: str, field: str = "key") -> str:
    """A key name, refused when it is not a plain name inside the key directory (`../x`, `/abs/x`)."""
    if not KEY_NAME.fullmatch(name):
        raise KeyDirectoryError(field, Rule.KEY_NAME_MUST_NAME_A_KEY_IN_THE_KEY_DIRECTORY, name)
    return name


class KeyDirectory:
    """One party's private keys on disk: `<name>.pem` (PKCS#8, encrypted when a passphrase is set) and `<name>.json`.

    The JSON sidecar holds only public facts (name, role, member, key id, public key) so that listing keys and
    publishing public keys need no passphrase.
    """

    def __init__(self, path: Path, passphrase: bytes | None = None, party: str | None = None) -> None:
        self.path = path
        self.passphrase = passphrase
        self.party = party
        """Whose directory this is, where one process plays several parties (the demo, the tests)."""

    def save(self, key: SigningKey) -> None:
        """Write a key; refuse to overwrite an existing one (a lost key cannot be recovered)."""
        check_key_name(key.name)
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem_path = self.path / f"{key.name}.pem"
        if pem_path.exists():
            raise KeyDirectoryError("key", Rule.KEY_NAME_MUST_BE_NEW, f"{key.name} in {self.path}")
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
        (self.path / f"{key.name}.json").write_text(json.dumps(key.public_facts(), sort_keys=True) + "\n")

    def load(self, name: str) -> SigningKey:
        """Read a key by name (a plain name inside this directory)."""
        check_key_name(name)
        meta = self.public_facts(name)
        try:
            pem = (self.path / f"{name}.pem").read_bytes()
        except OSError:
            raise KeyDirectoryError("key", Rule.KEY_MUST_EXIST, f"{name} in {self.path}") from None
        try:
            private_key = serialization.load_pem_private_key(pem, password=self.passphrase)
        except (TypeError, ValueError):
            raise KeyDirectoryError("key", Rule.KEY_FILE_MUST_OPEN_WITH_THE_PASSPHRASE,
                                    f"{name}: LEDGER_KEY_PASSPHRASE missing or wrong, or the file is damaged") from None
        if not isinstance(private_key, Ed25519PrivateKey):
            raise KeyDirectoryError("key", Rule.KEY_MUST_BE_ED25519, name)
        key = SigningKey(name, meta["role"], private_key, meta.get("member"))
        if key.key_id != meta["key_id"]:
            raise KeyDirectoryError("key", Rule.KEY_FILES_MUST_AGREE, f"{name}: the sidecar names {meta['key_id']}")
        return key

    def public_facts(self, name: str) -> dict[str, str]:
        """A key's public facts from its sidecar (name, role, member, key id, public key), checked for shape."""
        check_key_name(name)
        try:
            meta = json.loads((self.path / f"{name}.json").read_text())
        except FileNotFoundError:
            raise KeyDirectoryError("key", Rule.KEY_MUST_EXIST, f"{name} in {self.path}") from None
        except (OSError, ValueError):
            raise KeyDirectoryError("key", Rule.KEY_FILES_MUST_AGREE, f"{name}.json is not readable JSON") from None
        if not (isinstance(meta, dict) and isinstance(meta.get("role"), str) and isinstance(meta.get("key_id"), str)
                and isinstance(meta.get("member"), str | None)):
            raise KeyDirectoryError("key", Rule.KEY_FILES_MUST_AGREE, f"{name}.json lacks role or key_id")
        return meta

    def exists(self, name: str) -> bool:
        """Whether a key of that name is stored."""
        return (self.path / f"{check_key_name(name)}.pem").exists()

    def names(self) -> Iterator[str]:
        """Names of the stored keys, sorted."""
        if self.path.is_dir():
            yield from sorted(p.stem for p in self.path.glob("*.pem"))


class Signers:
    """The private keys a process may sign with: its own party's key directory, or — where one process plays
    several parties, as the demo and the tests do — one directory per party. Keys are found by name, first
    directory first, and cached by name and key id."""

    def __init__(self, directories: Sequence[KeyDirectory]) -> None:
        self.directories = tuple(directories)
        self._by_name: dict[str, SigningKey] = {}
        self._by_id: dict[str, SigningKey] = {}

    @property
    def own(self) -> KeyDirectory:
        """The first directory: where this process's party keeps its keys (and new keys are saved)."""
        return self.directories[0]

    def party(self, name: str) -> KeyDirectory:
        """The directory of a party this process plays (see `KeyDirectory.party`)."""
        found = next((d for d in self.directories if d.party == name), None)
        assert found is not None, f"no key directory of party {name}"
        return found

    def directory_of(self, name: str) -> KeyDirectory | None:
        """The directory holding a key of that name, if any."""
        return next((d for d in self.directories if d.exists(name)), None)

    def exists(self, name: str) -> bool:
        """Whether any directory holds a key of that name."""
        return self.directory_of(name) is not None

    def names(self) -> set[str]:
        """The names of every key this process can sign with."""
        return {name for directory in self.directories for name in directory.names()}

    def load(self, name: str) -> SigningKey:
        """A key by name (cached)."""
        key = self._by_name.get(name)
        if key is None:
            directory = self.directory_of(name)
            if directory is None:
                raise KeyDirectoryError("key", Rule.KEY_MUST_EXIST, f"{check_key_name(name)} in "
                                        + ", ".join(str(d.path) for d in self.directories))
            key = directory.load(name)
            self._by_name[name] = key
            self._by_id[key.key_id] = key
        return key

    def by_key_id(self, key_id: str) -> SigningKey | None:
        """A key already loaded, by its key id."""
        return self._by_id.get(key_id)
