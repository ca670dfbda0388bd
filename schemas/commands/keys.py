"""Commands of the keyring."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from schemas.commands import Command
from schemas.common import Id, KeyId, Name, Role


class RegisterKey(Command):
    """Register a public key for a role (member and juror keys name their member)."""

    NAME: ClassVar[str] = "register_key"
    SCHEMA_VERSION: ClassVar[int] = 2
    """v2: the party's public name (`key.registered` schema 2), for the keys of parties, not of members."""
    ROLE: ClassVar[str] = "operator"
    command: Literal["register_key"] = "register_key"
    role: Role
    public_key: str = Field(pattern=r"^[A-Za-z0-9+/]{43}=$", description="base64 of the raw 32-byte key")
    member: Id | None = None
    party_name: Name | None = Field(default=None, description="the public name of the party holding the key, e.g. "
                                                              "the investigation firm a case card names")


class RevokeKey(Command):
    """Revoke a key from now on."""

    NAME: ClassVar[str] = "revoke_key"
    ROLE: ClassVar[str] = "operator"
    command: Literal["revoke_key"] = "revoke_key"
    key_id: KeyId
