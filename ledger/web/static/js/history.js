// "Verify my history": the member's proof bundle checked by bundle.js against the trust anchors, under their witness
// policy, then the checkpoint it was checked against compared with the one this browser verified before
// (consistency.js). The page (pages/member.js) only fetches and shows; the checks are here and in the modules this
// imports.

import { base64Decode } from "./bytes.js";
import { checkBundle } from "./bundle.js";
import { checkNewCheckpoint } from "./consistency.js";
import { COSIGNATURE_V1, NoteError, parseCheckpoint, parseVerifier, splitNote, verifyCosignature } from "./note.js";

/**
 * What a browser trusts, from the trust anchors file: the log's verifier key and the witness policy
 * `{"witnesses": {"keys": [verifier key, …], "threshold": n}}` (no policy: no cosignature required).
 */
export async function trustOf(anchors) {
  if (!anchors?.log?.verifier_key) throw new Error("the trust anchors name no log verifier key");
  const logKey = await parseVerifier(anchors.log.verifier_key);
  const policy = anchors.witnesses ?? { keys: [], threshold: 0 };
  const witnesses = await Promise.all((policy.keys ?? []).map(parseVerifier));
  return { logKey, witnesses, threshold: Number(policy.threshold ?? witnesses.length) };
}

/** Which of the policy's witnesses validly cosigned a checkpoint note, and whether that meets its threshold. */
export async function witnessPolicy(note, witnesses, threshold) {
  const present = [];
  const missing = [];
  for (const witness of witnesses) {
    try {
      await verifyCosignature(note, { ...witness, kind: COSIGNATURE_V1 });
      present.push(witness);
    } catch (error) {
      if (!(error instanceof NoteError)) throw error;
      missing.push(witness);
    }
  }
  return { present, missing, threshold, satisfied: present.length >= threshold };
}

/**
 * Run `check(witnesses)` — a report of checkBundle's shape — under the witness policy for the checkpoint `note`:
 * with the witnesses whose cosignatures count when the threshold is met (a missing witness beyond it is no
 * failure), with every policy witness when it is not (so the checklist names each one missing). The policy itself is
 * the report's first finding, `witness.policy`.
 */
export async function underPolicy(note, trust, check) {
  let policy = { present: [], missing: trust.witnesses, threshold: trust.threshold, satisfied: trust.threshold <= 0 };
  if (typeof note === "string") policy = await witnessPolicy(note, trust.witnesses, trust.threshold);
  const report = await check(policy.satisfied ? policy.present : trust.witnesses);
  const finding = { step: "witness.policy", subject: { witnesses: policy.present.map((w) => w.name) },
    ok: policy.satisfied, detail: policy.satisfied ? "" :
      `${policy.present.length} of ${trust.witnesses.length} witnesses cosigned; the policy needs ${trust.threshold}` };
  const findings = [finding, ...report.findings];
  const first = findings.find((f) => !f.ok);
  return { ...report, ok: report.ok && policy.satisfied, failing_step: first ? first.step : null, findings, policy };
}

/** Check a member's bundle under the trust anchors' witness policy. */
export function checkHistory(bundle, trust) {
  return underPolicy(bundle?.checkpoint, trust, (witnesses) => checkBundle(bundle, trust.logKey, witnesses));
}

/**
 * The bundle's checkpoint against the one remembered: fetches the consistency proof with `fetchProof(old, size)`
 * (base64 hashes) when the tree grew; returns checkNewCheckpoint's result.
 */
export async function checkAgainstRemembered(remembered, note, logKey, fetchProof) {
  let proof = [];
  if (remembered) {
    const [oldText] = splitNote(remembered);
    const [newText] = splitNote(note);
    const older = parseCheckpoint(oldText);
    const newer = parseCheckpoint(newText);
    if (older.size > 0 && newer.size > older.size) proof = (await fetchProof(older.size, newer.size)).map(base64Decode);
  }
  return checkNewCheckpoint(remembered ?? null, note, proof, logKey);
}
