"""The operator's maintenance of derived data: `projections rebuild|catch-up|digest|status`, and the distributed
deployment's processes, `kafka relay|consume`."""

from __future__ import annotations

import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from eventsourcing.sqlite import SQLiteDatastore

from ledger.cli.base import context, emit, json_option
from ledger.errors import InputError, VerificationError
from ledger.projections import PROJECTIONS, ReadModels
from ledger.projections.sql import SqlStore
from ledger.rules import Rule


@click.group("projections")
def projections_group() -> None:
    """The read models: catch up, rebuild, digest, status."""


@projections_group.command("catch-up")
@json_option
def catch_up() -> None:
    """Apply every stored event the read models have not applied yet."""
    models = context().ledger().read_models(catch_up=False)
    read = models.catch_up()
    emit({"applied": read, "positions": models.status()}, f"applied {read} events")


@projections_group.command("rebuild")
@json_option
def rebuild() -> None:
    """Rebuild every read model from the event store."""
    models = ReadModels.open(context().ledger().app, create=False)
    count = models.rebuild()
    emit({"events": count, "positions": models.status()},
         "\n".join(f"{p.NAME} rebuilt from {count} events, at {p.position()}" for p in models.all()))


@projections_group.command("digest")
@click.option("--fresh", is_flag=True, help="Digest a fresh rebuild from the event store instead.")
@json_option
def digest(fresh: bool) -> None:
    """One line per read model: NAME DIGEST (the views the consumers fill, when LEDGER_VIEWS_URL is set)."""
    ctx = context()
    ledger = ctx.ledger()
    if fresh:
        with tempfile.TemporaryDirectory() as tmp:
            sql = SqlStore(SQLiteDatastore(str(Path(tmp) / "fresh.sqlite3")))
            digests = {}
            for projection_class in PROJECTIONS:
                projection = projection_class(ledger.app, sql)
                projection.catch_up()
                digests[projection.NAME] = projection.digest()
    elif ctx.settings.views_url is not None:
        from consumers.views import views_store

        views = views_store(ctx.settings)
        digests = {p.NAME: p(ledger.app, views).digest() for p in PROJECTIONS}
    else:
        digests = ledger.read_models(catch_up=False).digests()
    emit(digests, "\n".join(f"{name} {value}" for name, value in digests.items()))


@projections_group.command("status")
@json_option
def status() -> None:
    """Each read model's position against the last stored event."""
    ledger = context().ledger()
    last = ledger.app.recorder.max_notification_id() or 0
    positions = ledger.read_models(catch_up=False).status()
    emit({"last": last, "positions": positions},
         "\n".join(f"{name} {position}/{last}" + ("" if position == last else " (behind)")
                   for name, position in positions.items()))


@click.group("kafka")
def kafka_group() -> None:
    """The distributed deployment: the relay and the projection consumers."""


def bootstrap_servers() -> str:
    """The configured broker, or an input error naming the variable."""
    servers = context().settings.kafka_bootstrap_servers
    if not servers:
        raise InputError("LEDGER_KAFKA_BOOTSTRAP_SERVERS", Rule.KAFKA_MUST_BE_CONFIGURED,
                         "the relay and the consumers need a broker")
    return servers


def report(line: str) -> None:
    """A progress line on stderr."""
    click.echo(line, err=True)


@kafka_group.command("relay")
@click.option("--once", is_flag=True, help="Publish everything pending and exit.")
@click.option("--batch", type=click.IntRange(1, 100_000), default=2000, show_default=True)
@click.option("--interval", type=click.FloatRange(0.01, 3600), default=0.1, show_default=True,
              help="Seconds between polls of the store.")
def relay(once: bool, batch: int, interval: float) -> None:
    """Publish the store's global order to the Kafka topic (position advanced only after the broker's ack)."""
    from consumers.relay import Relay

    ctx = context()
    settings = ctx.settings
    with topic_errors():
        publisher = Relay(ctx.ledger().app, bootstrap_servers(), settings.kafka_topic, settings.kafka_partitions,
                          report)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with topic_errors():
            publisher.run(once=once, size=batch, interval=interval)
    finally:
        publisher.close()


@contextmanager
def topic_errors() -> Iterator[None]:
    """A topic that exists with another partition count, or a broker that does not answer, is a configuration
    error (exit 2)."""
    from kafka.errors import KafkaError

    from consumers.topic import TopicMismatchError

    try:
        yield
    except TopicMismatchError as error:
        raise InputError("LEDGER_KAFKA_PARTITIONS", Rule.TOPIC_MUST_HAVE_THE_CONFIGURED_PARTITIONS,
                         str(error)) from None
    except KafkaError as error:
        raise InputError("LEDGER_KAFKA_BOOTSTRAP_SERVERS", Rule.KAFKA_BROKER_MUST_ANSWER,
                         f"{type(error).__name__}: {error}") from None


@kafka_group.command("consume")
@click.argument("name", type=click.Choice([p.NAME for p in PROJECTIONS]))
@click.option("--group", default=None, help="Consumer group (default: ledger-NAME).")
@click.option("--until-caught-up", is_flag=True, help="Exit once everything published so far is applied.")
def consume(name: str, group: str | None, until_caught_up: bool) -> None:
    """Run one projection as a member of a Kafka consumer group, verifying every message before applying it.

    Balances and cases split the topic's partitions among the members of their group; journal and periods apply
    the whole topic in global order in one member while the others stand by."""
    from consumers.consumer import MessageRejectedError, ProjectionConsumer
    from consumers.views import views_store

    ctx = context()
    settings = ctx.settings
    with topic_errors():
        consumer = ProjectionConsumer(name, ctx.ledger().app, views_store(settings), bootstrap_servers(),
                                      settings.kafka_topic, group or f"ledger-{name}", settings.kafka_partitions,
                                      report)
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    try:
        with topic_errors():
            consumer.run(until_caught_up=until_caught_up)
    except MessageRejectedError as error:
        raise VerificationError(f"message rejected, nothing of it applied: {error}") from None
    finally:
        consumer.close()
        click.echo(consumer.summary(), err=True)
    click.echo(" ".join(f"{lane}={position}" for lane, position in consumer.positions().items()))
