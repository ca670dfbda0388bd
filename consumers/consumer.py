"""A projection run as a member of a Kafka consumer group, verifying every message before it is applied.

The topic's layout is `consumers.topic`'s: a stream's events in its partition, keyring events in every partition,
each message with its global index and the index of its partition's previous event in the headers.

**Stream-local read models** (balances, cases: `Projection.STREAM_LOCAL`) split the partitions among the members of
the group (Kafka's range assignment). Each partition is a *lane*: its own position, stored with the rows in the same
transaction (`NAME partition K/P` in the tracking table), and its own verifier state (the keyring and the chains of
the partition's streams), rebuilt from the store up to the partition's position the first time the consumer needs
it after the partition was assigned to it. After a rebalance the member that takes a partition over resumes exactly
where its position says.

**Total-order read models** (journal, periods) read every partition into one lane and apply in global order: the
next event is the smallest index at the head of a partition; when that is not the one after the position and no
partition can still deliver a smaller one (each has a message waiting or was read to its end), the events between
are read from the store (a hole in the store's sequence has none). Their group gives every partition to one member
(`WholeTopicAssignor`); the other members stand by, applying nothing, and one of them takes the topic over when the
member holding it leaves. A member given only part of the topic applies nothing either.

Each message, in order (a failure stops the consumer and names the message and the check; the messages before it
are applied, it and those after it in its partition — in its lane — are not):

1. **Headers** — `notification_id` and `partition_previous` are whole numbers, the previous below the index.
2. **Duplicates** — an index at or before the lane's position is dropped.
3. **Partition order** — `partition_previous` equals the index of the last event of the partition applied; a larger
   one means the partition lost events: they are read from the store (only that partition's), verified and applied,
   and the header must then equal the last of them.
4. **The verifier's procedure** (`ledger.verify`): envelope and canonical bytes, schema, chain, keyring, key validity
   for the role at the time, signature, role rules.
5. **Placement** — the `stream` header is the envelope's stream, and the partition that carried the message is its
   stream's (any partition, for a keyring event).
6. **Index** — the store holds this event (stream and seq) at this index: one indexed query per batch, reading no
   event bytes. The headers are not signed; this check is what keeps a forged index from putting a genuine event
   in the wrong place of the order.

Kafka offsets are committed after applying and are only a hint: the positions in the views database are the truth.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice, takewhile
from typing import Any, Protocol

from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment, ConsumerProtocolSubscription

from consumers.topic import (
    HEADER_INDEX,
    HEADER_PREVIOUS,
    HEADER_STREAM,
    check_partitions,
    ensure_topic,
    entry_partitions,
    partitions_of,
    previous_in_partitions,
)
from ledger.projections import PROJECTIONS
from ledger.projections.base import EntrySource, Projection
from ledger.projections.sql import SqlStore
from ledger.store import connection_unavailable, replace_lost_connections
from ledger.verify import Verifier

BY_NAME = {p.NAME: p for p in PROJECTIONS}
RUN_LIMIT = 5000
"""Events verified and applied in one transaction, at most."""
BUFFER_LIMIT = 5000
"""Messages a total-order consumer holds per partition before it pauses the partition."""
FILL_CHUNK = 10_000
"""Events read from the store at a time to fill a gap."""
COMMIT_MS = 5000
"""How long committing offsets or leaving the group may wait for the broker (it may be down)."""
FETCH_WAIT_MS = 100
"""How long the broker may hold a fetch while it has nothing new (what an idle consumer's lag can grow by)."""
RECONNECT_PAUSE = 0.5
"""Seconds a consumer waits after its database connection went away, before it reads again."""
COMMIT_SECONDS = 1.0
"""Offsets are committed at most this often (they are only a hint)."""


class MessageRejectedError(Exception):
    """A message failed verification: the consumer stops and applies nothing of it."""


class ConsumerStore(EntrySource, Protocol):
    """What a consumer reads from the event store: entries to fill gaps, and the index of events."""

    def identities(self, notification_ids: Sequence[int]) -> dict[int, tuple[str, int]]:
        """(stream, seq) of the events stored at these notification ids."""
        ...


@dataclass(frozen=True)
class Message:
    """A record of the topic with its headers read."""

    partition: int
    offset: int
    index: int
    previous: int
    stream: str
    value: bytes

    @classmethod
    def of(cls, record: Any) -> Message:
        """Read a record's headers (check 1); a MessageRejectedError naming the header and the rule otherwise."""
        headers = dict(record.headers or [])
        numbers = []
        for name in (HEADER_INDEX, HEADER_PREVIOUS):
            raw = headers.get(name, b"")
            if not (raw.isascii() and raw.isdigit()):
                raise MessageRejectedError(f"partition {record.partition} offset {record.offset}: header {name}: "
                                           f"must be a whole number ({raw!r})")
            numbers.append(int(raw))
        index, previous = numbers
        if previous >= index:
            raise MessageRejectedError(f"partition {record.partition} offset {record.offset}: header "
                                       f"{HEADER_PREVIOUS}: must be below {HEADER_INDEX} ({previous} >= {index})")
        return cls(record.partition, record.offset, index, previous,
                   headers.get(HEADER_STREAM, b"").decode("utf-8", "replace"), bytes(record.value or b""))

    def where(self) -> str:
        """The message named for an error."""
        return f"notification {self.index} (partition {self.partition} offset {self.offset})"


@dataclass(eq=False)
class Lane:
    """A recorded position of the read model and the verifier of what comes after it: one partition of a
    stream-local read model, or the whole topic of a total-order one."""

    projection: Projection
    partition: int | None
    """None: every partition."""
    verifier: Verifier = field(default_factory=Verifier)
    verified: int = 0
    """How many entries the verifier has checked (its entry index)."""
    position: int = 0
    """The last index the verifier has reached; once synced, the stored position."""
    synced: bool = False
    last: list[int] = field(default_factory=list)
    """Whole topic: the index of the last event applied of each partition."""

    def carries(self, partitions: Sequence[int]) -> bool:
        """Whether an event carried by these partitions is this lane's."""
        return self.partition is None or self.partition in partitions

    def restart(self) -> None:
        """Forget the verifier's state (the stored position went back: the views were rebuilt)."""
        self.verifier, self.verified, self.position = Verifier(), 0, 0


WITHOUT_TOPIC = b"assigned-without-topic"
"""The user data of an assignment the group's leader computed while its metadata lacked a subscribed topic (a broker
that came back empty): every member is given nothing, and each one learns why from its own assignment."""


def _topic_missing(cluster: Any, members: Sequence[Any]) -> bool:
    """Whether the metadata an assignment is computed from lacks a topic some member subscribed to."""
    return any(not cluster.partitions_for_topic(topic) for member in members for topic in member.metadata.topics)


def _marked(assignment: Any, without_topic: bool) -> Any:
    """The assignment, with the user data saying whether it was computed without the topic."""
    return ConsumerProtocolAssignment(version=assignment.version, assigned_partitions=assignment.assigned_partitions,
                                      user_data=WITHOUT_TOPIC if without_topic else b"")


class RangeAssignor(RangePartitionAssignor):  # type: ignore[misc]
    """The library's range assignment (stream-local read models split the partitions), telling every member when
    the leader assigned without the topic."""

    def __init__(self) -> None:
        self.assigned_without_topic = False
        """Set when this member's last assignment was computed without the topic."""

    def assign(self, cluster: Any, members: Sequence[Any]) -> dict[str, Any]:
        """Range assignment; see the class docstring."""
        without_topic = _topic_missing(cluster, members)
        return {member: _marked(assignment, without_topic)
                for member, assignment in super().assign(cluster, members).items()}

    def on_assignment(self, assignment: Any, generation: int) -> None:
        """Remember whether the assignment was computed without the topic."""
        self.assigned_without_topic = assignment.user_data == WITHOUT_TOPIC


class WholeTopicAssignor(AbstractPartitionAssignor):  # type: ignore[misc]
    """A partition assignor that gives every partition to one member of the group — the one holding them already,
    else the first member id — and nothing to the others (a total-order read model has one writer)."""

    name = "ledger-whole-topic"
    version = 0
    HOLDING = b"holding"

    def __init__(self) -> None:
        self.holding = False
        self.assigned_without_topic = False
        """Set when this member's last assignment was computed without the topic."""

    def metadata(self, topics: Any) -> Any:
        """This member's subscription, saying whether it holds the topic."""
        return ConsumerProtocolSubscription(version=self.version, topics=sorted(topics),
                                            user_data=self.HOLDING if self.holding else b"")

    def assign(self, cluster: Any, members: Sequence[Any]) -> dict[str, Any]:
        """Every partition of every subscribed topic to one member."""
        without_topic = _topic_missing(cluster, members)
        holders = sorted(member.member_id for member in members if member.metadata.user_data == self.HOLDING)
        chosen = (holders or sorted(member.member_id for member in members))[0]
        return {member.member_id: ConsumerProtocolAssignment(
            version=self.version,
            assigned_partitions=[(topic, sorted(cluster.partitions_for_topic(topic) or ()))
                                 for topic in sorted(member.metadata.topics)] if member.member_id == chosen else [],
            user_data=WITHOUT_TOPIC if without_topic else b"") for member in members}

    def on_assignment(self, assignment: Any, generation: int) -> None:
        """Remember whether this member now holds the topic, and whether the assignment was computed without it."""
        self.holding = bool(assignment.partitions())
        self.assigned_without_topic = assignment.user_data == WITHOUT_TOPIC


class _Rebalances(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tells the consumer when the group gives it partitions or takes them away.

    kafka-python calls it on its IO thread while the consumer's own thread waits in `poll()` or `close()`, so it
    changes the consumer's state as if called from that thread, but it must not wait on the broker: a blocking
    client call made there raises."""

    def __init__(self, owner: ProjectionConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked: Any) -> None:
        """A rebalance begins, or the consumer closes: this member still holds the partitions, and commits them."""
        self.owner._revoked(commit=True)

    def on_partitions_lost(self, lost: Any) -> None:
        """The group removed this member (its session expired): another one may hold the partitions already, so
        nothing is committed for them."""
        self.owner._revoked(commit=False)

    def on_partitions_assigned(self, assigned: Any) -> None:
        """The rebalance ended: these are all the partitions this member holds now."""
        self.owner._assigned({tp.partition for tp in assigned})


class ProjectionConsumer:
    """One projection fed from the topic (see module docstring)."""

    def __init__(self, name: str, store: ConsumerStore, views: SqlStore, bootstrap: str, topic: str, group: str,
                 partitions: int, report: Callable[[str], None] | None = None) -> None:
        if name not in BY_NAME:
            raise ValueError(f"projection: must be one of {', '.join(BY_NAME)} ({name})")
        model = BY_NAME[name]
        self.name, self.store, self.bootstrap, self.topic, self.partitions = name, store, bootstrap, topic, partitions
        self.report = report or (lambda _: None)
        self.whole = not model.STREAM_LOCAL
        self.lanes: dict[int | None, Lane]
        if self.whole:
            self.lanes = {None: Lane(model(store, views), None, last=[0] * partitions)}
        else:
            self.lanes = {p: Lane(model(store, views, f"{name} partition {p}/{partitions}"), p)
                          for p in range(partitions)}
            self._check_views(self.lanes[0].projection)
        ensure_topic(bootstrap, topic, partitions)  # whichever of the relay and the consumers starts first
        self.assigned: set[int] = set()
        self.held: set[int] = set()
        """Every partition this consumer was given."""
        self.from_topic = self.from_store = 0
        """Events applied, by where they came from."""
        self.buffers: dict[int, deque[Message]] = {p: deque() for p in range(partitions)}
        self.done: dict[int, int] = {}
        """The offset of the last message handled in each partition (applied or dropped)."""
        self.committed: dict[int, int] = {}
        """The offset last committed for each partition (of the last message handled before it)."""
        self.committed_at = 0.0
        self.unhandled: dict[int, int] = {}
        """The offset of the first message fetched but not handled in each partition, when the group took the
        partitions away (read again if the member keeps them)."""
        self.stopping = False
        self.given_nothing = False
        """Set when the group gave this consumer nothing because it did not know the topic then."""
        self.rejected = False
        """Set when a message was refused: the offsets are then not committed (a restart reads it again)."""
        self.assignor = WholeTopicAssignor() if self.whole else RangeAssignor()
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=6000, heartbeat_interval_ms=1000, max_poll_records=2000,
            allow_auto_create_topics=False, reconnect_backoff_max_ms=1000, metadata_max_age_ms=5000,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            partition_assignment_strategy=[self.assignor])
        self.consumer.subscribe([topic], listener=_Rebalances(self))

    def _rejoin_if_the_topic_is_gone(self) -> None:
        """The group gave this consumer nothing because the topic did not exist when it joined (a broker that came
        back empty): create the topic, as the relay would, and join the group again, as a new member, so that the
        assignment sees its partitions."""
        if self.given_nothing:
            self.report(f"{self.name}: topic {self.topic} is gone; creating it and joining the group again")
            try:
                ensure_topic(self.bootstrap, self.topic, self.partitions)
            except KafkaError as error:  # the broker went away again: the next poll tries again
                self.report(f"{self.name}: broker: {error!r}")
                return
            self.consumer.unsubscribe()
            self.consumer.subscribe([self.topic], listener=_Rebalances(self))
            self.given_nothing = False

    def _check_views(self, projection: Projection) -> None:
        """Refuse views whose partition positions were recorded for another partition count."""
        with projection.sql.transaction(commit=False) as cursor:
            names = [row[0] for row in cursor.execute(f"SELECT name FROM {projection.tracking} WHERE name LIKE ?",
                                                      (f"{self.name} partition %",)).fetchall()]
        other = sorted({name.rpartition("/")[2] for name in names} - {str(self.partitions)})
        if other:
            raise ValueError(f"LEDGER_KAFKA_PARTITIONS: the views hold {self.name} by {other[0]} partitions, the "
                             f"configuration says {self.partitions} (rebuild the views for another count)")

    # -- the group ---------------------------------------------------------------------------------------

    def _assigned(self, partitions: set[int]) -> None:
        """The group gave this member these partitions (called by kafka-python; see `_Rebalances`)."""
        self.assigned = partitions
        self.given_nothing = not partitions and self.assignor.assigned_without_topic
        self.held |= partitions
        for lane in self.lanes.values():
            lane.synced = False  # another member may have applied this lane meanwhile
        # kafka-python keeps the position and the paused flag of a partition a member keeps across a rebalance:
        # resume it, and read again what was fetched but not handled before the rebalance
        self.consumer.resume(*self._tps(partitions))
        for partition in partitions & self.unhandled.keys():
            self.consumer.seek(TopicPartition(self.topic, partition), self.unhandled[partition])
        self.unhandled = {}
        if self.whole and partitions and len(partitions) < self.partitions:
            self.consumer.pause(*self._tps(partitions))
            self.report(f"{self.name}: given {len(partitions)} of {self.partitions} partitions: standing by")
        elif self.whole and not partitions:
            self.report(f"{self.name}: standing by (no partition given)")
        else:
            self.report(f"{self.name}: partitions {', '.join(map(str, sorted(partitions))) or 'none'} "
                        f"of {self.partitions}")

    def _revoked(self, commit: bool) -> None:
        """The group takes this member's partitions away (a rebalance begins, or the consumer closes): commit the
        offsets handled unless `commit` is false (the member was removed from the group), and drop the messages
        held but not handled, remembering where they start."""
        if commit:
            self._commit_in_background()
        self.unhandled = {p: buffer[0].offset for p, buffer in self.buffers.items() if buffer}
        self.committed.clear()  # another member may commit these partitions before this one holds them again
        self.assigned = set()
        self.done.clear()
        for buffer in self.buffers.values():
            buffer.clear()

    def _active(self) -> bool:
        """Whether this consumer applies what it is given (a total-order one only with the whole topic)."""
        return bool(self.assigned) and (not self.whole or len(self.assigned) == self.partitions)

    def _tps(self, partitions: Sequence[int] | set[int]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in sorted(partitions)]

    def _uncommitted(self) -> dict[TopicPartition, OffsetAndMetadata]:
        """The offsets handled in the partitions held and not committed yet (none after a refusal: a restart reads
        the refused message again)."""
        if self.rejected:
            return {}
        return {TopicPartition(self.topic, p): OffsetAndMetadata(offset + 1, "", -1)
                for p, offset in self.done.items() if p in self.assigned and self.committed.get(p) != offset}

    def _commit(self, now: bool = False) -> None:
        """Commit the offsets handled (a hint for the next member; failures are harmless), at most once a second
        unless `now`."""
        offsets = self._uncommitted()
        if offsets and (now or time.monotonic() - self.committed_at >= COMMIT_SECONDS):
            self.committed_at = time.monotonic()
            with suppress(KafkaError):
                self.consumer.commit(offsets, timeout_ms=COMMIT_MS)
                self.committed |= {tp.partition: offset.offset - 1 for tp, offset in offsets.items()}

    def _commit_in_background(self) -> None:
        """Send the offsets handled without waiting for the broker (from the rebalance listener, which must not
        wait): the request goes out before this member's next join, as the member that still holds them."""
        offsets = self._uncommitted()
        if offsets:
            with suppress(KafkaError):
                self.consumer.commit_async(offsets)

    # -- checks ------------------------------------------------------------------------------------------

    def _verify(self, lane: Lane, index: int, entry: bytes) -> dict[str, Any]:
        """Check 4 for one entry of the lane (its decoded envelope); keep a whole-topic lane's last index per
        partition."""
        before = len(lane.verifier.report.failures)
        envelope = lane.verifier.entry(lane.verified, entry)
        lane.verified += 1
        if len(lane.verifier.report.failures) > before:
            failure = lane.verifier.report.failures[before]
            where = f" (stream {failure.stream} seq {failure.seq})" if failure.stream else ""
            raise MessageRejectedError(f"notification {index}{where}: {failure.check}: expected "
                                       f"{failure.expected}, found {failure.found}")
        assert envelope is not None
        if lane.partition is None:
            for partition in partitions_of(envelope["stream"], envelope["type"], self.partitions):
                lane.last[partition] = index
        return envelope

    def _place(self, message: Message, envelope: dict[str, Any]) -> None:
        """Check 5."""
        stream = envelope["stream"]
        if message.stream != stream:
            raise MessageRejectedError(f"{message.where()}: header {HEADER_STREAM}: must be the envelope's stream "
                                       f"{stream} ({message.stream})")
        carriers = partitions_of(stream, envelope["type"], self.partitions)
        if message.partition not in carriers:
            raise MessageRejectedError(f"{message.where()}: partition: stream {stream} goes to partition "
                                       f"{carriers[0]}")

    def _confirm(self, messages: Sequence[Message], envelopes: Sequence[dict[str, Any]]
                 ) -> tuple[int, MessageRejectedError | None]:
        """Check 6, for a batch: how many messages pass it before the first that does not, and its refusal."""
        stored = self.store.identities([message.index for message in messages]) if messages else {}
        for count, (message, envelope) in enumerate(zip(messages, envelopes, strict=True)):
            identity = stored.get(message.index)
            if identity != (envelope["stream"], envelope["seq"]):
                held = "nothing" if identity is None else f"stream {identity[0]} seq {identity[1]}"
                return count, MessageRejectedError(
                    f"{message.where()}: header {HEADER_INDEX}: the store holds {held} at {message.index}, the "
                    f"message is stream {envelope['stream']} seq {envelope['seq']}")
        return len(messages), None

    def _apply_checked(self, lane: Lane, messages: Sequence[Message], envelopes: Sequence[dict[str, Any]],
                       refusal: MessageRejectedError | None) -> None:
        """Given the envelopes of the leading messages that passed checks 1–5 (and the refusal of the next one, if
        any), confirm their indexes, apply those before the first refused message, then stop with its refusal."""
        confirmed, mismatch = self._confirm(messages[:len(envelopes)], envelopes)
        if confirmed:
            self._apply(lane, [(message.index, message.value) for message in messages[:confirmed]], False)
        refusal = mismatch or refusal
        if refusal is not None:
            raise refusal

    # -- applying ----------------------------------------------------------------------------------------

    def _apply(self, lane: Lane, items: Sequence[tuple[int, bytes]], from_store: bool) -> None:
        """Apply verified entries to the lane's projection and record its position, in one transaction."""
        lane.projection.apply_batch(items)
        lane.position = items[-1][0]
        if from_store:
            self.from_store += len(items)
        else:
            self.from_topic += len(items)

    def _stored(self, start: int, stop: int) -> Iterator[list[tuple[int, bytes]]]:
        """The stored entries with index in [start, stop], a chunk at a time."""
        entries = takewhile(lambda item: item[0] <= stop, self.store.entries(start, 1000))
        while chunk := list(islice(entries, FILL_CHUNK)):
            yield chunk

    def _fill(self, lane: Lane, before: int) -> None:
        """Verify and apply the lane's stored events after its position and before `before` (check 3)."""
        for chunk in self._stored(lane.position + 1, before - 1):
            mine = [(index, entry) for index, entry in chunk
                    if lane.partition is None or lane.carries(entry_partitions(entry, self.partitions))]
            if mine:
                for index, entry in mine:
                    self._verify(lane, index, entry)
                self._apply(lane, mine, True)

    def _sync(self, lanes: Sequence[Lane]) -> None:
        """Bring the lanes' verifiers to their stored positions, verifying the stored events in between (in one
        pass over the store)."""
        targets: dict[Lane, int] = {}
        for lane in lanes:
            stored = lane.projection.position()
            if stored < lane.position:
                lane.restart()
            targets[lane] = stored
        start, stop = min(lane.position for lane in lanes) + 1, max(targets.values())
        for chunk in self._stored(start, stop):
            for index, entry in chunk:
                carriers = entry_partitions(entry, self.partitions)
                for lane in lanes:
                    if lane.position < index <= targets[lane] and lane.carries(carriers):
                        self._verify(lane, index, entry)
        for lane in lanes:
            lane.position, lane.synced = targets[lane], True
            if lane.partition is None:
                lane.last = previous_in_partitions(self.store, lane.position, self.partitions)

    def _take_partition(self, partition: int, messages: list[Message]) -> None:
        """Checks 2–6 and apply, for one partition's messages of a poll (stream-local read models)."""
        lane = self.lanes[partition]
        if not lane.synced:
            self._sync([lane])
        run: list[Message] = []
        expected = lane.position
        for message in messages:
            if message.index <= expected:
                continue
            if message.previous != expected:
                if message.previous < expected:
                    self._apply_run(lane, run)
                    raise MessageRejectedError(f"{message.where()}: header {HEADER_PREVIOUS}: must be {expected}, "
                                               f"the last event of partition {partition} applied "
                                               f"({message.previous})")
                self._apply_run(lane, run)
                run = []
                self._fill(lane, message.index)
                if message.previous != lane.position:
                    raise MessageRejectedError(f"{message.where()}: header {HEADER_PREVIOUS}: must be "
                                               f"{lane.position}, the store's last event of partition {partition} "
                                               f"before it ({message.previous})")
            run.append(message)
            expected = message.index
            if len(run) >= RUN_LIMIT:
                self._apply_run(lane, run)
                run = []
        self._apply_run(lane, run)
        self.done[partition] = messages[-1].offset

    def _apply_run(self, lane: Lane, run: Sequence[Message]) -> None:
        envelopes: list[dict[str, Any]] = []
        refusal = None
        try:
            for message in run:
                envelope = self._verify(lane, message.index, message.value)
                self._place(message, envelope)
                envelopes.append(envelope)
        except MessageRejectedError as error:
            refusal = error
        self._apply_checked(lane, run, envelopes, refusal)

    def _take_whole(self, records: dict[int, list[Message]]) -> None:
        """Merge the partitions into the global order (checks 2–6) and apply (total-order read models)."""
        lane = self.lanes[None]
        if not lane.synced:
            self._sync([lane])
        for partition, messages in records.items():
            self.buffers[partition].extend(messages)
        run: list[list[Message]] = []
        position = lane.position
        while True:
            for partition, buffer in self.buffers.items():
                while buffer and buffer[0].index <= position:
                    self.done[partition] = buffer.popleft().offset
            heads = [buffer[0].index for buffer in self.buffers.values() if buffer]
            if not heads:
                break
            index = min(heads)
            if index > position + 1:
                if not self._settled():
                    break
                self._apply_copies(lane, run)
                run = []
                self._fill(lane, index)
            copies = []
            for partition, buffer in self.buffers.items():
                if buffer and buffer[0].index == index:
                    copies.append(buffer.popleft())
                    self.done[partition] = copies[-1].offset
            run.append(copies)
            position = index
            if len(run) >= RUN_LIMIT:
                self._apply_copies(lane, run)
                run = []
        self._apply_copies(lane, run)
        self._throttle()

    def _apply_copies(self, lane: Lane, run: Sequence[list[Message]]) -> None:
        """Check and apply events of the whole topic, each with the copies the partitions carried of it."""
        envelopes: list[dict[str, Any]] = []
        refusal = None
        try:
            for copies in run:
                expected = {copy.partition: lane.last[copy.partition] for copy in copies}
                envelope = self._verify(lane, copies[0].index, copies[0].value)
                for copy in copies:
                    self._place(copy, envelope)
                    if copy.previous != expected[copy.partition]:
                        raise MessageRejectedError(f"{copy.where()}: header {HEADER_PREVIOUS}: must be "
                                                   f"{expected[copy.partition]}, the last event of partition "
                                                   f"{copy.partition} before it ({copy.previous})")
                envelopes.append(envelope)
        except MessageRejectedError as error:
            refusal = error
        self._apply_checked(lane, [copies[0] for copies in run], envelopes, refusal)

    def _settled(self) -> bool:
        """Whether no partition can still deliver an index below the ones waiting: each has a message waiting or
        was read to its end."""
        empty = self._tps([p for p in self.assigned if not self.buffers[p]])
        if not empty:
            return True
        return self._read_to_end(empty)

    def _read_to_end(self, partitions: Sequence[TopicPartition]) -> bool:
        """Whether this consumer's position in each partition is at the partition's end (an unknown position is
        not)."""
        ends = self.consumer.end_offsets(partitions)
        positions = {tp: self.consumer.position(tp) for tp in partitions}
        return all(positions[tp] is not None and positions[tp] >= ends[tp] for tp in partitions)

    def _throttle(self) -> None:
        """Pause the partitions far ahead of the global order, resume the others."""
        paused = {tp.partition for tp in self.consumer.paused()}
        full = {p for p in self.assigned if len(self.buffers[p]) > BUFFER_LIMIT}
        if full - paused:
            self.consumer.pause(*self._tps(full - paused))
        if paused - full:
            self.consumer.resume(*self._tps(paused - full))

    # -- running -----------------------------------------------------------------------------------------

    @staticmethod
    def _read(records: dict[Any, list[Any]]) -> tuple[dict[int, list[Message]], MessageRejectedError | None]:
        """Each partition's messages up to the first whose headers break the contract, and that one's refusal."""
        messages: dict[int, list[Message]] = {}
        malformed = None
        for tp, batch in records.items():
            read = messages[tp.partition] = []
            for record in batch:
                try:
                    read.append(Message.of(record))
                except MessageRejectedError as error:
                    malformed = malformed or error
                    break
        return {p: read for p, read in messages.items() if read}, malformed

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Apply one poll's messages; return how many messages came."""
        self._rejoin_if_the_topic_is_gone()
        records = self.consumer.poll(timeout_ms)
        try:
            messages, refusal = self._read(records)
            if messages and self._active():
                check_partitions(self.topic, len(self.consumer.partitions_for_topic(self.topic) or ()),
                                 self.partitions)
                if self.whole:
                    self._take_whole(messages)
                else:
                    for partition in sorted(messages):  # partitions are independent: each goes as far as it can
                        try:
                            self._take_partition(partition, messages[partition])
                        except MessageRejectedError as error:
                            refusal = refusal or error
            if refusal is not None:
                raise refusal
        except MessageRejectedError:
            self.rejected = True
            raise
        if records:
            self._commit()
        return sum(len(batch) for batch in records.values())

    def caught_up(self) -> bool:
        """Whether everything published so far in this consumer's partitions has been applied."""
        if not self._active():
            return False
        return self._read_to_end(self._tps(self.assigned)) and not any(self.buffers.values())

    def run(self, until_caught_up: bool = False, deadline_seconds: float = 600.0) -> None:
        """Consume until `stop()`; with `until_caught_up`, return once everything published so far is applied: the
        positions at the partitions' ends after a poll that brought nothing (a broker may report the end as the start
        of its last batch, which the consumer may still hold in part)."""
        start = time.monotonic()
        while not self.stopping:
            try:
                count = self.poll_once(200 if until_caught_up else 1000)
            except Exception as error:
                if not connection_unavailable(error):
                    raise
                self._reconnect(error)
                continue
            if until_caught_up and not count and self.caught_up():
                return
            if until_caught_up and time.monotonic() - start > deadline_seconds:
                raise TimeoutError("consumer: did not catch up in time")

    def _reconnect(self, error: Exception) -> None:
        """A database connection went away while this consumer read or applied (the server ended it), or none came in
        time from the pool (a loaded server): the transaction it carried, if any, was undone with it, so everything
        held in memory past the stored positions goes — the verifiers, the messages waiting, the offsets handled —
        and the partitions are read again from the last offsets committed (a message at or before its lane's
        position is dropped as a duplicate), as by a consumer started again, but without leaving the group."""
        self.report(f"{self.name}: database connection lost or unavailable ({str(error).splitlines()[0]}); "
                    "reconnecting")
        time.sleep(RECONNECT_PAUSE)  # a server that is restarting is given a moment
        for lane in self.lanes.values():
            replace_lost_connections(lane.projection.sql.datastore)
            lane.restart()
            lane.synced = False
        replace_lost_connections(self.store.recorder.datastore)
        for buffer in self.buffers.values():
            buffer.clear()
        self.done.clear()
        if self._active():  # a partition paused while its buffer was full has nothing waiting now
            self.consumer.resume(*self._tps(self.assigned))
        for tp in self._tps(self.assigned):
            offset = self.committed.get(tp.partition)
            if offset is not None:
                self.consumer.seek(tp, offset + 1)
                continue
            committed = None
            with suppress(KafkaError):
                committed = self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)

    def stop(self) -> None:
        """Ask `run` to return after the current poll."""
        self.stopping = True

    def positions(self) -> dict[str, int]:
        """Each lane's stored position, by its tracking name."""
        return {lane.projection.tracking_name: lane.projection.position() for lane in self.lanes.values()}

    def summary(self) -> str:
        """What this consumer applied, and from which partitions."""
        held = ", ".join(map(str, sorted(self.held))) or "none"
        return (f"{self.name}: applied {self.from_topic} events from the topic and {self.from_store} from the "
                f"store; partitions held: {held}")

    def close(self) -> None:
        """Commit and leave the group."""
        self._commit(now=True)
        self.consumer.close(timeout_ms=COMMIT_MS)
