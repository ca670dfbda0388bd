"""The outsiders' tools: `audit verify|verify-bundle|reconcile|query|report|monitor`.

They need public material only: the trust anchors (this directory's `trust-anchors.json`, or `--trust-anchors`),
an export or the ledger read-only (`--ledger`), and the checkpoints this party holds itself (the last one it
accepted as a monitor, the last one it cosigned as a witness, or `--checkpoints FILE`) — `audit verify` checks the
ledger against those, not against what the operator says it published. `audit report` is the one that writes: the
regulator's signed `report.published`, with the regulator's own key.
"""

from __future__ import annotations

import json
import sys
import time
import typing
from pathlib import Path
from typing import Any

import click
import orjson
from eventsourcing.sqlite import SQLiteDatastore

from audit.bundle import BundleError, load_bundle, verify_bundle
from audit.monitor import monitor_once
from audit.reconcile import read_statement, reconcile
from audit.remote import RemoteLog
from audit.report import (
    CASE_FIELDS,
    PERIOD_FIELDS,
    REFUND_FIELDS,
    query_cases,
    query_periods,
    query_refunds,
    to_csv,
)
from audit.verify import Auditor
from ledger.anchors import TrustAnchors
from ledger.canonical import canonical_bytes
from ledger.cli.base import (
    check_output_path,
    choice,
    context,
    date_range,
    emit,
    json_option,
    read_json_file,
    read_text_file,
    write_file,
)
from ledger.cli.commands import execute
from ledger.cli.log import reader
from ledger.cli.refs import plan_ref
from ledger.envelope import format_at
from ledger.errors import InputError, RefusedError, VerificationError
from ledger.log.note import Checkpoint, NoteError, Verifier, split_note
from ledger.log.witness import CheckpointFollower
from ledger.projections import ReadModels
from ledger.projections.sql import SqlStore
from ledger.public import accepted_checkpoints
from ledger.reveal import check_records, parse_records
from ledger.rules import Rule
from ledger.sealing import Revealed
from ledger.verify import read_export
from schemas.commands.report import PublishReport
from schemas.events import RejectionReason

anchors_option = click.option("--trust-anchors", type=click.Path(path_type=Path), default=None,
                              help="Public keys given out of band (default: DATA_DIR/trust-anchors.json).")


def _log_key(text: str | None, anchors: TrustAnchors | None) -> Verifier | None:
    """The log's verifier key: `--log-key`, else the anchors'."""
    chosen = text or (anchors.log_verifier_key if anchors else None)
    if chosen is None:
        return None
    try:
        return Verifier.parse(chosen)
    except NoteError as error:
        raise InputError("log_key", Rule.LOG_VERIFIER_KEY_MUST_BE_VALID, str(error)) from None


log_url_option = click.option("--log-url", default=None, metavar="URL",
                               help="Read the ledger from its public endpoints at URL (the service) instead.")


def remote(url: str) -> RemoteLog:
    """The ledger served at `url`, closed when the command ends."""
    log = RemoteLog(url)
    click.get_current_context().call_on_close(log.close)
    return log


def _input(path: Path | None, log_url: str | None = None) -> Any:
    """The entries: of an export file, of the ledger served at a URL, else of the ledger, read-only."""
    if path is not None and log_url is not None:
        raise InputError("log_url", Rule.INPUT_OR_LOG_URL_NOT_BOTH, "give --input or --log-url")
    if log_url is not None:
        return remote(log_url).entries()
    if path is not None:
        if not path.is_file():
            raise InputError("input", Rule.FILE_MUST_EXIST, str(path))
        return read_export(path)
    return (entry for _, entry in context().public().entries())


@click.group("audit")
def audit_group() -> None:
    """Check the ledger with public material only."""


@audit_group.command("verify")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="An export (JSONL) to audit; default: the ledger (--ledger), read-only.")
@log_url_option
@anchors_option
@click.option("--log-key", default=None, help="The log's verifier key (default: from the trust anchors).")
@click.option("--checkpoints", "checkpoints_file", type=click.Path(path_type=Path), default=None,
              help="A JSON list of signed checkpoint notes you hold (default: the ones in DATA_DIR's monitor and "
                   "witness state).")
