"""Verify a proof bundle with no network and no database, and state what it proves.

Given the log's verifier key (and the witnesses' keys), `check_bundle` runs the procedure below and returns a
checklist: one finding per check and per thing checked (an event, a stream, a witness, a roll), each ✓ or ✗.
Every check has a stable step id; the browser's verifier (`ledger/web/static/js/bundle.js`) runs the same
procedure in the same order and reports the same findings, so that both name the same failing step
(`tests/vectors/bundles/` holds the bundles on which they are compared). The sections are numbered as before:

0. `bundle.format` — the format tag and the shape of every field (nothing else is read from a malformed bundle).
1. `checkpoint.signature` — the checkpoint parses and carries the log key's signature;
   `checkpoint.cosignature` — a valid tlog-cosignature/v1 by each witness key given (one finding per witness).
2. With an `upgrade`: `upgrade.signature`, `upgrade.cosignature` on the later checkpoint, and
   `upgrade.consistency` — same origin, and the RFC 9162 consistency proof from the bundle's size to it.
3. `event.inclusion` — each entry's inclusion proof (RFC 9162) into the checkpoint's root at its log index.
4. `event.envelope` — each entry is a strict envelope in RFC 8785 canonical form (others are left out of what
   follows); `keyring.root` — entry 0 is the root key registering itself; `keyring.registration` — every other
   `key.registered` is signed by the root key and its key id is its key's; `event.key` — each event's key is
   registered in the bundle for the actor's role and valid from before the event; `event.signature` — the
   event's Ed25519 signature by that key (checked only when the key is).
5. `claim.claimant` — each sealed claim (`claim.filed` v2, which names no member) is the member's: the bundle's
   `revealed` record for it (value and salt, docs/privacy.md) names the member and opens the claim's
   `member_sealed` commitment, SHA-256(salt || JCS(member)); a record that opens no sealed claim of the bundle
   fails too. `chain.link` — within a stream, each event's `prev` is the event hash of the seq before it when that
   event is in the bundle; the member's stream and their claims' streams (plain ones naming them, sealed ones
   opened) are complete, so there every seq > 1 needs its predecessor; `chain.join` — the member's stream starts
   with their join.
6. For each roll: `roll.period` — it names an included `period.assessed` event of its period, for the amount and
   roll size that event signed; `period.share` — every term of the assessment, the share included, recomputes
   from the signed terms (`ledger.sharing.assess`); `roll.inclusion` — the member's leaf
   JCS({"period", "member", "amount"}) is at `leaf_index` in the roll whose root the event signed.

Each step runs over everything it checks before the next step starts: events in log-index order, rolls in bundle
order, witnesses in the order given. A check that cannot be made because an earlier one failed (the signature of an
event whose key did not hold, the share of a roll whose period is not in the bundle) is not reported. When every
finding is ✓ the report carries the member's statement as those proofs establish it: periods paid into, total
shared, people helped (the cases of those periods), deposits, refunds and claims.

`verify_bundle` is the same procedure for callers that want the statement or an error: it raises `BundleError`
naming the first failing check (its section, its step id, the event) and returns the statement otherwise.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ledger.canonical import CanonicalizationError
from ledger.envelope import Envelope, EnvelopeError, parse_entry
from ledger.keys import event_signature_is_valid, key_id
from ledger.log.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from ledger.log.note import (
    COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Verifier,
    split_note,
    verify_cosignature,
    verify_note,
)
from ledger.sealing import Revealed, check_revealed
from ledger.sharing import assess, roll_leaf

FORMAT = "mutual-ledger/proof-bundle/v1"

STEPS: tuple[tuple[str, int, str], ...] = (
    ("bundle.format", 0, "format"),
    ("checkpoint.signature", 1, "checkpoint"),
    ("checkpoint.cosignature", 1, "checkpoint"),
    ("upgrade.signature", 2, "upgrade"),
    ("upgrade.cosignature", 2, "upgrade"),
    ("upgrade.consistency", 2, "upgrade"),
    ("event.inclusion", 3, "inclusion"),
    ("event.envelope", 4, "envelope"),
    ("keyring.root", 4, "keys"),
    ("keyring.registration", 4, "keys"),
    ("event.key", 4, "signature"),
    ("event.signature", 4, "signature"),
    ("claim.claimant", 5, "chain"),
    ("chain.link", 5, "chain"),
    ("chain.join", 5, "chain"),
    ("roll.period", 6, "roll"),
    ("period.share", 6, "roll"),
    ("roll.inclusion", 6, "roll"),
)
"""Every step id in procedure order, with its section number and the section's word (as error messages start)."""

