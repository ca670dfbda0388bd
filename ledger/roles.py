"""Role rules — a contract (docs/design.md, "Signed events"): which key may sign which event.

Fund movements the custodian executed are signed by a custodian key; a juror's vote by that juror's own key; a
claim investigation by the investigation firm's key; a regulator's report by a regulator key; a member's own
requests by the member's key, or by an operator key on behalf of that member — except sealed requests (a v2 claim
filing or jury request, whose body does not name the member), which an operator key signs on no one's behalf, since
any other signer would name the member; everything else by an operator key.
The root key (entry 0) signs keyring events and nothing else, and only it changes the keyring; a custodian or
regulator key is registered only when the trust anchors hold it. The same functions serve the application (before
writing) and the verifiers (after reading), so they cannot disagree: nothing is written that an audit would reject.
A command that writes no event (a collection with nothing to collect) has no event to check; its signer is checked
against the command's role instead (`command_role_error`), so no key does by asking what its role may not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ledger.anchors import ANCHORED_ROLES, TrustAnchors
from ledger.envelope import Actor
from ledger.rules import Rule
from schemas.events import (
    CUSTODIAN_TYPES,
    INVESTIGATOR_TYPES,
    JUROR_TYPES,
    MEMBER_REQUEST_TYPES,
    REGULATOR_TYPES,
)

KEYRING_TYPES = frozenset({"key.registered", "key.revoked"})
"""The types of keyring events: what changes which key may sign what."""

_CONCERNED_MEMBER_FIELD = {
    "claim.filed": "member",
    "claim.objection_filed": "objector",
    "claim.jury_requested": "requested_by",
    "claim.vote_cast": "juror",
}


def concerned_member(event_type: str, stream: str, body: Mapping[str, Any]) -> str | None:
    """The member whose own request or vote an event records (None for other events, and for a sealed request,
    whose body does not name its member: `claim.filed` and `claim.jury_requested` from v2 on)."""
    if event_type in ("member.joined", "member.exited", "member.conversion_accepted"):
        return stream
    field = _CONCERNED_MEMBER_FIELD.get(event_type)
    return None if field is None or field not in body else str(body[field])


def required_role_error(
    event_type: str, actor: Actor, stream: str, body: Mapping[str, Any], key_member: str | None,
    root_key_id: str | None,
) -> Rule | None:
    """Return the broken rule if `actor` may not sign this event, else None.

    `key_member` is the member the signing key is registered to (member and juror keys), if any; `root_key_id`
    the log's root key (None before the first entry, which the root key signs itself).
    """
    if event_type in KEYRING_TYPES:
        ok = actor.key == root_key_id or root_key_id is None
        return None if ok else Rule.KEYRING_CHANGES_MUST_BE_SIGNED_BY_THE_ROOT_KEY
    if actor.key == root_key_id:
        return Rule.ROOT_KEY_SIGNS_ONLY_KEYRING_EVENTS
    if event_type in CUSTODIAN_TYPES:
        ok = actor.role == "custodian" and actor.on_behalf_of is None
        return None if ok else Rule.FUND_MOVEMENTS_MUST_BE_SIGNED_BY_A_CUSTODIAN_KEY
    if event_type in REGULATOR_TYPES:
        ok = actor.role == "regulator" and actor.on_behalf_of is None
        return None if ok else Rule.REGULATOR_REPORTS_MUST_BE_SIGNED_BY_A_REGULATOR_KEY
    if event_type in INVESTIGATOR_TYPES:
        ok = actor.role == "investigator" and actor.on_behalf_of is None
        return None if ok else Rule.INVESTIGATIONS_MUST_BE_SIGNED_BY_AN_INVESTIGATOR_KEY
    member = concerned_member(event_type, stream, body)
    if event_type in JUROR_TYPES:
        ok = actor.role == "juror" and actor.on_behalf_of is None and key_member == member
        return None if ok else Rule.VOTES_MUST_BE_SIGNED_BY_THE_JURORS_OWN_KEY
    if event_type in MEMBER_REQUEST_TYPES and member is None:  # sealed: a member key would name the member
        ok = actor.role == "operator" and actor.on_behalf_of is None
        return None if ok else Rule.SEALED_REQUESTS_MUST_BE_SIGNED_BY_AN_OPERATOR_KEY_FOR_NO_ONE_NAMED
    if event_type in MEMBER_REQUEST_TYPES:
        if actor.role == "member":
            ok = actor.on_behalf_of is None and key_member == member
        else:
            ok = actor.role == "operator" and actor.on_behalf_of == member
        return None if ok else Rule.MEMBER_REQUESTS_MUST_BE_SIGNED_BY_THE_MEMBER_OR_THE_OPERATOR_ON_THEIR_BEHALF
    ok = actor.role == "operator" and actor.on_behalf_of is None
    return None if ok else Rule.THIS_EVENT_MUST_BE_SIGNED_BY_AN_OPERATOR_KEY


ROLE_RULES = {
    "custodian": Rule.FUND_MOVEMENTS_MUST_BE_SIGNED_BY_A_CUSTODIAN_KEY,
    "regulator": Rule.REGULATOR_REPORTS_MUST_BE_SIGNED_BY_A_REGULATOR_KEY,
    "investigator": Rule.INVESTIGATIONS_MUST_BE_SIGNED_BY_AN_INVESTIGATOR_KEY,
    "juror": Rule.VOTES_MUST_BE_SIGNED_BY_THE_JURORS_OWN_KEY,
    "member": Rule.MEMBER_REQUESTS_MUST_BE_SIGNED_BY_THE_MEMBER_OR_THE_OPERATOR_ON_THEIR_BEHALF,
    "operator": Rule.THIS_EVENT_MUST_BE_SIGNED_BY_AN_OPERATOR_KEY,
}
"""The rule a signer of another role breaks, by the role of what it signs (the rules of `required_role_error`)."""
COMMAND_MEMBER_FIELDS = ("member", "objector", "requested_by", "juror")
"""The fields of a command that name the member whose own request or vote it is."""


def command_role_error(command_role: str, actor: Actor, key_member: str | None, named: Mapping[str, Any],
                       root_key_id: str | None) -> Rule | None:
    """Return the broken rule if `actor` may not sign a command of `command_role` (`Command.ROLE`) that wrote no
    event, else None: the role's own key; for a member's request, an operator key too; a member's or juror's key
    only for a command that names its member (`named`: the command's fields); never the root key, which signs
    keyring events only."""
    if root_key_id is not None and actor.key == root_key_id:
        return Rule.ROOT_KEY_SIGNS_ONLY_KEYRING_EVENTS
    if actor.role == "operator" and command_role == "member":
        return None
    if actor.role != command_role:
        return ROLE_RULES[command_role]
    if command_role in ("member", "juror"):
        members = {str(named[name]) for name in COMMAND_MEMBER_FIELDS if named.get(name) is not None}
        return None if key_member is not None and key_member in members else ROLE_RULES[command_role]
    return None


def anchored_key_error(event_type: str, body: Mapping[str, Any], anchors: TrustAnchors | None) -> Rule | None:
    """Return the broken rule if a key registration names a custodian or regulator key the anchors do not hold.

    Without anchors the writer refuses every such registration (there is nothing a verifier could check it
    against); a verifier without anchors cannot check it and says so in its report."""
    if event_type != "key.registered" or body.get("role") not in ANCHORED_ROLES:
        return None
    if anchors is not None and anchors.anchored(str(body.get("key_id")), str(body.get("role"))):
        return None
    return Rule.CUSTODIAN_AND_REGULATOR_KEYS_MUST_BE_TRUST_ANCHORS