@click.option("--revealed", "revealed_file", type=click.Path(path_type=Path), default=None,
              help="Revealed sealed values (`member reveal --out`): re-check the rules that need them (check 13).")
@json_option
def verify(input_path: Path | None, log_url: str | None, trust_anchors: Path | None, log_key: str | None,
           checkpoints_file: Path | None, revealed_file: Path | None) -> None:
    """Re-check everything from the events and public keys alone (the numbered procedure of audit/verify.py),
    against the checkpoints you hold; with --revealed, the rules that need sealed values too."""
    ctx = context()
    anchors = ctx.anchors(trust_anchors)
    key = _log_key(log_key, anchors)
    held = _held_checkpoints(checkpoints_file)
    revealed = _revealed(revealed_file) if revealed_file is not None else None
    report = Auditor(anchors, key, revealed).run(_input(input_path, log_url), held)
    covered = max((Checkpoint.parse(split_note(note)[0]).size for note in held), default=0)
    notes = []
    if anchors is None:
        notes.append("no trust anchors: the root key was taken from the log itself and custodian and regulator "
                     "keys were not checked against keys their owners gave")
    if covered < report.entries:
        notes.append(f"entries {covered}..{report.entries - 1} are covered by no checkpoint you hold: they could "
                     "be rewritten or removed undetected (monitor or witness the log, or give --checkpoints)")
    if report.needs_sealed_values:
        notes.append("checks that needed sealed values were not made (give --revealed): " + ", ".join(
            f"{check} for {count} events" for check, count in sorted(report.needs_sealed_values.items())))
    data = {**report.to_json(), "checkpoints": len(held), "covered_entries": covered, "notes": notes}
    if ctx.as_json:
        emit(data)
    else:
        for failure in report.failures:
            click.echo(str(failure), err=True)
        click.echo(f"{report.entries} entries, {len(held)} checkpoints you hold (covering {covered}): "
                   + ("every check holds" if report.ok else f"{len(report.failures)} FAILURES"))
        for note in notes:
            click.echo(f"note: {note}")
    if not report.ok:
        sys.exit(VerificationError.exit_code)


def _revealed(path: Path) -> list[Revealed]:
    """The records of a revealed file (`member reveal --out`, one or several concatenated as a JSON list)."""
    data = read_json_file("revealed", path)
    try:
        if isinstance(data, list) and all(isinstance(item, dict) and "records" in item for item in data):
            return [record for item in data for record in parse_records(item)]
        return parse_records(data)
    except ValueError as error:
        raise InputError("revealed", Rule.REVEALED_FILE_MUST_HOLD_REVEALED_RECORDS, f"{path}: {error}") from None


@audit_group.command("check-revealed")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="An export (JSONL) holding the events; default: the ledger (--ledger), read-only.")
@json_option
def check_revealed_file(file: Path, input_path: Path | None) -> None:
    """Check revealed sealed values against the commitments on the signed events: each must open its own."""
    records = _revealed(file)
    wanted = {(r.stream, r.seq) for r in records}
    envelopes = {}
    for entry in _input(input_path):
        envelope = orjson.loads(entry)
        if (envelope["stream"], envelope["seq"]) in wanted:
            envelopes[(envelope["stream"], envelope["seq"])] = envelope
    problems = check_records(records, envelopes)
    emit({"records": len(records), "ok": not problems, "problems": problems},
         "\n".join(problems) if problems else f"{len(records)} revealed values open their commitments")
    if problems:
        raise RefusedError("revealed", Rule.REVEALED_RECORD_MUST_OPEN_ITS_COMMITMENT, problems[0])


def _held_checkpoints(path: Path | None) -> list[str]:
    """The checkpoint notes this party holds: a file given, else its monitor's and witness's state."""
    if path is None:
        return accepted_checkpoints(context().settings.data_dir)
    notes = read_json_file("checkpoints", path)
    if not isinstance(notes, list) or not all(isinstance(note, str) for note in notes):
        raise InputError("checkpoints", Rule.CHECKPOINTS_FILE_MUST_LIST_NOTES, str(path))
    return typing.cast(list[str], notes)


