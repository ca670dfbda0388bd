"""The application service: commands in, signed events out.

`LedgerApplication.execute(command)` is the one way anything is written. It (1) returns the stored result if the
command id already ran, (2) runs the command's handler, which loads aggregates through a unit of work, checks
every rule and records events, (3) checks each new event's signer with the verifier's own rules (`ledger.roles`:
role rules, the root key for keyring changes only, custodian and regulator keys only when anchored; a key valid for
its role now), and (4) saves all events and the command's receipt in one transaction. A broken rule raises
`DomainRuleError` before anything is written; a concurrent writer raises the retryable `ConcurrencyConflictError`
(`ledger.errors` has the tree). It is built by the composition root, `ledger.bootstrap`, which gives it the keys
it may sign with, the trust anchors and the read side's answers (`ledger.ports`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, InternalError, Mapper, OperationalError

from ledger.aggregates import EVENT_CLASSES
from ledger.aggregates.base import LedgerAggregate
from ledger.aggregates.keyring import KEYRING_ID, Keyring
from ledger.anchors import TrustAnchors
from ledger.config import Settings
from ledger.envelope import Actor
from ledger.errors import (
    BatchError,
    CommandIdReusedError,
    ConcurrencyConflictError,
    ConnectionLostError,
    DomainRuleError,
    KeyDirectoryError,
    RetryableError,
    StoreBusyError,
    check,
)
from ledger.keys import Signers, SigningKey
from ledger.memory import paused_gc
from ledger.ports import LedgerReadSide
from ledger.roles import anchored_key_error, command_role_error, required_role_error
from ledger.rules import Rule
from ledger.signing import BatchSigner
from ledger.store import (
    CommandReceipt,
    PostgresLedgerRecorder,
    SignedEventMapper,
    SQLiteLedgerRecorder,
    VaultWrites,
    connection_lost,
    replace_lost_connections,
)
from ledger.unit_of_work import HANDLERS, UnitOfWork
from ledger.vault import Vault, load_vault_key
from schemas.commands import Command

A = TypeVar("A", bound=LedgerAggregate)
C = TypeVar("C", bound=Command)

CONNECTION_TRIES = 5
"""How many times a batch runs while the database connection keeps going away (`LedgerApplication._reconnecting`)."""
CONNECTION_PAUSE = 0.2
"""Seconds before the second try, growing by as much before each next one (the pool reconnects meanwhile)."""
OPERATOR_ROOT_KEY = "operator-root"
"""The key directory name of the operator's root key: it registers itself first and alone changes the keyring."""
LOG_KEY = "log"
"""The key directory name of the operator's checkpoint key: it signs checkpoints and nothing else."""
ROLE_KEY_NAMES = {
    "operator": "operator",
    "custodian": "custodian",
    "investigator": "investigator",
    "regulator": "regulator",
}
"""The key directory name of each institutional role's signing key."""


def one_line(error: Exception) -> str:
    """A database error's first line (its name when it has no message), for a retryable error's message."""
    return str(error).splitlines()[0] if str(error) else type(error).__name__


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


def request_hash(command: Command, key: bytes | None = None) -> str:
    """A hash of the request (everything but its id), to tell a repeat from a reused id: SHA-256 of
    `command.model_dump_json(exclude={"command_id"})`, made by the model's serializer directly (it runs per
    command, and the method's own argument handling costs as much as the serializing); HMAC-SHA256 under `key`
    for a command carrying sealed values (`Command.SEALS`)."""
    request = type(command).__pydantic_serializer__.to_json(command, exclude=_NOT_HASHED)
    if key is not None:
        return hmac.new(key, request, hashlib.sha256).hexdigest()
    return hashlib.sha256(request).hexdigest()


_NOT_HASHED = {"command_id"}


