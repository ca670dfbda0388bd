"""The transparency log as C2SP tlog-tiles: hash tiles and entry bundles, read from the tiles the log stores.

C2SP tlog-tiles serves a log as static resources under a URL prefix (here `/log/`):

- §Checkpoints: `<prefix>/checkpoint`, the latest signed checkpoint (with its cosignatures).
- §Merkle Tree: `<prefix>/tile/<L>/<N>[.p/<W>]`. `<L>` is a decimal from 0 to 63 without leading zeros; `<N>` is
  written in zero-padded 3-digit path elements, every one but the last prefixed with `x` (1234067 is
  `x001/x234/067`); `<W>` is a decimal from 1 to 255 without leading zeros. The `n`-th tile at level `l` is the
  256 hashes `MTH(D[(n·256 + i)·256^l : (n·256 + i + 1)·256^l])`, `i` from 0 to 255 — exactly the bottom row of
  the tile (`l`, `n`) that `ledger/log/tree.py` stores (it keeps the tree's levels 0, 8, 16, … 256 to a row).
- §Partial Tiles: the rightmost tile of level `l` for a tree of size `s` holds `floor(s / 256^l) mod 256` hashes and
  is served as `.p/<W>`; an empty tile is never served. A partial tile of a smaller width is a prefix of the same
  row, so the partial tiles of every earlier checkpoint stay available.
- §Log entries: `<prefix>/tile/entries/<N>[.p/<W>]`, the entries of level-0 tile `N`, each prefixed by its length as
  a big-endian uint16. An entry is the JCS bytes of the signed envelope, exactly as `mutual-ledger export` prints it;
  the bundle is read through the store's paging and checked against the stored leaf hashes before it is served.

The public tree is the tree of the latest checkpoint: nothing beyond its size is served, so a tile is never
published before a signed checkpoint commits to it.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from typing import ClassVar, Protocol

from ledger.errors import EXIT_INPUT, EXIT_VERIFICATION, RuleError
from ledger.log.checkpoints import StoredCheckpoint
from ledger.log.tree import WIDTH
from ledger.rules import Rule

HASH_SIZE = 32
MAX_LEVEL = 63
MAX_ENTRY_BYTES = 0xFFFF
"""The largest entry a big-endian uint16 length prefix can carry (§Log entries)."""

_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_INDEX_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST_ELEMENT = re.compile(r"[0-9]{3}")


class TileError(RuleError):
    """A tile or entry bundle cannot be served; `field` and `rule` name what is wrong."""


class TilePathError(TileError):
    """The path is not a tile or entry bundle path as C2SP tlog-tiles writes it."""

    exit_code: ClassVar[int] = EXIT_INPUT


class TileNotFoundError(TileError):
    """The tile or bundle lies beyond the tree of the latest checkpoint (or no checkpoint exists yet)."""

    exit_code: ClassVar[int] = EXIT_INPUT


class TileStorageError(TileError):
    """The stored log cannot produce the resource faithfully (an entry too long for its length prefix, a stored
    entry that does not hash to its stored leaf hash, a tile missing under a published checkpoint)."""

    exit_code: ClassVar[int] = EXIT_VERIFICATION


@dataclass(frozen=True)
class TileAddress:
    """A hash tile (`level` 0..63) or an entry bundle (`level` None): its index and, for a partial one, its width."""

    level: int | None
    index: int
    width: int | None = None

    @property
    def is_entry_bundle(self) -> bool:
        """Whether this addresses an entry bundle rather than a hash tile."""
        return self.level is None

    @property
    def count(self) -> int:
        """How many hashes (or entries) it holds: 256 for a full tile, its width for a partial one."""
        return WIDTH if self.width is None else self.width

    def path(self) -> str:
        """The path under the log's prefix, e.g. `tile/0/x001/234.p/7` or `tile/entries/005`."""
        level = "entries" if self.level is None else str(self.level)
        suffix = "" if self.width is None else f".p/{self.width}"
        return f"tile/{level}/{encode_index(self.index)}{suffix}"


def encode_index(index: int) -> str:
    """`<N>` of §Merkle Tree: zero-padded 3-digit elements, all but the last prefixed with `x`."""
    if index < 0:
        raise ValueError(f"index: must not be negative ({index})")
    elements = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        elements.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(elements))


def parse_tile_path(path: str) -> TileAddress:
    """Parse `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` (without the prefix); only the one canonical
    spelling of each resource is accepted (no extra leading zeros or `x000` elements)."""
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise TilePathError("path", Rule.TILE_PATH_MUST_FOLLOW_TLOG_TILES,
                            "must be tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]")
    level = _parse_level(parts[1])
    elements, width = _split_width(parts[2:])
    address = TileAddress(level, _parse_index(elements), width)
    if address.path() != path:
        raise TilePathError("path", Rule.TILE_PATH_MUST_BE_CANONICAL, "the index must have no leading x000 element")
    return address


def _parse_level(text: str) -> int | None:
    if text == "entries":
        return None
    if not _LEVEL.fullmatch(text) or int(text) > MAX_LEVEL:
        raise TilePathError("level", Rule.TILE_LEVEL_MUST_BE_0_TO_63,
                            f"must be a decimal from 0 to 63 without leading zeros, or 'entries' ({text!r})")
    return int(text)


