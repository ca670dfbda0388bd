"""Revealing sealed values: the one way a value leaves the vault (docs/privacy.md, "Who sees a sealed value").

`reveal_member` gives a member's values (their claims' and their own events'), `reveal_claim` one claim's; each
record is checked against the commitment on the stored signed event before it is handed out, so the operator's
process never hands out a value that does not open its commitment. `may_see` is the rule of who may receive them:
the member by their own key, a custodian or a regulator by theirs. `check_records` is what a recipient (or the
auditor) runs on records against the signed events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

from ledger.application import LedgerApplication
from ledger.errors import RefusedError, VerificationError
from ledger.rules import Rule
from ledger.sealing import Revealed, check_revealed
from ledger.store import decode_entry

REVEAL_ROLES = ("custodian", "regulator")
"""Roles whose keys may see any member's sealed values (besides the member's own key)."""


def may_see(app: LedgerApplication, key_id: str, member: str | None) -> None:
    """Refuse unless the key is registered and valid now as the member's own (for `member`), a custodian's or a
    regulator's key."""
    keyring = app.keyring()
    registered = keyring.keys.get(key_id)
    now = app.clock.now()
    allowed = registered is not None and keyring.key_valid_for(key_id, registered.role, now) and (
        registered.role in REVEAL_ROLES or (registered.role == "member" and member is not None
                                            and registered.member == member))
    if not allowed:
        raise RefusedError("key", Rule.SEALED_VALUES_ARE_REVEALED_ONLY_TO_THE_MEMBER_THE_CUSTODIAN_OR_THE_REGULATOR,
                           key_id)


def signed_entries(app: LedgerApplication, records: Iterable[Revealed]) -> dict[tuple[str, int], bytes]:
    """The stored signed entries (the log's own bytes) of the events these records open, by (stream, seq)."""
    entries: dict[tuple[str, int], bytes] = {}
    for record in records:
        key = (record.stream, record.seq)
        if key not in entries:
            stored = app.recorder.select_events(UUID(record.stream), gt=record.seq - 1, lte=record.seq, limit=1)
            if not stored:
                raise VerificationError(f"vault: {record.stream}#{record.seq} is not on the log")
            entries[key] = stored[0].state
    return entries


def _checked(app: LedgerApplication, records: list[Revealed]) -> list[Revealed]:
    entries = signed_entries(app, records)
    for record in records:
        envelope = decode_entry(entries[(record.stream, record.seq)])
        problem = check_revealed(envelope.type, envelope.schema, envelope.body, record)
        if problem is not None:
            raise VerificationError(f"vault: {record.stream}#{record.seq}: {problem}")
    return records


def reveal_member(app: LedgerApplication, member: str) -> list[Revealed]:
    """Every sealed value the member owns, each checked against its commitment (none after erasure)."""
    return _checked(app, app.vault.values_of(member))


def reveal_claim(app: LedgerApplication, claim: str) -> list[Revealed]:
    """A claim's sealed values, each checked against its commitment (none after its claimant's erasure)."""
    return _checked(app, [record for _, record in app.vault.values_of_stream(claim)])


def claimant_records(app: LedgerApplication, member: str) -> list[Revealed]:
    """The member's claimant records: for each of their sealed claims, the value and salt that open its
    `member_sealed`, which a proof bundle carries so that the claim proves to be theirs (`ledger.log.bundle`)."""
    return [record for record in reveal_member(app, member) if record.field == "member"]


def records_json(records: Iterable[Revealed]) -> list[dict[str, Any]]:
    """Records in their JSON form, in (stream, seq, field) order."""
    return [r.json_value() for r in sorted(records, key=lambda r: (r.stream, r.seq, r.field))]


def check_records(records: Iterable[Revealed], envelopes: Mapping[tuple[str, int], dict[str, Any]]) -> list[str]:
    """What is wrong with each record against the signed events (`envelopes` by (stream, seq)): empty when every
    record opens its commitment."""
    problems = []
    for record in records:
        envelope = envelopes.get((record.stream, record.seq))
        if envelope is None:
            problems.append(f"{record.stream}#{record.seq}: no such event")
            continue
        problem = check_revealed(envelope["type"], envelope["schema"], envelope["body"], record)
        if problem is not None:
            problems.append(f"{record.stream}#{record.seq}: {problem}")
    return problems


def parse_records(data: object) -> list[Revealed]:
    """Records from a revealed file's JSON (a list of records, or `{"records": [...]}`); raises ValueError."""
    if isinstance(data, dict):
        data = data.get("records")
    if not isinstance(data, list):
        raise ValueError("a list of revealed records")
    return [Revealed.from_json_value(item) if isinstance(item, dict) else _not_a_record() for item in data]


def _not_a_record() -> Revealed:
    raise ValueError("each record is a JSON object")
