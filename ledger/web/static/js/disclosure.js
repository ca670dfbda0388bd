// A period's 公示 checked in the browser: the document's hash against the signed `disclosure.published` event, that
// event's signature by a key the log registered, and its inclusion in the checkpoint — with the bundle procedure's
// own steps (bundle.js `Procedure.runSigned`: checkpoint, inclusion, envelope, keys, signatures) and two of its own,
// `disclosure.event` and `disclosure.document`. The input is the API's answer to GET /api/v1/periods/{p}/disclosure.

import { sha256, toHex } from "./bytes.js";
import { Procedure } from "./bundle.js";
import { canonicalBytes } from "./jcs.js";

export const DISCLOSURE_STEPS = ["checkpoint.signature", "checkpoint.cosignature", "event.inclusion",
  "event.envelope", "keyring.root", "keyring.registration", "event.key", "event.signature", "disclosure.event",
  "disclosure.document"];

function report(procedure) {
  const first = procedure.findings.find((f) => !f.ok);
  return { ok: first === undefined, failing_step: first ? first.step : null, findings: procedure.findings };
}

/** The SHA-256 (hex) of a document's RFC 8785 bytes: what a `disclosure.published` event pins. */
export async function documentHash(document) {
  return toHex(await sha256(canonicalBytes(document)));
}

/**
 * Check a disclosure (the API's answer) with the log's verifier key and the witnesses' keys (as parsed by
 * note.parseVerifier); return {ok, failing_step, findings: [{step, subject, ok, detail}]} as checkBundle does.
 */
export async function checkDisclosure(disclosure, logKey, witnessKeys = []) {
  const event = disclosure?.event;
  if (!event || typeof event.checkpoint?.note !== "string") {
    const procedure = new Procedure({ events: [] }, logKey, witnessKeys);
    procedure.record("disclosure.event", {}, "the disclosure.published event is not yet in a published checkpoint");
    return report(procedure);
  }
  const byIndex = new Map();
  for (const item of [event, ...(disclosure.keys ?? [])]) {
    if (!byIndex.has(item.index)) byIndex.set(item.index, { index: item.index, entry: item.entry, proof: item.proof });
  }
  const procedure = new Procedure({ member: null, checkpoint: event.checkpoint.note, events: [...byIndex.values()],
    rolls: [] }, logKey, witnessKeys);
  const checkpoint = await procedure.runSigned();
  if (checkpoint === null) return report(procedure);
  const subject = procedure.subjects.get(event.index);
  const envelope = procedure.envelopes.get(event.index);
  let problem = null;
  if (envelope === undefined) {
    problem = "the event is not a valid envelope";
  } else if (envelope.data.type !== "disclosure.published" || envelope.data.actor.role !== "operator") {
    problem = `the event is a ${envelope.data.type} by ${envelope.data.actor.role}, not the operator's ` +
      "disclosure.published";
  } else if (envelope.data.body.period !== disclosure.period) {
    problem = `the event publishes period ${envelope.data.body.period}, not ${disclosure.period}`;
  }
  procedure.record("disclosure.event", subject, problem);
  if (problem === null) {
    const digest = await documentHash(disclosure.document);
    const pinned = envelope.data.body.document_hash;
    procedure.record("disclosure.document", { period: disclosure.period }, digest === pinned ? null :
      `the document shown hashes to ${digest}; the signed event pins ${pinned}`);
  }
  return report(procedure);
}
