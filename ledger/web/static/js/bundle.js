// The member's proof bundle, checked in the browser: the procedure of audit/bundle.py, step by step, with the same
// stable step ids, in the same order, over the same things — so that both verifiers report the same checklist and
// name the same failing step (tests/vectors/bundles/ holds the bundles they are compared on). Read the Python
// module's docstring for what each step checks; its numbered sections are the `section` of each step here.

import { FormatError, base64Decode, concat, fromHex, isWellFormed, sha256, toHex, utf8 } from "./bytes.js";
import { EnvelopeError, eventSignatureIsValid, keyId, parseEntry, hashHex } from "./envelope.js";
import { canonicalBytes } from "./jcs.js";
import { ProofError, leafHash, verifyConsistency, verifyInclusion } from "./merkle.js";
import { COSIGNATURE_V1, NoteError, parseCheckpoint, splitNote, verifyCosignature, verifyNote } from "./note.js";
import { assess, rollLeaf } from "./sharing.js";

export const FORMAT = "mutual-ledger/proof-bundle/v1";

/** Every step in procedure order: [id, section number, section word]. */
export const STEPS = [
  ["bundle.format", 0, "format"],
  ["checkpoint.signature", 1, "checkpoint"],
  ["checkpoint.cosignature", 1, "checkpoint"],
  ["upgrade.signature", 2, "upgrade"],
  ["upgrade.cosignature", 2, "upgrade"],
  ["upgrade.consistency", 2, "upgrade"],
  ["event.inclusion", 3, "inclusion"],
  ["event.envelope", 4, "envelope"],
  ["keyring.root", 4, "keys"],
  ["keyring.registration", 4, "keys"],
  ["event.key", 4, "signature"],
  ["event.signature", 4, "signature"],
  ["claim.claimant", 5, "chain"],
  ["chain.link", 5, "chain"],
  ["chain.join", 5, "chain"],
  ["roll.period", 6, "roll"],
  ["period.share", 6, "roll"],
  ["roll.inclusion", 6, "roll"],
];

const TERMS = ["locked_members", "aid_fen", "fee_bps", "fee_fen", "surplus_in_fen", "need_fen",
  "uncapped_share_fen", "per_case_cap_fen", "annual_cap_remaining_fen", "cap_applied", "share_fen", "excess_policy",
  "subsidy_fen", "funded_aid_fen", "funded_fee_fen", "surplus_out_fen"];
const AT = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$/;
const ROLL_ROOT = /^[0-9a-f]{64}$/;
const SALT = ROLL_ROOT;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);
const isInt = (value) => typeof value === "number" && Number.isInteger(value);
const isText = (value) => typeof value === "string" && isWellFormed(value);
const isTextList = (value) => Array.isArray(value) && value.every(isText);

function shapeProblem(bundle) {
  if (!isObject(bundle)) return "bundle: must be a JSON object";
  if (bundle.format !== FORMAT) return `format: must be ${FORMAT}`;
  for (const name of ["member", "checkpoint"]) if (!isText(bundle[name])) return `${name}: must be a string`;
  if (!Array.isArray(bundle.events) || !Array.isArray(bundle.rolls)) return "events, rolls: must be lists";
  for (const [number, item] of bundle.events.entries()) {
    if (!isObject(item) || !isInt(item.index) || item.index < 0 || !isText(item.entry) || !isTextList(item.proof)) {
      return `events[${number}]: must have an index >= 0, an entry string and a proof list of strings`;
    }
  }
  if (new Set(bundle.events.map((item) => item.index)).size !== bundle.events.length) {
    return "events: each log index at most once";
  }
  for (const [number, roll] of bundle.rolls.entries()) {
    if (!isObject(roll) || !isText(roll.period) || !isTextList(roll.proof) ||
        !["period_index", "amount", "leaf_index", "roll_size"].every((k) => isInt(roll[k]))) {
      return `rolls[${number}]: must have a period string, integers period_index, amount, leaf_index and ` +
        "roll_size, and a proof list of strings";
    }
  }
  const revealed = bundle.revealed ?? [];
  if (!Array.isArray(revealed)) return "revealed: must be a list";
  for (const [number, record] of revealed.entries()) {
    if (!isObject(record) || !isText(record.stream) || !isInt(record.seq) || !isText(record.field) ||
        !("value" in record) || !isText(record.salt) || !SALT.test(record.salt)) {
      return `revealed[${number}]: must have a stream string, an integer seq, a field string, a value and a ` +
        "salt of 64 lowercase hex digits";
    }
  }
  const upgrade = bundle.upgrade;
  if (upgrade !== undefined && upgrade !== null &&
      (!isObject(upgrade) || !isText(upgrade.checkpoint) || !isTextList(upgrade.consistency))) {
    return "upgrade: must have a checkpoint string and a consistency list of strings";
  }
  return null;
}

