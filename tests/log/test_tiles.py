"""C2SP tlog-tiles paths, widths and contents: the spec's own examples, strict parsing, and tiles read from the
stored tree on both backends."""

from __future__ import annotations

import hashlib
import struct

import pytest

from ledger.bootstrap import Ledger
from ledger.log.merkle import leaf_hash, node_hash
from ledger.log.tiles import (
    TileAddress,
    TiledLog,
    TileNotFoundError,
    TilePathError,
    TileStorageError,
    encode_entry_bundle,
    encode_index,
    parse_tile_path,
)
from sim.fixtures import START
from tests.support import INITIAL, create_plan, join


def test_tile_indexes_are_written_in_zero_padded_three_digit_elements() -> None:
    assert encode_index(1234067) == "x001/x234/067"  # the spec's example
    assert encode_index(0) == "000"
    assert encode_index(999) == "999"
    assert encode_index(1000) == "x001/000"
    assert TileAddress(2, 1234067, 7).path() == "tile/2/x001/x234/067.p/7"
    assert TileAddress(None, 5).path() == "tile/entries/005"


@pytest.mark.parametrize("path", ["tile/0/000", "tile/63/x001/x234/067", "tile/0/001.p/255", "tile/entries/x002/000",
                                  "tile/entries/017.p/1"])
def test_every_canonical_path_parses_back_to_itself(path: str) -> None:
    assert parse_tile_path(path).path() == path


@pytest.mark.parametrize(("path", "field"), [
    ("tile/00/000", "level"), ("tile/64/000", "level"), ("tile/-1/000", "level"), ("tile/abc/000", "level"),
    ("tile/0/1", "index"), ("tile/0/0001", "index"), ("tile/0/001/002", "index"), ("tile/0/x01/000", "index"),
    ("tile/0/000.p/0", "width"), ("tile/0/000.p/256", "width"), ("tile/0/000.p/07", "width"),
    ("tile/0/x000/001", "path"), ("tile/entries/x000/x001/002", "path"), ("tiles/0/000", "path"), ("tile/0", "path"),
])
def test_a_non_canonical_or_malformed_path_is_refused_naming_the_field(path: str, field: str) -> None:
    with pytest.raises(TilePathError) as caught:
        parse_tile_path(path)
    assert caught.value.field == field


class RowsOfZeros:
    """A stand-in for the stored tiles of any tree: every row full of zero hashes (the widths are what is tested)."""

    def stored_tile(self, level: int, index: int) -> bytes:
        return bytes(32 * 256)

    def tile_entries(self, tile: int, count: int) -> list[bytes]:
        raise AssertionError("not read here")


class NoCheckpoints:
    """No checkpoint: the tree size is given to `read` instead."""

    def latest(self) -> None:
        return None


def served(size: int, address: TileAddress) -> bool:
    tiles = TiledLog(RowsOfZeros(), NoCheckpoints())
    try:
        tiles.read(address, tree_size=size)
    except TileNotFoundError:
        return False
    return True


def test_a_tree_of_70000_has_exactly_the_tiles_the_spec_lists() -> None:
    """273 full level-0 tiles, a partial of width 112, one full level-1 tile, a partial of width 17, and a partial
    level-2 tile of width 1 (tlog-tiles, §Partial Tiles)."""
    size = 70_000
    assert served(size, TileAddress(0, 272)) and not served(size, TileAddress(0, 273))
    assert served(size, TileAddress(0, 273, 112)) and not served(size, TileAddress(0, 273, 113))
    assert served(size, TileAddress(1, 0)) and not served(size, TileAddress(1, 1))
    assert served(size, TileAddress(1, 1, 17)) and not served(size, TileAddress(1, 1, 18))
    assert served(size, TileAddress(2, 0, 1)) and not served(size, TileAddress(2, 0, 2))
    assert not served(size, TileAddress(2, 0)) and not served(size, TileAddress(3, 0, 1))
    assert served(256, TileAddress(0, 0)) and served(256, TileAddress(1, 0, 1))  # the spec's tree of 256
    assert not served(256, TileAddress(0, 1, 1))


