// The signed-event envelope, read as strictly as ledger/envelope.py reads it: exactly the contract's keys and types,
// in RFC 8785 canonical form. event hash = SHA-256(JCS(envelope without sig)); the signature is Ed25519 over
// "mutual-ledger/event/v1\n" || event hash.

import { base64Decode, base64Encode, concat, sha256, toHex, utf8 } from "./bytes.js";
import { canonicalize } from "./jcs.js";
import { ed25519Verify } from "./ed25519.js";

export const ROLES = ["operator", "custodian", "investigator", "juror", "member", "regulator"];
const KEYS = ["actor", "at", "body", "prev", "schema", "seq", "sig", "stream", "type", "v"];
const AT = /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.[0-9]{6}Z$/;
const TYPE = /^[a-z][a-z_]*\.[a-z][a-z_]*$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const HASH = /^[0-9a-f]{64}$/;
const SIG = /^[A-Za-z0-9+/]{86}==$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SIGNATURE_PREFIX = utf8("mutual-ledger/event/v1\n");

/** An envelope breaks the contract; the message names the field and the rule. */
export class EnvelopeError extends Error {
  constructor(field, rule) {
    super(`${field}: ${rule}`);
    this.field = field;
    this.rule = rule;
  }
}

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const isInt = (value) => typeof value === "number" && Number.isInteger(value);

/** Whether an RFC 3339 `at` names a real instant (the checks of Python's datetime.fromisoformat). */
export function isRealInstant(text) {
  const match = AT.exec(text);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= days && hour <= 23 && minute <= 59 &&
    second <= 59;
}

/** Throw EnvelopeError when a decoded envelope breaks the contract (ledger.envelope.check_envelope_json). */
export function checkEnvelope(data) {
  if (!isObject(data)) throw new EnvelopeError("envelope", "must be a JSON object");
  const keys = Object.keys(data).sort();
  if (keys.length !== KEYS.length || keys.some((key, i) => key !== KEYS[i])) {
    throw new EnvelopeError("envelope", `keys must be exactly ${JSON.stringify(KEYS)}`);
  }
  if (data.v !== 1) throw new EnvelopeError("v", "must be 1");
  if (typeof data.stream !== "string") throw new EnvelopeError("stream", "must be a string UUID");
  if (!UUID.test(data.stream)) throw new EnvelopeError("stream", "must be a lowercase hyphenated UUID");
  if (!isInt(data.seq) || data.seq < 1) throw new EnvelopeError("seq", "must be an integer >= 1");
  if (typeof data.type !== "string" || !TYPE.test(data.type)) {
    throw new EnvelopeError("type", "must be <noun>.<past_tense> in lowercase");
  }
  if (!isInt(data.schema) || data.schema < 1) throw new EnvelopeError("schema", "must be an integer >= 1");
  if (typeof data.at !== "string") throw new EnvelopeError("at", "must be a string");
  if (!isRealInstant(data.at)) throw new EnvelopeError("at", "must be RFC 3339 UTC with microseconds and Z");
  checkActor(data.actor);
  if (data.seq === 1) {
    if (data.prev !== null) throw new EnvelopeError("prev", "must be null for seq 1");
  } else if (typeof data.prev !== "string" || !HASH.test(data.prev)) {
    throw new EnvelopeError("prev", "must be the lowercase hex SHA-256 event hash of seq-1");
  }
  if (!isObject(data.body)) throw new EnvelopeError("body", "must be an object");
  if (typeof data.sig !== "string" || !SIG.test(data.sig)) {
    throw new EnvelopeError("sig", "must be base64 of a 64-byte Ed25519 signature");
  }
}

function checkActor(actor) {
  if (!isObject(actor)) throw new EnvelopeError("actor", "must be an object");
  const keys = Object.keys(actor).sort().join(",");
  if (keys !== "key,role" && keys !== "key,on_behalf_of,role") {
    throw new EnvelopeError("actor", "keys must be role, key and optionally on_behalf_of");
  }
  if (!ROLES.includes(actor.role)) throw new EnvelopeError("actor.role", `must be one of ${ROLES.join(", ")}`);
  if (typeof actor.key !== "string" || !KEY_ID.test(actor.key)) {
    throw new EnvelopeError("actor.key", "must be a 16-hex-character key id");
  }
  if (actor.on_behalf_of !== undefined && actor.on_behalf_of !== null && typeof actor.on_behalf_of !== "string") {
    throw new EnvelopeError("actor.on_behalf_of", "must be a member id string");
  }
}

/** An integer JCS would write without an exponent (below 1e21) but beyond 2^53: the ledger's Python reads it as an
 * integer and refuses it (RFC 8785 holds only what an IEEE double holds exactly). */
function hasUnsafeInteger(value) {
  if (typeof value === "number") {
    return Number.isInteger(value) && !Number.isSafeInteger(value) && Math.abs(value) < 1e21;
  }
  if (Array.isArray(value)) return value.some(hasUnsafeInteger);
  if (isObject(value)) return Object.values(value).some(hasUnsafeInteger);
  return false;
}

/**
 * Parse a log entry (a string) strictly into {data, eventHash}: JSON, the contract, and canonical form; throw
 * EnvelopeError naming the field and the rule.
 */
export async function parseEntry(entry) {
  let data;
  try {
    data = JSON.parse(entry);
  } catch (error) {
    throw new EnvelopeError("envelope", `is not valid JSON: ${error.message}`);
  }
  checkEnvelope(data);
  let canonical;
  try {
    if (hasUnsafeInteger(data)) throw new Error("an integer exceeds 2^53");
    canonical = canonicalize(data);
  } catch (error) {
    throw new EnvelopeError("envelope", `has no canonical form: ${error.message}`);
  }
  if (canonical !== entry) throw new EnvelopeError("envelope", "is not in RFC 8785 canonical form");
  const { sig, ...unsigned } = data;
  return { data, eventHash: await sha256(utf8(canonicalize(unsigned))) };
}

/** The event hash as `prev` names it. */
export const hashHex = toHex;

/** Whether `sig` (base64) is a valid event signature over `eventHash` by the raw `publicKey`. */
export async function eventSignatureIsValid(publicKey, eventHash, sig) {
  let signature;
  try {
    signature = base64Decode(sig);
  } catch {
    return false;
  }
  return ed25519Verify(publicKey, signature, concat(SIGNATURE_PREFIX, eventHash));
}

/** The key id: the first 16 hex characters of SHA-256(raw public key). */
export async function keyId(publicKey) {
  return toHex(await sha256(publicKey)).slice(0, 16);
}

/** The event hash of an envelope (its `sig`, if any, left out): SHA-256 of its RFC 8785 form. */
export async function eventHashOf(envelope) {
  const { sig, ...unsigned } = envelope;
  return sha256(utf8(canonicalize(unsigned)));
}

/** Sign an event hash with a WebCrypto Ed25519 private key (non-extractable is enough): the base64 `sig`. */
export async function signEventHash(privateKey, eventHash) {
  const signature = await crypto.subtle.sign({ name: "Ed25519" }, privateKey, concat(SIGNATURE_PREFIX, eventHash));
  return base64Encode(new Uint8Array(signature));
}