SECTIONS = {step: (number, word) for step, number, word in STEPS}

TERMS = ("locked_members", "aid_fen", "fee_bps", "fee_fen", "surplus_in_fen", "need_fen", "uncapped_share_fen",
         "per_case_cap_fen", "annual_cap_remaining_fen", "cap_applied", "share_fen", "excess_policy", "subsidy_fen",
         "funded_aid_fen", "funded_fee_fen", "surplus_out_fen")
"""The terms of a `period.assessed` body that the sharing formula computes."""

_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_ROLL_ROOT = re.compile(r"[0-9a-f]{64}")
_SALT = _ROLL_ROOT


class BundleError(Exception):
    """The bundle does not prove what it claims; the message names the section, the check and the event."""

    def __init__(self, message: str, step: str = "bundle.format", subject: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.subject = subject or {}


@dataclass
class Statement:
    """What the bundle proves about the member (爱心账单)."""

    member: str
    checkpoint_size: int
    witnesses: list[str]
    periods: list[dict[str, Any]] = field(default_factory=list)
    shared_fen: int = 0
    people_helped: int = 0
    deposits_fen: int = 0
    refunds_fen: int = 0
    claims: list[dict[str, Any]] = field(default_factory=list)

    def render(self) -> str:
        """The statement as text."""
        lines = [f"member {self.member}: verified against checkpoint {self.checkpoint_size}"
                 + (f", cosigned by {', '.join(self.witnesses)}" if self.witnesses else ""),
                 f"  periods paid into: {len(self.periods)}; shared {self.shared_fen / 100:.2f} yuan; "
                 f"helped {self.people_helped} people",
                 f"  deposits {self.deposits_fen / 100:.2f} yuan; refunds {self.refunds_fen / 100:.2f} yuan"]
        lines += [f"  period {p['number']} ({p['cutoff_at'][:10]}): {p['share_fen'] / 100:.2f} yuan, "
                  f"{p['cases']} cases" for p in self.periods]
        lines += [f"  claim {c['claim']}: {c['status']}" for c in self.claims]
        return "\n".join(lines)


@dataclass(frozen=True)
class Finding:
    """One line of the checklist: a step, what it was about, whether it held, and why not."""

    step: str
    subject: dict[str, Any]
    """The event (`index`, `stream`, `seq`, `type`), the stream, the witness or the roll (`roll`, `period`) checked;
    empty for the bundle and its checkpoints."""
    ok: bool
    detail: str = ""

    def message(self) -> str:
        """The failure as an error message: section, check, where, what (the style of the verifiers' errors)."""
        number, word = SECTIONS[self.step]
        return f"{number} {word}{_where(self.subject)}: {self.detail} [{self.step}]"


def _where(subject: dict[str, Any]) -> str:
    if "index" in subject:
        described = ", ".join(str(subject[k]) for k in ("stream", "seq", "type") if subject.get(k) is not None)
        return f" of entry {subject['index']}" + (f" ({described})" if described else "")
    if "roll" in subject:
        return f" of roll {subject['roll']} (period {subject['period']})"
    if "witness" in subject:
        return f" by witness {subject['witness']}"
    if "stream" in subject:
        return f" of stream {subject['stream']}"
    return ""


@dataclass
class BundleReport:
    """The checklist of a bundle and, when every finding holds, the statement it proves."""

    findings: list[Finding]
    statement: Statement | None

    @property
    def ok(self) -> bool:
        """Whether every check held."""
        return self.statement is not None

    @property
    def first_failure(self) -> Finding | None:
        """The first finding that did not hold, in procedure order."""
        return next((f for f in self.findings if not f.ok), None)

    def to_json(self) -> dict[str, Any]:
        """A machine-readable report (the same shape as the browser verifier's)."""
        first = self.first_failure
        return {"ok": self.ok, "failing_step": first.step if first else None,
                "findings": [asdict(f) for f in self.findings],
                "statement": vars(self.statement) if self.statement else None}


# -- the bundle's shape --------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_text(value: object) -> bool:
    """A string that has a UTF-8 form (no lone surrogates), as every hashed string must."""
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _is_text_list(value: object) -> bool:
    return isinstance(value, list) and all(_is_text(v) for v in value)


def _shape_problem(bundle: object) -> str | None:
    """What is wrong with the bundle's shape (field and rule), or None."""
    if not isinstance(bundle, dict):
        return "bundle: must be a JSON object"
    if bundle.get("format") != FORMAT:
        return f"format: must be {FORMAT}"
    for name in ("member", "checkpoint"):
        if not _is_text(bundle.get(name)):
            return f"{name}: must be a string"
    events, rolls = bundle.get("events"), bundle.get("rolls")
    if not isinstance(events, list) or not isinstance(rolls, list):
        return "events, rolls: must be lists"
    for number, item in enumerate(events):
        if not isinstance(item, dict) or not _is_int(item.get("index")) or item["index"] < 0 \
                or not _is_text(item.get("entry")) or not _is_text_list(item.get("proof")):
            return f"events[{number}]: must have an index >= 0, an entry string and a proof list of strings"
    if len({item["index"] for item in events}) != len(events):
        return "events: each log index at most once"
    for number, roll in enumerate(rolls):
        if not isinstance(roll, dict) or not _is_text(roll.get("period")) or not _is_text_list(roll.get("proof")) \
                or not all(_is_int(roll.get(k)) for k in ("period_index", "amount", "leaf_index", "roll_size")):
            return (f"rolls[{number}]: must have a period string, integers period_index, amount, leaf_index and "
                    "roll_size, and a proof list of strings")
    revealed = bundle.get("revealed", [])
    if not isinstance(revealed, list):
        return "revealed: must be a list"
    for number, record in enumerate(revealed):
        if not isinstance(record, dict) or not _is_text(record.get("stream")) or not _is_int(record.get("seq")) \
                or not _is_text(record.get("field")) or "value" not in record or not _is_text(record.get("salt")) \
                or not _SALT.fullmatch(record["salt"]):
            return (f"revealed[{number}]: must have a stream string, an integer seq, a field string, a value and a "
                    "salt of 64 lowercase hex digits")
    upgrade = bundle.get("upgrade")
    if upgrade is not None and (not isinstance(upgrade, dict) or not _is_text(upgrade.get("checkpoint"))
                                or not _is_text_list(upgrade.get("consistency"))):
        return "upgrade: must have a checkpoint string and a consistency list of strings"
    return None


def _hashes(values: list[str]) -> list[bytes]:
    """Strict base64 of each hash; raise ProofError when one is not base64."""
    try:
        return [base64.b64decode(v, validate=True) for v in values]
    except (binascii.Error, ValueError):
        raise ProofError("a proof hash is not base64") from None


def describe(entry: str, index: int) -> dict[str, Any]:
    """The event an entry claims to be — index, stream, seq, type — read leniently, for naming it in findings."""
    subject: dict[str, Any] = {"index": index, "stream": None, "seq": None, "type": None}
    try:
        data = json.loads(entry)
    except ValueError:
        return subject
    if isinstance(data, dict):
        subject["stream"] = data.get("stream") if isinstance(data.get("stream"), str) else None
        subject["seq"] = data.get("seq") if _is_int(data.get("seq")) else None
        subject["type"] = data.get("type") if isinstance(data.get("type"), str) else None
    return subject


# -- the procedure -------------------------------------------------------------------------------------------


@dataclass
class _Key:
    role: str
    public_key: bytes
    valid_from: str


@dataclass
class _Procedure:
    """One run of the procedure over one bundle; `findings` grows as it goes."""

    bundle: dict[str, Any]
    log_key: Verifier
    witness_keys: Sequence[Verifier]
    findings: list[Finding] = field(default_factory=list)
    envelopes: dict[int, Envelope] = field(default_factory=dict)
    subjects: dict[int, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, _Key] = field(default_factory=dict)
    root_key_id: str | None = None
    claimed: set[str] = field(default_factory=set)
    """The sealed claims the member's revealed records opened (step `claim.claimant`)."""

    @property
    def member(self) -> str:
        return str(self.bundle["member"])

    def record(self, step: str, subject: dict[str, Any], problem: str | None) -> bool:
        """Add a finding; True when it held."""
        self.findings.append(Finding(step, subject, problem is None, problem or ""))
        return problem is None

    def run(self) -> Statement | None:
        """Sections 1 to 6 (the shape was checked); the statement when every finding held."""
        checkpoint = self.checkpoint(str(self.bundle["checkpoint"]), "checkpoint")
        if checkpoint is None:
            return None
        if self.bundle.get("upgrade") is not None:
            self.upgrade(checkpoint)
        self.events(checkpoint)
        self.keyring()
        self.signatures()
        self.claimants()
        self.chains()
        periods = self.rolls()
        if not all(f.ok for f in self.findings):
            return None
        return self.statement(checkpoint, periods)

    # (1), (2) checkpoints

    def checkpoint(self, note: str, prefix: str) -> Checkpoint | None:
        """The checkpoint of `note` after its signature and cosignature steps; None when it does not parse."""
        try:
            checkpoint = Checkpoint.parse(split_note(note)[0])
        except NoteError as error:
            self.record(f"{prefix}.signature", {}, str(error))
            return None
        self.record(f"{prefix}.signature", {}, _note_problem(verify_note, note, self.log_key))
        for witness in self.witness_keys:
            cosigner = Verifier(witness.name, witness.public_key, COSIGNATURE_V1)
            self.record(f"{prefix}.cosignature", {"witness": witness.name},
                        _note_problem(verify_cosignature, note, cosigner))
        return checkpoint

    def upgrade(self, checkpoint: Checkpoint) -> None:
        """Section 2: the later checkpoint and the consistency proof to it."""
        upgrade = self.bundle["upgrade"]
        newer = self.checkpoint(str(upgrade["checkpoint"]), "upgrade")
        if newer is None:
            return
        problem = None
        if newer.origin != checkpoint.origin:
            problem = f"the later checkpoint's origin {newer.origin} is not {checkpoint.origin}"
        else:
            try:
                verify_consistency(checkpoint.size, newer.size, checkpoint.root, newer.root,
                                   _hashes(upgrade["consistency"]))
            except ProofError as error:
                problem = str(error)
        self.record("upgrade.consistency", {}, problem)

    # (3), (4) events

    def events(self, checkpoint: Checkpoint) -> None:
        """Inclusion of every entry, then the strict envelope of every entry."""
        items = sorted(self.bundle["events"], key=lambda item: int(item["index"]))
        for item in items:
            index, entry = int(item["index"]), str(item["entry"])
            self.subjects[index] = describe(entry, index)
            self.record("event.inclusion", self.subjects[index], _inclusion_problem(
                index, checkpoint.size, leaf_hash(entry.encode()), item["proof"], checkpoint.root))
        for item in items:
            index = int(item["index"])
            try:
                self.envelopes[index] = parse_entry(str(item["entry"]).encode())
                self.record("event.envelope", self.subjects[index], None)
            except (EnvelopeError, CanonicalizationError) as error:
                self.record("event.envelope", self.subjects[index], str(error))

    def keyring(self) -> None:
        """The root key's self-registration, then every other registration, in log order."""
        root = self.envelopes.get(0)
        problem: str | None = "the root key's registration (entry 0) is missing"
        if root is not None:
            registered = _registration(root)
            if isinstance(registered, str):
                problem = registered
            elif root.actor.key != key_id(registered.public_key) or root.body["key_id"] != root.actor.key:
                problem = "entry 0 is not the root key registering itself"
            else:
                problem = None
                self.root_key_id = root.actor.key
                self.keys[root.actor.key] = registered
        self.record("keyring.root", self.subjects.get(0, {"index": 0, "stream": None, "seq": None, "type": None}),
                    problem)
        for index, envelope in sorted(self.envelopes.items()):
            if index > 0 and envelope.type == "key.registered":
                self.registration(index, envelope)

    def registration(self, index: int, envelope: Envelope) -> None:
        """One `key.registered` after entry 0: by the root key, with its own key's id."""
        registered = _registration(envelope)
        if isinstance(registered, str):
            problem: str | None = registered
        elif self.root_key_id is None or envelope.actor.key != self.root_key_id:
            problem = "a key is registered without the root key"
        elif key_id(registered.public_key) != envelope.body["key_id"]:
            problem = "the key id does not match the registered key"
        else:
            problem = None
            self.keys[envelope.body["key_id"]] = registered
        self.record("keyring.registration", self.subjects[index], problem)

    def signatures(self) -> None:
        """Each event's key (registered for its role, valid at its time), then the signature of each event whose
        key held."""
        keyed = []
        for index, envelope in sorted(self.envelopes.items()):
            known = self.keys.get(envelope.actor.key)
            if known is None:
                problem: str | None = f"key {envelope.actor.key} is not registered in the bundle"
            elif known.role != envelope.actor.role:
                problem = f"key {envelope.actor.key} is registered for role {known.role}, not {envelope.actor.role}"
            elif envelope.at < known.valid_from:
                problem = f"key {envelope.actor.key} is valid only from {known.valid_from}"
            else:
                problem = None
                keyed.append((index, envelope, known.public_key))
            self.record("event.key", self.subjects[index], problem)
        for index, envelope, public_key in keyed:
            valid = event_signature_is_valid(public_key, envelope.event_hash(), envelope.sig)
            self.record("event.signature", self.subjects[index], None if valid else "the signature does not verify")

    # (5) claimants and chains

    def claimants(self) -> None:
        """Each sealed claim of the bundle, in log order, opened by its claimant record; then each record that
        opens none."""
        records = {(r["stream"], r["seq"], r["field"]): r for r in self.bundle.get("revealed", [])}
        sealed = set()
        for index, envelope in sorted(self.envelopes.items()):
            if envelope.type == "claim.filed" and envelope.schema == 2:
                sealed.add((envelope.stream, envelope.seq, "member"))
                problem = _claimant_problem(envelope, records.get((envelope.stream, envelope.seq, "member")),
                                            self.member)
                if self.record("claim.claimant", self.subjects[index], problem):
                    self.claimed.add(envelope.stream)
        for key in records:
            if key not in sealed:
                self.record("claim.claimant", {"stream": key[0]}, "the record opens no sealed claim of the bundle")

    def chains(self) -> None:
        """Every link the bundle can check, then the member's join."""
        complete = {self.member} | self.claimed | {e.stream for e in self.envelopes.values()
                                                   if e.type == "claim.filed" and e.body.get("member") == self.member}
        by_seq: dict[tuple[str, int], int] = {}
        for index, envelope in sorted(self.envelopes.items()):
            by_seq.setdefault((envelope.stream, envelope.seq), index)
        for index, envelope in sorted(self.envelopes.items()):
            problem = self.link_problem(index, envelope, by_seq, envelope.stream in complete)
            if problem != "":
                self.record("chain.link", self.subjects[index], problem)
        first = self.envelopes.get(by_seq.get((self.member, 1), -1))
        joined = None if first is not None and first.type == "member.joined" else "the member's join is missing"
        self.record("chain.join", {"stream": self.member}, joined)

    def link_problem(self, index: int, envelope: Envelope, by_seq: dict[tuple[str, int], int],
                     complete: bool) -> str | None:
        """What breaks the link from an event to the seq before it; "" when the bundle cannot tell."""
        if by_seq[(envelope.stream, envelope.seq)] != index:
            return f"seq {envelope.seq} appears twice in the stream"
        if envelope.seq == 1:
            return None
        previous_index = by_seq.get((envelope.stream, envelope.seq - 1))
        if previous_index is None:
            return f"the stream is incomplete: seq {envelope.seq - 1} is missing" if complete else ""
        if previous_index > index:
            return f"seq {envelope.seq - 1} comes after it in the log"
        if envelope.prev != self.envelopes[previous_index].event_hash().hex():
            return f"prev is not the event hash of seq {envelope.seq - 1}"
        return None

    # (6) rolls

    def rolls(self) -> list[tuple[dict[str, Any], Envelope]]:
        """Each roll's period, then each share, then each inclusion; the rolls whose checks all held."""
        named = []
        for number, roll in enumerate(self.bundle["rolls"]):
            subject = {"roll": number, "period": roll["period"]}
            period = self.envelopes.get(int(roll["period_index"]))
            if self.record("roll.period", subject, _roll_period_problem(roll, period)):
                assert period is not None
                named.append((subject, roll, period))
        shared = [(s, r, p) for s, r, p in named if self.record("period.share", s, _share_problem(p.body))]
        proved = []
        for subject, roll, period in shared:
            body = period.body
            leaf = leaf_hash(roll_leaf(period.stream, self.member, int(body["share_fen"])))
            if self.record("roll.inclusion", subject, _inclusion_problem(
                    int(roll["leaf_index"]), int(body["roll_size"]), leaf, roll["proof"],
                    bytes.fromhex(body["roll_root"]))):
                proved.append((roll, period))
        return proved

    # the statement

    def statement(self, checkpoint: Checkpoint, periods: list[tuple[dict[str, Any], Envelope]]) -> Statement:
        """What the verified events and rolls establish."""
        statement = Statement(self.member, checkpoint.size, [w.name for w in self.witness_keys])
        for _, period in periods:
            body = period.body
            statement.periods.append({"period": period.stream, "number": body["number"],
                                      "cutoff_at": body["cutoff_at"], "share_fen": body["share_fen"],
                                      "cases": len(body["cases"])})
            statement.shared_fen += int(body["share_fen"])
            statement.people_helped += len(body["cases"])
        ordered = [e for _, e in sorted(self.envelopes.items())]
        for envelope in ordered:
            if envelope.stream == self.member and envelope.type == "member.deposit_received":
                statement.deposits_fen += int(envelope.body["amount_fen"])
            elif envelope.stream == self.member and envelope.type == "member.refund_disbursed":
                statement.refunds_fen += int(envelope.body["amount_fen"])
        claims: dict[str, str] = {}
        for envelope in ordered:
            if envelope.type.startswith("claim.") and (envelope.type != "claim.filed" or envelope.stream in self.claimed
                                                       or envelope.body.get("member") == self.member):
                claims[envelope.stream] = envelope.type.removeprefix("claim.")
        statement.claims = [{"claim": claim, "status": status} for claim, status in claims.items()]
        return statement


def _note_problem(check: Callable[..., object], *arguments: Any) -> str | None:
    """The NoteError message of `check(*arguments)`, or None when it passes."""
    try:
        check(*arguments)
    except NoteError as error:
        return str(error)
    return None


def _inclusion_problem(index: int, size: int, leaf: bytes, proof: list[str], root: bytes) -> str | None:
    """The ProofError message of an RFC 9162 inclusion check, or None when it passes."""
    try:
        verify_inclusion(index, size, leaf, _hashes(proof), root)
    except ProofError as error:
        return str(error)
    return None


def _registration(envelope: Envelope) -> _Key | str:
    """The key a `key.registered` event registers, or what is wrong with its body."""
    if envelope.type != "key.registered":
        return "is not a key.registered event"
    body = envelope.body
    if not isinstance(body.get("key_id"), str) or not isinstance(body.get("role"), str) \
            or not isinstance(body.get("valid_from"), str) or not _AT.fullmatch(body["valid_from"]):
        return "the registration must carry key_id, role and valid_from"
    try:
        public_key = base64.b64decode(body.get("public_key", ""), validate=True)
    except (binascii.Error, ValueError, TypeError):
        public_key = b""
    if len(public_key) != 32:
        return "the registered public key must be base64 of 32 bytes"
    return _Key(body["role"], public_key, body["valid_from"])


def _claimant_problem(envelope: Envelope, record: dict[str, Any] | None, member: str) -> str | None:
    """Whether a claimant record names the member and opens the sealed claim's `member_sealed` (`check_revealed`,
    the contract of docs/privacy.md)."""
    if record is None:
        return "the claimant's value and salt are not in the bundle"
    if record["value"] != member:
        return f"the revealed claimant is {record['value']}, not the bundle's member"
    return check_revealed(envelope.type, envelope.schema, envelope.body, Revealed(
        envelope.stream, envelope.seq, "member", record["value"], bytes.fromhex(record["salt"])))


def _roll_period_problem(roll: dict[str, Any], period: Envelope | None) -> str | None:
    """Whether the roll names an included `period.assessed` of its period, for the amount and size it signed."""
    if period is None or period.type != "period.assessed" or period.stream != roll["period"]:
        return "its period.assessed event is not in the bundle"
    body = period.body
    if not all(_is_int(body.get(k)) for k in ("number", "share_fen", "roll_size")) \
            or not isinstance(body.get("roll_root"), str) or not _ROLL_ROOT.fullmatch(body["roll_root"]) \
            or not isinstance(body.get("cutoff_at"), str):
        return "the period.assessed body lacks number, share_fen, roll_size, roll_root or cutoff_at"
    if (roll["amount"], roll["roll_size"]) != (body["share_fen"], body["roll_size"]):
        return (f"the roll says {roll['amount']} fen over {roll['roll_size']} members, the period signed "
                f"{body['share_fen']} over {body['roll_size']}")
    return None


def _terms_problem(body: dict[str, Any]) -> str | None:
    """What makes the signed terms unusable by the formula, or None."""
    counts = ("locked_members", "per_case_cap_fen", "annual_cap_remaining_fen")
    if not all(_is_int(body.get(k)) and body[k] >= 0 for k in counts) or not _is_int(body.get("surplus_in_fen")) \
            or not _is_int(body.get("fee_bps")) or not 0 <= body["fee_bps"] <= 10_000:
        return "locked_members, fee_bps, surplus_in_fen and the caps must be integers in range"
    if body.get("excess_policy") not in ("operator_pays", "pro_rata"):
        return "excess_policy must be operator_pays or pro_rata"
    cases = body.get("cases")
    if not isinstance(cases, list) or not all(
            isinstance(c, dict) and isinstance(c.get("claim"), str) and _is_int(c.get("approved_fen"))
            and _is_int(c.get("funded_fen")) for c in cases):
        return "cases must be a list of {claim, approved_fen, funded_fen}"
    return None


def _share_problem(body: dict[str, Any]) -> str | None:
    """Whether every term of a signed assessment follows from its inputs by the sharing formula."""
    problem = _terms_problem(body)
    if problem is not None:
        return problem
    expected = assess(body["locked_members"], [(c["claim"], c["approved_fen"]) for c in body["cases"]],
                      body["fee_bps"], body["surplus_in_fen"], body["per_case_cap_fen"],
                      body["annual_cap_remaining_fen"], body["excess_policy"], body.get("funded_by") == "operator")
    for term in TERMS:
        if getattr(expected, term) != body.get(term):
            return f"{term}: the formula gives {getattr(expected, term)}, the period signed {body.get(term)}"
    for case, funded in zip(body["cases"], expected.cases, strict=True):
        if case["funded_fen"] != funded.funded_fen:
            return f"case {case['claim']} funded_fen: the formula gives {funded.funded_fen}, found {case['funded_fen']}"
    if body["roll_size"] != body["locked_members"]:
        return f"roll_size {body['roll_size']} is not locked_members {body['locked_members']}"
    return None


def check_bundle(bundle: Any, log_key: Verifier, witness_keys: Sequence[Verifier] = ()) -> BundleReport:
    """Run the procedure of the module docstring; return the checklist and, when it all holds, the statement."""
    problem = _shape_problem(bundle)
    if problem is not None:
        return BundleReport([Finding("bundle.format", {}, False, problem)], None)
    procedure = _Procedure(bundle, log_key, list(witness_keys))
    procedure.record("bundle.format", {}, None)
    statement = procedure.run()
    return BundleReport(procedure.findings, statement)


def verify_bundle(bundle: dict[str, Any], log_key: Verifier, witness_keys: list[Verifier]) -> Statement:
    """Run the checks of the module docstring and return the statement; raise BundleError at the first failure."""
    report = check_bundle(bundle, log_key, witness_keys)
    first = report.first_failure
    if first is not None:
        raise BundleError(first.message(), first.step, first.subject)
    assert report.statement is not None
    return report.statement


def load_bundle(text: str) -> dict[str, Any]:
    """Parse a bundle file."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise BundleError("format: a bundle is a JSON object")
    return data