def test_an_entry_bundle_prefixes_each_entry_with_its_big_endian_uint16_length() -> None:
    assert encode_entry_bundle([b"ab", b"", b"x" * 300]) == b"\x00\x02ab\x00\x00\x01\x2c" + b"x" * 300
    with pytest.raises(TileStorageError):
        encode_entry_bundle([b"x" * 65_536])


def test_tiles_and_bundles_come_from_the_stored_tree_up_to_the_checkpoint(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    for _ in range(600):
        join(ledger_app, plan)
    tree = ledger_app.log
    checkpoints = ledger_app.checkpoints
    size = checkpoints.publish(START).size
    assert size == INITIAL + 601
    width = size - 512
    tiles = TiledLog(tree, checkpoints)
    entries = [entry for _, entry in ledger_app.entries()]
    leaves = [leaf_hash(entry) for entry in entries]
    assert tiles.read(TileAddress(0, 1)) == b"".join(leaves[256:512])
    assert tiles.read(TileAddress(0, 2, width)) == b"".join(leaves[512:size])
    assert tiles.read(TileAddress(0, 2, 3)) == b"".join(leaves[512:515])  # an earlier checkpoint's partial tile
    level_one = [_subtree(leaves[i * 256:(i + 1) * 256]) for i in range(2)]
    assert tiles.read(TileAddress(1, 0, 2)) == b"".join(level_one)
    bundle = tiles.read(TileAddress(None, 2, width))
    assert bundle == b"".join(struct.pack(">H", len(e)) + e for e in entries[512:size])
    join(ledger_app, plan)
    tree.integrate()  # integrated, but no checkpoint covers it yet: not public
    with pytest.raises(TileNotFoundError):
        tiles.read(TileAddress(0, 2, width + 1))
    with pytest.raises(TileNotFoundError):
        tiles.read(TileAddress(None, 2, width + 1))


def test_a_stored_entry_that_no_longer_hashes_to_its_leaf_is_not_served(ledger_app: Ledger) -> None:
    tree = ledger_app.log
    checkpoints = ledger_app.checkpoints
    checkpoints.publish(START)
    with tree.sql.transaction() as cursor:  # the stored leaf hash of entry 3 rewritten under the log
        row = cursor.execute(f"SELECT hashes FROM {tree.tiles} WHERE level = 0 AND idx = 0").fetchone()
        assert row is not None
        forged = bytes(row[0])[:3 * 32] + hashlib.sha256(b"forged").digest() + bytes(row[0])[4 * 32:]
        cursor.execute(f"UPDATE {tree.tiles} SET hashes = ? WHERE level = 0 AND idx = 0", (forged,))
    with pytest.raises(TileStorageError) as caught:
        TiledLog(tree, checkpoints).read(TileAddress(None, 0, INITIAL))
    assert caught.value.rule == "entry_must_hash_to_its_leaf"


def _subtree(hashes: list[bytes]) -> bytes:
    while len(hashes) > 1:
        hashes = [node_hash(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def test_a_tree_beyond_what_is_stored_is_refused_not_served() -> None:
    """Tiles or entries that storage does not hold under a size it should (an operator that lost or truncated them)
    are a storage failure, never a short or made-up tile."""

    class Truncated:
        def stored_tile(self, level: int, index: int) -> bytes:
            return bytes(32)  # one hash where five should be

        def tile_entries(self, tile: int, count: int) -> list[bytes]:
            raise LookupError(f"the entries of tile {tile} are not stored")

    tiles = TiledLog(Truncated(), NoCheckpoints())
    with pytest.raises(TileStorageError) as caught:
        tiles.read(TileAddress(0, 0, 5), tree_size=5)
    assert (caught.value.field, caught.value.rule) == ("path", "tile_must_be_integrated")

    class EntriesLost(RowsOfZeros):
        def tile_entries(self, tile: int, count: int) -> list[bytes]:
            raise LookupError(f"the entries of tile {tile} are not stored")

    with pytest.raises(TileStorageError) as caught:
        TiledLog(EntriesLost(), NoCheckpoints()).read(TileAddress(None, 0, 5), tree_size=5)
    assert (caught.value.field, caught.value.rule) == ("path", "tile_must_be_stored")
