"""Offline proof bundles: one JSON file that lets a member check their history with no network and no database.

A bundle holds, against one signed checkpoint (with its cosignatures):

- `events`: every event of the member's own stream, of the claims they filed, the `period.assessed` event of every
  period they were locked in, and the `key.registered` events of every key that signed one of those (with the
  root key's self-registration, entry 0) — each as its canonical entry with its log index and inclusion proof;
- `rolls`: for each of those periods, the member's leaf index in the assessment roll and its inclusion proof into
  the period's signed `roll_root`, recomputed here from the events (the locked set at the cutoff), never read
  from a stored copy;
- optionally `upgrade`: a later checkpoint and the consistency proof from the bundle's size to it.

`audit.bundle.verify_bundle` checks all of it.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ledger.errors import InputError
from ledger.log.checkpoints import CheckpointLog
from ledger.log.merkle import inclusion_proof
from ledger.log.note import Checkpoint, split_note
from ledger.rules import Rule
from ledger.sharing import roll_leaf_hashes

FORMAT = "mutual-ledger/proof-bundle/v1"
ENDED = ("member.lapsed", "member.exited", "member.excluded", "member.wind_down_refund_due")


def b64(values: list[bytes]) -> list[str]:
    """Base64 of each hash."""
    return [base64.b64encode(v).decode() for v in values]


@dataclass
class _Membership:
    plan: str
    joined_at: str
    ended_at: str | None = None


@dataclass
class _Scan:
    """What one pass over the log learns for a bundle."""

    member_indexes: list[int] = field(default_factory=list)
    claims: set[str] = field(default_factory=set)
    memberships: dict[str, _Membership] = field(default_factory=dict)
    assessed: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    key_registrations: dict[str, int] = field(default_factory=dict)
    entries: dict[int, bytes] = field(default_factory=dict)


def build_bundle(checkpoints: CheckpointLog, member: str, since: date | None = None,
                 until: date | None = None) -> dict[str, Any]:
    """The proof bundle of `member` against the latest published checkpoint (reading only: events after it are not
    in the bundle until the operator publishes a newer one)."""
    log = checkpoints.log
    stored = checkpoints.latest()
    if stored is None:
        raise InputError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED,
                         "the operator publishes one with `mutual-ledger log checkpoint publish`")
    size = Checkpoint.parse(split_note(stored.note)[0]).size
    scan = _Scan()
    for index, entry in log.entries(0):
        if index >= size:
            break
        envelope = json.loads(entry)
        kind, stream, body = envelope["type"], envelope["stream"], envelope["body"]
        if kind == "key.registered":
            scan.key_registrations[body["key_id"]] = index
            scan.entries[index] = entry
        elif kind == "member.joined":
            scan.memberships[stream] = _Membership(body["plan"], envelope["at"])
        elif kind in ENDED and stream in scan.memberships and scan.memberships[stream].ended_at is None:
            scan.memberships[stream].ended_at = envelope["at"]
        elif kind == "claim.filed" and body.get("member") == member:  # a sealed claim names no member
            scan.claims.add(stream)
        elif kind == "period.assessed":
            scan.assessed.append((index, envelope))
            scan.entries[index] = entry
        if stream == member or stream in scan.claims:
            scan.member_indexes.append(index)
            scan.entries[index] = entry
    if member not in scan.memberships:
        raise InputError("member", Rule.MEMBERSHIP_MUST_EXIST, f"{member} in the log up to checkpoint {size}")
    mine = scan.memberships[member]
    rolls, period_indexes = [], []
    for index, envelope in scan.assessed:
        body = envelope["body"]
        cutoff = body["cutoff_at"]
        if body["plan"] != mine.plan or not _active(mine, cutoff):
            continue
        on = cutoff[:10]
        if (since and on < since.isoformat()) or (until and on > until.isoformat()):
            continue
        locked = sorted(m for m, ms in scan.memberships.items() if ms.plan == body["plan"] and _active(ms, cutoff))
        hashes = roll_leaf_hashes(envelope["stream"], locked, body["share_fen"])
        position = locked.index(member)
        rolls.append({"period": envelope["stream"], "period_index": index, "amount": body["share_fen"],
                      "leaf_index": position, "roll_size": len(locked),
                      "proof": b64(inclusion_proof(position, hashes))})
        period_indexes.append(index)
    signers = {json.loads(scan.entries[i])["actor"]["key"] for i in [*scan.member_indexes, *period_indexes]}
    key_indexes = {0, *(scan.key_registrations[k] for k in signers if k in scan.key_registrations)}
    indexes = sorted({*scan.member_indexes, *period_indexes, *key_indexes})
    return {
        "format": FORMAT,
        "member": member,
        "range": {"from": since.isoformat() if since else None, "to": until.isoformat() if until else None},
        "checkpoint": stored.note,
        "events": [{"index": i, "entry": scan.entries[i].decode("utf-8"),
                    "proof": b64(log.inclusion_proof(i, size))} for i in indexes],
        "rolls": rolls,
    }


def upgrade_bundle(bundle: dict[str, Any], checkpoints: CheckpointLog) -> dict[str, Any]:
    """Add the latest checkpoint and the consistency proof from the bundle's checkpoint to it."""
    old = Checkpoint.parse(split_note(str(bundle["checkpoint"]))[0])
    latest = checkpoints.latest()
    if latest is None:
        raise InputError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED, "no checkpoint to upgrade to")
    new = Checkpoint.parse(split_note(latest.note)[0])
    proof = checkpoints.log.consistency_proof(old.size, new.size) if old.size and new.size > old.size else []
    return {**bundle, "upgrade": {"checkpoint": latest.note, "consistency": b64(proof)}}


def _active(membership: _Membership, instant: str) -> bool:
    return membership.joined_at <= instant and (membership.ended_at is None or instant < membership.ended_at)