function hashes(values) {
  try {
    return values.map(base64Decode);
  } catch (error) {
    if (error instanceof FormatError) throw new ProofError("a proof hash is not base64");
    throw error;
  }
}

/** The event an entry claims to be — index, stream, seq, type — read leniently, for naming it in findings. */
export function describe(entry, index) {
  const subject = { index, stream: null, seq: null, type: null };
  let data;
  try {
    data = JSON.parse(entry);
  } catch {
    return subject;
  }
  if (isObject(data)) {
    subject.stream = typeof data.stream === "string" ? data.stream : null;
    subject.seq = isInt(data.seq) ? data.seq : null;
    subject.type = typeof data.type === "string" ? data.type : null;
  }
  return subject;
}

async function problemOf(errorType, check) {
  try {
    await check();
  } catch (error) {
    if (error instanceof errorType) return error.message;
    throw error;
  }
  return null;
}

function registration(envelope) {
  const { data } = envelope;
  if (data.type !== "key.registered") return "is not a key.registered event";
  const body = data.body;
  if (typeof body.key_id !== "string" || typeof body.role !== "string" || typeof body.valid_from !== "string" ||
      !AT.test(body.valid_from)) {
    return "the registration must carry key_id, role and valid_from";
  }
  let publicKey = new Uint8Array(0);
  try {
    publicKey = base64Decode(body.public_key ?? "");
  } catch {
    // a key that is not base64 is refused below, as one of the wrong length
  }
  if (publicKey.length !== 32) return "the registered public key must be base64 of 32 bytes";
  return { role: body.role, publicKey, validFrom: body.valid_from };
}

/**
 * Whether a claimant record names the member and opens the sealed claim's `member_sealed`: SHA-256 over the salt
 * and the RFC 8785 bytes of the value (docs/privacy.md; `ledger.sealing.check_revealed` in Python).
 */
async function claimantProblem(data, record, member) {
  if (record === undefined) return "the claimant's value and salt are not in the bundle";
  if (record.value !== member) return `the revealed claimant is ${record.value}, not the bundle's member`;
  if (typeof record.value !== "string" || !ID.test(record.value)) return "member is not of its shape";
  const opened = toHex(await sha256(concat(fromHex(record.salt), canonicalBytes(record.value))));
  return opened === data.body.member_sealed ? null : "member does not match its commitment member_sealed";
}

function rollPeriodProblem(roll, period) {
  if (!period || period.data.type !== "period.assessed" || period.data.stream !== roll.period) {
    return "its period.assessed event is not in the bundle";
  }
  const body = period.data.body;
  if (!["number", "share_fen", "roll_size"].every((k) => isInt(body[k])) || typeof body.roll_root !== "string" ||
      !ROLL_ROOT.test(body.roll_root) || typeof body.cutoff_at !== "string") {
    return "the period.assessed body lacks number, share_fen, roll_size, roll_root or cutoff_at";
  }
  if (roll.amount !== body.share_fen || roll.roll_size !== body.roll_size) {
    return `the roll says ${roll.amount} fen over ${roll.roll_size} members, the period signed ` +
      `${body.share_fen} over ${body.roll_size}`;
  }
  return null;
}

function termsProblem(body) {
  const counts = ["locked_members", "per_case_cap_fen", "annual_cap_remaining_fen"];
  if (!counts.every((k) => isInt(body[k]) && body[k] >= 0) || !isInt(body.surplus_in_fen) || !isInt(body.fee_bps) ||
      body.fee_bps < 0 || body.fee_bps > 10000) {
    return "locked_members, fee_bps, surplus_in_fen and the caps must be integers in range";
  }
  if (!["operator_pays", "pro_rata"].includes(body.excess_policy)) {
    return "excess_policy must be operator_pays or pro_rata";
  }
  if (!Array.isArray(body.cases) || !body.cases.every((c) => isObject(c) && typeof c.claim === "string" &&
      isInt(c.approved_fen) && isInt(c.funded_fen))) {
    return "cases must be a list of {claim, approved_fen, funded_fen}";
  }
  return null;
}

