"""Command line of the read models: statement, period, disclosure, journal, metrics, projections."""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from eventsourcing.sqlite import SQLiteDatastore

from ledger.aggregates.disclosure import Disclosure, disclosure_id
from ledger.cli_context import cli_context
from ledger.projections import PROJECTIONS, ReadModels
from ledger.projections.cases import disclosure_document, document_bytes, document_hash
from ledger.projections.metrics import metrics
from ledger.projections.sql import SqlStore
from ledger.projections.statements import render, statement


def models() -> ReadModels:
    """The configured ledger's read models, caught up."""
    return cli_context().app().read_models()


def emit(data: Any, as_json: bool, text: str) -> None:
    """JSON for machines, text for people."""
    click.echo(json.dumps(data, ensure_ascii=False, sort_keys=True) if as_json else text)


def fail(message: str, code: int = 2) -> None:
    """An error on stderr, and the exit code."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.command("statement")
@click.argument("member")
@click.option("--year", type=int, default=None, help="The yearly statement.")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Exclusive.")
@click.option("--json", "as_json", is_flag=True)
def statement_command(member: str, year: int | None, since: datetime | None, until: datetime | None,
                      as_json: bool) -> None:
    """A member's 爱心账单: days in the plan, periods paid into, shared, people helped, top-ups, balance, claims."""
    start = date(year, 1, 1) if year else (since.date() if since else None)
    end = date(year + 1, 1, 1) if year else (until.date() if until else None)
    try:
        result = statement(models(), member, start, end, cli_context().app().clock.now().astimezone(UTC))
    except ValueError as error:
        fail(str(error))
    emit(result, as_json, render(result))


@click.group("period")
def period_group() -> None:
    """Sharing periods."""


@period_group.command("show")
@click.argument("period")
@click.option("--json", "as_json", is_flag=True)
def period_show(period: str, as_json: bool) -> None:
    """Every term of a period's assessment, its collection and settlement."""
    record = models().periods.record(period)
    if record is None:
        fail(f"period: must_exist ({period})")
        return
    text = "\n".join(f"{key}: {value}" for key, value in record.items() if key != "cases")
    text += "".join(f"\ncase {c['claim']}: approved {c['approved_fen']} fen, funded {c['funded_fen']} fen"
                    for c in record["cases"])
    emit(record, as_json, text)


@click.group("disclosure")
def disclosure_group() -> None:
    """Period disclosures (公示)."""


@disclosure_group.command("publish")
@click.argument("period")
@click.option("--command-id", default=None, help="Idempotency key (default: derived from the period).")
@click.option("--json", "as_json", is_flag=True)
def disclosure_publish(period: str, command_id: str | None, as_json: bool) -> None:
    """Publish a settled period's disclosure: its document's hash goes on the log."""
    from ledger.cli import reported_errors
    from schemas.commands.disclosure import PublishDisclosure

    with reported_errors():
        command = PublishDisclosure(command_id=command_id or f"disclose-{period}", period=period)
        result = cli_context().app().execute(command, sign_as=cli_context().key)
    emit(result, as_json, f"published {result['disclosure']}: sha256 {result['document_hash']}")


@disclosure_group.command("show")
@click.argument("period")
def disclosure_show(period: str) -> None:
    """The disclosure document, rebuilt from the events and checked against its published hash (exit 3 if not)."""
    app = cli_context().app()
    published = app.read(disclosure_id(period), Disclosure)
    read = models()
    try:
        document = disclosure_document(period, read.periods, read.cases, read.balances.failed_periods())
    except ValueError as error:
        fail(str(error))
        return
    sys.stdout.buffer.write(document_bytes(document) + b"\n")
    if published is None or published.published is None:
        click.echo("not published yet", err=True)
    elif published.published.document_hash != document_hash(document):
        fail(f"document_hash: published {published.published.document_hash}, rebuilt {document_hash(document)}", 3)
    else:
        click.echo(f"matches the published hash {published.published.document_hash}", err=True)


@click.command("journal")
@click.option("--trial-balance", is_flag=True, help="Only the trial balance and the custody check.")
@click.option("--json", "as_json", is_flag=True)
def journal_command(trial_balance: bool, as_json: bool) -> None:
    """The fund's accounts (debit balances positive), the trial balance and the custody gap."""
    journal = models().journal
    data: dict[str, Any] = {"trial_balance_fen": journal.trial_balance(), "custody_gap_fen": journal.custody_gap()}
    if not trial_balance:
        data["accounts"] = journal.balances()
    text = "\n".join([*(f"{name:<18} {value / 100:>16,.2f}" for name, value in data.get("accounts", {}).items()),
                      f"trial balance {data['trial_balance_fen']} fen; custody gap {data['custody_gap_fen']} fen"])
    emit(data, as_json, text)
    if data["trial_balance_fen"] or data["custody_gap_fen"]:
        sys.exit(3)


@click.command("metrics")
@click.option("--plan", "plans", multiple=True, help="Default: every plan.")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--json", "as_json", is_flag=True)
def metrics_command(plans: tuple[str, ...], since: datetime | None, until: datetime | None, as_json: bool) -> None:
    """Regulator metrics per plan: shares, cases, approval rates, juries, times to decision and payment, refunds."""
    read = models()
    chosen = list(plans) or sorted({p["plan"] for p in read.periods.all()} | {
        c["plan"] for c in read.cases.cards()})
    data = metrics(read, chosen, since.date().isoformat() if since else "", until.date().isoformat() if until
                   else "9999", cli_context().app().clock.now().astimezone(UTC))
    emit(data, as_json, json.dumps(data, indent=2, ensure_ascii=False))


@click.group("projections")
def projections_group() -> None:
    """The read models: rebuild, digest, status."""


@projections_group.command("rebuild")
def rebuild() -> None:
    """Rebuild every read model from the event store."""
    app = cli_context().app()
    read = ReadModels.open(app)
    count = read.rebuild()
    for projection in read.all():
        click.echo(f"{projection.NAME} rebuilt from {count} events, at {projection.position()}")


@projections_group.command("digest")
@click.option("--fresh", is_flag=True, help="Digest a fresh rebuild from the event store instead.")
def digest(fresh: bool) -> None:
    """One line per read model: NAME DIGEST."""
    context = cli_context()
    app = context.app()
    if not fresh:
        if context.settings.views_url is None:
            digests = models().digests()
        else:  # the views database the consumers fill: digest it as it is, without catching up here
            from consumers.views import views_store

            views = views_store(context.settings)
            digests = {p.NAME: p(app, views).digest() for p in PROJECTIONS}
        for name, value in digests.items():
            click.echo(f"{name} {value}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        sql = SqlStore(SQLiteDatastore(str(Path(tmp) / "fresh.sqlite3")))
        for projection_class in PROJECTIONS:
            projection = projection_class(app, sql)
            projection.catch_up()
            click.echo(f"{projection.NAME} {projection.digest()}")


@projections_group.command("status")
def status() -> None:
    """Each read model's position against the last stored event."""
    app = cli_context().app()
    last = app.recorder.max_notification_id() or 0
    for name, position in ReadModels.open(app).status().items():
        click.echo(f"{name} {position}/{last}" + ("" if position == last else " (behind)"))


def register(main: click.Group) -> None:
    """Add the read models' commands to the main command."""
    for command in (statement_command, period_group, disclosure_group, journal_command, metrics_command,
                    projections_group):
        main.add_command(command)
