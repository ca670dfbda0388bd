"""The application service: commands in, signed events out.

`LedgerApplication.execute(command)` is the one way anything is written. It (1) returns the stored result if the
command id already ran, (2) runs the command's handler, which loads aggregates through a unit of work, checks
every rule and records events, (3) checks that each new event's signer holds a key valid for the event's role,
and (4) saves all events and the command's receipt in one transaction. A broken rule raises `DomainRuleError`
before anything is written; a concurrent writer raises the retryable `ConcurrencyConflictError`.

Exceptions: `DomainRuleError` (a rule; names field and rule), `CommandIdReusedError` (same id, different
request), `ConcurrencyConflictError` (retry), `SigningKeyMissingError` (no local key for the needed role).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper

from ledger.aggregates import EVENT_CLASSES
from ledger.aggregates.base import DomainRuleError, LedgerAggregate, check
from ledger.aggregates.keyring import KEYRING_ID, Keyring
from ledger.aggregates.membership import Membership
from ledger.config import Settings
from ledger.envelope import Actor
from ledger.keys import KeyDirectory, KeyDirectoryError, SigningKey
from ledger.memory import paused_gc
from ledger.roles import required_role_error
from ledger.signing import BatchSigner
from ledger.store import (
    CommandReceipt,
    PostgresLedgerRecorder,
    SignedEventMapper,
    SQLiteLedgerRecorder,
)
from schemas.commands import Command

if TYPE_CHECKING:
    from ledger.projections import ReadModels
    from ledger.projections.balances import Balances

A = TypeVar("A", bound=LedgerAggregate)
C = TypeVar("C", bound=Command)

OPERATOR_ROOT_KEY = "operator-root"
ROLE_KEY_NAMES = {
    "operator": "operator",
    "custodian": "custodian",
    "investigator": "investigator",
    "regulator": "regulator",
}
"""The key directory name of each institutional role's signing key."""


def member_key_name(role: str, member: str) -> str:
    """The key directory name of a member's or juror's key."""
    return f"{role}-{member}"


class Clock(Protocol):
    """Where event times come from (a simulated clock drives the demo and the tests)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(UTC)


@dataclass
class SimulatedClock:
    """A clock that moves only when told to; used by the demo and tests for reproducible histories."""

    current: datetime

    def now(self) -> datetime:
        """The simulated instant."""
        return self.current

    def set(self, moment: datetime) -> None:
        """Move the clock; it never goes back."""
        assert moment >= self.current, "the simulated clock never goes back"
        self.current = moment


class CommandIdReusedError(Exception):
    """A command id was reused for a different request."""

    def __init__(self, command_id: str) -> None:
        super().__init__(f"command_id: command_id_must_not_be_reused_for_a_different_request ({command_id})")
        self.field = "command_id"
        self.rule = "command_id_must_not_be_reused_for_a_different_request"


class ConcurrencyConflictError(Exception):
    """Another writer changed a stream this command read; nothing was written. Retrying is safe."""

    retryable = True


class SigningKeyMissingError(Exception):
    """The key directory holds no key for the role a command must be signed by."""


@dataclass
class Outcome:
    """What a handler returns: its result fields; the events are collected from the unit of work."""

    result: dict[str, Any] = field(default_factory=dict)


@dataclass
class UnitOfWork:
    """Aggregates loaded and changed by the commands of one transaction."""

    app: LedgerApplication
    at: datetime
    sign_as: str | None = None
    loaded: dict[UUID, LedgerAggregate] = field(default_factory=dict)
    touched: dict[UUID, int] = field(default_factory=dict)
    """Aggregates the current command touched, with their pending event count when it first did."""
    families: dict[str, int] = field(default_factory=dict)
    """Family members joined per payer in this unit of work (not yet saved)."""
    signing_keyring: Keyring | None = None
    """The keyring that new events' signers are checked against, once it exists (see `signers_keyring`)."""

    def get(self, aggregate_id: UUID, kind: type[A], field_name: str) -> A:
        """Load an aggregate for change; a missing one is a rule error naming the field."""
        aggregate = self.loaded.get(aggregate_id)
        if aggregate is None:
            try:
                aggregate = self.app.repository.get(aggregate_id)
            except AggregateNotFoundError:
                raise DomainRuleError(field_name, f"{kind.__name__.lower()}_must_exist",
                                      str(aggregate_id)) from None
            self.loaded[aggregate_id] = aggregate
        if not isinstance(aggregate, kind):
            raise DomainRuleError(field_name, f"id_must_name_a_{kind.__name__.lower()}", str(aggregate_id))
        self.touched.setdefault(aggregate_id, len(aggregate.pending_events))
        return aggregate

    def find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """Load an aggregate if it exists."""
        try:
            return self.get(aggregate_id, kind, "id")
        except DomainRuleError:
            return None

    def add(self, aggregate: LedgerAggregate, field_name: str = "id", derived: bool = False) -> None:
        """Track a newly created aggregate; its stream id must not exist yet.

        `derived`: the id was derived from this command's new id (`new_stream_id`), so no stored stream can
        have it and the lookup is skipped; the store's uniqueness constraint still guards the write.
        """
        if aggregate.id in self.loaded or not (derived or not self.app.stream_exists(aggregate.id)):
            raise DomainRuleError(field_name, "stream_id_must_be_new", str(aggregate.id))
        self.loaded[aggregate.id] = aggregate
        self.touched[aggregate.id] = 0
        if isinstance(aggregate, Membership) and aggregate.details.payer is not None:
            payer = aggregate.details.payer
            self.families[payer] = self.families.get(payer, 0) + 1

    def keyring(self) -> Keyring:
        """The keyring, for reading (and changing when a key command runs)."""
        return self.get(KEYRING_ID, Keyring, "keyring")

    def signers_keyring(self) -> Keyring | None:
        """The keyring that checks the signers of new events, or None before the log's first event (the root key
        registers itself). Loaded once per unit of work: key commands change that same object."""
        if self.signing_keyring is None and (KEYRING_ID in self.loaded or self.app.stream_exists(KEYRING_ID)):
            self.signing_keyring = self.keyring()
        return self.signing_keyring

    def actor(self, role: str, member: str | None = None) -> Actor:
        """The actor who signs for `role`; a member request falls back to the operator on their behalf."""
        return self.app.actor_for(role, member, self.sign_as)

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