const sameTerm = (expected, found) =>
  typeof expected === "bigint" ? isInt(found) && BigInt(found) === expected : expected === found;

function shareProblem(body) {
  const problem = termsProblem(body);
  if (problem !== null) return problem;
  const expected = assess(body.locked_members, body.cases.map((c) => [c.claim, c.approved_fen]), body.fee_bps,
    body.surplus_in_fen, body.per_case_cap_fen, body.annual_cap_remaining_fen, body.excess_policy,
    body.funded_by === "operator");
  for (const term of TERMS) {
    if (!sameTerm(expected[term], body[term])) {
      return `${term}: the formula gives ${expected[term]}, the period signed ${body[term]}`;
    }
  }
  for (const [i, c] of body.cases.entries()) {
    if (!sameTerm(expected.funded[i], c.funded_fen)) {
      return `case ${c.claim} funded_fen: the formula gives ${expected.funded[i]}, found ${c.funded_fen}`;
    }
  }
  if (body.roll_size !== body.locked_members) {
    return `roll_size ${body.roll_size} is not locked_members ${body.locked_members}`;
  }
  return null;
}

/**
 * The procedure's steps over one bundle-shaped input, reused by the other checks of signed events in the browser
 * (disclosure.js): `runSigned` runs sections 1, 3 and 4 only — the checkpoint, the inclusion of each event, its
 * envelope, its key and its signature — for events that are not a member's history.
 */
export class Procedure {
  constructor(bundle, logKey, witnessKeys) {
    this.bundle = bundle;
    this.logKey = logKey;
    this.witnessKeys = witnessKeys;
    this.findings = [];
    this.envelopes = new Map(); // index → {data, eventHash}
    this.subjects = new Map();
    this.keys = new Map();
    this.rootKeyId = null;
    this.member = bundle.member;
    this.claimed = new Set(); // the sealed claims the member's revealed records opened (step claim.claimant)
  }

  record(step, subject, problem) {
    this.findings.push({ step, subject, ok: problem === null, detail: problem ?? "" });
    return problem === null;
  }

  sortedEnvelopes() {
    return [...this.envelopes.entries()].sort((a, b) => a[0] - b[0]);
  }

  async run() {
    const checkpoint = await this.checkpoint(this.bundle.checkpoint, "checkpoint");
    if (checkpoint === null) return null;
    if (this.bundle.upgrade !== undefined && this.bundle.upgrade !== null) await this.upgrade(checkpoint);
    await this.events(checkpoint);
    await this.keyring();
    await this.signatures();
    await this.claimants();
    this.chains();
    const periods = await this.rolls();
    if (!this.findings.every((f) => f.ok)) return null;
    return this.statement(checkpoint, periods);
  }

  /** Sections 1, 3 and 4: the checkpoint, then each event's inclusion, envelope, key and signature. */
  async runSigned() {
    const checkpoint = await this.checkpoint(this.bundle.checkpoint, "checkpoint");
    if (checkpoint === null) return null;
    await this.events(checkpoint);
    await this.keyring();
    await this.signatures();
    return checkpoint;
  }

  async checkpoint(note, prefix) {
    let checkpoint;
    try {
      checkpoint = parseCheckpoint(splitNote(note)[0]);
    } catch (error) {
      if (!(error instanceof NoteError)) throw error;
      this.record(`${prefix}.signature`, {}, error.message);
      return null;
    }
    this.record(`${prefix}.signature`, {}, await problemOf(NoteError, () => verifyNote(note, this.logKey)));
    for (const witness of this.witnessKeys) {
      const cosigner = { ...witness, kind: COSIGNATURE_V1 };
      this.record(`${prefix}.cosignature`, { witness: witness.name },
        await problemOf(NoteError, () => verifyCosignature(note, cosigner)));
    }
    return checkpoint;
  }

  async upgrade(checkpoint) {
    const { upgrade } = this.bundle;
    const newer = await this.checkpoint(upgrade.checkpoint, "upgrade");
    if (newer === null) return;
    let problem;
    if (newer.origin !== checkpoint.origin) {
      problem = `the later checkpoint's origin ${newer.origin} is not ${checkpoint.origin}`;
    } else {
      problem = await problemOf(ProofError, () => verifyConsistency(checkpoint.size, newer.size, checkpoint.root,
        newer.root, hashes(upgrade.consistency)));
    }
    this.record("upgrade.consistency", {}, problem);
  }

