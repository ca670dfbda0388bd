// RFC 8785 JSON Canonicalization Scheme: the canonical text of a JSON value (what entries and roll leaves are).
//
// §3.2.2.2: strings as ECMAScript's JSON.stringify writes them (which escapes exactly `"`, `\`, and control
// characters, with the short forms and lowercase \u00xx); §3.2.2.3: numbers as ECMAScript's Number-to-String;
// §3.2.3: object members sorted by their names' UTF-16 code units; no whitespace. Lone surrogates have no
// canonical form (§3.2.2.2) and are refused, as are values JSON cannot hold.

import { FormatError, isWellFormed, utf8 } from "./bytes.js";

/** The RFC 8785 canonical text of `value`. */
export function canonicalize(value) {
  if (value === null || typeof value === "boolean") return String(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new FormatError("number: JSON has no NaN or Infinity (RFC 8785 §3.2.2.3)");
    return Object.is(value, -0) ? "0" : String(value);
  }
  if (typeof value === "string") {
    if (!isWellFormed(value)) throw new FormatError("string: lone surrogates have no canonical form (RFC 8785)");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalize).join(",")}]`;
  if (typeof value === "object") {
    // Default sort compares UTF-16 code units, as §3.2.3 requires.
    const names = Object.keys(value).sort();
    return `{${names.map((name) => `${canonicalize(name)}:${canonicalize(value[name])}`).join(",")}}`;
  }
  throw new FormatError(`value: ${typeof value} is not JSON`);
}

/** The canonical UTF-8 bytes of `value`. */
export function canonicalBytes(value) {
  return utf8(canonicalize(value));
}