@audit_group.command("verify-bundle")
@click.argument("file", type=click.Path(path_type=Path))
@anchors_option
@click.option("--log-key", default=None, help="The log's verifier key (default: from the trust anchors).")
@click.option("--witness-key", "witness_keys", multiple=True, help="A witness's verifier key; repeatable.")
@json_option
def verify_bundle_command(file: Path, trust_anchors: Path | None, log_key: str | None,
                          witness_keys: tuple[str, ...]) -> None:
    """Verify a member's proof bundle with no network and no database, then print their statement."""
    key = _log_key(log_key, context().anchors(trust_anchors))
    if key is None:
        raise InputError("log_key", Rule.LOG_VERIFIER_KEY_MUST_BE_KNOWN, "give --log-key or trust anchors")
    try:
        witnesses = [Verifier.parse(k) for k in witness_keys]
    except NoteError as error:
        raise InputError("witness_key", Rule.LOG_VERIFIER_KEY_MUST_BE_VALID, str(error)) from None
    try:
        bundle = load_bundle(read_text_file("file", file))
    except (ValueError, RecursionError, BundleError) as error:
        raise InputError("file", Rule.BUNDLE_MUST_BE_VALID, f"{file}: {error}") from None
    for required in ("format", "member", "checkpoint", "events", "rolls"):
        if required not in bundle:
            raise InputError("file", Rule.BUNDLE_MUST_BE_VALID, f"{file} lacks {required!r}")
    try:
        statement = verify_bundle(bundle, key, witnesses)
    except (BundleError, NoteError, ValueError, KeyError, TypeError) as error:
        raise VerificationError(f"bundle does not verify: {error}") from None
    emit(vars(statement), statement.render())


@audit_group.command("reconcile")
@click.option("--statement", "statement_path", type=click.Path(path_type=Path), required=True,
              help="The custodian's bank statement (CSV: date,reference,direction,amount_fen,counterparty).")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="An export (JSONL); default: the ledger (--ledger), read-only.")
@click.option("--window-days", type=click.IntRange(0, 366), default=3, show_default=True,
              help="Allowed booking delay.")
@json_option
def reconcile_command(statement_path: Path, input_path: Path | None, window_days: int) -> None:
    """Match the custodian's statement against the ledger's fund movements; report every discrepancy (exit 3 when
    there is one)."""
    try:
        statement = read_statement(read_text_file("statement", statement_path))
    except ValueError as error:
        raise InputError("statement", Rule.STATEMENT_MUST_FOLLOW_THE_FORMAT, str(error)) from None
    result = reconcile(list(_input(input_path)), statement, window_days)
    emit(result.to_json(), result.render())
    if not result.ok:
        sys.exit(VerificationError.exit_code)


@audit_group.command("monitor")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="The monitor's own state (default: DATA_DIR/monitor-state.json).")
@log_url_option
@anchors_option
@click.option("--log-key", default=None, help="The log's verifier key (default: from the trust anchors).")
@click.option("--follow", is_flag=True, help="Keep watching.")
@click.option("--interval", type=click.FloatRange(0.1, 86_400), default=60.0, show_default=True,
              help="Seconds between passes.")
def monitor_command(state: Path | None, log_url: str | None, trust_anchors: Path | None, log_key: str | None,
                    follow: bool, interval: float) -> None:
    """Follow the published checkpoints; verify each is consistent with the last one accepted (a second
    checkpoint of a size already seen with another root is a fork); keep the evidence and exit 3 on a fork."""
    key = _log_key(log_key, context().anchors(trust_anchors))
    if key is None:
        raise InputError("log_key", Rule.LOG_VERIFIER_KEY_MUST_BE_KNOWN, "give --log-key or trust anchors")
    state_path = state or context().settings.data_dir / "monitor-state.json"
    if state_path.exists():
        _state_note(state_path)
    follower = CheckpointFollower(state_path, state_path.with_name("monitor-evidence.json"), "monitor")
    source = remote(log_url) if log_url is not None else reader()
    while True:
        run = monitor_once(follower, source, key)
        for size in run.accepted:
            click.echo(f"checkpoint {size}: consistent")
        if run.problem:
            raise VerificationError(run.problem)
        if not follow:
            return
        time.sleep(interval)