  async events(checkpoint) {
    const items = [...this.bundle.events].sort((a, b) => a.index - b.index);
    for (const item of items) {
      this.subjects.set(item.index, describe(item.entry, item.index));
      const leaf = await leafHash(utf8(item.entry));
      this.record("event.inclusion", this.subjects.get(item.index), await problemOf(ProofError, () =>
        verifyInclusion(item.index, checkpoint.size, leaf, hashes(item.proof), checkpoint.root)));
    }
    for (const item of items) {
      try {
        this.envelopes.set(item.index, await parseEntry(item.entry));
        this.record("event.envelope", this.subjects.get(item.index), null);
      } catch (error) {
        if (!(error instanceof EnvelopeError)) throw error;
        this.record("event.envelope", this.subjects.get(item.index), error.message);
      }
    }
  }

  async keyring() {
    const root = this.envelopes.get(0);
    let problem = "the root key's registration (entry 0) is missing";
    if (root !== undefined) {
      const registered = registration(root);
      if (typeof registered === "string") {
        problem = registered;
      } else if (root.data.actor.key !== await keyId(registered.publicKey) ||
                 root.data.body.key_id !== root.data.actor.key) {
        problem = "entry 0 is not the root key registering itself";
      } else {
        problem = null;
        this.rootKeyId = root.data.actor.key;
        this.keys.set(root.data.actor.key, registered);
      }
    }
    this.record("keyring.root", this.subjects.get(0) ?? { index: 0, stream: null, seq: null, type: null }, problem);
    for (const [index, envelope] of this.sortedEnvelopes()) {
      if (index > 0 && envelope.data.type === "key.registered") await this.registration(index, envelope);
    }
  }

  async registration(index, envelope) {
    const registered = registration(envelope);
    let problem = null;
    if (typeof registered === "string") {
      problem = registered;
    } else if (this.rootKeyId === null || envelope.data.actor.key !== this.rootKeyId) {
      problem = "a key is registered without the root key";
    } else if (await keyId(registered.publicKey) !== envelope.data.body.key_id) {
      problem = "the key id does not match the registered key";
    } else {
      this.keys.set(envelope.data.body.key_id, registered);
    }
    this.record("keyring.registration", this.subjects.get(index), problem);
  }

  async signatures() {
    const keyed = [];
    for (const [index, envelope] of this.sortedEnvelopes()) {
      const { actor, at } = envelope.data;
      const known = this.keys.get(actor.key);
      let problem = null;
      if (known === undefined) {
        problem = `key ${actor.key} is not registered in the bundle`;
      } else if (known.role !== actor.role) {
        problem = `key ${actor.key} is registered for role ${known.role}, not ${actor.role}`;
      } else if (at < known.validFrom) {
        problem = `key ${actor.key} is valid only from ${known.validFrom}`;
      } else {
        keyed.push([index, envelope, known.publicKey]);
      }
      this.record("event.key", this.subjects.get(index), problem);
    }
    for (const [index, envelope, publicKey] of keyed) {
      const valid = await eventSignatureIsValid(publicKey, envelope.eventHash, envelope.data.sig);
      this.record("event.signature", this.subjects.get(index), valid ? null : "the signature does not verify");
    }
  }

  async claimants() {
    const records = new Map((this.bundle.revealed ?? []).map((r) => [`${r.stream} ${r.seq} ${r.field}`, r]));
    const sealed = new Set();
    for (const [index, { data }] of this.sortedEnvelopes()) {
      if (data.type === "claim.filed" && data.schema === 2) {
        const key = `${data.stream} ${data.seq} member`;
        sealed.add(key);
        const problem = await claimantProblem(data, records.get(key), this.member);
        if (this.record("claim.claimant", this.subjects.get(index), problem)) this.claimed.add(data.stream);
      }
    }
    for (const [key, record] of records) {
      if (!sealed.has(key)) {
        this.record("claim.claimant", { stream: record.stream }, "the record opens no sealed claim of the bundle");
      }
    }
  }

  chains() {
    const complete = new Set([this.member, ...this.claimed]);
    for (const { data } of this.envelopes.values()) {
      if (data.type === "claim.filed" && data.body.member === this.member) complete.add(data.stream);
    }
    const bySeq = new Map();
    for (const [index, { data }] of this.sortedEnvelopes()) {
      const key = `${data.stream} ${data.seq}`;
      if (!bySeq.has(key)) bySeq.set(key, index);
    }
    for (const [index, envelope] of this.sortedEnvelopes()) {
      const problem = this.linkProblem(index, envelope, bySeq, complete.has(envelope.data.stream));
      if (problem !== "") this.record("chain.link", this.subjects.get(index), problem);
    }
    const first = this.envelopes.get(bySeq.get(`${this.member} 1`) ?? -1);
    this.record("chain.join", { stream: this.member },
      first !== undefined && first.data.type === "member.joined" ? null : "the member's join is missing");
  }

