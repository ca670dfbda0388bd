"""Verify a proof bundle with no network and no database, and state what it proves.

Given the log's verifier key (and the witnesses' keys), `verify_bundle` checks, in order:

1. the checkpoint's signature by the log key, and a cosignature by every witness key given;
2. with an `upgrade`: the later checkpoint's signature and cosignatures, and the consistency proof from the
   bundle's size to it;
3. each event's inclusion proof (RFC 9162) into the checkpoint's root at its log index;
4. each event's envelope (canonical bytes) and Ed25519 signature by a key whose `key.registered` event is in the
   bundle, registered under the root key of entry 0 for the signer's role;
5. the member's own stream is complete: seq 1..n with every `prev` link;
6. each roll proof: the leaf JCS({"period", "member", "amount"}) with the share of the included, verified
   `period.assessed` event, into that event's `roll_root`.

It returns the member's statement as established by those proofs: periods paid into, total shared, people helped
(the cases of those periods), deposits, refunds and claims. Any failure raises `BundleError` naming the check.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from ledger.envelope import EnvelopeError, parse_entry
from ledger.keys import event_signature_is_valid, key_id, public_key_from_base64
from ledger.log.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from ledger.log.note import COSIGNATURE_V1, Checkpoint, NoteError, Verifier, verify_cosignature, verify_note
from ledger.sharing import roll_leaf

FORMAT = "mutual-ledger/proof-bundle/v1"


class BundleError(Exception):
    """The bundle does not prove what it claims; the message names the check."""


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


def _b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def _checkpoint(note: str, log_key: Verifier, witness_keys: list[Verifier]) -> Checkpoint:
    try:
        checkpoint = Checkpoint.parse(verify_note(note, log_key))
        for witness in witness_keys:
            verify_cosignature(note, Verifier(witness.name, witness.public_key, COSIGNATURE_V1))
    except NoteError as error:
        raise BundleError(f"1 checkpoint: {error}") from None
    return checkpoint


def verify_bundle(bundle: dict[str, Any], log_key: Verifier, witness_keys: list[Verifier]) -> Statement:
    """Run the checks of the module docstring and return the statement."""
    if bundle.get("format") != FORMAT:
        raise BundleError(f"format: must be {FORMAT}")
    member = str(bundle["member"])
    checkpoint = _checkpoint(str(bundle["checkpoint"]), log_key, witness_keys)
    upgrade = bundle.get("upgrade")
    if upgrade is not None:
        newer = _checkpoint(str(upgrade["checkpoint"]), log_key, witness_keys)
        try:
            verify_consistency(checkpoint.size, newer.size, checkpoint.root, newer.root,
                               _b64(upgrade["consistency"]))
        except ProofError as error:
            raise BundleError(f"2 upgrade: {error}") from None
    envelopes = {}
    for item in bundle["events"]:
        index, entry = int(item["index"]), str(item["entry"]).encode()
        try:
            verify_inclusion(index, checkpoint.size, leaf_hash(entry), _b64(item["proof"]), checkpoint.root)
        except ProofError as error:
            raise BundleError(f"3 inclusion of entry {index}: {error}") from None
        try:
            envelopes[index] = parse_entry(entry)
        except EnvelopeError as error:
            raise BundleError(f"4 envelope of entry {index}: {error}") from None
    if 0 not in envelopes or envelopes[0].type != "key.registered":
        raise BundleError("4 keys: the root key's registration (entry 0) is missing")
    root = envelopes[0].body
    keys: dict[str, tuple[str, str]] = {}
    if envelopes[0].actor.key != root["key_id"] or key_id(base64.b64decode(root["public_key"])) != root["key_id"]:
        raise BundleError("4 keys: entry 0 is not the root key registering itself")
    keys[root["key_id"]] = (root["role"], root["public_key"])
    for index in sorted(envelopes):
        envelope = envelopes[index]
        if index > 0 and envelope.type == "key.registered":
            if envelope.actor.key != root["key_id"]:
                raise BundleError(f"4 keys: entry {index} registers a key without the root key")
            body = envelope.body
            if key_id(base64.b64decode(body["public_key"])) != body["key_id"]:
                raise BundleError(f"4 keys: entry {index} has a key id that does not match its key")
            keys[body["key_id"]] = (body["role"], body["public_key"])
    for index, envelope in sorted(envelopes.items()):
        known = keys.get(envelope.actor.key)
        if known is None or known[0] != envelope.actor.role:
            raise BundleError(f"4 signature of entry {index}: key {envelope.actor.key} is not registered for "
                              f"role {envelope.actor.role} in the bundle")
        if not event_signature_is_valid(public_key_from_base64(known[1]), envelope.event_hash(), envelope.sig):
            raise BundleError(f"4 signature of entry {index}: does not verify")
    own = [e for _, e in sorted(envelopes.items()) if e.stream == member]
    previous: str | None = None
    for seq, envelope in enumerate(own, start=1):
        if envelope.seq != seq or envelope.prev != previous:
            raise BundleError(f"5 chain: the member's stream is incomplete at seq {seq}")
        previous = envelope.event_hash().hex()
    if not own or own[0].type != "member.joined":
        raise BundleError("5 chain: the member's join is missing")
    statement = Statement(member, checkpoint.size, [w.name for w in witness_keys])
    for roll in bundle["rolls"]:
        period = envelopes.get(int(roll["period_index"]))
        if period is None or period.type != "period.assessed" or period.stream != roll["period"]:
            raise BundleError(f"6 roll of {roll['period']}: its period.assessed event is not in the bundle")
        share = int(period.body["share_fen"])
        try:
            verify_inclusion(int(roll["leaf_index"]), int(period.body["roll_size"]),
                             leaf_hash(roll_leaf(period.stream, member, share)), _b64(roll["proof"]),
                             bytes.fromhex(period.body["roll_root"]))
        except ProofError as error:
            raise BundleError(f"6 roll of period {period.body['number']}: {error}") from None
        statement.periods.append({"period": period.stream, "number": period.body["number"],
                                  "cutoff_at": period.body["cutoff_at"], "share_fen": share,
                                  "cases": len(period.body["cases"])})
        statement.shared_fen += share
        statement.people_helped += len(period.body["cases"])
    for envelope in own:
        if envelope.type == "member.deposit_received":
            statement.deposits_fen += int(envelope.body["amount_fen"])
        elif envelope.type == "member.refund_disbursed":
            statement.refunds_fen += int(envelope.body["amount_fen"])
    claims: dict[str, str] = {}
    for _, envelope in sorted(envelopes.items()):
        if envelope.type.startswith("claim.") and (envelope.type != "claim.filed" or envelope.body["member"] == member):
            claims[envelope.stream] = envelope.type.removeprefix("claim.")
    statement.claims = [{"claim": claim, "status": status} for claim, status in claims.items()]
    return statement


def load_bundle(text: str) -> dict[str, Any]:
    """Parse a bundle file."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise BundleError("format: a bundle is a JSON object")
    return data
