"""The transparency log on the command line: `log integrate`, `log checkpoint publish|add-cosignature|show|list`,
`log entry`, `log proof inclusion|consistency|member|upgrade`, `log key`.

Integration and publication are the operator's explicit steps (and the service's periodic job); everything else
only reads, as anyone with the ledger's public material can: the entries and tiles of the store as integrated so
far, and the checkpoints as published.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import click

from ledger.cli.base import (
    LOG_INDEX,
    check_output_path,
    context,
    emit,
    json_option,
    parse_date,
    parse_id,
    read_json_file,
    read_text_file,
    write_file,
)
from ledger.errors import InputError, VerificationError
from ledger.log.bundle import build_bundle, upgrade_bundle
from ledger.log.checkpoints import CheckpointLog, StoredCheckpoint, cosigners
from ledger.log.note import COSIGNATURE_V1, NoteError, Verifier, split_note
from ledger.log.witness import witness_name
from ledger.reveal import claimant_records
from ledger.rules import Rule
from ledger.sealing import Revealed
from ledger.vault import VAULT_KEY_FILE


def reader() -> CheckpointLog:
    """The published checkpoints and the integrated tree, read-only, with the log's verifier key from this
    directory's trust anchors (or the operator's own log key)."""
    ctx = context()
    anchors = ctx.anchors()
    verifier = Verifier.parse(anchors.log_verifier_key) if anchors and anchors.log_verifier_key else None
    return ctx.public().checkpoints(verifier)


def b64(values: list[bytes]) -> list[str]:
    """Hashes as base64 strings, in order."""
    return [base64.b64encode(value).decode() for value in values]


@click.group("log")
def log_group() -> None:
    """The transparency log: integration, checkpoints, entries, proofs."""


@log_group.command("integrate")
@json_option
def integrate() -> None:
    """Operator: extend the Merkle tree with every stored entry not yet integrated."""
    log = context().ledger().log
    added = log.integrate()
    emit({"integrated": added, "size": log.size()}, f"integrated {added} entries; the tree has {log.size()}")


@log_group.group("checkpoint")
def checkpoint_group() -> None:
    """Signed checkpoints of the tree (C2SP tlog-checkpoint) and their witnesses' cosignatures."""


@checkpoint_group.command("publish")
@click.option("--if-due", is_flag=True, help="Only when the last checkpoint is older than --max-age seconds or "
              "--max-entries behind.")
@click.option("--max-age", type=click.FloatRange(0, 10**9), default=300.0, show_default=True, help="Seconds.")
@click.option("--max-entries", type=click.IntRange(1, LOG_INDEX), default=10_000, show_default=True)
def publish(if_due: bool, max_age: float, max_entries: int) -> None:
    """Operator: integrate, sign a checkpoint if the tree grew, print the latest with its cosignatures."""
    ledger = context().ledger()
    checkpoints = ledger.checkpoints
    now = ledger.clock.now()
    if if_due:
        checkpoints.publish_if_due(now, max_age, max_entries)
    else:
        checkpoints.publish(now)
    latest = checkpoints.latest()
    assert latest is not None
    show_checkpoint(latest, checkpoints)


@checkpoint_group.command("add-cosignature")
@click.argument("file", type=click.Path(path_type=Path))
def add_cosignature(file: Path) -> None:
    """Operator: store a witness's cosignature (the cosigned note `witness cosign --out` wrote) on the checkpoint it
    cosigns, after checking it; a witness's line is stored once."""
    note = read_text_file("file", file)
    checkpoints = context().ledger().checkpoints
    try:
        text, lines = split_note(note)
        size = int(text.split("\n")[1])
        witnesses = [_cosigner(note, line) for line in lines[1:]]
    except (IndexError, ValueError, NoteError, AttributeError) as error:
        raise InputError("file", Rule.COSIGNED_NOTE_MUST_BE_VALID, f"{file}: {error}") from None
    stored = None
    for witness in witnesses:
        stored = checkpoints.add_cosignature(size, note, witness)
    if stored is None:
        raise InputError("file", Rule.COSIGNED_NOTE_MUST_BE_VALID, f"{file} carries no witness's cosignature")
    show_checkpoint(stored, checkpoints)


