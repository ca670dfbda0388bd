"""The unit of work the command handlers run in, and the registry of handlers.

A handler gets a `UnitOfWork`: it loads aggregates (`get`, `find`), creates them (`add`), asks the narrow read-side
questions of `ledger.ports` (`queries`, `documents`), and records events through the aggregates with the actor
`actor(role)` gives it. It seals personal values (`seal`: the vault keeps the value, the event the commitment) and
names new streams (`new_id`: keyed, never client-chosen). The application (`ledger.application`) saves everything a
unit of work recorded, with what it sealed, in one transaction. Handlers import this module, never the application:
the write side is wired by the composition root.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast
from uuid import UUID

from ledger.aggregates.base import LedgerAggregate
from ledger.aggregates.claim import Claim
from ledger.aggregates.keyring import KEYRING_ID, Keyring
from ledger.aggregates.membership import Membership
from ledger.envelope import Actor
from ledger.errors import DomainRuleError
from ledger.ports import LedgerQueries, LedgerReadSide
from ledger.rules import Rule
from ledger.store import VaultWrites
from ledger.vault import Vault, empty_writes, keyed_id
from schemas.commands import Command
from schemas.events import MemberJoinedV1

A = TypeVar("A", bound=LedgerAggregate)
C = TypeVar("C", bound=Command)


class Writer(Protocol):
    """What a unit of work needs of the application: stored aggregates and the signers of new events."""

    def load(self, aggregate_id: UUID) -> LedgerAggregate | None:
        """A stored aggregate for change, or None when no stream has that id."""
        ...

    def stream_exists(self, stream: UUID) -> bool:
        """Whether any event of this stream is stored."""
        ...

    def actor_for(self, role: str, member: str | None = None, sign_as: str | None = None) -> Actor:
        """The actor who signs an event of `role`."""
        ...

    def root_actor(self, sign_as: str | None = None) -> Actor:
        """The actor of a keyring change: the root key (or `sign_as`, checked by the keyring handler)."""
        ...

    @property
    def vault(self) -> Vault:
        """The vault of sealed values."""
        ...

    @property
    def retention_days(self) -> int:
        """How long after leaving a member's sealed values are kept at most (`LEDGER_RETENTION_DAYS`)."""
        ...