  linkProblem(index, { data }, bySeq, complete) {
    if (bySeq.get(`${data.stream} ${data.seq}`) !== index) return `seq ${data.seq} appears twice in the stream`;
    if (data.seq === 1) return null;
    const previousIndex = bySeq.get(`${data.stream} ${data.seq - 1}`);
    if (previousIndex === undefined) {
      return complete ? `the stream is incomplete: seq ${data.seq - 1} is missing` : "";
    }
    if (previousIndex > index) return `seq ${data.seq - 1} comes after it in the log`;
    if (data.prev !== hashHex(this.envelopes.get(previousIndex).eventHash)) {
      return `prev is not the event hash of seq ${data.seq - 1}`;
    }
    return null;
  }

  async rolls() {
    const named = [];
    for (const [number, roll] of this.bundle.rolls.entries()) {
      const subject = { roll: number, period: roll.period };
      const period = this.envelopes.get(roll.period_index);
      if (this.record("roll.period", subject, rollPeriodProblem(roll, period))) named.push([subject, roll, period]);
    }
    const shared = named.filter(([subject, , period]) =>
      this.record("period.share", subject, shareProblem(period.data.body)));
    const proved = [];
    for (const [subject, roll, period] of shared) {
      const body = period.data.body;
      const leaf = await leafHash(rollLeaf(period.data.stream, this.member, body.share_fen));
      const problem = await problemOf(ProofError, () => verifyInclusion(roll.leaf_index, body.roll_size, leaf,
        hashes(roll.proof), fromHex(body.roll_root)));
      if (this.record("roll.inclusion", subject, problem)) proved.push([roll, period]);
    }
    return proved;
  }

  statement(checkpoint, periods) {
    const statement = {
      member: this.member, checkpoint_size: checkpoint.size, witnesses: this.witnessKeys.map((w) => w.name),
      periods: [], shared_fen: 0, people_helped: 0, deposits_fen: 0, refunds_fen: 0, claims: [],
    };
    for (const [, period] of periods) {
      const body = period.data.body;
      statement.periods.push({ period: period.data.stream, number: body.number, cutoff_at: body.cutoff_at,
        share_fen: body.share_fen, cases: body.cases.length });
      statement.shared_fen += body.share_fen;
      statement.people_helped += body.cases.length;
    }
    const ordered = this.sortedEnvelopes().map(([, envelope]) => envelope.data);
    for (const data of ordered) {
      if (data.stream === this.member && data.type === "member.deposit_received") {
        statement.deposits_fen += data.body.amount_fen;
      } else if (data.stream === this.member && data.type === "member.refund_disbursed") {
        statement.refunds_fen += data.body.amount_fen;
      }
    }
    const claims = new Map();
    for (const data of ordered) {
      if (data.type.startsWith("claim.") && (data.type !== "claim.filed" || this.claimed.has(data.stream) ||
          data.body.member === this.member)) {
        claims.set(data.stream, data.type.slice("claim.".length));
      }
    }
    statement.claims = [...claims].map(([claim, status]) => ({ claim, status }));
    return statement;
  }
}

/** The first failing finding of a report, or null. */
export function firstFailure(report) {
  return report.findings.find((f) => !f.ok) ?? null;
}

/**
 * Check a bundle with the log's verifier key and the witnesses' (as parsed by note.parseVerifier); return
 * {ok, failing_step, findings: [{step, subject, ok, detail}], statement} — the shape of the Python report.
 */
export async function checkBundle(bundle, logKey, witnessKeys = []) {
  const problem = shapeProblem(bundle);
  if (problem !== null) {
    return { ok: false, failing_step: "bundle.format",
      findings: [{ step: "bundle.format", subject: {}, ok: false, detail: problem }], statement: null };
  }
  const procedure = new Procedure(bundle, logKey, witnessKeys);
  procedure.record("bundle.format", {}, null);
  const statement = await procedure.run();
  const first = procedure.findings.find((f) => !f.ok);
  return { ok: statement !== null, failing_step: first ? first.step : null, findings: procedure.findings,
    statement };
}