def show_checkpoint(stored: StoredCheckpoint, checkpoints: CheckpointLog) -> None:
    """A checkpoint as its signed note (the text), or with `--json` its size, note and distinct witnesses."""
    if context().as_json:
        emit({"size": stored.size, "published_at": stored.published_at, "note": stored.note,
              "witnesses": list(cosigners(stored.note, checkpoints.verifier))})
    else:
        click.echo(stored.note, nl=False)


def _cosigner(note: str, line: str) -> Verifier:
    """The verifier of a cosignature line: an anchored custodian's or regulator's key under its witness name."""
    anchors = context().anchors()
    name = line.split(" ")[1]
    if anchors is not None:
        origin = anchors.log_origin or context().settings.log_origin
        for party, facts in anchors.entries.items():
            if facts.get("role") in ("custodian", "regulator") and witness_name(party, origin) == name:
                return Verifier(name, base64.b64decode(facts["public_key"]), COSIGNATURE_V1)
    raise NoteError(f"{name} is not an anchored witness")


@checkpoint_group.command("show")
@click.option("--size", type=click.IntRange(1, LOG_INDEX), default=None, help="Default: the latest.")
def show(size: int | None) -> None:
    """A published checkpoint with its cosignatures."""
    checkpoints = reader()
    stored = checkpoints.latest() if size is None else checkpoints.get(size)
    if stored is None:
        raise InputError("size", Rule.A_CHECKPOINT_MUST_BE_PUBLISHED,
                         "none published yet" if size is None else f"none of size {size}")
    show_checkpoint(stored, checkpoints)


@checkpoint_group.command("list")
@json_option
def list_checkpoints() -> None:
    """Every published checkpoint: size, time, and how many distinct witnesses cosigned it."""
    rows: list[dict[str, Any]] = []
    lines_out = []
    checkpoints = reader()
    for stored in checkpoints.all():
        witnesses = list(cosigners(stored.note, checkpoints.verifier))
        rows.append({"size": stored.size, "published_at": stored.published_at, "witnesses": witnesses})
        lines_out.append(f"{stored.size}\t{stored.published_at}\t{len(witnesses)} witnesses")
    emit(rows, "\n".join(lines_out) or "no checkpoint published")


@log_group.command("entry")
@click.argument("index", type=click.IntRange(0, LOG_INDEX))
def entry(index: int) -> None:
    """The raw entry at a log index (0-based), as stored: the JCS bytes of the signed envelope."""
    log = reader().log
    for _, raw in log.entries(index):
        sys.stdout.buffer.write(raw + b"\n")
        sys.stdout.buffer.flush()
        return
    raise InputError("index", Rule.INDEX_MUST_BE_BELOW_THE_INTEGRATED_SIZE,
                     f"{index}; the log has {log.size()} integrated entries")


@log_group.command("key")
def key() -> None:
    """The log's verifier key (name+hash+base64), from the trust anchors: give it to anyone who checks
    checkpoints."""
    verifier_key = reader().verifier.encode()
    emit({"verifier_key": verifier_key}, verifier_key)


@log_group.group("proof")
def proof_group() -> None:
    """Proofs: inclusion, consistency, and a member's offline bundle."""


@proof_group.command("inclusion")
@click.option("--index", type=click.IntRange(0, LOG_INDEX), required=True)
@click.option("--size", type=click.IntRange(1, LOG_INDEX), required=True)
@json_option
def inclusion(index: int, size: int) -> None:
    """The inclusion proof of entry INDEX in the tree of SIZE (base64 hashes in RFC 9162 order)."""
    log = reader().log
    _check_size(size, log.size())
    if index >= size:
        raise InputError("index", Rule.INDEX_MUST_BE_BELOW_THE_TREE_SIZE, f"{index} >= {size}")
    data = {"index": index, "size": size, "leaf_hash": b64([log.leaf_hash(index)])[0],
            "root": b64([log.root(size)])[0], "proof": b64(log.inclusion_proof(index, size))}
    emit(data, json.dumps(data))


@proof_group.command("consistency")
@click.option("--old", "old_size", type=click.IntRange(1, LOG_INDEX), required=True)
@click.option("--size", type=click.IntRange(1, LOG_INDEX), required=True)
@json_option
def consistency(old_size: int, size: int) -> None:
    """The consistency proof between tree sizes OLD and SIZE (base64 hashes in RFC 9162 order)."""
    log = reader().log
    _check_size(size, log.size())
    if old_size > size:
        raise InputError("old", Rule.OLD_SIZE_MUST_NOT_EXCEED_THE_NEW, f"{old_size} > {size}")
    data = {"old": old_size, "size": size, "old_root": b64([log.root(old_size)])[0], "root": b64([log.root(size)])[0],
            "proof": b64(log.consistency_proof(old_size, size))}
    emit(data, json.dumps(data))


