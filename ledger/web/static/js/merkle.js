// Merkle tree hashing and proof verification exactly as RFC 9162 §2.1 defines them (as ledger/log/merkle.py).
// A proof that does not verify throws ProofError, the one error a caller handles.

import { concat, equalBytes, sha256 } from "./bytes.js";

export const HASH_SIZE = 32;

/** A Merkle proof does not verify (or is malformed). */
export class ProofError extends Error {}

/** MTH({d0}) = SHA-256(0x00 || d0) — RFC 9162 §2.1.1. */
export function leafHash(entry) {
  return sha256(concat(Uint8Array.of(0), entry));
}

/** SHA-256(0x01 || left || right) — RFC 9162 §2.1.1. */
export function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(1), left, right));
}

function checkHashes(...values) {
  for (const value of values) {
    if (value.length !== HASH_SIZE) throw new ProofError(`a hash must be ${HASH_SIZE} bytes, found ${value.length}`);
  }
}

/** Check that the leaf hash `leaf` is at `index` in the tree of `size` with `root` — RFC 9162 §2.1.3.2. */
export async function verifyInclusion(index, size, leaf, proof, root) {
  checkHashes(leaf, root, ...proof);
  if (!(index >= 0 && index < size)) throw new ProofError(`leaf index ${index} is outside a tree of size ${size}`);
  // fn and sn stay below 2^53 (indexes of the log), so Number arithmetic by division is exact; >> would cut at 2^31.
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new ProofError("inclusion proof is longer than the tree is deep");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError("inclusion proof is shorter than the tree is deep");
  if (!equalBytes(r, root)) throw new ProofError("inclusion proof does not lead to the root");
}

/** Check that the tree of `oldSize` with `oldRoot` is a prefix of the one of `newSize` — RFC 9162 §2.1.4.2. */
export async function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  checkHashes(oldRoot, newRoot, ...proof);
  if (oldSize < 1 || oldSize > newSize) {
    throw new ProofError(`no consistency proof from size ${oldSize} to size ${newSize}`);
  }
  if (oldSize === newSize) {
    if (proof.length) throw new ProofError("a proof between equal sizes must be empty");
    if (!equalBytes(oldRoot, newRoot)) throw new ProofError("equal sizes with different roots");
    return;
  }
  const path = [...proof];
  if (isPowerOfTwo(oldSize)) path.unshift(oldRoot); // the old root is the first node
  if (!path.length) throw new ProofError("empty consistency proof");
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError("consistency proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (fn % 2 === 0) {
        while (fn !== 0 && fn % 2 === 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError("consistency proof is too short");
  if (!equalBytes(fr, oldRoot)) throw new ProofError("consistency proof does not lead to the old root");
  if (!equalBytes(sr, newRoot)) throw new ProofError("consistency proof does not lead to the new root");
}

function isPowerOfTwo(n) {
  while (n > 1 && n % 2 === 0) n /= 2;
  return n === 1;
}
