"""Command line of the distributed deployment: `relay` and `consume`."""

from __future__ import annotations

import signal
import sys

import click

from ledger.cli_context import cli_context


def bootstrap() -> str:
    """The configured broker, or a clear error."""
    servers = cli_context().settings.kafka_bootstrap_servers
    if not servers:
        click.echo("error: LEDGER_KAFKA_BOOTSTRAP_SERVERS: must be set for the relay and the consumers", err=True)
        sys.exit(2)
    return servers


def report(line: str) -> None:
    """A progress line on stderr."""
    click.echo(line, err=True)


@click.command("relay")
@click.option("--once", is_flag=True, help="Publish everything pending and exit.")
@click.option("--batch", type=int, default=2000, show_default=True)
@click.option("--interval", type=float, default=0.1, show_default=True, help="Seconds between polls of the store.")
def relay(once: bool, batch: int, interval: float) -> None:
    """Publish the store's global order to the Kafka topic (position advanced only after the broker's ack)."""
    from consumers.relay import Relay
    from consumers.topic import TopicMismatchError

    context = cli_context()
    settings = context.settings
    publisher = Relay(context.app(), bootstrap(), settings.kafka_topic, settings.kafka_partitions, report)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        publisher.run(once=once, size=batch, interval=interval)
    except TopicMismatchError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    finally:
        publisher.close()


@click.command("consume")
@click.argument("name")
@click.option("--group", default=None, help="Consumer group (default: ledger-NAME).")
@click.option("--until-caught-up", is_flag=True, help="Exit once everything published so far is applied.")
def consume(name: str, group: str | None, until_caught_up: bool) -> None:
    """Run one projection as a member of a Kafka consumer group, verifying every message before applying it.

    Balances and cases split the topic's partitions among the members of their group; journal and periods apply
    the whole topic in global order in one member while the others stand by."""
    from consumers.consumer import MessageRejectedError, ProjectionConsumer
    from consumers.topic import TopicMismatchError
    from consumers.views import views_store

    context = cli_context()
    settings = context.settings
    try:
        consumer = ProjectionConsumer(name, context.app(), views_store(settings), bootstrap(), settings.kafka_topic,
                                      group or f"ledger-{name}", settings.kafka_partitions, report)
    except (ValueError, TopicMismatchError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    signal.signal(signal.SIGTERM, lambda *_: consumer.stop())
    try:
        consumer.run(until_caught_up=until_caught_up)
    except MessageRejectedError as error:
        click.echo(f"error: message rejected, nothing of it applied: {error}", err=True)
        sys.exit(3)
    except TopicMismatchError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    finally:
        consumer.close()
        click.echo(consumer.summary(), err=True)
    positions = consumer.positions()
    click.echo(" ".join(f"{lane}={position}" for lane, position in positions.items()))


def register(main: click.Group) -> None:
    """Add the distributed deployment's commands."""
    main.add_command(relay)
    main.add_command(consume)
