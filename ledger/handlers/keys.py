"""Handlers of the keyring commands.

Keys are registered and revoked only under the operator root key (the trust anchor): an ordinary operator key
that leaked could otherwise register a custodian key of its own and forge fund movements.
"""

from __future__ import annotations

import base64

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
    """Register a key."""
    keyring = uow.keyring()
    key_id = keyring.register(
        uow.at, root_actor(uow), base64.b64decode(command.public_key), command.role, command.member,
        command.party_name,
    )
    return Outcome({"key_id": key_id, "role": command.role})


@handles(RevokeKey)
def revoke_key(uow: UnitOfWork, command: RevokeKey) -> Outcome:
    """Revoke a key."""
    uow.keyring().revoke(uow.at, root_actor(uow), command.key_id)
    return Outcome({"key_id": command.key_id})
