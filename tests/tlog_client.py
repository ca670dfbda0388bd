"""A C2SP tlog-tiles client written from the specifications alone, without the ledger's code.

It reads a log the way any outside tlog-tiles client would: the checkpoint (C2SP tlog-checkpoint, signed as a C2SP
signed note, verified with the log's verifier key given out of band; cosignatures per C2SP tlog-cosignature), the
hash tiles it needs to recompute the root (tlog-tiles §Merkle Tree, §Partial Tiles, RFC 6962 §2.1), and every
entry bundle (§Log entries), each entry checked against its leaf hash in the level-0 tiles. Anything that does not
check raises `LogClientError`.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

Fetch = Callable[[str], bytes]
"""Fetches a resource by its path under the log's prefix (`checkpoint`, `tile/0/000`, …)."""


class LogClientError(Exception):
    """The log served something that does not verify."""


def http_fetch(prefix: str, client: httpx.Client) -> Fetch:
    """Fetch over HTTP from `prefix` (e.g. `http://127.0.0.1:8000/log/`), requiring 200."""

    def fetch(path: str) -> bytes:
        response = client.get(prefix.rstrip("/") + "/" + path)
        if response.status_code != 200:
            raise LogClientError(f"{path}: HTTP {response.status_code}")
        return response.content

    return fetch


@dataclass(frozen=True)
class NoteKey:
    """A signed-note verifier key: `name+hex(key hash)+base64(type || public key)`."""

    name: str
    key_hash: bytes
    kind: int
    public_key: bytes

    @classmethod
    def parse(cls, text: str) -> NoteKey:
        name, hash_hex, encoded = text.strip().split("+", 2)
        raw = base64.b64decode(encoded, validate=True)
        key = cls(name, bytes.fromhex(hash_hex), raw[0], raw[1:])
        if hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4] != key.key_hash:
            raise LogClientError("verifier key: the key hash does not match")
        return key

    def verifies(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: origin, tree size, root hash, and the witnesses whose cosignatures verified."""

    origin: str
    size: int
    root: bytes
    cosigners: tuple[str, ...]


def verify_checkpoint(note: bytes, log_key: NoteKey, witness_keys: Sequence[NoteKey] = ()) -> Checkpoint:
    """signed-note: text, a blank line, signature lines `— name base64(key hash || signature)`; the log's Ed25519
    signature (type 0x01) must verify; each witness's cosignature (type 0x04, over `cosignature/v1`, the time line
    and the text) is checked when present."""
    try:
        return _verify_checkpoint(note, log_key, witness_keys)
    except ValueError as error:  # not UTF-8, not base64
        raise LogClientError(f"checkpoint: malformed ({error})") from None


def _verify_checkpoint(note: bytes, log_key: NoteKey, witness_keys: Sequence[NoteKey]) -> Checkpoint:
    text, separator, signatures = note.decode("utf-8").partition("\n\n")
    if not separator or not signatures.endswith("\n"):
        raise LogClientError("checkpoint: not a signed note")
    body = text + "\n"
    lines = [line.split(" ") for line in signatures[:-1].split("\n")]
    if any(len(parts) != 3 or parts[0] != "\u2014" for parts in lines):
        raise LogClientError("checkpoint: a signature line is malformed")
    signed = [(parts[1], base64.b64decode(parts[2], validate=True)) for parts in lines]
    if not any(name == log_key.name and blob[:4] == log_key.key_hash and log_key.verifies(blob[4:], body.encode())
               for name, blob in signed):
        raise LogClientError("checkpoint: no valid signature by the log key")
    cosigners = []
    for key in witness_keys:
        for name, blob in signed:
            if name == key.name and blob[:4] == key.key_hash and len(blob) == 76:
                (timestamp,) = struct.unpack(">Q", blob[4:12])
                message = f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()
                if not key.verifies(blob[12:], message):
                    raise LogClientError(f"checkpoint: the cosignature of {name} does not verify")
                cosigners.append(name)
    origin, size, root, *_ = text.split("\n")
    if not size.isdigit() or (size != "0" and size.startswith("0")):
        raise LogClientError("checkpoint: the size is not a decimal")
    root_hash = base64.b64decode(root, validate=True)
    if len(root_hash) != 32:
        raise LogClientError("checkpoint: the root hash is not 32 bytes")
    return Checkpoint(origin, int(size), root_hash, tuple(cosigners))


def encode_index(index: int) -> str:
    """§Merkle Tree: zero-padded 3-digit path elements, all but the last prefixed with `x`."""
    elements = []
    while True:
        elements.append(f"{index % 1000:03d}")
        index //= 1000
        if index == 0:
            break
    return "/".join([f"x{e}" for e in reversed(elements[1:])] + [elements[0]])


def node(left: bytes, right: bytes) -> bytes:
    """RFC 6962 §2.1: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


