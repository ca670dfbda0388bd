"""Merkle tree hashing and proofs exactly as RFC 9162 §2.1 (Certificate Transparency 2.0) defines them.

Pure functions over bytes. `leaf_hash` and `node_hash` are §2.1.1; `mth` / `root_from_leaf_hashes` / `MerkleFold`
compute MTH (§2.1.1) iteratively; `inclusion_proof` / `consistency_proof` generate the PATH and PROOF of
§2.1.3.1 / §2.1.4.1; `verify_inclusion` / `verify_consistency` are the verification algorithms of §2.1.3.2 /
§2.1.4.2. A proof that does not verify raises `ProofError` — the only error a caller needs to handle; a broken
internal precondition (an index outside the tree when generating a proof) is an assertion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from itertools import islice

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() (§2.1.1)."""


class ProofError(ValueError):
    """A Merkle proof does not verify (or is malformed)."""


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d0}) = SHA-256(0x00 || d0) (§2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])) (§2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def reduce_complete(hashes: list[bytes]) -> bytes:
    """The root of a complete subtree given its 2^k bottom hashes (RFC 9162 node hashing)."""
    sha256 = hashlib.sha256
    while len(hashes) > 1:
        hashes = [sha256(b"\x01" + left + right).digest() for left, right in zip(hashes[::2], hashes[1::2],
                                                                                  strict=True)]
    return hashes[0]


def tile_levels(bottom: list[bytes]) -> list[bytes]:
    """Every level of a complete tile of 256 hashes above its bottom row, bottom-up, without the tile's root
    (levels 1..7): what a stored full tile keeps after its bottom row (`ledger.log.tree`)."""
    sha256 = hashlib.sha256
    out: list[bytes] = []
    row = bottom
    while len(row) > 2:
        row = [sha256(b"\x01" + left + right).digest() for left, right in zip(row[::2], row[1::2], strict=True)]
        out.extend(row)
    return out


class MerkleFold:
    """MTH of leaves given by their leaf hashes as they come, in O(n) time and O(log n) memory (§2.1.1): a verifier
    streaming a log takes the root at each checkpoint's size as it passes it.

    Folding complete subtrees left to right and then merging the stack right to left yields the same tree as the
    RFC's recursive split at the largest power of two below n.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (subtree size, hash); sizes strictly decrease down the stack

    def extend(self, hashes: Iterable[bytes]) -> None:
        """Append leaves, in order: taken 65,536 at a time, each run of them that fills a complete subtree where the
        tree stands (2^k leaves when its size is a multiple of 2^k) reduced level by level (`reduce_complete`) and
        pushed as that one subtree, which is what pushing its leaves one by one makes."""
        stack = self._stack
        leaves = iter(hashes)
        while chunk := list(islice(leaves, 65_536)):
            start, count = 0, len(chunk)
            while start < count:
                aligned = self.size & -self.size or 1 << 62  # the largest power of two dividing the size
                block = min(aligned, 1 << ((count - start).bit_length() - 1))
                size, current = block, reduce_complete(chunk[start:start + block])
                while stack and stack[-1][0] == size:
                    current = node_hash(stack.pop()[1], current)
                    size *= 2
                stack.append((size, current))
                self.size += block
                start += block

    def root(self) -> bytes:
        """MTH of the leaves appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1][1]
        for _, value in reversed(self._stack[:-1]):
            root = node_hash(value, root)
        return root


def root_from_leaf_hashes(hashes: Iterable[bytes]) -> bytes:
    """MTH over leaves given by their leaf hashes (§2.1.1)."""
    fold = MerkleFold()
    fold.extend(hashes)
    return fold.root()


def mth(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over the entries themselves (§2.1.1)."""
    return root_from_leaf_hashes([leaf_hash(entry) for entry in entries])


def _largest_power_of_two_below(n: int) -> int:
    """k < n with k a power of two and n <= 2k (§2.1.1); n > 1."""
    return 1 << ((n - 1).bit_length() - 1)


RangeHash = Callable[[int, int], bytes]
"""MTH of the leaves [lo, hi) of a tree: from a list, or from stored subtree hashes (ledger.log.tree)."""


def list_range_hash(hashes: Sequence[bytes]) -> RangeHash:
    """A RangeHash over leaf hashes held in memory."""
    return lambda lo, hi: root_from_leaf_hashes(hashes[lo:hi])


def inclusion_path(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """PATH(m, D[n]) for leaf `index` of the tree of `size` leaves (§2.1.3.1), from subtree hashes."""
    assert 0 <= index < size, "leaf index outside the tree"
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            path.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            path.append(range_hash(lo, lo + k))
            lo = lo + k
    path.reverse()
    return path


def consistency_path(old_size: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """PROOF(m, D[n]) between tree sizes `old_size` and `size` (§2.1.4.1), from subtree hashes."""
    assert 0 < old_size <= size, "old size outside the tree"
    proof: list[bytes] = []
    lo, hi, m, complete = 0, size, old_size, True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                proof.append(range_hash(lo, hi))
            break
        k = _largest_power_of_two_below(n)
        if m <= k:
            proof.append(range_hash(lo + k, hi))
            hi = lo + k
        else:
            proof.append(range_hash(lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    proof.reverse()
    return proof


def inclusion_proof(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) for leaf `index` of the tree over `hashes` (§2.1.3.1)."""
    return inclusion_path(index, len(hashes), list_range_hash(hashes))


def consistency_proof(old_size: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) between size `old_size` and the tree over `hashes` (§2.1.4.1)."""
    return consistency_path(old_size, len(hashes), list_range_hash(hashes))


def _check_hashes(*values: bytes) -> None:
    for value in values:
        if len(value) != HASH_SIZE:
            raise ProofError(f"a hash must be {HASH_SIZE} bytes, found {len(value)}")


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Check that the leaf hash `leaf` is at `index` in the tree of `size` with `root` (§2.1.3.2)."""
    _check_hashes(leaf, root, *proof)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check that the tree of `old_size` with `old_root` is a prefix of the one of `new_size` (§2.1.4.2)."""
    _check_hashes(old_root, new_root, *proof)
    if old_size < 1 or old_size > new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if old_root != new_root:
            raise ProofError("equal sizes with different roots")
        return
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    if not path:
        raise ProofError("empty consistency proof")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")