def _check_size(size: int, integrated: int) -> None:
    if size > integrated:
        raise InputError("size", Rule.SIZE_MUST_NOT_EXCEED_THE_INTEGRATED_TREE,
                         f"{size} > {integrated} (the operator integrates with `mutual-ledger log integrate`)")


@proof_group.command("member")
@click.argument("member")
@click.option("--from", "since", default=None, help="YYYY-MM-DD")
@click.option("--to", "until", default=None, help="YYYY-MM-DD, inclusive (notice days)")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
@click.option("--url", default=None, metavar="URL",
              help="Ask the ledger's service at URL, signing with the member's own key (--key, default "
                   "member-MEMBER), and check the bundle with the trust anchors before writing it.")
def member(member: str, since: str | None, until: str | None, out: Path | None, url: str | None) -> None:
    """A member's events, each with an inclusion proof, their roll proofs, and the latest published checkpoint
    with its cosignatures: a bundle `audit verify-bundle` checks offline."""
    check_output_path("out", out)
    start, end = parse_date("from", since), parse_date("to", until)
    if start and end and end < start:
        raise InputError("to", Rule.DATE_RANGE_MUST_NOT_BE_EMPTY, f"{until} is before {since}")
    member_id = parse_id("member", member)
    bundle = (remote_bundle(url, member_id) if url is not None
              else build_bundle(reader(), member_id, start, end, _claimants(member_id)))
    text = json.dumps(bundle, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    if out is None:
        click.echo(text, nl=False)
    else:
        write_file("out", out, text.encode())


def _claimants(member: str) -> list[Revealed]:
    """The member's claimant records when this is the operator's directory (its vault key is here), so that their
    sealed claims are in the bundle; none for a reader without the vault."""
    ctx = context()
    if not (ctx.settings.key_dir / VAULT_KEY_FILE).exists():
        return []
    return claimant_records(ctx.ledger().app, member)


def remote_bundle(url: str, member: str) -> dict[str, Any]:
    """The member's bundle from the service at `url`, signed for with the member's key and verified with the log
    key of the trust anchors (a bundle that does not verify is not written: exit 3)."""
    from audit.bundle import BundleError, verify_bundle
    from audit.remote import RemoteLog
    from ledger.application import member_key_name
    from ledger.keys import KeyDirectory

    ctx = context()
    anchors = ctx.anchors()
    if anchors is None or anchors.log_verifier_key is None:
        raise InputError("trust_anchors", Rule.LOG_VERIFIER_KEY_MUST_BE_KNOWN,
                         f"{ctx.settings.data_dir} holds no trust anchors with the log's verifier key")
    key = KeyDirectory(ctx.settings.key_dir, ctx.settings.key_passphrase).load(
        ctx.key or member_key_name("member", member))
    log = RemoteLog(url)
    try:
        bundle = log.member_bundle(member, key, ctx.now())
    finally:
        log.close()
    try:
        verify_bundle(bundle, Verifier.parse(anchors.log_verifier_key), [])
    except (BundleError, NoteError, ValueError, KeyError, TypeError) as error:
        raise VerificationError(f"the bundle {url} sent does not verify: {error}") from None
    return bundle


@proof_group.command("upgrade")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True)
def upgrade(file: Path, out: Path) -> None:
    """Add the latest checkpoint and the consistency proof from the bundle's checkpoint to an older bundle."""
    check_output_path("out", out)
    bundle = read_json_file("file", file)
    if not isinstance(bundle, dict) or "checkpoint" not in bundle:
        raise InputError("file", Rule.BUNDLE_MUST_BE_VALID, f"{file} is not a proof bundle")
    try:
        upgraded = upgrade_bundle(bundle, reader())
    except (NoteError, ValueError) as error:
        raise InputError("file", Rule.BUNDLE_MUST_BE_VALID, f"{file}: {error}") from None
    write_file("out", out, (json.dumps(upgraded, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode())
