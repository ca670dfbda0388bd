"""The vault: the values and salts of sealed fields (`ledger.sealing`), kept off the log, encrypted per member.

Envelope encryption. Each member has one random 256-bit data key; it encrypts (AES-256-GCM) every sealed value the
member owns — their own events' and their claims' — and is stored only *wrapped*: encrypted under the wrap key,
which HKDF-SHA256 derives from the operator's vault key (`<data dir>/keys/vault.key`, 32 random bytes made by
`init`, kept with the operator's private keys and never in the store). Both live in the event store itself
(`vault_keys`, `vault_values`, `ledger.store`), written in the same transaction as the events whose commitments they
open. Every ciphertext is bound by its associated data to where it belongs — a wrapped key to its member, a value to
its stream, seq and field — so a row copied elsewhere does not open. Erasing a member (`member erase`) deletes the
data key and the values: the commitments on the log stay, and nothing can open them again.

From the same vault key HKDF derives the receipt key (a command carrying sealed values keeps an HMAC of its request
in its receipt, not a plain hash that would confirm a guessed value) and the id key: the ids of new members, claims
and plans are an HMAC of the command id under it (`keyed_id`), so no one without the operator's secret can derive an
id from a guessed command id, and a repeated command still names the same stream.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ledger.canonical import canonical_bytes
from ledger.errors import KeyDirectoryError, VerificationError
from ledger.rules import Rule
from ledger.sealing import Revealed, commitment, new_salt
from ledger.store import VaultRow, VaultWrites

VAULT_KEY_FILE = "vault.key"
"""The operator's vault key, in the operator's key directory."""
VAULT_KEY_NEXT = "vault.key.next"
"""The new vault key while a rotation is under way (`rotate_vault_key`)."""
_NONCE = 12
_KEY_AAD = b"mutual-ledger/vault/key/v1\n"
_VALUE_AAD = b"mutual-ledger/vault/value/v1\n"


PROTECTED = "mutual-ledger/vault-key/v1"
"""The first word of a vault key file protected by the passphrase: `PROTECTED scrypt <salt> <nonce> <sealed>`, each
base64 — the key sealed with AES-256-GCM (associated data: this tag) under scrypt(passphrase, salt, n=2^15, r=8,
p=1). An unprotected file is the key's base64 alone."""
_SCRYPT = {"n": 2**15, "r": 8, "p": 1}


def create_vault_key(key_dir: Path, passphrase: bytes | None = None) -> Path:
    """Make the operator's vault key (32 random bytes, readable by the owner only), protected by the passphrase
    when one is set (`LEDGER_KEY_PASSPHRASE`, as the signing keys are); never overwrites one."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = key_dir / VAULT_KEY_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(vault_key_text(secrets.token_bytes(32), passphrase))
    return path


def vault_key_text(key: bytes, passphrase: bytes | None) -> str:
    """The text of a vault key file: the key's base64, or the key sealed under the passphrase (`PROTECTED`)."""
    if passphrase is None:
        return base64.b64encode(key).decode() + "\n"
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(_NONCE)
    sealed = AESGCM(_passphrase_key(passphrase, salt)).encrypt(nonce, key, PROTECTED.encode())
    return " ".join([PROTECTED, "scrypt", *(base64.b64encode(part).decode() for part in (salt, nonce, sealed))]) + "\n"


def _passphrase_key(passphrase: bytes, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, **_SCRYPT).derive(passphrase)


def load_vault_key(key_dir: Path, passphrase: bytes | None = None) -> bytes:
    """The operator's vault key; missing or malformed, or protected and not opened by the passphrase, is a key
    error naming the file."""
    return _read_key_file(key_dir / VAULT_KEY_FILE, passphrase)


def _read_key_file(path: Path, passphrase: bytes | None) -> bytes:
    """A vault key file's key: 32 bytes, or 64 after a rotation (the wrapping secret, then the id secret)."""
    try:
        text = path.read_text().strip()
    except OSError:
        raise KeyDirectoryError("vault_key", Rule.VAULT_KEY_MUST_EXIST, f"{path} (made by init)") from None
    if text.startswith(PROTECTED + " "):
        key = _unprotect(text, passphrase, path)
    else:
        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:
            key = b""
    if len(key) not in (32, 64):
        raise KeyDirectoryError("vault_key", Rule.VAULT_KEY_MUST_BE_32_BYTES_OF_BASE64,
                                f"{path} (64 after a rotation)")
    return key


