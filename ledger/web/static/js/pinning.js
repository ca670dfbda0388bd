// Pinning the trust anchors on a first visit. The page takes the log's key and the witness policy from the service
// that serves it; pinned, they are compared with what the reader got out of band, and every later visit is held to
// them. What is pinned is a fingerprint of exactly what the browser trusts — the log's origin and verifier key and
// the witness policy — the first 32 hex digits of the SHA-256 of their RFC 8785 text (ledger/anchors.py
// `TrustAnchors.fingerprint` computes the same; `mutual-ledger keys fingerprint` prints it and the link). It comes:
//
// - in the link the reader was given (a QR code on the plan's card, the regulator's site): `…#anchors=<fingerprint>`
//   — the fragment never reaches the service; the page pins it when the served anchors match it, else refuses;
// - or from the reader: the page shows the fingerprint in groups of four, the reader compares it with the one their
//   plan publishes and pins it with one tap.
//
// Once pinned (IndexedDB, per log origin), served anchors with another fingerprint are refused, naming both.

import { sha256, toHex, utf8 } from "./bytes.js";
import { canonicalize } from "./jcs.js";
import { deletePin, loadPin, savePin } from "./keystore.js";

export const FINGERPRINT_DIGITS = 32;
const FRAGMENT = /(?:^#|&)anchors=([^&]*)/;

/** The fingerprint of the anchors the browser trusts: the log's origin and key, and the witness policy if any. */
export async function fingerprintOf(anchors) {
  if (!anchors?.log?.verifier_key) throw new Error("the trust anchors name no log verifier key");
  const trusted = { log: { origin: anchors.log.origin, verifier_key: anchors.log.verifier_key } };
  if (anchors.witnesses) trusted.witnesses = { keys: anchors.witnesses.keys, threshold: anchors.witnesses.threshold };
  return toHex(await sha256(utf8(canonicalize(trusted)))).slice(0, FINGERPRINT_DIGITS);
}

/** A fingerprint as people compare it: groups of four hex digits. */
export function grouped(fingerprint) {
  return (fingerprint.match(/.{1,4}/g) ?? []).join(" ");
}

/**
 * The fingerprint a link carries in its fragment (`#anchors=…`; spaces, dashes and case do not matter), or null
 * when it carries none. A malformed one is returned as given (at most 64 characters): it matches no anchors.
 */
export function linkedFingerprint(hash) {
  const found = FRAGMENT.exec(hash ?? "");
  if (!found) return null;
  let text = found[1];
  try {
    text = decodeURIComponent(text);
  } catch {
    // not percent-encoded text: compared as it is, it matches nothing
  }
  return text.replace(/[\s-]/g, "").toLowerCase().slice(0, 64) || "(none)";
}

/**
 * What the served anchors are worth to this browser for a log origin `scope`, given the page's fragment `hash`:
 * {status, fingerprint, expected, source}. status "pinned" (as pinned before), "pinned-now" (the link's
 * fingerprint matched and is now pinned), "unpinned" (nothing to compare with: trust on first use), or "mismatch"
 * (the link's or the pinned fingerprint is `expected`; the served anchors are not to be trusted). `source` says
 * where `expected` came from: "link" or "pin".
 */
export async function checkPin(anchors, hash, scope) {
  const fingerprint = await fingerprintOf(anchors);
  const linked = linkedFingerprint(hash);
  if (linked !== null) {
    if (linked !== fingerprint) return { status: "mismatch", fingerprint, expected: linked, source: "link" };
    await savePin(scope, fingerprint);  // a link from out of band re-pins, as after a witness policy change
    return { status: "pinned-now", fingerprint, expected: linked, source: "link" };
  }
  const pinned = await loadPin(scope);
  if (pinned === undefined) return { status: "unpinned", fingerprint, expected: null, source: null };
  if (pinned !== fingerprint) return { status: "mismatch", fingerprint, expected: pinned, source: "pin" };
  return { status: "pinned", fingerprint, expected: pinned, source: "pin" };
}

/** Pin a fingerprint the reader compared themselves. */
export function pin(scope, fingerprint) {
  return savePin(scope, fingerprint);
}

/** Forget the pin (the reader starts over: the next visit is a first one). */
export function unpin(scope) {
  return deletePin(scope);
}
