"""`python -m audit` / `mutual-ledger audit`: verifiers that need nothing but files and public keys."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from audit.bundle import BundleError, load_bundle, verify_bundle
from ledger.log.note import NoteError, Verifier


@click.group()
def audit() -> None:
    """Check the ledger's proofs offline."""


@audit.command("verify")
@click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="An export (JSONL) to audit; default: the live store of --data-dir.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="The ledger's data directory (with LEDGER_DATABASE_URL for PostgreSQL).")
@click.option("--trust-anchors", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--log-key", default=None, help="The log's verifier key, to check checkpoints.")
@click.option("--checkpoints", "checkpoints_file", type=click.Path(exists=True, path_type=Path), default=None,
              help="A JSON list of signed checkpoint notes (default with a live store: the stored ones).")
@click.option("--json", "as_json", is_flag=True, help="A machine-readable report.")
def verify_command(input_path: Path | None, data_dir: Path | None, trust_anchors: Path | None, log_key: str | None,
                   checkpoints_file: Path | None, as_json: bool) -> None:
    """Re-check everything from the events and public keys alone (numbered procedure: audit/verify.py)."""
    from audit.verify import Auditor
    from ledger.verify import TrustAnchors, read_export

    notes: list[str] = json.loads(checkpoints_file.read_text()) if checkpoints_file else []
    key = Verifier.parse(log_key) if log_key else None
    if input_path is not None:
        anchors = TrustAnchors.load(trust_anchors) if trust_anchors else None
        report = Auditor(anchors, key).run(read_export(input_path), notes)  # streamed: no entry kept
    else:
        from ledger.application import LedgerApplication
        from ledger.config import Settings
        from ledger.log.checkpoints import CheckpointLog, log_signer
        from ledger.log.tree import TransparencyLog

        settings = Settings.from_env(data_dir=data_dir)
        app = LedgerApplication(settings)
        if not checkpoints_file:
            log = CheckpointLog(TransparencyLog(app), log_signer(settings.log_origin, app.signing_key("log")))
            notes = [c.note for c in log.all()]
            key = key or log.verifier
        trust_anchors = trust_anchors or (settings.data_dir / "trust-anchors.json")
        anchors = TrustAnchors.load(trust_anchors) if trust_anchors.exists() else None
        try:
            report = Auditor(anchors, key).run((entry for _, entry in app.entries()), notes)
        finally:
            app.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
    else:
        for failure in report.failures:
            click.echo(str(failure), err=True)
        click.echo(f"{report.entries} entries, {len(notes)} checkpoints: "
                   + ("every check holds" if report.ok else f"{len(report.failures)} FAILURES"))
    if not report.ok:
        sys.exit(3)


def _entries(input_path: Path | None, data_dir: Path | None) -> list[bytes]:
    """Entries of an export file, or of the live store of a data directory."""
    from ledger.verify import read_export

    if input_path is not None:
        return list(read_export(input_path))
    from ledger.application import LedgerApplication
    from ledger.config import Settings

    app = LedgerApplication(Settings.from_env(data_dir=data_dir))
    entries = [entry for _, entry in app.entries()]
    app.close()
    return entries


@audit.command("reconcile")
@click.option("--statement", "statement_path", type=click.Path(exists=True, path_type=Path), required=True,
              help="The custodian's bank statement (CSV: date,reference,direction,amount_fen,counterparty).")
@click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), default=None)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--window-days", type=int, default=3, show_default=True, help="Allowed booking delay.")
@click.option("--json", "as_json", is_flag=True)
def reconcile_command(statement_path: Path, input_path: Path | None, data_dir: Path | None, window_days: int,
                      as_json: bool) -> None:
    """Match the custodian's statement against the ledger's fund movements; report every discrepancy."""
    from audit.reconcile import read_statement, reconcile

    try:
        statement = read_statement(statement_path.read_text())
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    result = reconcile(_entries(input_path, data_dir), statement, window_days)
    click.echo(json.dumps(result.to_json(), sort_keys=True) if as_json else result.render())
    if not result.ok:
        sys.exit(3)


@audit.command("monitor")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--state", "state", type=click.Path(path_type=Path), required=True,
              help="The monitor's own state file (the last checkpoint it accepted).")
