"""Handlers of the keyring commands.

Keys are registered and revoked only under the operator root key (the trust anchor): an ordinary operator key
that leaked could otherwise register a custodian key of its own and forge fund movements.
"""

from __future__ import annotations

import base64
from uuid import UUID

from ledger.aggregates.membership import Membership
from ledger.envelope import Actor
from ledger.errors import check
from ledger.rules import Rule
from ledger.unit_of_work import Outcome, UnitOfWork, handles
from schemas.commands.keys import RegisterKey, RevokeKey


def root_actor(uow: UnitOfWork) -> Actor:
    """The signer of a keyring change: the root key, or `--key` when it names the root key."""
    keyring = uow.keyring()
    actor = uow.root_actor()
    check(actor.key == keyring.root_key_id, "signer", Rule.KEYRING_CHANGES_MUST_BE_SIGNED_BY_THE_ROOT_KEY,
          actor.key)
    return actor


@handles(RegisterKey)
def register_key(uow: UnitOfWork, command: RegisterKey) -> Outcome:
    """Register a key; a member's or juror's key names a member the ledger holds (a key for no one could never
    sign anything, and would stay in the keyring for good)."""
    keyring = uow.keyring()
    if command.member is not None and command.role in ("member", "juror"):
        uow.get(UUID(command.member), Membership, "member")
    key_id = keyring.register(
        uow.at, root_actor(uow), base64.b64decode(command.public_key), command.role, command.member
    )
    return Outcome({"key_id": key_id, "role": command.role})


@handles(RevokeKey)
def revoke_key(uow: UnitOfWork, command: RevokeKey) -> Outcome:
    """Revoke a key."""
    uow.keyring().revoke(uow.at, root_actor(uow), command.key_id)
    return Outcome({"key_id": command.key_id})
