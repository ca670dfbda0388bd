"""The relay: publishes the event store's global order to a Kafka topic, losing nothing and reordering nothing.

Ordering contract: the topic has one partition, so every consumer sees the store's total order — which every read
model needs (the journal and the periods read events of many streams in their global order). Each message's key is
its stream id (per-stream order would survive a topic with more partitions), its value the JCS bytes of the signed
envelope, and its headers `notification_id` (the store's position) and `stream`.

The producer waits for `acks=all` (and uses idempotence where the broker supports it). The relay's position — the
last notification id the broker acknowledged — is stored in the event database and advanced only after the broker
acknowledged the whole batch, so after a crash the relay resumes where it was sure: a batch may be published twice
(duplicates on the topic are allowed), never skipped or reordered; consumers drop what they have already applied.
"""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ledger.projections.base import EntrySource
from ledger.projections.sql import SqlStore


def ensure_topic(bootstrap: str, topic: str) -> None:
    """Create the one-partition topic if it does not exist."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def producer(bootstrap: str) -> KafkaProducer:
    """An `acks=all` producer, idempotent when the broker allows it."""
    try:
        candidate = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
        candidate.send("__ledger_probe", b"").get(10)
        return candidate
    except KafkaError:
        return KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=10, linger_ms=5,
                             max_in_flight_requests_per_connection=1)


class Relay:
    """Publishes stored events after its durable position."""

    def __init__(self, source: EntrySource, bootstrap: str, topic: str) -> None:
        self.source = source
        self.topic = topic
        self.name = f"relay:{topic}"
        """The position is per destination topic."""
        self.sql = SqlStore(source.recorder.datastore)
        self.tracking = self.sql.table("projection_tracking")
        self.sql.create([f"CREATE TABLE IF NOT EXISTS {self.tracking} (name TEXT PRIMARY KEY, "
                         "position BIGINT NOT NULL)"])
        ensure_topic(bootstrap, topic)
        self.producer = producer(bootstrap)

    def position(self) -> int:
        """The last notification id the broker acknowledged."""
        with self.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT position FROM {self.tracking} WHERE name = ?", (self.name,)).fetchone()
        return int(row[0]) if row else 0

    def publish_batch(self, size: int = 500) -> int:
        """Publish the next batch, wait for the broker, then advance the position; return how many."""
        batch = list(islice(self.source.entries(self.position() + 1, size), size))
        if not batch:
            return 0
        futures: list[Any] = []
        for notification_id, entry in batch:
            stream = json.loads(entry)["stream"].encode()
            futures.append(self.producer.send(self.topic, key=stream, value=entry, headers=[
                ("notification_id", str(notification_id).encode()), ("stream", stream)]))
        self.producer.flush()
        for future in futures:
            future.get(timeout=30)
        with self.sql.transaction() as cursor:
            cursor.execute(f"DELETE FROM {self.tracking} WHERE name = ?", (self.name,))
            cursor.execute(f"INSERT INTO {self.tracking} VALUES (?, ?)", (self.name, batch[-1][0]))
        return len(batch)

    def publish_pending(self, size: int = 500) -> int:
        """Publish everything stored so far."""
        total = 0
        while count := self.publish_batch(size):
            total += count
        return total

    def close(self) -> None:
        """Close the producer."""
        self.producer.close()
