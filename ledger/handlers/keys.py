"""Handlers of the keyring commands."""

from __future__ import annotations

import base64

from ledger.application import Outcome, UnitOfWork, handles
from schemas.commands.keys import RegisterKey, RevokeKey


@handles(RegisterKey)
def register_key(uow: UnitOfWork, command: RegisterKey) -> Outcome:
    """Register a key."""
    keyring = uow.keyring()
    key_id = keyring.register(
        uow.at, uow.actor("operator"), base64.b64decode(command.public_key), command.role, command.member
    )
    return Outcome({"key_id": key_id, "role": command.role})


@handles(RevokeKey)
def revoke_key(uow: UnitOfWork, command: RevokeKey) -> Outcome:
    """Revoke a key."""
    uow.keyring().revoke(uow.at, uow.actor("operator"), command.key_id)
    return Outcome({"key_id": command.key_id})
