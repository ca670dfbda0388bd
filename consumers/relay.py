"""The relay: publishes the event store's global order to a Kafka topic, losing nothing and reordering nothing.

Each event goes to the partition of its stream, a keyring event to every partition, with the headers of
`consumers.topic` (global index, stream, and the index of the partition's previous event). The producer waits for
`acks=all` (and uses idempotence where the broker supports it). The relay's position — the last notification id
the broker acknowledged — is stored in the event database and advanced only after the broker acknowledged the
whole batch, so after a crash the relay resumes where it was sure: a batch may be published twice (duplicates on the
topic are allowed), never skipped or reordered; consumers drop what they have already applied. The previous index
of each partition is derived from the store at that position (`previous_in_partitions`), never remembered, so a
restarted relay writes the headers the first run would have written.

The relay also checks that the topic still holds what it published: when it connects, the last message of each
partition must be the last event it published there; while it runs, the offsets the broker acknowledges must keep
growing. A broker that came back empty, or a partition cut short, fails one of the two; the relay then rewinds its
position to the last index every partition still holds and publishes the rest again from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import islice
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from consumers.topic import HEADER_INDEX, ensure_topic, message_headers, partitions_of, previous_in_partitions
from ledger.projections.base import EntrySource
from ledger.projections.sql import SqlStore
from ledger.store import connection_unavailable, replace_lost_connections

PRODUCER_SETTINGS: dict[str, Any] = {"acks": "all", "linger_ms": 5, "batch_size": 256 * 1024,
                                     "max_block_ms": 5000, "request_timeout_ms": 5000,
                                     "delivery_timeout_ms": 10_000, "reconnect_backoff_max_ms": 1000,
                                     "allow_auto_create_topics": False}
"""Batches of up to 256 KiB per partition, each waited for by every replica; a broker that does not answer within
ten seconds fails the batch (the relay reconnects and checks the topic). The raw-Kafka baseline of
`bench/pipeline.py` produces with the same settings."""
PROBE_TOPIC = "__ledger_probe"
ACK_SECONDS = 30


def producer(bootstrap: str) -> KafkaProducer:
    """An `acks=all` producer, idempotent when the broker allows it (probed on a topic of its own)."""
    ensure_topic(bootstrap, PROBE_TOPIC, 1)
    candidate = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **PRODUCER_SETTINGS)
    try:
        candidate.send(PROBE_TOPIC, b"").get(10)
        return candidate
    except KafkaError:
        candidate.close(0)
        return KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, retries=10,
                             max_in_flight_requests_per_connection=1, **PRODUCER_SETTINGS)


class Relay:
    """Publishes stored events after its durable position (see module docstring)."""

    def __init__(self, source: EntrySource, bootstrap: str, topic: str, partitions: int,
                 report: Callable[[str], None] | None = None) -> None:
        self.source = source
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.report = report or (lambda _: None)
        self.name = f"relay:{topic}"
        """The position is per destination topic."""
        self.sql = SqlStore(source.recorder.datastore)
        self.tracking = self.sql.table("projection_tracking")
        self.sql.create([f"CREATE TABLE IF NOT EXISTS {self.tracking} (name TEXT PRIMARY KEY, "
                         "position BIGINT NOT NULL)"])
        self.producer: KafkaProducer | None = None
        self.previous: list[int] = []
        """The index of the last event published to each partition."""
        self.offsets: list[int] = []
        """The highest offset of each partition known to hold a message (-1: none)."""

    def position(self) -> int:
        """The last notification id the broker acknowledged."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def _record(self, position: int) -> None:
        with self.sql.transaction() as cursor:
            cursor.execute(f"DELETE FROM {self.tracking} WHERE name = ?", (self.name,))
            cursor.execute(f"INSERT INTO {self.tracking} VALUES (?, ?)", (self.name, position))

    def connect(self) -> None:
        """Make sure the topic exists with its partition count, open the producer, and check the topic."""
        self.close()
        ensure_topic(self.bootstrap, self.topic, self.partitions)
        self.producer = producer(self.bootstrap)
        self.reconcile({})

    def reconcile(self, reset_at: dict[int, int]) -> None:
        """Check that every partition still holds the last event published to it — its last message, or for a
        partition whose offsets went back, the message before `reset_at[p]` — and rewind the position to the last
        index they all still hold when one does not."""
        position = self.position()
        previous = previous_in_partitions(self.source, position, self.partitions)
        kept, self.offsets = self._survivors(reset_at)
        lost = [p for p in range(self.partitions) if kept[p] < previous[p]]
        if lost:
            rewind = min(kept[p] for p in lost)
            self.report(f"the topic lost what was published after {rewind} (partitions "
                        f"{', '.join(map(str, lost))}); publishing again from {rewind + 1}")
            self._record(rewind)
            previous = previous_in_partitions(self.source, rewind, self.partitions)
        self.previous = previous

    def _survivors(self, reset_at: dict[int, int]) -> tuple[list[int], list[int]]:
        """(index of the last message each partition still holds before its reset point, or its last one; 0 when
        none) and the highest offset each partition holds now."""
        partitions = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        reader = KafkaConsumer(bootstrap_servers=self.bootstrap, allow_auto_create_topics=False,
                               enable_auto_commit=False, fetch_max_wait_ms=100, max_poll_records=1_000_000)
        records: dict[int, list[Any]] = {p: [] for p in range(self.partitions)}
        try:
            reader.assign(partitions)
            ends = reader.end_offsets(partitions)
            for tp in partitions:
                reader.seek(tp, max(0, min(ends[tp], reset_at.get(tp.partition, ends[tp])) - 1))
            deadline = time.monotonic() + ACK_SECONDS
            while any(reader.position(tp) < ends[tp] for tp in partitions):  # a fetch returns whole batches
                if time.monotonic() > deadline:
                    raise KafkaTimeoutError("the topic's last messages could not be read")
                for tp, messages in reader.poll(timeout_ms=500).items():
                    records[tp.partition].extend(messages)
        finally:
            reader.close()
        kept, highest = [0] * self.partitions, [-1] * self.partitions
        for p, messages in records.items():
            if messages:
                highest[p] = max(m.offset for m in messages)
            before = reset_at.get(p)
            survivors = [m for m in messages if before is None or m.offset < before]
            if survivors:
                index = dict(survivors[-1].headers or []).get(HEADER_INDEX, b"")
                kept[p] = int(index) if index.isdigit() else 0
        return kept, highest

    def publish_batch(self, size: int = 2000) -> int:
        """Publish the next batch, wait for the broker, then advance the position; return how many events."""
        if self.producer is None:
            self.connect()
        assert self.producer is not None
        batch = list(islice(self.source.entries(self.position() + 1, size), size))
        if not batch:
            return 0
        previous = list(self.previous)
        futures: list[Any] = []
        for notification_id, entry in batch:
            head = orjson.loads(entry)
            stream: str = head["stream"]
            key = stream.encode()
            for partition in partitions_of(stream, head["type"], self.partitions):
                futures.append(self.producer.send(self.topic, key=key, value=entry, partition=partition,
                                                  headers=message_headers(notification_id, stream,
                                                                          previous[partition])))
                previous[partition] = notification_id
        self.producer.flush(ACK_SECONDS)
        lowest: dict[int, int] = {}
        highest = list(self.offsets)
        for future in futures:
            metadata = future.get(timeout=ACK_SECONDS)
            lowest[metadata.partition] = min(lowest.get(metadata.partition, metadata.offset), metadata.offset)
            highest[metadata.partition] = max(highest[metadata.partition], metadata.offset)
        went_back = {p: offset for p, offset in lowest.items() if offset <= self.offsets[p]}
        if went_back:  # the partition was cut short or created anew since: check what it still holds
            self.reconcile(went_back)
            return len(batch)
        self._record(batch[-1][0])
        self.previous, self.offsets = previous, highest
        return len(batch)

    def publish_pending(self, size: int = 2000) -> int:
        """Publish everything stored so far."""
        total = 0
        while count := self.publish_batch(size):
            total += count
        return total

    def run(self, once: bool = False, size: int = 2000, interval: float = 0.5) -> None:
        """Publish what is pending every `interval` seconds; with `once`, until nothing is. A broker error, or a
        database connection that went away (the server ended it), closes the connection to the broker; the next
        round connects again and checks the topic from the stored position (a batch the broker took but whose
        position was not recorded is published again: a duplicate the consumers drop)."""
        while True:
            try:
                published = self.publish_pending(size)
                if published:
                    self.report(f"published {published}, at {self.position()}")
                if once:
                    return
            except KafkaError as error:
                self.report(f"broker: {error!r}; connecting again")
                self.close()
            except Exception as error:
                if not connection_unavailable(error):
                    raise
                self.report(f"database connection lost or unavailable ({str(error).splitlines()[0]}); "
                            "connecting again")
                replace_lost_connections(self.sql.datastore)
                self.close()
            time.sleep(interval)

    def close(self) -> None:
        """Close the producer (whatever it still holds is published again by the next connection)."""
        if self.producer is not None:
            self.producer.close(0)
            self.producer = None