def _split_width(elements: list[str]) -> tuple[list[str], int | None]:
    """Separate the `.p/<W>` suffix of a partial tile from the index elements."""
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        text = elements[-1]
        if not _WIDTH.fullmatch(text) or int(text) > WIDTH - 1:
            raise TilePathError("width", Rule.TILE_WIDTH_MUST_BE_1_TO_255,
                                f"must be a decimal from 1 to 255 without leading zeros ({text!r})")
        return [*elements[:-2], elements[-2][:-2]], int(text)
    return elements, None


def _parse_index(elements: list[str]) -> int:
    if not _LAST_ELEMENT.fullmatch(elements[-1]) or not all(_INDEX_ELEMENT.fullmatch(e) for e in elements[:-1]):
        raise TilePathError("index", Rule.TILE_INDEX_MUST_BE_3_DIGIT_ELEMENTS,
                            "must be zero-padded 3-digit elements, all but the last prefixed with x")
    index = 0
    for element in elements:
        index = index * 1000 + int(element.lstrip("x"))
    return index


def encode_entry_bundle(entries: list[bytes]) -> bytes:
    """§Log entries: each entry prefixed by its length as a big-endian uint16."""
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY_BYTES:
            raise TileStorageError("entry", Rule.ENTRY_MUST_FIT_A_UINT16_LENGTH,
                                   f"an entry of {len(entry)} bytes does not fit a uint16 length prefix")
        parts.append(struct.pack(">H", len(entry)))
        parts.append(entry)
    return b"".join(parts)


class TileSource(Protocol):
    """The stored tiles and the entries of the log (`ledger.log.tree.TransparencyLog`)."""

    def stored_tile(self, level: int, index: int) -> bytes:
        """The bottom row of a stored tile."""
        ...

    def tile_entries(self, tile: int, count: int) -> list[bytes]:
        """The first `count` entries of a level-0 tile."""
        ...


class CheckpointSource(Protocol):
    """The published checkpoints (`ledger.log.checkpoints.CheckpointLog`)."""

    def latest(self) -> StoredCheckpoint | None:
        """The largest checkpoint published, with its cosignatures."""
        ...


class TiledLog:
    """The log's public resources: the latest checkpoint, hash tiles and entry bundles up to its size."""

    def __init__(self, tiles: TileSource, checkpoints: CheckpointSource) -> None:
        self.tiles = tiles
        self.checkpoints = checkpoints
        self._published_size = 0
        """The largest checkpoint size seen: checkpoints only grow, so what lies within it stays public."""

    def checkpoint(self) -> StoredCheckpoint:
        """The latest checkpoint with its cosignatures (§Checkpoints)."""
        latest = self.checkpoints.latest()
        if latest is None:
            raise TileNotFoundError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED,
                                    "no checkpoint has been published yet")
        self._published_size = max(self._published_size, latest.size)
        return latest

    def read(self, address: TileAddress, tree_size: int | None = None) -> bytes:
        """The bytes of a hash tile or entry bundle within the tree of `tree_size` (default: the latest
        checkpoint's size, looked up only when the resource lies beyond the largest size seen so far)."""
        level = 0 if address.level is None else address.level
        needed = (address.index * WIDTH + address.count) * WIDTH ** level  # leaves the resource covers
        size = tree_size
        if size is None:
            size = self._published_size if needed <= self._published_size else self.checkpoint().size
        if needed > size:
            raise TileNotFoundError("path", Rule.TILE_MUST_LIE_WITHIN_THE_TREE,
                                    f"{address.path()} lies beyond the tree of size {size}")
        hashes = self._hashes(level, address)
        if address.level is not None:
            return hashes
        return self._entry_bundle(address, hashes)

    def _hashes(self, level: int, address: TileAddress) -> bytes:
        """The first `count` hashes of the stored row (the tile of §Merkle Tree)."""
        row = self.tiles.stored_tile(level, address.index)[:address.count * HASH_SIZE]
        if len(row) != address.count * HASH_SIZE:
            raise TileStorageError("path", Rule.TILE_MUST_BE_INTEGRATED,
                                   f"{address.path()}: the stored tile holds {len(row) // HASH_SIZE} hashes")
        return row

    def _entry_bundle(self, address: TileAddress, leaf_hashes: bytes) -> bytes:
        """The bundle, after checking every entry against its stored leaf hash (RFC 9162 §2.1.1)."""
        try:
            entries = self.tiles.tile_entries(address.index, address.count)
        except LookupError as error:
            raise TileStorageError("path", Rule.TILE_MUST_BE_STORED, str(error)) from None
        for offset, entry in enumerate(entries):
            expected = leaf_hashes[offset * HASH_SIZE:(offset + 1) * HASH_SIZE]
            if hashlib.sha256(b"\x00" + entry).digest() != expected:
                raise TileStorageError("entry", Rule.ENTRY_MUST_HASH_TO_ITS_LEAF,
                                       f"entry {address.index * WIDTH + offset} does not hash to its stored leaf")
        return encode_entry_bundle(entries)