@dataclass
class TiledLogClient:
    """Reads and verifies a tlog-tiles log through `fetch`."""

    fetch: Fetch
    log_key: NoteKey
    witness_keys: Sequence[NoteKey] = ()
    tiles: dict[str, list[bytes]] = field(default_factory=dict)

    def checkpoint(self) -> Checkpoint:
        """The log's checkpoint, verified."""
        return verify_checkpoint(self.fetch("checkpoint"), self.log_key, self.witness_keys)

    def tile(self, level: int, index: int, size: int) -> list[bytes]:
        """Tile (`level`, `index`) as the tree of `size` has it: full, or partial of width floor(size / 256^level)
        mod 256 (§Partial Tiles)."""
        full = (index + 1) * 256 ** (level + 1) <= size
        width = 256 if full else (size // 256 ** level) % 256
        path = f"tile/{level}/{encode_index(index)}" + ("" if full else f".p/{width}")
        if path not in self.tiles:
            data = self.fetch(path)
            if len(data) != width * 32:
                raise LogClientError(f"{path}: {len(data)} bytes, expected {width * 32}")
            self.tiles[path] = [data[i:i + 32] for i in range(0, len(data), 32)]
        return self.tiles[path]

    def hash_at(self, level: int, index: int, size: int) -> bytes:
        """The tree hash over leaves [index·256^level, (index+1)·256^level), read from a level-`level` tile."""
        return self.tile(level, index // 256, size)[index % 256]

    def subtree(self, start: int, count: int, size: int) -> bytes:
        """MTH of the complete aligned subtree of `count` (a power of two) leaves from `start`: the hashes of the
        highest tile level below it, combined upwards (a tile is a subtree of height 8 over its hashes)."""
        height = count.bit_length() - 1
        level, within = divmod(height, 8)
        row = [self.hash_at(level, start // 256 ** level + i, size) for i in range(1 << within)]
        while len(row) > 1:
            row = [node(row[i], row[i + 1]) for i in range(0, len(row), 2)]
        return row[0]

    def root(self, size: int) -> bytes:
        """MTH(D[0:size]) (RFC 6962 §2.1), from tiles only."""
        if size == 0:
            return hashlib.sha256(b"").digest()
        return self._mth(0, size, size)

    def _mth(self, start: int, count: int, size: int) -> bytes:
        if count & (count - 1) == 0:
            return self.subtree(start, count, size)
        split = 1 << ((count - 1).bit_length() - 1)
        return node(self._mth(start, split, size), self._mth(start + split, count - split, size))

    def entries(self, size: int) -> list[bytes]:
        """Every entry of the tree of `size`, from the entry bundles, each checked against its level-0 leaf hash."""
        entries: list[bytes] = []
        for index in range((size + 255) // 256):
            width = min(256, size - index * 256)
            path = f"tile/entries/{encode_index(index)}" + ("" if width == 256 else f".p/{width}")
            bundle = self.fetch(path)
            leaves = self.tile(0, index, size)
            offset = 0
            for position in range(width):
                if offset + 2 > len(bundle):
                    raise LogClientError(f"{path}: ends before entry {position}")
                (length,) = struct.unpack(">H", bundle[offset:offset + 2])
                entry = bundle[offset + 2:offset + 2 + length]
                offset += 2 + length
                if len(entry) != length or hashlib.sha256(b"\x00" + entry).digest() != leaves[position]:
                    raise LogClientError(f"{path}: entry {index * 256 + position} does not match its leaf hash")
                entries.append(entry)
            if offset != len(bundle):
                raise LogClientError(f"{path}: {len(bundle) - offset} bytes after the last entry")
        return entries

    def read(self) -> tuple[Checkpoint, list[bytes]]:
        """The verified checkpoint and every entry: the root recomputed from the tiles must be the signed one."""
        checkpoint = self.checkpoint()
        if self.root(checkpoint.size) != checkpoint.root:
            raise LogClientError("the root recomputed from the tiles is not the checkpoint's")
        return checkpoint, self.entries(checkpoint.size)
