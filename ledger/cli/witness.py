"""Witnessing on the command line: a custodian or regulator, in its own directory with its own key and state
(`witness.sqlite3`, `ledger.log.witness`), checks the operator's latest checkpoint against every one it cosigned and
cosigns it once (`witness cosign`, reading the ledger's public material); the operator stores the cosignature
(`log checkpoint add-cosignature`). `witness serve` answers C2SP tlog-witness `add-checkpoint` requests instead.
"""

from __future__ import annotations

import base64
from pathlib import Path

import click

from ledger.cli.base import check_output_path, context, emit, json_option, write_file
from ledger.cli.log import reader
from ledger.errors import InputError
from ledger.keys import KeyDirectory, SigningKey
from ledger.log.note import Verifier
from ledger.log.witness import WITNESS_ROLES, Witness, open_witness, witness_name
from ledger.rules import Rule


def witness_key() -> SigningKey:
    """This party's witness key: `--key NAME`, else its one custodian or regulator key; never an operator's."""
    ctx = context()
    directory = KeyDirectory(ctx.settings.key_dir, ctx.settings.key_passphrase)
    if ctx.key is not None:
        return directory.load(ctx.key)
    candidates = [n for n in directory.names() if directory.public_facts(n)["role"] in WITNESS_ROLES]
    if len(candidates) != 1:
        raise InputError("key", Rule.WITNESS_KEY_MUST_BE_A_CUSTODIANS_OR_REGULATORS,
                         f"found {len(candidates)} in {directory.path}; name one with --key")
    return directory.load(candidates[0])


def log_verifier() -> Verifier:
    """The log's verifier key, from this party's trust anchors."""
    anchors = context().anchors()
    if anchors is None or anchors.log_verifier_key is None:
        raise InputError("trust_anchors", Rule.LOG_VERIFIER_KEY_MUST_BE_KNOWN,
                         f"{context().settings.data_dir} has no trust anchors with the log's verifier key")
    return Verifier.parse(anchors.log_verifier_key)


def witness() -> Witness:
    """This party's witness: its key under its witness name, its own state in its own directory, trusting the
    anchored log key, and refusing the operator's keys."""
    ctx = context()
    anchors = ctx.anchors()
    key = witness_key()
    origin = anchors.log_origin if anchors and anchors.log_origin else ctx.settings.log_origin
    operator_keys = [base64.b64decode(anchors.root_public_key)] if anchors else []
    return open_witness(ctx.settings.data_dir, key, witness_name(key.name, origin), [log_verifier()], operator_keys)


@click.group("witness")
def witness_group() -> None:
    """Cosign the operator's checkpoints as a custodian or regulator (its own key, its own state)."""


@witness_group.command("key")
def key_command() -> None:
    """This witness's cosignature verifier key (C2SP tlog-cosignature, type 0x04)."""
    click.echo(witness().verifier.encode())


@witness_group.command("show")
@json_option
def show() -> None:
    """The latest checkpoint this witness cosigned, for each log it follows, with its cosignature."""
    latest = witness().latest_all()
    if not latest:
        raise InputError("state", Rule.STATE_FILE_MUST_BE_VALID, "this witness has cosigned nothing yet")
    emit([{"origin": c.origin, "size": c.size, "cosigned": c.cosigned_note} for c in latest],
         "".join(c.cosigned_note for c in latest).rstrip("\n"))


@witness_group.command("cosign")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the cosigned note here (for `log checkpoint add-cosignature`); default: stdout.")
@json_option
def cosign(out: Path | None) -> None:
    """Verify the latest published checkpoint (the log's signature, a consistency proof from the last one this
    witness cosigned) and cosign it, at most once; on a fork, refuse and keep the evidence (exit 3)."""
    check_output_path("out", out)
    party = witness()
    checkpoints = reader()
    latest = checkpoints.latest()
    if latest is None:
        raise InputError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED, "nothing to cosign")
    cosigned = party.cosign(latest.note, checkpoints.verifier, checkpoints.log.consistency_proof,
                            int(context().now().timestamp()))
    if out is not None:
        write_file("out", out, cosigned.encode())
    emit({"size": latest.size, "cosigned": cosigned}, cosigned.rstrip("\n"))


@witness_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
def serve(host: str, port: int) -> None:
    """Answer C2SP tlog-witness `POST /add-checkpoint` requests with this party's key and state until stopped."""
    from ledger.api.witness import serve_witness

    serve_witness(witness(), host, port)
