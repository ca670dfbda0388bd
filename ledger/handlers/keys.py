"""Handlers of the keyring commands.

Keys are registered and revoked only under the operator root key (the trust anchor): an ordinary operator key
that leaked could otherwise register a custodian key of its own and forge fund movements.
"""

from __future__ import annotations

import base64

from ledger.aggregates.base import check
from ledger.application import OPERATOR_ROOT_KEY, Outcome, UnitOfWork, handles
from ledger.envelope import Actor
from schemas.commands.keys import RegisterKey, RevokeKey


def root_actor(uow: UnitOfWork) -> Actor:
    """The signer of a keyring change: the root key, or `--key` when it names the root key."""
    keyring = uow.keyring()
    actor = uow.actor("operator") if uow.sign_as is not None else Actor(
        "operator", uow.app.signing_key(OPERATOR_ROOT_KEY).key_id)
    check(actor.key == keyring.root_key_id, "signer", "keyring_changes_must_be_signed_by_the_root_key",
          actor.key)
    return actor


@handles(RegisterKey)
def register_key(uow: UnitOfWork, command: RegisterKey) -> Outcome:
    """Register a key."""
    keyring = uow.keyring()
    key_id = keyring.register(
        uow.at, root_actor(uow), base64.b64decode(command.public_key), command.role, command.member
    )
    return Outcome({"key_id": key_id, "role": command.role})


@handles(RevokeKey)
def revoke_key(uow: UnitOfWork, command: RevokeKey) -> Outcome:
    """Revoke a key."""
    uow.keyring().revoke(uow.at, root_actor(uow), command.key_id)
    return Outcome({"key_id": command.key_id})