class LedgerApplication(Application[UUID]):
    """The ledger's application service over the configured event store (built by `ledger.bootstrap`)."""

    name = "Ledger"

    def __init__(self, settings: Settings, clock: Clock, signers: Signers, anchors: TrustAnchors | None,
                 read_side: Callable[[LedgerApplication], LedgerReadSide]) -> None:
        import ledger.handlers  # noqa: F401  (registers every handler)

        self.settings = settings
        self.clock = clock
        self.signers = signers
        self.anchors = anchors
        """The trust anchors the writer checks key registrations against, as verifiers will."""
        self._member_key_names: set[str] = set()
        self._presigned: dict[bytes, str] = {}
        """Signatures another party made, by event hash, for the events `save_signed` is saving."""
        self._batch_signer = BatchSigner(settings.signing_workers)
        self._vault: Vault | None = None
        env = settings.eventsourcing_env()
        env["AGGREGATE_CACHE_MAXSIZE"] = "100000"
        super().__init__(env)
        self.read_side = read_side(self)

    def construct_mapper(self) -> Mapper[UUID]:
        """Signed envelopes instead of the library's default JSON state."""
        return SignedEventMapper(self.construct_transcoder(), self.signature_for, EVENT_CLASSES)

    @property
    def ledger_recorder(self) -> SQLiteLedgerRecorder | PostgresLedgerRecorder:
        """The recorder, with the receipt table."""
        recorder = self.recorder
        assert isinstance(recorder, SQLiteLedgerRecorder | PostgresLedgerRecorder)
        return recorder

    @property
    def vault(self) -> Vault:
        """The vault of sealed values (`ledger.vault`), opened with the operator's vault key on first use: only the
        operator's own process, which holds that key, seals, reveals or erases."""
        if self._vault is None:
            self._vault = Vault(self.ledger_recorder,
                                load_vault_key(self.settings.key_dir, self.settings.key_passphrase))
        return self._vault

    @property
    def retention_days(self) -> int:
        """How long after leaving a member's sealed values are kept at most (`LEDGER_RETENTION_DAYS`)."""
        return self.settings.retention_days

    # -- keys --------------------------------------------------------------------------------------------

    def signing_key(self, name: str) -> SigningKey:
        """A private key by name from the key directories this process may sign with."""
        return self.signers.load(name)

    def _signer_for(self, key_id: str) -> SigningKey:
        key = self.signers.by_key_id(key_id)
        if key is None:
            raise KeyDirectoryError("key", Rule.KEY_MUST_EXIST, f"no private key loaded for key id {key_id}")
        return key

    def signature_for(self, event: LedgerAggregate.Event) -> str:
        """The event's signature by its actor's key: made by a signing worker during the batch, or here."""
        made = self._batch_signer.signature(id(event))
        if made is None and self._presigned:
            made = self._presigned.get(event.event_hash())
        return made if made is not None else self._signer_for(event.actor.key).sign(event.event_hash())

    def actor_for(self, role: str, member: str | None = None, sign_as: str | None = None) -> Actor:
        """Pick the signing key for a role: `sign_as` if given, else the role's own key (member keys as listed
        when the batch began).

        A member's request uses the member's key when this process holds one, otherwise the operator key on the
        member's behalf (docs/design.md, role rules).
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
                raise KeyDirectoryError("juror", Rule.VOTES_MUST_BE_SIGNED_BY_THE_JURORS_OWN_KEY,
                                        f"no key {name} here")
            return Actor("operator", self.signing_key(ROLE_KEY_NAMES["operator"]).key_id, member)
        return Actor(role, self.signing_key(ROLE_KEY_NAMES[role]).key_id)

    def root_actor(self, sign_as: str | None = None) -> Actor:
        """The signer of a keyring change: the root key, or `sign_as` (which the keyring handler checks is it)."""
        key = self.signing_key(sign_as or OPERATOR_ROOT_KEY)
        return Actor(key.role, key.key_id)

    # -- commands ----------------------------------------------------------------------------------------

    def execute(self, command: Command, sign_as: str | None = None) -> dict[str, Any]:
        """Run one command; see the module docstring."""
        return self.execute_many([command], sign_as=sign_as)[0]

    def execute_many(self, commands: Sequence[Command], sign_as: str | None = None) -> list[dict[str, Any]]:
        """Run commands in order and save them in one transaction (batch mode).

        If one fails, the ones before it are saved and its error is raised (as `BatchError` when it is not the
        first), so a batch behaves exactly like running its commands one by one. A command that failed because
        another process ran the same command id meanwhile (its rule checks saw that process's events, or its insert
        met that process's receipt) is not an error: the batch runs again and that command returns its first
        result, as a repeat does. Nor is a database connection that went away: the batch runs again on a new one
        (`_reconnecting`).
        """
        with paused_gc():
            for attempt in range(1, 4):
                try:
                    return self._reconnecting(commands, sign_as)
                except ConnectionLostError:
                    raise
                except (DomainRuleError, RetryableError, BatchError) as error:
                    failed = ([commands[error.position]] if isinstance(error, BatchError) else
                              commands[:1] if isinstance(error, DomainRuleError) else commands)
                    if attempt == 3 or not self.ledger_recorder.select_receipts(
                            [command.command_id for command in failed]):
                        raise
            raise AssertionError("unreachable")

    def _reconnecting(self, commands: Sequence[Command], sign_as: str | None) -> list[dict[str, Any]]:
        """The batch, run again on a new connection when the database connection went away while it ran (the
        server ended it): its one transaction either committed — the retry then finds the receipts and returns the
        first results, marked `repeated` — or wrote nothing. `ConnectionLostError` after `CONNECTION_TRIES`."""
        for attempt in range(1, CONNECTION_TRIES + 1):
            try:
                return self._execute_many(commands, sign_as)
            except ConnectionLostError:
                if attempt == CONNECTION_TRIES:
                    raise
                replace_lost_connections(self.recorder.datastore)  # type: ignore[attr-defined]
                time.sleep(CONNECTION_PAUSE * attempt)
            except Exception as error:
                if not connection_lost(error):
                    raise
                if attempt == CONNECTION_TRIES:
                    raise ConnectionLostError(one_line(error)) from None
                replace_lost_connections(self.recorder.datastore)  # type: ignore[attr-defined]
                time.sleep(CONNECTION_PAUSE * attempt)
        raise AssertionError("unreachable")

    def _execute_many(self, commands: Sequence[Command], sign_as: str | None) -> list[dict[str, Any]]:
        self.read_side.refresh()
        uow = UnitOfWork(self, self.read_side, self.clock.now(), sign_as)
        self._member_key_names = self.signers.names()
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
                if position == 0 or connection_lost(error):  # nothing is saved yet: the whole batch runs again
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
        digest = request_hash(command, self.vault.receipt_key if command.SEALS else None)
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
        if not events:
            self._check_command_signer(keyring, command, uow)
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
        """The verifier's checks 4, 5 and 7 on a new event (`ledger.roles`): nothing is written that an audit
        would reject."""
        if keyring is None:
            return  # the log's first event: the root key registers itself
        registered = keyring.keys.get(event.actor.key)
        body = event.body.__dict__
        error = required_role_error(event.TYPE, event.actor, event.stream(), body,
                                    registered.member if registered else None, keyring.root_key_id)
        if error is not None:
            raise DomainRuleError("signer", error, f"{event.TYPE} signed by {event.actor.role} key {event.actor.key}")
        unanchored = anchored_key_error(event.TYPE, body, self.anchors)
        if unanchored is not None:
            raise DomainRuleError("public_key", unanchored, f"{body.get('role')} key {body.get('key_id')}")
        check(keyring.key_valid_for(event.actor.key, event.actor.role, event.timestamp),
              "signer", Rule.SIGNING_KEY_MUST_BE_REGISTERED_AND_VALID_FOR_ITS_ROLE, event.actor.key)

    def _check_command_signer(self, keyring: Keyring | None, command: Command, uow: UnitOfWork) -> None:
        """A command that wrote no event is done only for a key that may sign its role's events (`ledger.roles`,
        `command_role_error`), registered and valid now: its receipt says it was done, so it must not be done for
        a key that could not have done it. Without `sign_as` the writer signs with the role's own key."""
        if keyring is None or uow.sign_as is None:
            return
        key = self.signing_key(uow.sign_as)
        registered = keyring.keys.get(key.key_id)
        error = command_role_error(type(command).ROLE, Actor(key.role, key.key_id),
                                   registered.member if registered else None, command.__dict__, keyring.root_key_id)
        if error is not None:
            raise DomainRuleError("signer", error, f"{command.command} signed by {key.role} key {key.key_id}")
        check(keyring.key_valid_for(key.key_id, key.role, uow.at), "signer",
              Rule.SIGNING_KEY_MUST_BE_REGISTERED_AND_VALID_FOR_ITS_ROLE, key.key_id)

    def _save(self, uow: UnitOfWork, receipts: list[CommandReceipt]) -> None:
        aggregates = [a for a in uow.loaded.values() if a.pending_events]
        if not aggregates and not receipts:
            return
        self._batch_signer.finish()
        created = [a.id for a in aggregates if a.version == len(a.pending_events)]
        try:
            self._save_aggregates(aggregates, receipts, uow.vault_writes)
        except (IntegrityError, OperationalError, InternalError) as error:
            for aggregate in aggregates:  # forget what this transaction did to them
                if self.repository.cache is not None:
                    with suppress(KeyError):
                        self.repository.cache.get(aggregate.id, evict=True)
            if connection_lost(error):
                raise ConnectionLostError(one_line(error)) from None
            if not isinstance(error, IntegrityError):
                raise StoreBusyError(one_line(error)) from None
            self._raise_taken_stream(created, receipts)
            raise ConcurrencyConflictError from None

    def save_signed(self, aggregate: LedgerAggregate, signatures: dict[bytes, str]) -> None:
        """Save a new aggregate whose events another party signed with a key this process does not hold (a
        regulator's report sent over HTTP): `signatures` gives each event's signature by its event hash, already
        verified by the caller; the writer's signer checks run as for every command, and nothing is written when
        one fails or the stream exists."""
        keyring = self.keyring()
        for event in aggregate.pending_events:
            assert isinstance(event, LedgerAggregate.Event)
            self._check_signer(keyring, event)
        self._presigned.update(signatures)
        try:
            self._save_aggregates([aggregate], [])
        except IntegrityError:
            raise DomainRuleError("id", Rule.STREAM_ID_MUST_BE_NEW, str(aggregate.id)) from None
        finally:
            for event_hash in signatures:
                self._presigned.pop(event_hash, None)

    def _raise_taken_stream(self, created: list[UUID], receipts: list[CommandReceipt]) -> None:
        """After a failed insert: a new stream whose id is taken by an event of another command is a permanent
        conflict (two commands opening the same period, whose id follows from its plan and number), a broken rule
        rather than a race worth retrying. A race with a writer of the same command leaves that command's receipt
        behind."""
        if self.ledger_recorder.select_receipts([receipt.command_id for receipt in receipts]):
            return
        for stream in created:
            if self.stream_exists(stream):
                raise DomainRuleError("id", Rule.STREAM_ID_MUST_BE_NEW, str(stream))

    def _save_aggregates(self, aggregates: list[LedgerAggregate], receipts: list[CommandReceipt],
                         vault: VaultWrites | None = None) -> None:
        """`Application.save` for aggregates known to be ours: the library's steps (map each event to its stored
        form, insert them with the receipts in one transaction, cache the aggregates as the library does) without
        its per-object runtime protocol checks and per-event recording objects, which nothing here reads and which
        cost more than signing an event. The ledger takes no snapshots."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        to_stored_event = self.mapper.to_stored_event
        self.recorder.insert_events([to_stored_event(event) for event in events], receipts=receipts,
                                    vault=vault or None)
        if vault is not None and vault.erase:
            self.ledger_recorder.compact_vault()
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

    def stream_exists(self, stream: UUID) -> bool:
        """Whether any event of this stream is stored (one indexed lookup, no replay)."""
        return bool(self.recorder.select_events(stream, limit=1))

    def load(self, aggregate_id: UUID) -> LedgerAggregate | None:
        """A stored aggregate for change (a copy the unit of work may change), or None."""
        try:
            aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        assert isinstance(aggregate, LedgerAggregate)
        return aggregate

    def keyring(self) -> Keyring:
        """The current keyring (read-only)."""
        keyring: object = self.repository.get(KEYRING_ID, deepcopy_from_cache=False)
        assert isinstance(keyring, Keyring)
        return keyring

    def read(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """Load an aggregate for reading, or None."""
        aggregate = self.load(aggregate_id)
        return aggregate if isinstance(aggregate, kind) else None
