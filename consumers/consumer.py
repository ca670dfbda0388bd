"""A projection run as a member of a Kafka consumer group.

Each message is verified before it is applied — signature, key validity for its role at its time, schema, chain,
and its place in the global order — by the same procedure as `mutual-ledger verify` (`ledger.verify`), whose state
(keyring, stream heads) is rebuilt from the event store up to the projection's position when the consumer starts.
A message that fails stops the consumer with an error naming it; it is never applied.

A projection whose appliers are stream-local (`Projection.STREAM_LOCAL`: balances, cases — the per-member work)
can be split among N consumers: `Shard(k, n)` owns the streams whose SHA-256 falls in its class mod n, verifies
and applies only their events (and every keyring event, to know the keys), and records its own position; the N
shards write disjoint rows of the same tables, so their union is the read model one consumer would build, and N
consumers on N cores apply N times the events. Each shard reads the whole topic in its own consumer group.

The projection's position (a notification id) is stored with its rows in the views database, in the same
transaction; Kafka offsets are only a hint (committed after applying). A message at or before the position is a
duplicate and is dropped. A message further on than the next stored event means the topic lost something (or the
consumer is far behind): the consumer reads the missing events from the event store itself, verifies and applies
them, and goes on with Kafka.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice, takewhile

import orjson
from kafka import KafkaConsumer, TopicPartition

from ledger.projections import PROJECTIONS
from ledger.projections.base import EntrySource, Projection
from ledger.projections.sql import SqlStore
from ledger.verify import Verifier

BY_NAME = {p.NAME: p for p in PROJECTIONS}


class MessageRejectedError(Exception):
    """A message failed verification: the consumer stops and applies nothing of it."""


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the streams whose SHA-256 (first 8 bytes, big-endian) is `index` mod `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`K/N` with 0 <= K < N; a ValueError naming the field and the rule otherwise."""
        index, _, count = text.partition("/")
        if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
            raise ValueError(f"shard: must be K/N with 0 <= K < N ({text})")
        return cls(int(index), int(count))

    def owns(self, stream: str) -> bool:
        """Whether this shard applies the events of `stream`."""
        return int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class ProjectionConsumer:
    """One projection fed from the topic (see module docstring)."""

    def __init__(self, name: str, store: EntrySource, views: SqlStore, bootstrap: str, topic: str, group: str,
                 on_apply: Callable[[int], None] | None = None, shard: Shard | None = None) -> None:
        if name not in BY_NAME:
            raise ValueError(f"projection: must be one of {', '.join(BY_NAME)} ({name})")
        if shard is not None and not BY_NAME[name].STREAM_LOCAL:
            local = ", ".join(n for n, p in BY_NAME.items() if p.STREAM_LOCAL)
            raise ValueError(f"shard: {name} combines events of several streams and runs as one consumer "
                             f"(shardable: {local})")
        self.store = store
        self.shard = shard
        self.projection: Projection = BY_NAME[name](store, views, None if shard is None else f"{name} {shard}")
        self.verifier = Verifier()
        self.checked = 0
        self.on_apply = on_apply
        self._prime()
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                      auto_offset_reset="earliest", session_timeout_ms=6000,
                                      heartbeat_interval_ms=1000, max_poll_records=500)
        self.consumer.subscribe([topic])
        self.topic = topic

    def _prime(self) -> None:
        """Rebuild the verifier's state from the store up to the projection's position."""
        position = self.projection.position()
        for notification_id, entry in self.store.entries(1, 5000):
            if notification_id > position:
                break
            self._verify(notification_id, entry)

    def _mine(self, entry: bytes) -> bool:
        """Whether this consumer verifies and applies `entry`: every entry without a shard; with one, the entries
        of its streams and every keyring event (an entry that does not even parse is verified, and so rejected)."""
        if self.shard is None:
            return True
        try:
            head = orjson.loads(entry)
            return self.shard.owns(head["stream"]) or str(head["type"]).startswith("key.")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return True

    def _verify(self, notification_id: int, entry: bytes) -> bool:
        """Verify an entry of ours and return True; count another shard's entry and return False."""
        if not self._mine(entry):
            self.checked += 1
            return False
        before = len(self.verifier.report.failures)
        self.verifier.entry(self.checked, entry)
        self.checked += 1
        if len(self.verifier.report.failures) > before:
            failure = self.verifier.report.failures[-1]
            raise MessageRejectedError(f"notification {notification_id}: {failure}")
        return True

    def _apply(self, items: list[tuple[int, bytes]]) -> None:
        """Verify then apply, in order; a gap before the first item is filled from the store first."""
        position = self.projection.position()
        fresh = sorted({nid: entry for nid, entry in items if nid > position}.items())  # duplicates dropped
        if not fresh:
            return
        first = fresh[0][0]
        if first > position + 1:  # the topic lacks what the store has: read it there, a chunk at a time
            gap = takewhile(lambda item: item[0] < first, self.store.entries(position + 1, 1000))
            while chunk := list(islice(gap, 10_000)):
                self._verify_and_apply(chunk)
        self._verify_and_apply(fresh)

    def _verify_and_apply(self, batch: list[tuple[int, bytes]]) -> None:
        mine = [(nid, entry) for nid, entry in batch if self._verify(nid, entry)]
        self.projection.apply_batch(mine, through=batch[-1][0])
        if self.on_apply is not None:
            self.on_apply(batch[-1][0])

    def poll_once(self, timeout_ms: int = 1000) -> int:
        """Apply one poll's messages; return how many messages came."""
        records = self.consumer.poll(timeout_ms)
        count = 0
        for messages in records.values():
            items = []
            for message in messages:
                items.append((int(dict(message.headers or [])["notification_id"]), bytes(message.value)))
            count += len(items)
            self._apply(items)
        if count:
            self.consumer.commit()
        return count

    def caught_up(self) -> bool:
        """Whether everything published so far has been consumed."""
        partitions = [TopicPartition(self.topic, p) for p in self.consumer.partitions_for_topic(self.topic) or []]
        if not partitions or not self.consumer.assignment():
            return False
        ends = self.consumer.end_offsets(partitions)
        return all(self.consumer.position(tp) >= ends[tp] for tp in partitions if tp in self.consumer.assignment())

    def run(self, until_caught_up: bool = False, deadline_seconds: float = 600.0) -> None:
        """Consume; with `until_caught_up`, return once everything published so far is applied."""
        start = time.monotonic()
        while True:
            self.poll_once()
            if until_caught_up and self.caught_up():
                return
            if until_caught_up and time.monotonic() - start > deadline_seconds:
                raise TimeoutError("consumer: did not catch up in time")

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()
