"""Command line of the distributed deployment: `relay` and `consume`."""

from __future__ import annotations

import sys
import time

import click

from ledger.cli_context import cli_context


def bootstrap() -> str:
    """The configured broker, or a clear error."""
    servers = cli_context().settings.kafka_bootstrap_servers
    if not servers:
        click.echo("error: LEDGER_KAFKA_BOOTSTRAP_SERVERS: must be set for the relay and the consumers", err=True)
        sys.exit(2)
    return servers


@click.command("relay")
@click.option("--once", is_flag=True, help="Publish everything pending and exit.")
@click.option("--batch", type=int, default=500, show_default=True)
@click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds between polls of the store.")
def relay(once: bool, batch: int, interval: float) -> None:
    """Publish the store's global order to the Kafka topic (position advanced only after the broker's ack)."""
    from consumers.relay import Relay

    context = cli_context()
    publisher = Relay(context.app(), bootstrap(), context.settings.kafka_topic)
    try:
        while True:
            published = publisher.publish_pending(batch)
            if published:
                click.echo(f"published {published}, at {publisher.position()}", err=True)
            if once:
                return
            time.sleep(interval)
    finally:
        publisher.close()


@click.command("consume")
@click.argument("name")
@click.option("--group", default=None, help="Consumer group (default: ledger-NAME).")
@click.option("--until-caught-up", is_flag=True, help="Exit once everything published so far is applied.")
@click.option("--shard", default=None, metavar="K/N",
              help="Apply only shard K of N of the streams (balances, cases); run N of them, one per core or host.")
def consume(name: str, group: str | None, until_caught_up: bool, shard: str | None) -> None:
    """Run one projection as a member of a Kafka consumer group, verifying every message before applying it."""
    from consumers.consumer import MessageRejectedError, ProjectionConsumer, Shard
    from consumers.views import views_store

    context = cli_context()
    try:
        part = None if shard is None else Shard.parse(shard)
        default_group = f"ledger-{name}" if part is None else f"ledger-{name}-{part.index}-of-{part.count}"
        consumer = ProjectionConsumer(name, context.app(), views_store(context.settings), bootstrap(),
                                      context.settings.kafka_topic, group or default_group, shard=part)
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    try:
        consumer.run(until_caught_up=until_caught_up)
    except MessageRejectedError as error:
        click.echo(f"error: message rejected, nothing applied: {error}", err=True)
        sys.exit(3)
    finally:
        consumer.close()
    click.echo(f"{name} at {consumer.projection.position()}")


def register(main: click.Group) -> None:
    """Add the distributed deployment's commands."""
    main.add_command(relay)
    main.add_command(consume)
