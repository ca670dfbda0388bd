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
