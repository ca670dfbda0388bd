"""The topic between the relay and the consumers: how the store's global order is laid out on its partitions.

The contract (docs/distribution.md, "Ordering contract"):

- The topic has P partitions (`LEDGER_KAFKA_PARTITIONS`). An event goes to the partition of its stream,
  `partition_of(stream, P)` — SHA-256 of the stream id, first 8 bytes big-endian, mod P — so the events of a
  stream stay in order in one partition. Keyring events (`key.registered`, `key.revoked`) go to every partition, in
  their place in the global order: whoever reads one partition has every key change before any later event, and
  checks key validity for the role at the time exactly as a reader of the whole log does.
- A message's key is the stream id, its value the JCS bytes of the signed envelope, and its headers
  `notification_id` (the event's global index in the store), `stream`, and `partition_previous`: the global index
  of the previous event of the store that this partition carries (0 before the first). The header is a function of
  the store alone, so a relay that restarts, or publishes everything again, writes the same headers; a consumer
  sees a gap in a partition from the header alone.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from itertools import islice
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaTimeoutError, TopicAlreadyExistsError

from ledger.projections.base import EntrySource
from ledger.roles import KEYRING_TYPES

HEADER_INDEX = "notification_id"
HEADER_STREAM = "stream"
HEADER_PREVIOUS = "partition_previous"
RETENTION = {"retention.ms": "-1", "retention.bytes": "-1"}
"""The topic keeps every message: a consumer starting from nothing reads the log from its first event."""


class TopicMismatchError(Exception):
    """The topic exists with another partition count than the configuration's (the message names the variable)."""


def partition_of(stream: str, partitions: int) -> int:
    """The partition of a stream: SHA-256 of its id, first 8 bytes big-endian, mod the partition count."""
    return int.from_bytes(hashlib.sha256(stream.encode()).digest()[:8], "big") % partitions


def partitions_of(stream: str, event_type: str, partitions: int) -> Sequence[int]:
    """The partitions that carry an event: every one for a keyring event, its stream's otherwise."""
    if event_type in KEYRING_TYPES:
        return range(partitions)
    return (partition_of(stream, partitions),)


def entry_partitions(entry: bytes, partitions: int) -> Sequence[int]:
    """The partitions that carry a stored entry; every one for an entry that is not an envelope (so that every
    consumer's verifier refuses it)."""
    try:
        head = orjson.loads(entry)
        return partitions_of(str(head["stream"]), str(head["type"]), partitions)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return range(partitions)


def message_headers(index: int, stream: str, previous: int) -> list[tuple[str, bytes]]:
    """The headers of a message (see module docstring)."""
    return [(HEADER_INDEX, str(index).encode()), (HEADER_STREAM, stream.encode()),
            (HEADER_PREVIOUS, str(previous).encode())]


def previous_in_partitions(source: EntrySource, through: int, partitions: int, page: int = 1000) -> list[int]:
    """For each partition, the global index of the last stored event at or before `through` that it carries (0 when
    none): read from the store backwards from `through`, a page at a time, until every partition has one (a keyring
    event, carried by all, ends the search)."""
    found: list[int | None] = [None] * partitions
    stop = through
    while stop >= 1 and None in found:
        start = max(1, stop - page + 1)
        chunk = [(nid, entry) for nid, entry in islice(source.entries(start, page), page) if nid <= stop]
        for nid, entry in reversed(chunk):
            for partition in entry_partitions(entry, partitions):
                if found[partition] is None:
                    found[partition] = nid
        stop = start - 1
    return [index or 0 for index in found]


def read_topic(bootstrap: str, topic: str, partitions: int, seconds: float = 30.0) -> list[Any]:
    """Every record on the topic at least up to each partition's end when the read began, partition by partition.
    A poll that brings nothing is not the end (a loaded broker answers a fetch empty): the read goes on until each
    partition's position reaches the end offset it had, or fails after `seconds` with KafkaTimeoutError. A fetch
    returns whole batches (and a broker may report a partition's end as the start of its last batch), so records
    past the end are kept."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, allow_auto_create_topics=False)
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        reader.assign(assigned)
        reader.seek_to_beginning()
        ends = reader.end_offsets(assigned)
        records: dict[int, list[Any]] = {p: [] for p in range(partitions)}
        deadline = time.monotonic() + seconds
        while any(reader.position(tp) < ends[tp] for tp in assigned):
            if time.monotonic() > deadline:
                raise KafkaTimeoutError(f"topic {topic} could not be read to its end in {seconds:.0f} s")
            for tp, batch in reader.poll(timeout_ms=500).items():
                records[tp.partition].extend(batch)
        return [record for p in range(partitions) for record in records[p]]
    finally:
        reader.close()


def topic_partitions(bootstrap: str, topic: str) -> int:
    """How many partitions the topic has (0 when it does not exist)."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, allow_auto_create_topics=False)
    try:
        return len(reader.partitions_for_topic(topic) or ())
    finally:
        reader.close()


def check_partitions(topic: str, found: int, partitions: int) -> None:
    """Refuse a topic whose partition count is not the configured one."""
    if found != partitions:
        raise TopicMismatchError(f"LEDGER_KAFKA_PARTITIONS: topic {topic} has {found} partitions, the "
                                 f"configuration says {partitions}")


def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    """Create the topic with `partitions` partitions, keeping every message, if it does not exist; refuse one that
    exists with another partition count."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1, "configs": RETENTION}})
        return
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()
    check_partitions(topic, topic_partitions(bootstrap, topic), partitions)