@click.option("--evidence", type=click.Path(path_type=Path), default=None)
@click.option("--log-key", default=None, help="The log's verifier key (default: the data directory's log key).")
@click.option("--follow", is_flag=True, help="Keep watching.")
@click.option("--interval", type=float, default=60.0, show_default=True, help="Seconds between passes.")
def monitor_command(data_dir: Path | None, state: Path, evidence: Path | None, log_key: str | None, follow: bool,
                    interval: float) -> None:
    """Follow the published checkpoints; verify each is consistent with the last; keep evidence of a fork."""
    import time

    from audit.monitor import monitor_once
    from ledger.application import LedgerApplication
    from ledger.config import Settings
    from ledger.log.checkpoints import CheckpointLog, log_signer
    from ledger.log.tree import TransparencyLog
    from ledger.log.witness import CheckpointFollower

    settings = Settings.from_env(data_dir=data_dir)
    app = LedgerApplication(settings)
    log = CheckpointLog(TransparencyLog(app), log_signer(settings.log_origin, app.signing_key("log")))
    key = Verifier.parse(log_key) if log_key else log.verifier
    follower = CheckpointFollower(state, evidence or state.with_suffix(".evidence.json"), "monitor")
    while True:
        run = monitor_once(follower, log, key)
        for size in run.accepted:
            click.echo(f"checkpoint {size}: consistent")
        if run.problem:
            click.echo(f"error: {run.problem}", err=True)
            sys.exit(3)
        if not follow:
            return
        time.sleep(interval)


def _read_models(data_dir: Path | None) -> tuple[object, object]:
    from ledger.application import LedgerApplication
    from ledger.config import Settings

    app = LedgerApplication(Settings.from_env(data_dir=data_dir))
    return app, app.read_models()


@audit.command("query")
@click.argument("what", type=click.Choice(["cases", "periods", "refunds"]))
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--plan", default=None)
@click.option("--from", "since", default="", help="YYYY-MM-DD (filing date for cases, notice day for periods).")
@click.option("--to", "until", default="9999", help="YYYY-MM-DD, exclusive.")
@click.option("--category", type=click.Choice(["illness", "accident"]), default=None)
@click.option("--reason", default=None, help="A rejection reason.")
@click.option("--jury", type=click.Choice(["approve", "reject", "no_quorum"]), default=None)
@click.option("--status", type=click.Choice(["outstanding", "paid", "overdue"]), default=None,
              help="Refunds (wind-down status).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json")
def query_command(what: str, data_dir: Path | None, plan: str | None, since: str, until: str, category: str | None,
                  reason: str | None, jury: str | None, status: str | None, fmt: str) -> None:
    """Regulator queries over the read models; members appear only as masked pseudonyms."""
    from datetime import UTC, datetime

    from audit.report import query_cases, query_periods, query_refunds, to_csv
    from ledger.application import LedgerApplication
    from ledger.envelope import format_at
    from ledger.projections import ReadModels

    app, models = _read_models(data_dir)
    assert isinstance(app, LedgerApplication) and isinstance(models, ReadModels)
    if what == "cases":
        rows = query_cases(models, plan, since, until, category, reason, jury)
    elif what == "periods":
        rows = query_periods(models, plan, since, until)
    else:
        rows = query_refunds(models, plan, format_at(datetime.now(UTC)), status)
    app.close()
    click.echo(to_csv(rows) if fmt == "csv" else json.dumps(rows, ensure_ascii=False, sort_keys=True), nl=fmt == "json")


@audit.command("report")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None)
@click.option("--from", "since", required=True, help="YYYY-MM-DD")
@click.option("--to", "until", required=True, help="YYYY-MM-DD, exclusive")
@click.option("--key", "key", default="regulator", show_default=True, help="The regulator's key in the key directory.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the report document.")
def report_command(data_dir: Path | None, since: str, until: str, key: str, out: Path) -> None:
    """Publish a signed regulator report over a date range: the document is written, its hash goes on the log."""
    from ledger.aggregates.base import DomainRuleError
    from ledger.application import LedgerApplication, SigningKeyMissingError
    from ledger.canonical import canonical_bytes
    from ledger.config import Settings
    from schemas.commands.report import PublishReport

    app = LedgerApplication(Settings.from_env(data_dir=data_dir))
    try:
        result = app.execute(PublishReport(command_id=f"report-{since}-{until}", since=since, until=until),
                             sign_as=key)
    except (DomainRuleError, SigningKeyMissingError, ValueError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    finally:
        app.close()
    out.write_bytes(canonical_bytes(result["document"]) + b"\n")
    click.echo(f"report {result['report']}: sha256 {result['document_hash']}")


@audit.command("verify-bundle")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--log-key", required=True, help="The log's verifier key (name+hash+base64).")
@click.option("--witness-key", "witness_keys", multiple=True, help="A witness's verifier key; repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the statement as JSON.")
def verify_bundle_command(file: Path, log_key: str, witness_keys: tuple[str, ...], as_json: bool) -> None:
    """Verify a member's proof bundle with no network and no database, then print their statement."""
    try:
        statement = verify_bundle(load_bundle(file.read_text()), Verifier.parse(log_key),
                                  [Verifier.parse(k) for k in witness_keys])
    except (BundleError, NoteError, ValueError, KeyError) as error:
        click.echo(f"error: bundle does not verify: {error}", err=True)
        sys.exit(3)
    click.echo(json.dumps(vars(statement), sort_keys=True) if as_json else statement.render())