def _unprotect(text: str, passphrase: bytes | None, path: Path) -> bytes:
    """Open a protected vault key file with the passphrase."""
    refused = KeyDirectoryError("vault_key", Rule.KEY_FILE_MUST_OPEN_WITH_THE_PASSPHRASE,
                                f"{path}: LEDGER_KEY_PASSPHRASE missing or wrong, or the file is damaged")
    fields = text.split(" ")
    if passphrase is None or len(fields) != 5 or fields[1] != "scrypt":
        raise refused
    try:
        salt, nonce, sealed = (base64.b64decode(part, validate=True) for part in fields[2:])
        return AESGCM(_passphrase_key(passphrase, salt)).decrypt(nonce, sealed, PROTECTED.encode())
    except (ValueError, InvalidTag):
        raise refused from None


def _derive(vault_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"mutual-ledger/" + purpose).derive(vault_key)


def keyed_id(id_key: bytes, kind: str, command_id: str) -> UUID:
    """The id of a stream a command creates: HMAC-SHA256 under the id key of `kind:command_id`, its first 16 bytes
    shaped as a version 8 UUID (RFC 9562). Without the operator's key nobody can tell which command id it came
    from; a repeated command names the same stream."""
    raw = bytearray(hmac.new(id_key, f"{kind}:{command_id}".encode(), hashlib.sha256).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8 (Python before 3.12 knows no `version=8`)
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC variant
    return UUID(bytes=bytes(raw))


@dataclass
class Vault:
    """The vault of one store, opened with the operator's vault key; `pending` collects what the current unit of
    work seals, saved with its events (`VaultWrites`)."""

    recorder: Any
    """The store's recorder (`ledger.store`), which keeps the vault tables."""
    vault_key: bytes
    """32 bytes from which every key derives; after a rotation (`rotate_vault_key`) 64: the secret the wrap key
    derives from, then the one the id and receipt keys derive from, which a rotation keeps."""
    wrap_key: bytes = field(init=False)
    id_key: bytes = field(init=False)
    receipt_key: bytes = field(init=False)
    _wrapping: AESGCM = field(init=False, repr=False)

    def __post_init__(self) -> None:
        wrapping, naming = self.vault_key[:32], self.vault_key[32:] or self.vault_key[:32]
        self.wrap_key = _derive(wrapping, b"vault/wrap/v1")
        self._wrapping = AESGCM(self.wrap_key)
        self.id_key = _derive(naming, b"ids/v1")
        self.receipt_key = _derive(naming, b"receipts/v1")

    # -- data keys ---------------------------------------------------------------------------------------

    def wrap(self, member: str, data_key: bytes) -> bytes:
        """A data key encrypted under the wrap key, bound to its member."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._wrapping.encrypt(nonce, data_key, _KEY_AAD + member.encode())

    def unwrap(self, member: str, wrapped: bytes) -> bytes:
        """Open a wrapped data key; one that was altered, moved to another member or wrapped under another vault
        key does not open."""
        try:
            return self._wrapping.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], _KEY_AAD + member.encode())
        except (InvalidTag, ValueError):
            raise VerificationError(f"vault: the data key of member {member} does not open "
                                    "(altered, moved, or another vault key)") from None

    def data_key(self, member: str, writes: VaultWrites | None = None) -> bytes | None:
        """A member's data key: pending in `writes`, stored, or None when there is none (never made, or erased)."""
        if writes is not None and member in writes.keys:
            return self.unwrap(member, writes.keys[member])
        wrapped = self.recorder.select_vault_key(member)
        return None if wrapped is None else self.unwrap(member, wrapped)

    # -- values ------------------------------------------------------------------------------------------

    def seal(self, writes: VaultWrites, member: str, stream: str, seq: int, name: str, value: Any,
             new_member: bool = False) -> str:
        """Seal one value owned by `member` for field `name` of event `stream#seq`: add its encrypted record to
        `writes` (and the member's new data key if they have none) and return the commitment for the body.
        `new_member`: the member is joining in this transaction, so no stored key is looked for."""
        data_key = None if new_member and member not in writes.keys else self.data_key(member, writes)
        if data_key is None:
            data_key = secrets.token_bytes(32)  # a random 256-bit AES key
            writes.keys[member] = self.wrap(member, data_key)
        salt = new_salt()
        plain = canonical_bytes({"salt": salt.hex(), "value": value})
        nonce = secrets.token_bytes(_NONCE)
        sealed = nonce + AESGCM(data_key).encrypt(nonce, plain, _aad(stream, seq, name))
        writes.values.append(VaultRow(stream, seq, name, member, sealed))
        return commitment(salt, value)

    def open(self, row: VaultRow, data_key: bytes) -> Revealed:
        """Decrypt one stored value; a row altered or moved to another event or field does not open."""
        record = self._record(row, data_key)
        return Revealed(row.stream, row.seq, row.field, record["value"], bytes.fromhex(record["salt"]))

    @staticmethod
    def _record(row: VaultRow, data_key: bytes) -> dict[str, Any]:
        """The decrypted record of one stored value: {"salt", "value"}."""
        try:
            plain = AESGCM(data_key).decrypt(row.sealed[:_NONCE], row.sealed[_NONCE:],
                                             _aad(row.stream, row.seq, row.field))
        except (InvalidTag, ValueError):
            raise VerificationError(f"vault: the sealed {row.field} of {row.stream}#{row.seq} does not open "
                                    "(altered or moved)") from None
        record: dict[str, Any] = orjson.loads(plain)
        return record

    def values_of(self, member: str) -> list[Revealed]:
        """Every sealed value a member owns, opened (none after erasure)."""
        data_key = self.data_key(member)
        if data_key is None:
            return []
        return [self.open(row, data_key) for row in self.recorder.select_vault_values(member=member)]

    def values_of_stream(self, stream: str) -> list[tuple[str, Revealed]]:
        """Every sealed value of a stream's events, opened, with the member who owns each; values of erased
        members are left out."""
        found = []
        keys: dict[str, bytes | None] = {}
        for row in self.recorder.select_vault_values(stream=stream):
            if row.member not in keys:
                keys[row.member] = self.data_key(row.member)
            data_key = keys[row.member]
            if data_key is not None:
                found.append((row.member, self.open(row, data_key)))
        return found

    def field_of_streams(self, streams: Sequence[str], seq: int, name: str) -> dict[str, Any]:
        """Stream → the opened value of field `name` of its event `#seq`, for many streams in one pass over their
        vault rows (`select_vault_field`), each owner's data key unwrapped once; streams without one (none sealed
        there, or its owner erased) are absent. A row that does not open is an error, as in `open`."""
        found: dict[str, Any] = {}
        keys: dict[str, bytes] = {}
        for row, wrapped in self.recorder.select_vault_field(streams, seq, name):
            data_key = keys.get(row.member)
            if data_key is None:
                data_key = keys[row.member] = self.unwrap(row.member, wrapped)
            found[row.stream] = self._record(row, data_key)["value"]
        return found

    def streams_of(self, member: str) -> set[str]:
        """The streams other than the member's own holding values the member owns: their claims, by the vault's
        rows, without decrypting."""
        return {row.stream for row in self.recorder.select_vault_values(member=member)} - {member}


def rotate_vault_key(recorder: Any, key_dir: Path, passphrase: bytes | None) -> int:
    """Replace the secret the wrap key derives from and rewrap every member's data key under the new wrap key, in
    one transaction; the values, the ids and the receipts are untouched (the id secret is kept). Returns how many
    data keys were rewrapped. Order, so that no crash loses a key: the new key file is written beside the old
    (`vault.key.next`), the rewrap committed, and only then the new file renamed over the old; a rotation
    interrupted before the rename is finished by running it again (the rewrap committed: rename; else start over).
    Every other process of the operator must be stopped meanwhile: it holds the old wrap key."""
    current = load_vault_key(key_dir, passphrase)
    pending = key_dir / VAULT_KEY_NEXT
    if pending.exists():
        interrupted = _read_key_file(pending, passphrase)
        sample = recorder.select_any_vault_key()
        if sample is None or _opens(Vault(recorder, interrupted), *sample):
            os.replace(pending, key_dir / VAULT_KEY_FILE)
            return 0
        pending.unlink()
    new = secrets.token_bytes(32) + (current[32:] or current)
    descriptor = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(vault_key_text(new, passphrase))
        handle.flush()
        os.fsync(handle.fileno())
    old_vault, new_vault = Vault(recorder, current), Vault(recorder, new)
    count: int = recorder.rewrap_vault_keys(
        lambda member, wrapped: new_vault.wrap(member, old_vault.unwrap(member, wrapped)))
    os.replace(pending, key_dir / VAULT_KEY_FILE)
    return count


def _opens(vault: Vault, member: str, wrapped: bytes) -> bool:
    try:
        vault.unwrap(member, wrapped)
    except VerificationError:
        return False
    return True


def _aad(stream: str, seq: int, name: str) -> bytes:
    return _VALUE_AAD + f"{stream}#{seq}/{name}".encode()


def empty_writes() -> VaultWrites:
    """Nothing sealed yet."""
    return VaultWrites({}, [], {})
