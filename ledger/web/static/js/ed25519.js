// Ed25519 verification (RFC 8032) with the strictness of the ledger's own verifier (libsodium): WebCrypto where
// the browser has Ed25519, otherwise the vendored, pinned @noble/ed25519 (vendor/README.md). Both are given the
// same inputs only after the checks libsodium makes and WebCrypto does not: S below the group order L, a canonical
// public key, and neither the public key nor R of small order. So a signature verifies here exactly when the
// ledger's Python verifier accepts it, whichever backend runs.

import * as noble from "./vendor/noble-ed25519-3.2.0.js";

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n; // RFC 8032 §5.1
const ORDER_EIGHT_Y = 2707385501144840649318225287225658788936804267575313519463743609750303402022n;
// The y-coordinates of the points of order 1, 2, 4 and 8 (x only flips the sign bit), and the two that have a
// second, non-canonical encoding (p ≡ 0, p + 1 ≡ 1).
const SMALL_ORDER_Y = new Set([0n, 1n, P - 1n, ORDER_EIGHT_Y, P - ORDER_EIGHT_Y, P, P + 1n]);

let chosen = "auto";
let webCryptoAnswer = null;
export const used = { webcrypto: 0, noble: 0 };

/** Choose the backend: "auto" (WebCrypto when the browser has Ed25519), "webcrypto", or "noble". */
export function useBackend(name) {
  if (!["auto", "webcrypto", "noble"].includes(name)) throw new Error(`ed25519 backend: unknown ${name}`);
  chosen = name;
}

/** Whether this browser's WebCrypto verifies Ed25519 (asked once). */
export async function webCryptoHasEd25519() {
  if (webCryptoAnswer === null) {
    try {
      await crypto.subtle.importKey("raw", new Uint8Array(32).fill(0x11), { name: "Ed25519" }, false, ["verify"]);
      webCryptoAnswer = true;
    } catch {
      webCryptoAnswer = false;
    }
  }
  return webCryptoAnswer;
}

/** The backend that the next verification uses. */
export async function backendInUse() {
  if (chosen !== "auto") return chosen;
  return (await webCryptoHasEd25519()) ? "webcrypto" : "noble";
}

function littleEndian(bytes) {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]);
  return value;
}

function yOf(encoded) {
  const copy = Uint8Array.from(encoded);
  copy[31] &= 0x7f; // the top bit is the sign of x
  return littleEndian(copy);
}

/** Why libsodium would refuse these inputs before any curve arithmetic, or null. */
export function strictnessProblem(publicKey, signature) {
  if (publicKey.length !== 32 || signature.length !== 64) return "a key is 32 bytes and a signature 64";
  if (littleEndian(signature.subarray(32)) >= L) return "S is not below the group order";
  const y = yOf(publicKey);
  if (y >= P) return "the public key is not canonically encoded";
  if (SMALL_ORDER_Y.has(y)) return "the public key has small order";
  if (SMALL_ORDER_Y.has(yOf(signature.subarray(0, 32)))) return "R has small order";
  return null;
}

/** Whether `signature` is a valid Ed25519 signature of `message` by the raw 32-byte `publicKey`. */
export async function ed25519Verify(publicKey, signature, message) {
  if (strictnessProblem(publicKey, signature) !== null) return false;
  const backend = await backendInUse();
  used[backend] += 1;
  if (backend === "webcrypto") {
    try {
      const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
      return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
    } catch {
      return false;
    }
  }
  try {
    return await noble.verifyAsync(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}
