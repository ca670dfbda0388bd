"""Role rules — a contract (DESIGN.md, "Signed events"): which role may sign which event.

Fund movements the custodian executed are signed by a custodian key; a juror's vote by that juror's own key; a
claim investigation by the investigation firm's key; a regulator's report by a regulator key; a member's own
requests by the member's key, or by an operator key on behalf of that member; everything else by an operator key.
The same function serves the application (before writing) and the verifiers (after reading), so they cannot
disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.envelope import Actor
from schemas.events import (
    CUSTODIAN_TYPES,
    INVESTIGATOR_TYPES,
    JUROR_TYPES,
    MEMBER_REQUEST_TYPES,
    REGULATOR_TYPES,
)

_CONCERNED_MEMBER_FIELD = {
    "claim.filed": "member",
    "claim.objection_filed": "objector",
    "claim.jury_requested": "requested_by",
    "claim.vote_cast": "juror",
}


def concerned_member(event_type: str, stream: str, body: Mapping[str, Any]) -> str | None:
    """The member whose own request or vote an event records (None for other events)."""
    if event_type in ("member.joined", "member.exited"):
        return stream
    field = _CONCERNED_MEMBER_FIELD.get(event_type)
    return None if field is None else str(body[field])


def required_role_error(
    event_type: str, actor: Actor, stream: str, body: Mapping[str, Any], key_member: str | None
) -> str | None:
    """Return the broken rule's name if `actor` may not sign this event, else None.

    `key_member` is the member the signing key is registered to (member and juror keys), if any.
    """
    if event_type in CUSTODIAN_TYPES:
        ok = actor.role == "custodian" and actor.on_behalf_of is None
        return None if ok else "fund_movements_must_be_signed_by_a_custodian_key"
    if event_type in REGULATOR_TYPES:
        ok = actor.role == "regulator" and actor.on_behalf_of is None
        return None if ok else "regulator_reports_must_be_signed_by_a_regulator_key"
    if event_type in INVESTIGATOR_TYPES:
        ok = actor.role == "investigator" and actor.on_behalf_of is None
        return None if ok else "investigations_must_be_signed_by_an_investigator_key"
    member = concerned_member(event_type, stream, body)
    if event_type in JUROR_TYPES:
        ok = actor.role == "juror" and actor.on_behalf_of is None and key_member == member
        return None if ok else "votes_must_be_signed_by_the_jurors_own_key"
    if event_type in MEMBER_REQUEST_TYPES:
        if actor.role == "member":
            ok = actor.on_behalf_of is None and key_member == member
        else:
            ok = actor.role == "operator" and actor.on_behalf_of == member
        return None if ok else "member_requests_must_be_signed_by_the_member_or_the_operator_on_their_behalf"
    ok = actor.role == "operator" and actor.on_behalf_of is None
    return None if ok else "this_event_must_be_signed_by_an_operator_key"
