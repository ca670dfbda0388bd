"""The keyring: which public keys may sign for which role, and when.

The keyring is one stream per log. Its first event — the first event of the whole log — registers the operator's
root key and is signed by that key; the root key's public half is the verifier's trust anchor, published out of
band. Keys are registered and revoked by operator-signed events; a revoked key's signatures after `revoked_at`
are invalid.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Actor, format_at, parse_at
from ledger.errors import check
from ledger.keys import key_id
from ledger.rules import Rule
from schemas.events import KeyRegisteredV1, KeyRegisteredV2, KeyRevokedV1

KEYRING_ID = uuid5(NAMESPACE_URL, "mutual-ledger:keyring")
"""The keyring's stream id, the same in every log."""


@dataclass(frozen=True)
class RegisteredKey:
    """A key's registration and, once revoked, its revocation time."""

    key_id: str
    role: str
    public_key: bytes
    valid_from: datetime
    member: str | None
    revoked_at: datetime | None = None

    def valid_at(self, moment: datetime) -> bool:
        """Whether signatures made at `moment` by this key are valid."""
        return self.valid_from <= moment and (self.revoked_at is None or moment < self.revoked_at)


class Keyring(LedgerAggregate):
    """Registered keys by key id."""

    def __init__(self) -> None:
        self.keys: dict[str, RegisteredKey] = {}
        self.root_key_id = ""

    class Started(LedgerAggregate.Created):
        """The root key registers itself: the log's first event."""

        TYPE = "key.registered"
        body: KeyRegisteredV1

        def apply(self, aggregate: Keyring) -> None:
            aggregate.root_key_id = self.body.key_id
            aggregate.add(self.body)

    class Registered(LedgerAggregate.Event):
        """A key is registered for a role."""

        TYPE = "key.registered"
        body: KeyRegisteredV1

        def apply(self, aggregate: Keyring) -> None:
            aggregate.add(self.body)

    class RegisteredV2(Registered):
        """A party's key is registered with the party's public name."""

        SCHEMA = 2
        body: KeyRegisteredV2

    class Revoked(LedgerAggregate.Event):
        """A key is revoked."""

        TYPE = "key.revoked"
        body: KeyRevokedV1

        def apply(self, aggregate: Keyring) -> None:
            old = aggregate.keys[self.body.key_id]
            aggregate.keys[old.key_id] = RegisteredKey(
                old.key_id, old.role, old.public_key, old.valid_from, old.member,
                parse_at(self.body.revoked_at),
            )

    def add(self, body: KeyRegisteredV1) -> None:
        """Record a registration (used by the events above)."""
        self.keys[body.key_id] = RegisteredKey(
            body.key_id, body.role, base64.b64decode(body.public_key), parse_at(body.valid_from), body.member
        )

    @classmethod
    def begin(cls, at: datetime, root_public_key: bytes) -> Keyring:
        """Start a log: the root key registers itself as an operator key."""
        root_id = key_id(root_public_key)
        body = KeyRegisteredV1(
            key_id=root_id, role="operator", public_key=base64.b64encode(root_public_key).decode(),
            valid_from=format_at(at), member=None,
        )
        return cls.start(cls.Started, KEYRING_ID, at, Actor("operator", root_id), body)

    def register(
        self, at: datetime, actor: Actor, public_key: bytes, role: str, member: str | None,
        party_name: str | None = None,
    ) -> str:
        """Register a key for a role; member and juror keys must name their member, and only other keys may carry
        their party's public name (schema 2)."""
        assert len(public_key) == 32, "the command's schema admits 32-byte keys only"
        new_id = key_id(public_key)
        check(new_id not in self.keys, "public_key", Rule.KEY_MUST_NOT_BE_REGISTERED_TWICE, new_id)
        check((role in ("member", "juror")) == (member is not None), "member",
              Rule.MEMBER_AND_JUROR_KEYS_NAME_THEIR_MEMBER_AND_OTHERS_DO_NOT)
        check(party_name is None or member is None, "party_name", Rule.ONLY_A_PARTY_KEY_CARRIES_A_PUBLIC_NAME, role)
        body = KeyRegisteredV1(
            key_id=new_id, role=role,  # type: ignore[arg-type]  # checked by the model
            public_key=base64.b64encode(public_key).decode(), valid_from=format_at(at), member=member,
        )
        if party_name is None:
            self.record(self.Registered, at, actor, body)
        else:
            self.record(self.RegisteredV2, at, actor, KeyRegisteredV2(**body.model_dump(), party_name=party_name))
        return new_id

    def revoke(self, at: datetime, actor: Actor, revoked_key_id: str) -> None:
        """Revoke a key from `at` on; the root key cannot be revoked (it anchors the log)."""
        key = self.keys.get(revoked_key_id)
        check(key is not None, "key_id", Rule.KEY_MUST_BE_REGISTERED, revoked_key_id)
        assert key is not None
        check(key.revoked_at is None, "key_id", Rule.KEY_MUST_NOT_BE_REVOKED_TWICE, revoked_key_id)
        check(revoked_key_id != self.root_key_id, "key_id", Rule.ROOT_KEY_CANNOT_BE_REVOKED)
        self.record(self.Revoked, at, actor, KeyRevokedV1(key_id=revoked_key_id, revoked_at=format_at(at)))

    def key_valid_for(self, key: str, role: str, moment: datetime) -> bool:
        """Whether `key` is registered for `role` and valid at `moment`."""
        registered = self.keys.get(key)
        return registered is not None and registered.role == role and registered.valid_at(moment)

    def member_keys(self, member: str) -> list[RegisteredKey]:
        """Keys registered to a member (member or juror role)."""
        return [k for k in self.keys.values() if k.member == member]