@dataclass
class Outcome:
    """What a handler returns: its result fields; the events are collected from the unit of work."""

    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnitOfWork:
    """Aggregates loaded and changed by the commands of one transaction."""

    writer: Writer
    read: LedgerReadSide
    at: datetime
    sign_as: str | None = None
    loaded: dict[UUID, LedgerAggregate] = field(default_factory=dict)
    touched: dict[UUID, int] = field(default_factory=dict)
    """Aggregates the current command touched, with their pending event count when it first did."""
    families: dict[str, int] = field(default_factory=dict)
    """Family members joined per payer in this unit of work (not yet saved)."""
    signing_keyring: Keyring | None = None
    """The keyring that new events' signers are checked against, once it exists (see `signers_keyring`)."""
    vault_writes: VaultWrites = field(default_factory=empty_writes)
    """What the commands of this unit of work sealed, saved with their events."""

    @property
    def queries(self) -> LedgerQueries:
        """The read side's answers about members, accounts, claims and periods."""
        return self.read.queries

    @property
    def documents(self) -> LedgerReadSide:
        """The documents a command pins by hash (`ledger.ports.LedgerDocuments`)."""
        return self.read

    def get(self, aggregate_id: UUID, kind: type[A], field_name: str) -> A:
        """Load an aggregate for change; a missing one, or one of another kind, is a rule error naming the field."""
        aggregate = self.loaded.get(aggregate_id)
        if aggregate is None:
            aggregate = self.writer.load(aggregate_id)
            if aggregate is None:
                raise DomainRuleError(field_name, kind.MUST_EXIST, str(aggregate_id))
            self.loaded[aggregate_id] = aggregate
        if isinstance(aggregate, Claim) and aggregate.is_sealed and not aggregate.unsealed:
            self.unseal(aggregate)
        if not isinstance(aggregate, kind):
            raise DomainRuleError(field_name, Rule.ID_MUST_NAME_THE_EXPECTED_KIND,
                                  f"{aggregate_id} is a {type(aggregate).__name__.lower()}, not a "
                                  f"{kind.__name__.lower()}")
        self.touched.setdefault(aggregate_id, len(aggregate.pending_events))
        return aggregate

    def unseal(self, claim: Claim) -> None:
        """Open a sealed claim's values from the vault, for the rules that need them (none after erasure)."""
        claim.unsealed = {record.field: record.value
                          for _, record in self.writer.vault.values_of_stream(str(claim.id))}

    def age_at_joining(self, membership: Membership) -> int:
        """The member's age in years at joining, the one way a rule reads it: public on a `member.joined` v1,
        opened from the vault on a sealed one (v2). Erased, it is gone: a rule that needs it refuses."""
        joined = membership.details
        if isinstance(joined, MemberJoinedV1):
            return joined.age_years
        key = (1, "age_years")
        if key not in membership.unsealed:
            membership.unsealed.update({(record.seq, record.field): record.value for _, record
                                        in self.writer.vault.values_of_stream(str(membership.id))})
        if key not in membership.unsealed:
            raise DomainRuleError("member", Rule.MEMBER_MUST_NOT_BE_ERASED, str(membership.id))
        return int(membership.unsealed[key])

    def ages_at_joining(self, members: Sequence[str]) -> dict[str, int]:
        """Member → age in years at joining, opened from the vault for members whose join sealed it (v2), all in one
        pass (`Vault.field_of_streams`); an erased member is absent. The bulk form of `age_at_joining`, for rules
        that ask it of many members without loading their aggregates."""
        return {member: int(age) for member, age in
                self.writer.vault.field_of_streams(members, 1, "age_years").items()}

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """Load an aggregate if it exists."""
        try:
            return self.get(aggregate_id, kind, "id")
        except DomainRuleError:
            return None

    def add(self, aggregate: LedgerAggregate, field_name: str = "id", derived: bool = False) -> None:
        """Track a newly created aggregate; its stream id must not exist yet.

        `derived`: the id was derived from this command's id (`new_id`, keyed), so no stored stream can
        have it and the lookup is skipped; the store's uniqueness constraint still guards the write.
        """
        if aggregate.id in self.loaded or not (derived or not self.writer.stream_exists(aggregate.id)):
            raise DomainRuleError(field_name, Rule.STREAM_ID_MUST_BE_NEW, str(aggregate.id))
        self.loaded[aggregate.id] = aggregate
        self.touched[aggregate.id] = 0
        if isinstance(aggregate, Membership) and aggregate.details.payer is not None:
            payer = aggregate.details.payer
            self.families[payer] = self.families.get(payer, 0) + 1

    @property
    def vault(self) -> Vault:
        """The vault of sealed values (who filed a sealed claim is known only there)."""
        return self.writer.vault

    def new_id(self, kind: str, command_id: str) -> UUID:
        """The id of a stream this command creates, keyed by the operator's secret (`ledger.vault.keyed_id`)."""
        return keyed_id(self.writer.vault.id_key, kind, command_id)

    def seal(self, member: str, stream: UUID, seq: int, name: str, value: Any, new_member: bool = False) -> str:
        """Seal `value` as field `name` of event `stream#seq`, owned by `member`: the vault keeps it (saved with the
        events), and the commitment returned goes into the event body. `new_member`: a join's own value (the
        member has no data key yet)."""
        return self.writer.vault.seal(self.vault_writes, member, str(stream), seq, name, value, new_member)

    def keyring(self) -> Keyring:
        """The keyring, for reading (and changing when a key command runs)."""
        return self.get(KEYRING_ID, Keyring, "keyring")

    def signers_keyring(self) -> Keyring | None:
        """The keyring that checks the signers of new events, or None before the log's first event (the root key
        registers itself). Loaded once per unit of work: key commands change that same object."""
        if self.signing_keyring is None and (KEYRING_ID in self.loaded or self.writer.stream_exists(KEYRING_ID)):
            self.signing_keyring = self.keyring()
        return self.signing_keyring

    def actor(self, role: str, member: str | None = None) -> Actor:
        """The actor who signs for `role`; a member request falls back to the operator on their behalf."""
        return self.writer.actor_for(role, member, self.sign_as)

    def root_actor(self) -> Actor:
        """The signer of a keyring change."""
        return self.writer.root_actor(self.sign_as)

    def family_joined(self, payer: str) -> int:
        """Family members joined under `payer` earlier in this unit of work (not yet saved)."""
        return self.families.get(payer, 0)

    def begin_command(self) -> None:
        """Start tracking what the next command touches."""
        self.touched = {}

    def command_events(self) -> list[LedgerAggregate.Event]:
        """The events the current command recorded."""
        return [
            cast(LedgerAggregate.Event, event)
            for aggregate_id, before in self.touched.items()
            for event in self.loaded[aggregate_id].pending_events[before:]
        ]

    def pending(self) -> list[LedgerAggregate.Event]:
        """Every event recorded in this unit of work, not yet saved."""
        return [
            cast(LedgerAggregate.Event, event)
            for aggregate in self.loaded.values()
            for event in aggregate.pending_events
        ]


Handler = Callable[[UnitOfWork, Any], Outcome]
HANDLERS: dict[type[Command], Handler] = {}
"""The handler of every command type (registered by importing `ledger.handlers`)."""

TypedHandler = Callable[[UnitOfWork, C], Outcome]


def handles(command_type: type[C]) -> Callable[[TypedHandler[C]], TypedHandler[C]]:
    """Register the handler of a command type."""

    def register(function: TypedHandler[C]) -> TypedHandler[C]:
        assert command_type not in HANDLERS, f"two handlers for {command_type.__name__}"
        HANDLERS[command_type] = function
        return function

    return register
