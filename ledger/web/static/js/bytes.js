// Bytes, strict base64 and hex, and UTF-8: the small conversions every check needs, written once.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const VALUES = new Map([...ALPHABET].map((c, i) => [c, i]));
const STRICT_BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** An error for input that is not what a field must be; the message names the field and the rule. */
export class FormatError extends Error {}

/**
 * Decode base64 as Python's `base64.b64decode(text, validate=True)` does: only the alphabet and at most two `=` at
 * the end; the data characters must not leave one over a multiple of four, and a partial last group needs its
 * padding (a complete one tolerates extra). Unused low bits of the last character are ignored, as there.
 */
export function base64Decode(text) {
  if (typeof text !== "string" || !STRICT_BASE64.test(text)) {
    throw new FormatError("base64: must be the standard alphabet with at most two = at the end");
  }
  const body = text.replace(/=+$/, "");
  const padding = text.length - body.length;
  const rest = body.length % 4;
  if ((padding && !body.length) || rest === 1 || (rest === 2 && padding < 2) || (rest === 3 && padding < 1)) {
    throw new FormatError("base64: the padding does not match the length");
  }
  const out = new Uint8Array(Math.floor((body.length * 6) / 8));
  let buffer = 0;
  let bits = 0;
  let position = 0;
  for (const character of body) {
    buffer = (buffer << 6) | VALUES.get(character);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[position++] = (buffer >> bits) & 0xff;
    }
  }
  return out;
}

/** Standard base64 with padding. */
export function base64Encode(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const chunk = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const count = Math.min(3, bytes.length - i);
    for (let j = 0; j < 4; j++) {
      text += j <= count ? ALPHABET[(chunk >> (18 - 6 * j)) & 63] : "=";
    }
  }
  return text;
}

/** Lowercase hex. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Bytes of an even-length hex string. */
export function fromHex(text) {
  if (typeof text !== "string" || !/^([0-9a-fA-F]{2})*$/.test(text)) {
    throw new FormatError("hex: must be an even number of hex digits");
  }
  return Uint8Array.from(text.match(/../g) ?? [], (pair) => parseInt(pair, 16));
}

/** Whether a string has a UTF-8 form: no lone surrogates (what Python's `str.encode()` refuses). */
export function isWellFormed(text) {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return false;
    }
  }
  return true;
}

const encoder = new TextEncoder();

/** The UTF-8 bytes of a well-formed string. */
export function utf8(text) {
  if (!isWellFormed(text)) throw new FormatError("string: must be valid Unicode (no lone surrogates)");
  return encoder.encode(text);
}

/** The bytes of the parts, one after another. */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Whether two byte arrays hold the same bytes. */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/** SHA-256 of bytes, by WebCrypto. */
export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}
