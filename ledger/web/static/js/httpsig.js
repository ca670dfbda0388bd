// RFC 9421 HTTP Message Signatures with Ed25519 (§3.3.6), made in the browser with the member's key: imported once
// from the key file (PKCS#8 PEM, as the ledger's key directory writes it) as a non-extractable WebCrypto key.
//
// Covered components (§2.2): "@method", "@authority", "@path", "@query", and "content-digest" (RFC 9530, SHA-256)
// when the request has a body. Parameters (§2.3): created, expires (a short validity), a random nonce, keyid (the
// keyring's key id), alg="ed25519", tag="mutual-ledger". The server side is ledger/httpsig.py.

import { FormatError, base64Decode, base64Encode, sha256, utf8 } from "./bytes.js";
import { keyId } from "./envelope.js";

export const TAG = "mutual-ledger";
export const LABEL = "ledger";
export const VALIDITY_SECONDS = 60;

/** The key file cannot be used to sign (not a PKCS#8 Ed25519 key, encrypted, or no Ed25519 in this browser). */
export class KeyFileError extends Error {}

function pemBody(text) {
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(text)) {
    throw new KeyFileError("the key file is encrypted: export it without a passphrase to sign in here");
  }
  const match = /-----BEGIN PRIVATE KEY-----([A-Za-z0-9+/=\s]+)-----END PRIVATE KEY-----/.exec(text);
  if (!match) throw new KeyFileError("the key file must be a PKCS#8 PEM private key (BEGIN PRIVATE KEY)");
  try {
    return base64Decode(match[1].replace(/\s+/g, ""));
  } catch (error) {
    if (error instanceof FormatError) throw new KeyFileError("the key file's PEM body is not base64");
    throw error;
  }
}

/**
 * Import the member's key file once: {privateKey (non-extractable), publicKey (raw 32 bytes), keyId}. The public
 * key is read from a short-lived extractable copy (the JWK's "x"), which is dropped at once.
 */
export async function importKeyFile(pemText) {
  const der = pemBody(pemText);
  let privateKey;
  let jwk;
  try {
    const readable = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, true, ["sign"]);
    jwk = await crypto.subtle.exportKey("jwk", readable);
    privateKey = await crypto.subtle.importKey("pkcs8", der, { name: "Ed25519" }, false, ["sign"]);
  } catch (error) {
    throw new KeyFileError(`this browser cannot hold the key as an Ed25519 WebCrypto key (${error.message})`);
  }
  const publicKey = base64Decode(jwk.x.replace(/-/g, "+").replace(/_/g, "/").padEnd(44, "="));
  return { privateKey, publicKey, keyId: await keyId(publicKey) };
}

/** A Structured Field string (RFC 8941 §3.3.3): quoted, with `"` and `\` escaped; printable ASCII only. */
function sfString(text) {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new Error("a signature parameter must be printable ASCII");
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The value of each covered derived component (§2.2.1–2.2.7) for a URL and method. */
function derivedComponents(method, url) {
  return [
    ['"@method"', method.toUpperCase()],
    ['"@authority"', url.host],
    ['"@path"', url.pathname || "/"],
    ['"@query"', url.search || "?"],
  ];
}

/** The signature base (§2.5) and the serialized signature parameters. */
export function signatureBase(components, parameters) {
  const identifiers = components.map(([identifier]) => identifier).join(" ");
  const params = `(${identifiers});created=${parameters.created};expires=${parameters.expires}` +
    `;nonce=${sfString(parameters.nonce)};keyid=${sfString(parameters.keyId)};alg="ed25519";tag=${sfString(TAG)}`;
  const lines = components.map(([identifier, value]) => `${identifier}: ${value}`);
  lines.push(`"@signature-params": ${params}`);
  return { base: lines.join("\n"), params };
}

function randomNonce() {
  return base64Encode(crypto.getRandomValues(new Uint8Array(18))).replace(/\+/g, "-").replace(/\//g, "_");
}

/**
 * The headers that sign a request — Signature-Input, Signature and, with a body, Content-Digest — made with the
 * imported key record. `now` (seconds since the epoch) and `nonce` are for tests; by default the clock and 18 random
 * bytes.
 */
export async function signRequest({ method, url, body = null }, key, { now = null, nonce = null,
  validitySeconds = VALIDITY_SECONDS } = {}) {
  const target = new URL(url, globalThis.location?.href);
  const components = derivedComponents(method, target);
  const headers = {};
  if (body !== null && body !== undefined) {
    const bytes = typeof body === "string" ? utf8(body) : new Uint8Array(body);
    headers["Content-Digest"] = `sha-256=:${base64Encode(await sha256(bytes))}:`;
    components.push(['"content-digest"', headers["Content-Digest"]]);
  }
  const created = now ?? Math.floor(Date.now() / 1000);
  const { base, params } = signatureBase(components, {
    created, expires: created + validitySeconds, nonce: nonce ?? randomNonce(), keyId: key.keyId,
  });
  const signature = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key.privateKey, utf8(base)));
  headers["Signature-Input"] = `${LABEL}=${params}`;
  headers.Signature = `${LABEL}=:${base64Encode(signature)}:`;
  return headers;
}

/** fetch() with the request signed by the key record. */
export async function signedFetch(url, init = {}, key) {
  const method = (init.method ?? "GET").toUpperCase();
  const signing = await signRequest({ method, url, body: init.body ?? null }, key);
  return fetch(url, { ...init, method, headers: { ...(init.headers ?? {}), ...signing } });
}
