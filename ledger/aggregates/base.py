"""The base aggregate and domain event: `eventsourcing` aggregates whose events are signed envelopes.

A domain event carries everything of its envelope but the signature (stream = originator id, seq = originator
version, `at` = timestamp, actor, prev, body), so the aggregate can compute each event's hash and chain the next
one to it. The signature is added by `ledger.store.SignedEventMapper` when the event is stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Self
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, resolve_topic

from ledger.canonical import canonical_envelope_bytes
from ledger.envelope import ENVELOPE_VERSION, Actor, event_hash_of, format_at
from ledger.errors import check
from ledger.rules import Rule
from schemas.common import Frozen


class LedgerAggregate(Aggregate):
    """An aggregate whose every event is a signed, chained envelope."""

    last_event_hash: str | None = None
    MUST_EXIST: ClassVar[Rule] = Rule.LEDGER_MUST_BE_INITIALIZED
    """The rule a command breaks when it names a stream of this kind that does not exist."""
    events_by_type: ClassVar[dict[tuple[str, int, bool], type[LedgerAggregate.Event]]]
    """This aggregate's event classes by (type, schema, is the stream's first event)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.events_by_type = {}
        for value in vars(cls).values():
            if isinstance(value, type) and issubclass(value, LedgerAggregate.Event) and hasattr(
                value, "TYPE"
            ):
                first = issubclass(value, LedgerAggregate.Created)
                cls.events_by_type[(value.TYPE, value.SCHEMA, first)] = value

    class Event(Aggregate.Event):
        """An event of a ledger aggregate; subclasses set TYPE, SCHEMA and BODY and implement `apply`."""

        TYPE: ClassVar[str]
        SCHEMA: ClassVar[int] = 1
        actor: Actor
        prev: str | None
        body: Frozen

        def stream(self) -> str:
            """The stream id as the envelope writes it (computed once per event)."""
            cached: str | None = self.__dict__.get("_stream")
            if cached is None:
                cached = str(self.originator_id)
                object.__setattr__(self, "_stream", cached)
            return cached

        def unsigned_json(self) -> dict[str, Any]:
            """The envelope without `sig` (see ledger.envelope)."""
            return {
                "v": ENVELOPE_VERSION,
                "stream": self.stream(),
                "seq": self.originator_version,
                "type": self.TYPE,
                "schema": self.SCHEMA,
                "at": format_at(self.timestamp),
                "actor": self.actor.to_json(),
                "prev": self.prev,
                "body": self.body.json_value(),
            }

        def canonical_unsigned(self) -> bytes:
            """RFC 8785 bytes of the unsigned envelope, computed once per event."""
            cached: bytes | None = self.__dict__.get("_canonical")
            if cached is None:
                cached = canonical_envelope_bytes(self.unsigned_json(), type(self.body).dumps_in_ledger_domain())
                object.__setattr__(self, "_canonical", cached)
            return cached

        def event_hash(self) -> bytes:
            """SHA-256 of the canonical unsigned envelope, computed once per event (it chains the next event
            and is what the signature covers)."""
            cached: bytes | None = self.__dict__.get("_hash")
            if cached is None:
                cached = event_hash_of(self.canonical_unsigned())
                object.__setattr__(self, "_hash", cached)
            return cached

        def topic(self) -> str:
            """The event's stored topic: `type@schema`."""
            return self.topic_of()

        @classmethod
        def topic_of(cls) -> str:
            """The stored topic of this event class, `type@schema` (what the store is filtered by)."""
            return f"{cls.TYPE}@{cls.SCHEMA}"

        def mutate(self, aggregate: Any) -> Any:
            """Apply the event, then remember its hash as the next event's `prev`."""
            mutated = super().mutate(aggregate)
            assert mutated is not None
            mutated.last_event_hash = self.event_hash().hex()
            return mutated

        @classmethod
        def build(cls, state: dict[str, Any]) -> Self:
            """The event with exactly these attributes, set at once.

            Ledger events are built from checked values (the handler's own, or a stored envelope), so the
            dataclass constructor's per-field frozen assignments and checks, which cost more than the rest of a
            command, are skipped; `state` must hold every field of the event class.
            """
            event = object.__new__(cls)
            object.__setattr__(event, "__dict__", state)
            return event

    class Created(Event, Aggregate.Created):
        """The first event of a stream."""

        def mutate(self, aggregate: Any) -> Any:
            """Construct the aggregate from its first event: the library's steps for an aggregate whose
            `__init__` takes no arguments, without its per-event signature inspection."""
            assert aggregate is None
            aggregate_class: type[LedgerAggregate] = resolve_topic(self.originator_topic)
            created = aggregate_class.__new__(aggregate_class)
            created.__base_init__(self.originator_id, self.originator_version, self.timestamp)
            created.__init__()  # type: ignore[misc]
            self.apply(created)
            created.last_event_hash = self.event_hash().hex()
            return created

    @classmethod
    def start(
        cls,
        event_class: type[LedgerAggregate.Created],
        stream: UUID,
        at: datetime,
        actor: Actor,
        body: Frozen,
    ) -> Self:
        """Create the aggregate with its first event."""
        event = event_class.build({
            "originator_id": stream, "originator_version": cls.INITIAL_VERSION, "timestamp": at,
            "originator_topic": _topic_of(cls), "actor": actor, "prev": None, "body": body,
        })
        aggregate: Self = event.mutate(None)
        aggregate._pending_events.append(event)
        return aggregate

    def record(
        self, event_class: type[LedgerAggregate.Event], at: datetime, actor: Actor, body: Frozen
    ) -> None:
        """Trigger the next event of this stream, chained to the last one."""
        check(at >= self.modified_on, "at", Rule.EVENT_TIME_MUST_NOT_PRECEDE_STREAM, str(self.modified_on))
        event = event_class.build({
            "originator_id": self.id, "originator_version": self.version + 1, "timestamp": at,
            "actor": actor, "prev": self.last_event_hash, "body": body,
        })
        event.mutate(self)
        self._pending_events.append(event)


_TOPICS: dict[type[LedgerAggregate], str] = {}


def _topic_of(aggregate_class: type[LedgerAggregate]) -> str:
    """The library's topic of an aggregate class (what `originator_topic` holds), computed once per class."""
    topic = _TOPICS.get(aggregate_class)
    if topic is None:
        topic = _TOPICS[aggregate_class] = get_topic(aggregate_class)
    return topic
