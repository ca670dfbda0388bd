// C2SP signed notes (Ed25519), tlog-checkpoint bodies and tlog-cosignature/v1 lines, as ledger/log/note.py reads
// them (and with the same strictness): a note or key that does not parse or verify throws NoteError.
//
// signed-note: text ending in a newline, a blank line, then lines `— <name> <base64(key hash (4) || signature)>`;
// key hash = SHA-256(name || "\n" || type || public key)[:4], type 0x01 for Ed25519 note signatures, 0x04 for
// tlog-cosignature/v1, whose signature is over "cosignature/v1\ntime <T>\n" + the checkpoint text and whose line
// carries key hash || T (8 bytes, big-endian) || signature.

import { FormatError, base64Decode, concat, equalBytes, sha256, utf8 } from "./bytes.js";
import { ed25519Verify } from "./ed25519.js";

export const ED25519 = 0x01;
export const COSIGNATURE_V1 = 0x04;
const DASH = "\u2014";
const NAME = /^[^\s+]+$/u;

/** A signed note, checkpoint or verifier key is malformed or does not verify. */
export class NoteError extends Error {}

/** The 4-byte key hash of a signed-note key. */
export async function keyHash(name, kind, publicKey) {
  return (await sha256(concat(utf8(`${name}\n`), Uint8Array.of(kind), publicKey))).slice(0, 4);
}

/** A verifier key `name+hash+base64(type || key)`, parsed and checked (the hash must match). */
export async function parseVerifier(text) {
  const parts = String(text).trim().split("+");
  if (parts.length < 3 || !NAME.test(parts[0])) throw new NoteError("verifier key: must be name+hash+key");
  const [name, hashHex] = parts;
  const encoded = parts.slice(2).join("+");
  let raw;
  if (!/^([0-9a-fA-F]{2})*$/.test(hashHex)) throw new NoteError("verifier key: hash must be hex and key base64");
  try {
    raw = base64Decode(encoded);
  } catch {
    throw new NoteError("verifier key: hash must be hex and key base64");
  }
  if (raw.length !== 33 || (raw[0] !== ED25519 && raw[0] !== COSIGNATURE_V1)) {
    throw new NoteError("verifier key: must be a 32-byte Ed25519 key of type 0x01 or 0x04");
  }
  const verifier = { name, publicKey: raw.slice(1), kind: raw[0] };
  const expected = hashHex.toLowerCase();
  const actual = Array.from(await keyHash(name, verifier.kind, verifier.publicKey), (b) =>
    b.toString(16).padStart(2, "0")).join("");
  if (expected.length !== 8 || actual !== expected) {
    throw new NoteError("verifier key: key hash does not match the name and key");
  }
  return verifier;
}

/** [text, signature lines] of a signed note. */
export function splitNote(note) {
  const cut = note.indexOf("\n\n");
  if (cut < 0 || !note.endsWith("\n")) {
    throw new NoteError("signed note: must be text, a blank line, then signature lines");
  }
  const signatures = note.slice(cut + 2);
  if (!signatures.endsWith("\n")) throw new NoteError("signed note: must be text, a blank line, then signature lines");
  const lines = signatures.slice(0, -1).split("\n");
  if (!lines.length || lines.some((line) => !line.startsWith(`${DASH} `))) {
    throw new NoteError("signed note: every signature line starts with an em dash and a space");
  }
  return [note.slice(0, cut + 1), lines.map((line) => `${line}\n`)];
}

function parseLine(line) {
  const parts = line.replace(/\n$/, "").split(" ");
  if (parts.length !== 3 || parts[0] !== DASH) throw new NoteError("signature line: must be '— name base64'");
  try {
    return [parts[1], base64Decode(parts[2])];
  } catch (error) {
    if (error instanceof FormatError) throw new NoteError("signature line: signature must be base64");
    throw error;
  }
}

/** The text of `note` if it carries a valid signature by `verifier` (type 0x01); otherwise throws NoteError. */
export async function verifyNote(note, verifier) {
  const [text, lines] = splitNote(note);
  const hash = await keyHash(verifier.name, verifier.kind, verifier.publicKey);
  for (const line of lines) {
    const [name, blob] = parseLine(line);
    if (name === verifier.name && equalBytes(blob.slice(0, 4), hash) && verifier.kind === ED25519) {
      if (await ed25519Verify(verifier.publicKey, blob.slice(4), utf8(text))) return text;
      throw new NoteError(`signed note: the signature by ${name} does not verify`);
    }
  }
  throw new NoteError(`signed note: no signature by ${verifier.name}`);
}

/** The timestamp of a valid tlog-cosignature/v1 by `verifier` on `note`; otherwise throws NoteError. */
export async function verifyCosignature(note, verifier) {
  const [text, lines] = splitNote(note);
  const hash = await keyHash(verifier.name, COSIGNATURE_V1, verifier.publicKey);
  for (const line of lines) {
    const [name, blob] = parseLine(line);
    if (name === verifier.name && equalBytes(blob.slice(0, 4), hash) && blob.length === 4 + 8 + 64) {
      const timestamp = new DataView(blob.buffer, blob.byteOffset + 4, 8).getBigUint64(0);
      const message = concat(utf8(`cosignature/v1\ntime ${timestamp}\n`), utf8(text));
      if (await ed25519Verify(verifier.publicKey, blob.slice(12), message)) return Number(timestamp);
      throw new NoteError(`cosignature: the signature by ${name} does not verify`);
    }
  }
  throw new NoteError(`cosignature: none by ${verifier.name}`);
}

/** A tlog-checkpoint body: {origin, size, root, extensions}. */
export function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length < 4 || lines[lines.length - 1] !== "" || !lines[0]) {
    throw new NoteError("checkpoint: must be origin, size and root hash lines");
  }
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) {
    throw new NoteError("checkpoint: tree size must be a decimal without leading zeros");
  }
  let root;
  try {
    root = base64Decode(lines[2]);
  } catch {
    throw new NoteError("checkpoint: root hash must be base64");
  }
  if (root.length !== 32) throw new NoteError("checkpoint: root hash must be 32 bytes");
  const size = Number(lines[1]);
  if (!Number.isSafeInteger(size)) throw new NoteError("checkpoint: tree size is too large");
  return { origin: lines[0], size, root, extensions: lines.slice(3, -1) };
}
