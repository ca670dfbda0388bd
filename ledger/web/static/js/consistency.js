// Checking a newly served checkpoint against the one this browser verified before (as ledger/log/witness.py's
// CheckpointFollower does): signed by the log key, same origin, not smaller, and an RFC 9162 consistency proof from
// the remembered size. When the log contradicts what was seen before, the result carries the evidence — both signed
// checkpoints and the failing proof, in the format the ledger's witnesses and monitors write — to download and show.

import { base64Encode } from "./bytes.js";
import { ProofError, verifyConsistency } from "./merkle.js";
import { NoteError, parseCheckpoint, verifyNote } from "./note.js";

/** The evidence of two signed checkpoints that cannot both be true. */
export function evidenceOf(olderNote, newerNote, proof, failure, observer) {
  return {
    kind: "inconsistent checkpoints",
    observer,
    older_checkpoint: olderNote,
    newer_checkpoint: newerNote,
    consistency_proof: proof.map(base64Encode),
    failure,
  };
}

/** The evidence as a file to download (pretty JSON, as the Python tools write it). */
export function evidenceFile(evidence) {
  return new Blob([`${JSON.stringify(evidence, null, 2)}\n`], { type: "application/json" });
}

/**
 * Check `newNote` (with `proof`, the consistency proof from the remembered size, as raw hashes) against
 * `rememberedNote` (null on a first visit). Returns {status, checkpoint, problem, evidence}: status "first",
 * "consistent" (remember the new one), "refused" (not signed, another origin, or a smaller tree: keep the old one),
 * or "inconsistent" (the log forked: `evidence` holds the proof of it).
 */
export async function checkNewCheckpoint(rememberedNote, newNote, proof, logKey, observer = "browser") {
  let checkpoint;
  try {
    checkpoint = parseCheckpoint(await verifyNote(newNote, logKey));
  } catch (error) {
    if (!(error instanceof NoteError)) throw error;
    return { status: "refused", checkpoint: null, problem: `the operator's signature does not verify: ${error.message}` };
  }
  if (rememberedNote === null || rememberedNote === undefined) return { status: "first", checkpoint, problem: null };
  const previous = parseCheckpoint(await verifyNote(rememberedNote, logKey));
  if (checkpoint.origin !== previous.origin) {
    return { status: "refused", checkpoint, problem: `origin changed from ${previous.origin} to ${checkpoint.origin}` };
  }
  if (checkpoint.size < previous.size) {
    return { status: "refused", checkpoint, problem: `the tree shrank from ${previous.size} to ${checkpoint.size}` };
  }
  const used = checkpoint.size === previous.size ? [] : proof;
  try {
    await verifyConsistency(previous.size, checkpoint.size, previous.root, checkpoint.root, used);
  } catch (error) {
    if (!(error instanceof ProofError)) throw error;
    return { status: "inconsistent", checkpoint, problem: error.message,
      evidence: evidenceOf(rememberedNote, newNote, used, error.message, observer) };
  }
  return { status: "consistent", checkpoint, problem: null };
}
