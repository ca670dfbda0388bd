"""Command line of the transparency log: `log`, `checkpoint`, `witness` and `proof` groups."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import click

from ledger.cli_context import cli_context
from ledger.log.bundle import build_bundle, upgrade_bundle
from ledger.log.checkpoints import CheckpointLog, InconsistentLogError, RevokedLogKeyError, log_signer
from ledger.log.note import Signer
from ledger.log.tree import TransparencyLog
from ledger.log.witness import ForkError, Witness, WitnessRefusedError


def open_checkpoints() -> CheckpointLog:
    """The checkpoint log of the configured ledger."""
    app = cli_context().app()
    key = app.signing_key("log")
    return CheckpointLog(TransparencyLog(app), log_signer(app.settings.log_origin, key),
                         lambda moment: app.keyring().key_valid_for(key.key_id, "operator", moment))


def witness_name(key: str) -> str:
    """The name a witness signs under."""
    return f"{key}.{cli_context().settings.log_origin}".replace("/", ".")


def now() -> datetime:
    """The current instant (the ledger's clock)."""
    return cli_context().app().clock.now().astimezone(UTC)


@click.group("checkpoint", invoke_without_command=True)
@click.option("--if-due", is_flag=True, help="Publish only when the last checkpoint is older than --max-age or "
              "--max-entries behind.")
@click.option("--max-age", type=float, default=300.0, show_default=True, help="Seconds.")
@click.option("--max-entries", type=int, default=10_000, show_default=True)
@click.pass_context
def checkpoint_group(ctx: click.Context, if_due: bool, max_age: float, max_entries: int) -> None:
    """Integrate pending entries, publish a checkpoint if the tree grew, print the latest with its cosignatures."""
    if ctx.invoked_subcommand is not None:
        return
    checkpoints = open_checkpoints()
    try:
        if if_due:
            checkpoints.publish_if_due(now(), max_age, max_entries)
        else:
            checkpoints.publish(now())
    except (InconsistentLogError, RevokedLogKeyError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(3)
    latest = checkpoints.latest()
    if latest is not None:
        click.echo(latest.note, nl=False)


@checkpoint_group.command("show")
@click.option("--size", type=int, default=None)
def show(size: int | None) -> None:
    """A published checkpoint with its cosignatures (default: the latest)."""
    checkpoints = open_checkpoints()
    stored = checkpoints.latest() if size is None else checkpoints.get(size)
    if stored is None:
        click.echo("error: size: no such checkpoint", err=True)
        sys.exit(2)
    click.echo(stored.note, nl=False)


@checkpoint_group.command("list")
def list_checkpoints() -> None:
    """Every published checkpoint: size, time, number of signatures."""
    for stored in open_checkpoints().all():
        click.echo(f"{stored.size}\t{stored.published_at}\t{stored.note.count(chr(0x2014))} signatures")


@click.command("log-key")
def log_key() -> None:
    """The log's verifier key (name+hash+base64): give it to anyone who checks checkpoints."""
    click.echo(open_checkpoints().verifier.encode())


@click.command("entry")
@click.option("--index", type=int, required=True)
def entry(index: int) -> None:
    """The raw entry at a log index, as stored (the JCS bytes of the signed envelope)."""
    log = open_checkpoints().log
    log.integrate()
    for _, raw in log.entries(index):
        sys.stdout.buffer.write(raw + b"\n")
        sys.stdout.buffer.flush()
        return
    click.echo(f"error: index: must be below the log size ({log.size()})", err=True)
    sys.exit(2)


@click.group("witness")
def witness_group() -> None:
    """Cosign checkpoints as a custodian or regulator."""


@witness_group.command("key")
@click.option("--key", "key_name", required=True, help="The witness's key in the key directory.")
def witness_key(key_name: str) -> None:
    """The witness's cosignature verifier key."""
    signer = Signer(witness_name(key_name), cli_context().app().signing_key(key_name).private_key)
    click.echo(signer.verifier(0x04).encode())


@witness_group.command("show")
@click.option("--state", "state", type=click.Path(path_type=Path), required=True)
def witness_show(state: Path) -> None:
    """The last checkpoint this witness cosigned (from its own state file)."""
    if not state.exists():
        click.echo("error: state: this witness has cosigned nothing yet", err=True)
        sys.exit(2)
    click.echo(json.loads(state.read_text())["checkpoint"], nl=False)


@witness_group.command("cosign")
@click.option("--key", "key_name", required=True, help="The witness's key in the key directory (custodian, ...).")
@click.option("--state", "state", type=click.Path(path_type=Path), required=True,
              help="The witness's own state file (last checkpoint cosigned).")
@click.option("--evidence", type=click.Path(path_type=Path), default=None,
              help="Where to write fork evidence (default: beside the state file).")
def cosign(key_name: str, state: Path, evidence: Path | None) -> None:
    """Verify the latest checkpoint and its consistency with the last one cosigned, then cosign it."""
    checkpoints = open_checkpoints()
    latest = checkpoints.latest()
    if latest is None:
        click.echo("error: no checkpoint has been published", err=True)
        sys.exit(2)
    witness = Witness(Signer(witness_name(key_name), cli_context().app().signing_key(key_name).private_key), state,
                      evidence or state.with_suffix(".evidence.json"))
    try:
        cosigned = witness.cosign(latest.note, checkpoints.verifier, checkpoints.log.consistency_proof,
                                  int(now().timestamp()))
    except (ForkError, WitnessRefusedError) as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(3)
    click.echo(checkpoints.add_cosignature(latest.size, cosigned, witness.verifier).note, nl=False)


@click.group("proof")
def proof_group() -> None:
    """Offline proof bundles."""


@proof_group.command("inclusion")
@click.option("--index", type=int, required=True)
@click.option("--size", type=int, required=True)
def inclusion(index: int, size: int) -> None:
    """The inclusion proof of entry `index` in the tree of `size` (base64 hashes in RFC 9162 order)."""
    log = open_checkpoints().log
    log.integrate()
    try:
        proof = log.inclusion_proof(index, size)
        leaf = log.leaf_hash(index)
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(json.dumps({"index": index, "size": size, "leaf_hash": base64.b64encode(leaf).decode(),
                           "root": base64.b64encode(log.root(size)).decode(),
                           "proof": [base64.b64encode(p).decode() for p in proof]}))


@proof_group.command("consistency")
@click.option("--old", "old_size", type=int, required=True)
@click.option("--size", type=int, required=True)
def consistency(old_size: int, size: int) -> None:
    """The consistency proof between sizes `old` and `size` (base64 hashes in RFC 9162 order)."""
    log = open_checkpoints().log
    log.integrate()
    try:
        proof = log.consistency_proof(old_size, size)
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    click.echo(json.dumps({"old": old_size, "size": size, "old_root": base64.b64encode(log.root(old_size)).decode(),
                           "root": base64.b64encode(log.root(size)).decode(),
                           "proof": [base64.b64encode(p).decode() for p in proof]}))


@proof_group.command("member")
@click.argument("member")
@click.option("--from", "since", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--to", "until", type=click.DateTime(["%Y-%m-%d"]), default=None)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
def member(member: str, since: datetime | None, until: datetime | None, out: Path | None) -> None:
    """A member's events, each with an inclusion proof, roll proofs, and the latest cosigned checkpoint."""
    try:
        bundle = build_bundle(open_checkpoints(), member, now(), _date(since), _date(until))
    except ValueError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    text = json.dumps(bundle, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)


@proof_group.command("upgrade")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True)
def upgrade(file: Path, out: Path) -> None:
    """Add the latest checkpoint and a consistency proof to an older bundle."""
    out.write_text(json.dumps(upgrade_bundle(json.loads(file.read_text()), open_checkpoints()), indent=1,
                              sort_keys=True, ensure_ascii=False) + "\n")


def _date(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def register(main: click.Group) -> None:
    """Add the log's command groups (and the offline `audit` group) to the main command."""
    from audit.cli import audit

    for group in (checkpoint_group, log_key, entry, witness_group, proof_group, audit):
        main.add_command(group)
