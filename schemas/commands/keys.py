"""Commands of the keyring."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from schemas.commands import Command
from schemas.common import Id, KeyId, Role


class RegisterKey(Command):
    """Register a public key for a role (member and juror keys name their member)."""

    NAME: ClassVar[str] = "register_key"
    ROLE: ClassVar[str] = "operator"
    command: Literal["register_key"] = "register_key"
    role: Role
    public_key: str = Field(pattern=r"^[A-Za-z0-9+/]{43}=$", description="base64 of the raw 32-byte key")
    member: Id | None = None


class RevokeKey(Command):
    """Revoke a key from now on."""

    NAME: ClassVar[str] = "revoke_key"
    ROLE: ClassVar[str] = "operator"
    command: Literal["revoke_key"] = "revoke_key"
    key_id: KeyId