TypedHandler = Callable[[UnitOfWork, C], Outcome]


def handles(command_type: type[C]) -> Callable[[TypedHandler[C]], TypedHandler[C]]:
    """Register the handler of a command type."""

    def register(function: TypedHandler[C]) -> TypedHandler[C]:
        assert command_type not in HANDLERS, f"two handlers for {command_type.__name__}"
        HANDLERS[command_type] = function
        return function

    return register


def request_hash(command: Command) -> str:
    """A hash of the request (everything but its id), to tell a repeat from a reused id: SHA-256 of
    `command.model_dump_json(exclude={"command_id"})`, made by the model's serializer directly (it runs per
    command, and the method's own argument handling costs as much as the serializing)."""
    return hashlib.sha256(type(command).__pydantic_serializer__.to_json(command, exclude=_NOT_HASHED)).hexdigest()


_NOT_HASHED = {"command_id"}


class LedgerApplication(Application[UUID]):
    """The ledger's application service over the configured event store."""

    name = "Ledger"

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        import ledger.handlers  # noqa: F401  (registers every handler; imported here to avoid a cycle)

        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.keys = KeyDirectory(settings.key_dir, settings.key_passphrase)
        self._signers: dict[str, SigningKey] = {}
        self._signer_names: dict[str, str] = {}
        self._balances: Balances | None = None
        self._read_models: ReadModels | None = None
        self._member_key_names: set[str] = set()
        self._batch_signer = BatchSigner(settings.signing_workers)
        env = settings.eventsourcing_env()
        env["AGGREGATE_CACHE_MAXSIZE"] = "100000"
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(env)

    def construct_mapper(self) -> Mapper[UUID]:
        """Signed envelopes instead of the library's default JSON state."""
        return SignedEventMapper(self.construct_transcoder(), self.signature_for, EVENT_CLASSES)

    @property
    def ledger_recorder(self) -> SQLiteLedgerRecorder | PostgresLedgerRecorder:
        """The recorder, with the receipt table."""
        recorder = self.recorder
        assert isinstance(recorder, SQLiteLedgerRecorder | PostgresLedgerRecorder)
        return recorder

    # -- keys --------------------------------------------------------------------------------------------

    def signing_key(self, name: str) -> SigningKey:
        """A private key from the key directory, cached by name and by key id."""
        key = self._signers.get(self._signer_names.get(name, ""))
        if key is None:
            try:
                key = self.keys.load(name)
            except KeyDirectoryError as error:
                raise SigningKeyMissingError(str(error)) from None
            self._signers[key.key_id] = key
            self._signer_names[name] = key.key_id
        return key

    def _signer_for(self, key_id: str) -> SigningKey:
        key = self._signers.get(key_id)
        if key is None:
            raise SigningKeyMissingError(f"no private key loaded for key id {key_id}")
        return key

    def signature_for(self, event: LedgerAggregate.Event) -> str:
        """The event's signature by its actor's key: made by a signing worker during the batch, or here."""
        made = self._batch_signer.signature(id(event))
        return made if made is not None else self._signer_for(event.actor.key).sign(event.event_hash())

    def actor_for(self, role: str, member: str | None = None, sign_as: str | None = None) -> Actor:
        """Pick the signing key for a role: `sign_as` if given, else the role's own key (member keys as listed
        when the batch began).

        A member's request uses the member's key when the key directory holds one, otherwise the operator key
        on the member's behalf (DESIGN.md, role rules).
        """
        if sign_as is not None:
            key = self.signing_key(sign_as)
            on_behalf_of = member if key.role == "operator" and role == "member" else None
            return Actor(key.role, key.key_id, on_behalf_of)
        if role in ("member", "juror"):
            assert member is not None
            name = member_key_name(role, member)
            if name in self._member_key_names:
                return Actor(role, self.signing_key(name).key_id)
            if role == "juror":
                raise SigningKeyMissingError(f"a vote must be signed by the juror's own key ({name})")
            return Actor("operator", self.signing_key(ROLE_KEY_NAMES["operator"]).key_id, member)
        return Actor(role, self.signing_key(ROLE_KEY_NAMES[role]).key_id)

    # -- commands ----------------------------------------------------------------------------------------

    def execute(self, command: Command, sign_as: str | None = None) -> dict[str, Any]:
        """Run one command; see the module docstring."""
        return self.execute_many([command], sign_as=sign_as)[0]

    def execute_many(self, commands: Sequence[Command], sign_as: str | None = None) -> list[dict[str, Any]]:
        """Run commands in order and save them in one transaction (batch mode).

        If one fails, the ones before it are saved and its error is raised (as `BatchError` when it is not the
        first), so a batch behaves exactly like running its commands one by one.
        """
        with paused_gc():
            return self._execute_many(commands, sign_as)

    def _execute_many(self, commands: Sequence[Command], sign_as: str | None) -> list[dict[str, Any]]:
        uow = UnitOfWork(self, self.clock.now(), sign_as)
        self._member_key_names = set(self.keys.names())
        self._batch_signer.begin()
        stored = self.ledger_recorder.select_receipts([command.command_id for command in commands])
        results: list[dict[str, Any]] = []
        receipts: list[CommandReceipt] = []
        seen: dict[str, tuple[str, dict[str, Any]]] = {
            command_id: (receipt.request_hash, json.loads(receipt.result)) for command_id, receipt in stored.items()
        }
        for position, command in enumerate(commands):
            try:
                result, digest, new = self._run(uow, command, seen)
            except Exception as error:
                if position == 0:
                    raise
                self._execute_many(commands[:position], sign_as)
                raise BatchError(position, error) from error
            if new:
                receipts.append(CommandReceipt(command.command_id, digest, orjson.dumps(result).decode()))
            results.append(result)
        self._save(uow, receipts)
        return results

    def _run(
        self, uow: UnitOfWork, command: Command, seen: dict[str, tuple[str, dict[str, Any]]]
    ) -> tuple[dict[str, Any], str, bool]:
        """Run one command in the unit of work: (result, request hash, whether it is new)."""
        digest = request_hash(command)
        earlier = seen.get(command.command_id)
        if earlier is not None:
            if earlier[0] != digest:
                raise CommandIdReusedError(command.command_id)
            return {**earlier[1], "repeated": True}, digest, False
        handler = HANDLERS[type(command)]
        uow.begin_command()
        outcome = handler(uow, command)
        events = uow.command_events()
        keyring = uow.signers_keyring()
        for event in events:
            self._check_signer(keyring, event)
        for event in events:  # every rule passed: its signature can be made while the next commands run
            self._batch_signer.submit(id(event), self._signer_for(event.actor.key), event.event_hash())
        result = {
            "command": command.command,
            "command_id": command.command_id,
            "events": [
                {"stream": e.stream(), "seq": e.originator_version, "type": e.TYPE} for e in events
            ],
            **outcome.result,
        }
        seen[command.command_id] = (digest, result)
        return result, digest, True

    def _check_signer(self, keyring: Keyring | None, event: LedgerAggregate.Event) -> None:
        """The event's key must suit the event (role rules) and be valid for its role now (invariant 1)."""
        if keyring is None:
            return  # the log's first event: the root key registers itself
        registered = keyring.keys.get(event.actor.key)
        error = required_role_error(
            event.TYPE, event.actor, event.stream(), event.body.__dict__,
            registered.member if registered else None,
        )
        if error is not None:
            raise DomainRuleError("signer", error, f"{event.TYPE} signed by a {event.actor.role} key")
        check(keyring.key_valid_for(event.actor.key, event.actor.role, event.timestamp),
              "signer", "signing_key_must_be_registered_and_valid_for_its_role", event.actor.key)

    def _save(self, uow: UnitOfWork, receipts: list[CommandReceipt]) -> None:
        aggregates = [a for a in uow.loaded.values() if a.pending_events]
        if not aggregates and not receipts:
            return
        self._batch_signer.finish()
        try:
            self._save_aggregates(aggregates, receipts)
        except IntegrityError:
            for aggregate in aggregates:  # forget what this transaction did to them
                if self.repository.cache is not None:
                    with suppress(KeyError):
                        self.repository.cache.get(aggregate.id, evict=True)
            raise ConcurrencyConflictError(
                "another writer changed a stream this command read (or ran the same command id); "
                "nothing was written; retry"
            ) from None

    def _save_aggregates(self, aggregates: list[LedgerAggregate], receipts: list[CommandReceipt]) -> None:
        """`Application.save` for aggregates known to be ours: the library's steps (map each event to its stored
        form, insert them with the receipts in one transaction, cache the aggregates as the library does) without
        its per-object runtime protocol checks and per-event recording objects, which nothing here reads and which
        cost more than signing an event. The ledger takes no snapshots."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        to_stored_event = self.mapper.to_stored_event
        self.recorder.insert_events([to_stored_event(event) for event in events], receipts=receipts)
        cache = self.repository.cache
        if cache is not None and not self.repository.fastforward:
            for aggregate in aggregates:
                cache.put(aggregate.id, aggregate)

    def close(self) -> None:
        """Stop the signing workers, then close the store."""
        self._batch_signer.close()
        super().close()

    # -- reading -----------------------------------------------------------------------------------------

    def entries(self, start: int = 1, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """Every stored entry in global order, as (notification id, canonical envelope bytes)."""
        position = start
        while True:
            notifications = self.recorder.select_notifications(position, page)
            if not notifications:
                return
            for notification in notifications:
                yield notification.id, notification.state
            position = notifications[-1].id + 1

    def identities(self, notification_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        """(stream, seq) of the events stored at these notification ids, for those that exist: what a consumer
        checks a message's index header against."""
        found = self.ledger_recorder.select_identities(notification_ids)
        return {nid: (str(stream), seq) for nid, (stream, seq) in found.items()}

    def balances(self) -> Balances:
        """The balances read model (members, accounts, claims), caught up with every stored event."""
        if self._balances is None:
            from ledger.projections.balances import Balances

            self._balances = Balances(self)
        self._balances.catch_up()
        return self._balances

    def stream_exists(self, stream: UUID) -> bool:
        """Whether any event of this stream is stored (one indexed lookup, no replay)."""
        return bool(self.recorder.select_events(stream, limit=1))

    def read_models(self) -> ReadModels:
        """Every read model on the store's database, caught up with every stored event."""
        if self._read_models is None:
            from ledger.projections import ReadModels

            self._read_models = ReadModels.open(self, balances=self.balances())
        self._read_models.catch_up()
        return self._read_models

    def keyring(self) -> Keyring:
        """The current keyring (read-only)."""
        keyring: object = self.repository.get(KEYRING_ID, deepcopy_from_cache=False)
        assert isinstance(keyring, Keyring)
        return keyring

    def read(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """Load an aggregate for reading, or None."""
        try:
            aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None


class BatchError(Exception):
    """Command number `position` of a batch failed; the commands before it were saved."""

    def __init__(self, position: int, error: Exception) -> None:
        super().__init__(f"command {position + 1} of the batch failed: {error}")
        self.position = position
        self.error = error

