"""Witnessing on the command line: a custodian or regulator, in its own directory with its own key and state,
checks the operator's latest checkpoint against the last one it cosigned and cosigns it (`witness cosign`); the
operator stores the cosignature (`log checkpoint add-cosignature`). Only public material of the ledger is read.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ledger.cli.base import check_output_path, context, emit, json_option, write_file
from ledger.cli.log import reader
from ledger.errors import InputError, VerificationError
from ledger.keys import KeyDirectory, SigningKey
from ledger.log.note import Signer
from ledger.log.witness import ForkError, Witness, WitnessRefusedError, witness_name
from ledger.public import accepted_checkpoints
from ledger.rules import Rule

WITNESS_ROLES = ("custodian", "regulator")
"""Whose keys witness: never the operator's (its own checkpoints), nor a member's."""


def witness_key() -> SigningKey:
    """This party's witness key: `--key NAME`, else its one custodian or regulator key; never an operator's."""
    ctx = context()
    directory = KeyDirectory(ctx.settings.key_dir, ctx.settings.key_passphrase)
    if ctx.key is not None:
        key = directory.load(ctx.key)
    else:
        candidates = [n for n in directory.names() if directory.public_facts(n)["role"] in WITNESS_ROLES]
        if len(candidates) != 1:
            raise InputError("key", Rule.WITNESS_KEY_MUST_BE_A_CUSTODIANS_OR_REGULATORS,
                             f"found {len(candidates)} in {directory.path}; name one with --key")
        key = directory.load(candidates[0])
    if key.role not in WITNESS_ROLES:
        raise InputError("key", Rule.WITNESS_KEY_MUST_BE_A_CUSTODIANS_OR_REGULATORS, f"{key.name} is a {key.role} key")
    return key


def witness(state: Path | None) -> Witness:
    """This party's witness: its key under its witness name, its own state file and evidence file."""
    ctx = context()
    key = witness_key()
    anchors = ctx.anchors()
    origin = anchors.log_origin if anchors and anchors.log_origin else ctx.settings.log_origin
    state_path = state or ctx.settings.data_dir / "witness-state.json"
    if state_path.exists():
        try:
            json.loads(state_path.read_text())["checkpoint"]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError("state", Rule.STATE_FILE_MUST_BE_VALID, str(state_path)) from None
    return Witness(Signer(witness_name(key.name, origin), key.private_key), state_path,
                   state_path.with_name("witness-evidence.json"))


@click.group("witness")
def witness_group() -> None:
    """Cosign the operator's checkpoints as a custodian or regulator (its own key, its own state)."""


@witness_group.command("key")
def key_command() -> None:
    """This witness's cosignature verifier key (C2SP tlog-cosignature, type 0x04)."""
    click.echo(witness(None).verifier.encode())


@witness_group.command("show")
@click.option("--state", type=click.Path(path_type=Path), default=None, help="Default: DATA_DIR/witness-state.json.")
def show(state: Path | None) -> None:
    """The last checkpoint this witness cosigned."""
    notes = accepted_checkpoints(context().settings.data_dir) if state is None else [
        json.loads(state.read_text())["checkpoint"]] if state.exists() else []
    if not notes:
        raise InputError("state", Rule.STATE_FILE_MUST_BE_VALID, "this witness has cosigned nothing yet")
    click.echo(notes[-1], nl=False)


@witness_group.command("cosign")
@click.option("--state", type=click.Path(path_type=Path), default=None,
              help="The witness's own state (default: DATA_DIR/witness-state.json).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the cosigned note here (for `log checkpoint add-cosignature`); default: stdout.")
@json_option
def cosign(state: Path | None, out: Path | None) -> None:
    """Verify the latest published checkpoint (the log's signature, a consistency proof from the last one this
    witness cosigned) and cosign it; on a fork, refuse and keep the evidence (exit 3)."""
    check_output_path("out", out)
    checkpoints = reader()
    latest = checkpoints.latest()
    if latest is None:
        raise InputError("checkpoint", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED, "nothing to cosign")
    party = witness(state)
    try:
        cosigned = party.cosign(latest.note, checkpoints.verifier, checkpoints.log.consistency_proof,
                                int(context().now().timestamp()))
    except (ForkError, WitnessRefusedError) as error:
        raise VerificationError(str(error)) from None
    if out is not None:
        write_file("out", out, cosigned.encode())
    emit({"size": latest.size, "cosigned": cosigned}, cosigned.rstrip("\n"))