def _state_note(path: Path) -> str:
    """The checkpoint note of a monitor's or witness's state file, or an input error naming it."""
    try:
        return str(json.loads(path.read_text())["checkpoint"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError("state", Rule.STATE_FILE_MUST_BE_VALID, str(path)) from None


def own_views() -> ReadModels:
    """This party's own read models (DATA_DIR/views.sqlite3), caught up from the ledger's events: regulators
    query what they built themselves, not the operator's views."""
    ctx = context()
    ctx.settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ctx.public()
    models = ReadModels.open(store, SqlStore(SQLiteDatastore(str(ctx.settings.data_dir / "views.sqlite3"))))
    models.catch_up()
    return models


@audit_group.command("query")
@click.argument("what", type=click.Choice(["cases", "periods", "refunds"]))
@click.option("--plan", default=None, help="A plan's id or name.")
@click.option("--from", "since", default=None, help="YYYY-MM-DD (filing date for cases, notice day for periods).")
@click.option("--to", "until", default=None, help="YYYY-MM-DD, exclusive.")
@click.option("--category", type=click.Choice(["illness", "accident"]), default=None)
@click.option("--reason", default=None, help="A rejection reason.")
@click.option("--jury", type=click.Choice(["approve", "reject", "no_quorum"]), default=None)
@click.option("--status", type=click.Choice(["outstanding", "paid", "overdue"]), default=None,
              help="Refunds (wind-down status).")
@click.option("--format", "output_format", type=click.Choice(["json", "csv"]), default=None,
              help="Default: text, or JSON with --json.")
def query_command(what: str, plan: str | None, since: str | None, until: str | None, category: str | None,
                  reason: str | None, jury: str | None, status: str | None, output_format: str | None) -> None:
    """Regulator queries over your own views of the ledger's events; members appear only as masked pseudonyms."""
    start, end = date_range(since, until)
    choice("reason", reason, typing.get_args(RejectionReason))
    models = own_views()
    plan_id = plan_ref(models.periods, "plan", plan) if plan else None
    low, high = start.isoformat() if start else "", end.isoformat() if end else "9999"
    if what == "cases":
        rows = query_cases(models, plan_id, low, high, category, reason, jury)
    elif what == "periods":
        rows = query_periods(models, plan_id, low, high)
    else:
        rows = query_refunds(models, plan_id, format_at(context().now()), status)
    if output_format == "csv":
        click.echo(to_csv(rows, _columns(what)), nl=False)
    elif output_format == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, sort_keys=True))
    else:
        emit(rows)


def _columns(what: str) -> list[str]:
    return list({"cases": CASE_FIELDS, "periods": PERIOD_FIELDS, "refunds": REFUND_FIELDS}[what])


@audit_group.command("report")
@click.option("--from", "since", required=True, help="YYYY-MM-DD")
@click.option("--to", "until", required=True, help="YYYY-MM-DD, exclusive")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Where to write the report document.")
@click.option("--command-id", default=None, help="Idempotency key (default: derived from the range).")
@json_option
def report_command(since: str, until: str, out: Path, command_id: str | None) -> None:
    """The regulator publishes a signed report over a date range: the document is written to --out, its hash goes
    on the log in a `report.published` signed by the regulator's own key."""
    start, end = date_range(since, until)
    if start is None or end is None:
        raise InputError("from", Rule.MUST_BE_A_DATE, "both --from and --to")
    check_output_path("out", out)
    result = execute(PublishReport(command_id=command_id or f"report-{start}-{end}", since=start.isoformat(),
                                   until=end.isoformat()))
    write_file("out", out, canonical_bytes(result["document"]) + b"\n")
    emit({k: v for k, v in result.items() if k != "document"},
         f"report {result['report']}: sha256 {result['document_hash']} written to {out}")
