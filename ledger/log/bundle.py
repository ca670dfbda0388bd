"""Offline proof bundles: one JSON file that lets a member check their history with no network and no database.

A bundle holds, against one signed checkpoint (with its cosignatures):

- `events`: every event of the member's own stream, of the claims they filed (plain ones, which name them, and
  sealed ones, which the operator's vault ties to them), the `period.assessed` event of every
  period they were locked in, and the `key.registered` events of every key that signed one of those (with the
  root key's self-registration, entry 0) — each as its canonical entry with its log index and inclusion proof;
- `rolls`: for each of those periods, the member's leaf index in the assessment roll and its inclusion proof into
  the period's signed `roll_root`, recomputed here from the events (the locked set at the cutoff), never read
  from a stored copy;
- `revealed`: for each sealed claim among those events (`claim.filed` v2, which names no member), the member's
  claimant record — value and salt (docs/privacy.md) — that opens its `member_sealed` commitment, so the bundle
  proves the claim is theirs; no other sealed value;
- optionally `upgrade`: a later checkpoint and the consistency proof from the bundle's size to it.

`audit.bundle.verify_bundle` checks all of it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import date
from typing import Any

import orjson

from ledger.errors import InputError
from ledger.log.checkpoints import CheckpointLog
from ledger.log.index import ENDED
from ledger.log.note import Checkpoint, split_note
from ledger.log.tree import TransparencyLog
from ledger.rules import Rule
from ledger.sealing import Revealed

FORMAT = "mutual-ledger/proof-bundle/v1"


def b64(values: list[bytes]) -> list[str]:
    """Base64 of each hash."""
    return [base64.b64encode(v).decode() for v in values]


def build_bundle(checkpoints: CheckpointLog, member: str, since: date | None = None,
                 until: date | None = None, claimants: Sequence[Revealed] = ()) -> dict[str, Any]:
    """The proof bundle of `member` against the latest published checkpoint (reading only: events after it are not
    in the bundle until the operator publishes a newer one). Reads the log's index (`ledger.log.index`): the
    member's and their claims' entries, the plan's assessments and each roll's stored tree, never the whole log.
    `claimants` are the member's claimant records from the vault (`ledger.reveal.claimant_records`): their sealed
    claims come in with them; without (a reader with no vault) the bundle holds their plain claims only."""
    log = checkpoints.log
    index = log.index
    assert index is not None, "bundles are built over a ledger's indexed log"
    stored = checkpoints.latest()
    if stored is None:
        raise InputError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED,
                         "the operator publishes one with `mutual-ledger log checkpoint publish`")
    size = Checkpoint.parse(split_note(stored.note)[0]).size
    assert index.position() >= size, "integration indexes every entry it adds"
    sealed = {r.stream: r for r in claimants if r.field == "member" and r.seq == 1 and r.value == member}
    own = index.stream_entries([member, *index.member_claims(member), *sorted(sealed)], size)
    entries = _entries(log, [nid for _, nid in own])
    member_indexes = {i: entries[nid] for i, nid in own}
    joined = ended = None
    for i in sorted(member_indexes):
        envelope = orjson.loads(member_indexes[i])
        if envelope["stream"] != member:
            continue
        if envelope["type"] == "member.joined":
            joined = envelope
        elif envelope["type"] in ENDED and ended is None:
            ended = envelope["at"]
    if joined is None:
        raise InputError("member", Rule.MEMBERSHIP_MUST_EXIST, f"{member} in the log up to checkpoint {size}")
    plan, joined_at = joined["body"]["plan"], joined["at"]
    left_out = index.left_out_of(member)  # schema-3 rolls that left the member out for their age
    chosen = [a for a in index.plan_assessments(plan, size)
              if joined_at <= a.cutoff_at and (ended is None or a.cutoff_at < ended) and a.period not in left_out
              and not (since and a.cutoff_at[:10] < since.isoformat())
              and not (until and a.cutoff_at[:10] > until.isoformat())]
    period_entries = _entries(log, [a.nid for a in chosen])
    rolls = []
    for assessment, (position, proof) in zip(chosen, index.roll_proofs(chosen, member), strict=True):
        rolls.append({"period": assessment.period, "period_index": assessment.index, "amount": assessment.share_fen,
                      "leaf_index": position, "roll_size": assessment.roll_size, "proof": b64(proof)})
    texts = {**member_indexes, **{a.index: period_entries[a.nid] for a in chosen}}
    envelopes = {i: orjson.loads(entry) for i, entry in texts.items()}  # each entry parsed once
    keys = index.key_registrations(sorted({envelope["actor"]["key"] for envelope in envelopes.values()}), size)
    texts.update({i: entry for (i, _), entry in zip(keys, _entries_in_order(log, [nid for _, nid in keys]),
                                                   strict=True)})
    envelopes.update({i: orjson.loads(texts[i]) for i, _ in keys if i not in envelopes})
    proofs = log.inclusion_proofs(texts, size)
    return {
        "format": FORMAT,
        "member": member,
        "range": {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None},
        "checkpoint": stored.note,
        "events": [{"index": i, "entry": texts[i].decode("utf-8"), "proof": b64(proofs[i])} for i in sorted(texts)],
        "rolls": rolls,
        "revealed": [sealed[envelopes[i]["stream"]].json_value() for i in sorted(texts)
                     if envelopes[i]["stream"] in sealed and envelopes[i]["type"] == "claim.filed"],
    }


def _entries(log: TransparencyLog, nids: list[int]) -> dict[int, bytes]:
    """The stored entries at these notification ids, by id."""
    if not nids:
        return {}
    found: dict[int, bytes] = log.source.recorder.select_entries(nids)
    assert len(found) == len(set(nids)), "every indexed entry is stored"
    return found


def _entries_in_order(log: TransparencyLog, nids: list[int]) -> list[bytes]:
    found = _entries(log, nids)
    return [found[nid] for nid in nids]


def upgrade_bundle(bundle: dict[str, Any], checkpoints: CheckpointLog) -> dict[str, Any]:
    """Add the latest checkpoint and the consistency proof from the bundle's checkpoint to it."""
    old = Checkpoint.parse(split_note(str(bundle["checkpoint"]))[0])
    latest = checkpoints.latest()
    if latest is None:
        raise InputError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED, "no checkpoint to upgrade to")
    new = Checkpoint.parse(split_note(latest.note)[0])
    proof = checkpoints.log.consistency_proof(old.size, new.size) if old.size and new.size > old.size else []
    return {**bundle, "upgrade": {"checkpoint": latest.note, "consistency": b64(proof)}}


