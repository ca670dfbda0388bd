"""Setting up and moving data: `init`, `keys …`, `demo`, `apply`, `export`."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from ledger.anchors import TRUST_ANCHORS_FILE
from ledger.application import SimulatedClock
from ledger.cli.base import (
    check_output_path,
    context,
    emit,
    json_option,
    open_output,
    validation_message,
    write_file,
)
from ledger.cli.commands import render_result
from ledger.errors import EXIT_INPUT, InputError, LedgerError, RetryableError
from ledger.keys import PARTY_ROLES, KeyDirectory
from ledger.rules import Rule
from ledger.service import (
    anchor,
    anchor_witnesses,
    generate_key,
    initialize,
    party_key_directories,
    read_public_key_file,
    register,
)
from ledger.vault import VAULT_KEY_FILE, rotate_vault_key
from schemas.commands import COMMANDS


@click.command("init")
@json_option
def init() -> None:
    """Create the operator's keys (root, operator, log) and the log; write trust-anchors.json (the root key and the
    log's verifier key). Custodians, regulators, investigators and members generate their own keys elsewhere."""
    result = initialize(context().ledger(create=True))
    emit(result, "\n".join([f"initialized {context().settings.data_dir}",
                            f"  root key {result['root_key_id']} (keyring changes only)",
                            f"  operator key {result['operator_key_id']}",
                            f"  log verifier key {result['log_verifier_key']}",
                            f"  trust anchors written to {result['trust_anchors']}"]))


@click.command("migrate")
@json_option
def migrate_command() -> None:
    """Bring the store's schema to this program's version (after an upgrade; `init` does it for a new ledger).
    Processes that open the store never create tables: they refuse a store whose schema is behind."""
    from ledger.bootstrap import require_store
    from ledger.migrations import migrate

    settings = context().settings
    require_store(settings)
    result = migrate(settings)
    emit(result, f"schema at version {result['to']}" + ("" if result["from"] == result["to"]
                                                          else f" (was {result['from']})"))


# -- keys ----------------------------------------------------------------------------------------------------


@click.group("keys")
def keys_group() -> None:
    """Keys: each party generates its own; the operator anchors and registers public keys."""


@keys_group.command("generate")
@click.option("--role", type=click.Choice(PARTY_ROLES), required=True)
@click.option("--member", default=None, help="The member id, for a member's or juror's key.")
@click.option("--name", default=None, help="The key's name in the key directory (default: from the role).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Also write the public key file (to give the operator) here.")
@json_option
def keys_generate(role: str, member: str | None, name: str | None, out: Path | None) -> None:
    """Generate this party's key in its own key directory (`--data-dir`/keys); print its public facts."""
    check_output_path("out", out)
    settings = context().settings
    key = generate_key(KeyDirectory(settings.key_dir, settings.key_passphrase), role, member, name)
    facts = key.public_facts()
    if out is not None:
        write_file("out", out, (json.dumps(facts, indent=2, sort_keys=True) + "\n").encode())
    emit(facts)


@click.group("vault")
def vault_group() -> None:
    """The operator's vault of sealed values (docs/privacy.md)."""


@vault_group.command("rotate-key")
@json_option
def vault_rotate_key() -> None:
    """Replace the secret that wraps the members' data keys: every data key is rewrapped under a new one in one
    transaction, then keys/vault.key is replaced (under LEDGER_KEY_PASSPHRASE when set). Ids and receipts are
    untouched. Stop the operator's other processes first (they hold the old key); an interrupted rotation is
    finished by running this again."""
    ctx = context()
    count = rotate_vault_key(ctx.ledger().app.ledger_recorder, ctx.settings.key_dir, ctx.settings.key_passphrase)
    emit({"rewrapped": count}, f"rewrapped {count} data keys; {ctx.settings.key_dir / VAULT_KEY_FILE} replaced")


@keys_group.command("list")
@json_option
def keys_list() -> None:
    """The keys in this party's key directory (public facts only)."""
    settings = context().settings
    directory = KeyDirectory(settings.key_dir, settings.key_passphrase)
    rows = [directory.public_facts(name) for name in directory.names()]
    emit(rows, "\n".join(f"{r['name']}  {r['role']}  {r['key_id']}" + (f"  member {r['member']}" if r.get("member")
                                                                       else "") for r in rows) or "no keys")


@keys_group.command("show")
@click.argument("name")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the public key file here.")
@json_option
def keys_show(name: str, out: Path | None) -> None:
    """A key's public facts — the public key file a party gives the operator and verifiers."""
    check_output_path("out", out)
    settings = context().settings
    facts = KeyDirectory(settings.key_dir, settings.key_passphrase).public_facts(name)
    if out is not None:
        write_file("out", out, (json.dumps(facts, indent=2, sort_keys=True) + "\n").encode())
    emit(facts)


@keys_group.command("anchor")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="The entry's name in trust-anchors.json (default: the key's role).")
@json_option
def keys_anchor(file: Path, name: str | None) -> None:
    """Add a custodian's or regulator's public key file to this directory's trust anchors (as every verifier of
    the ledger does with the key it was given by that party)."""
    facts = read_public_key_file(file)
    anchors = anchor(context().settings.data_dir, name or facts["role"], facts)
    emit({"anchored": name or facts["role"], "key_id": facts["key_id"], "trust_anchors": sorted(anchors.entries)})


@keys_group.command("anchor-witnesses")
@click.argument("verifier_keys", nargs=-1, required=True)
@click.option("--threshold", type=int, required=True,
              help="How many of these witnesses must cosign a checkpoint for verifiers to trust it.")
@json_option
def keys_anchor_witnesses(verifier_keys: tuple[str, ...], threshold: int) -> None:
    """Set the witness policy in this directory's trust anchors: each witness's cosignature verifier key (as
    `witness key` prints it, given by that witness) and the threshold. The operator's file is what the service
    serves and the pages embed; every verifier sets it in its own copy."""
    anchors = anchor_witnesses(context().settings.data_dir, list(verifier_keys), threshold)
    assert anchors.witness_policy is not None
    keys, required = anchors.witness_policy
    emit({"witnesses": list(keys), "threshold": required, "trust_anchors": sorted(anchors.entries)},
         f"a checkpoint is trusted once {required} of {len(keys)} witnesses cosigned it")


@keys_group.command("fingerprint")
@click.option("--url", default=None, help="The service's base URL: also print the link that pins the anchors.")
@json_option
def keys_fingerprint(url: str | None) -> None:
    """The fingerprint of this directory's trust anchors as a browser pins it (the log's key and the witness
    policy): what a plan publishes out of band, and with --url the member page's link that carries it (for a QR
    code)."""
    anchors = context().anchors()
    if anchors is None:
        raise InputError("trust_anchors", Rule.FILE_MUST_EXIST,
                         f"{context().settings.data_dir / TRUST_ANCHORS_FILE} (run init first, or copy the operator's)")
    fingerprint = anchors.fingerprint()
    link = f"{url.rstrip('/')}/member#anchors={fingerprint}" if url else None
    shown = " ".join(fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4))
    emit({"fingerprint": fingerprint, "link": link}, shown + (f"\n{link}" if link else ""))


@keys_group.command("register")
@click.argument("file", type=click.Path(path_type=Path))
@json_option
def keys_register(file: Path) -> None:
    """The operator registers a party's public key file in the keyring (signed by the root key); a custodian's or
    regulator's key must be in the trust anchors first (`keys anchor`)."""
    ledger = context().ledger()
    result = register(ledger, read_public_key_file(file))
    ledger.read_models()
    emit(result, render_result(result))


# -- the demo ------------------------------------------------------------------------------------------------

DEMO_MARKER = ".mutual-ledger-demo"
"""Written by the demo in each directory it fills: `--replace` removes only directories that carry it."""
DEMO_WRITES = {
    "operator": {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm", "ledger.sqlite3-journal", "keys",
                 TRUST_ANCHORS_FILE, "demo-summary.json", DEMO_MARKER},
    "parties": {"custodian", "investigator", "regulator", "members", DEMO_MARKER},
}
"""What the demo writes in each of its directories; a directory holding anything else is never removed."""


def _clear_demo(directory: Path, kind: str, replace: bool, field_name: str) -> None:
    """Make room for the demo: an empty or missing directory, or — with `--replace` — one an earlier demo wrote."""
    if not directory.exists() or not any(directory.iterdir()):
        return
    if not replace:
        raise InputError(field_name, Rule.DEMO_NEEDS_AN_EMPTY_DIRECTORY,
                         f"{directory} is not empty; give another directory, or --replace to replace an earlier "
                         "demo's data")
    names = {p.name for p in directory.iterdir()}
    if DEMO_MARKER not in names or not names <= DEMO_WRITES[kind]:
        raise InputError(field_name, Rule.DEMO_REPLACES_ONLY_ITS_OWN_DATA,
                         f"{directory} holds data an earlier demo did not write ({', '.join(sorted(names))}); "
                         "nothing was removed")
    shutil.rmtree(directory)


def _mark_demo(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / DEMO_MARKER).write_text("written by `mutual-ledger demo`; `demo --replace` may remove it\n")


@click.command("demo")
@click.option("--members", type=click.IntRange(10, 10_000_000), default=2000, show_default=True)
@click.option("--periods", type=click.IntRange(1, 48), default=3, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=7, show_default=True)
@click.option("--parties", "parties_dir", type=click.Path(path_type=Path), default=None,
              help="Where the other parties keep their own directories (default: DATA_DIR-parties).")
@click.option("--replace", is_flag=True, help="Replace what an earlier demo wrote there (nothing else).")
@click.option("--endings/--no-endings", default=True, show_default=True,
              help="End both plans after the periods: the operator's final periods, the wind-downs, tail claims.")
@json_option
def demo(members: int, periods: int, seed: int, parties_dir: Path | None, replace: bool, endings: bool) -> None:
    """Build a realistic history on a simulated clock: the operator's ledger in --data-dir, and the custodian,
    investigator, regulator and members each in a directory of their own; then summarise its periods."""
    from ledger.bootstrap import bootstrap
    from ledger.demo import DEMO_START, run_demo

    ctx = context()
    settings = ctx.settings
    parties = parties_dir or settings.data_dir.with_name(f"{settings.data_dir.name}-parties")
    if settings.database_url is None:
        _clear_demo(settings.data_dir, "operator", replace, "data_dir")
    _clear_demo(parties, "parties", replace, "parties")
    for directory in (settings.data_dir, parties):
        _mark_demo(directory)
    ledger = bootstrap(settings, clock=SimulatedClock(DEMO_START), create=True,
                       key_directories=party_key_directories(parties, settings.key_passphrase))
    click.get_current_context().call_on_close(ledger.close)
    if ledger.app.recorder.max_notification_id():
        raise InputError("LEDGER_DATABASE_URL", Rule.DEMO_NEEDS_AN_EMPTY_DIRECTORY, "the database holds a ledger")
    summary = run_demo(ledger, members=members, periods=periods, seed=seed, progress=not ctx.as_json,
                       endings=endings)
    summary.parties = str(parties)
    data = summary.to_json()
    (settings.data_dir / "demo-summary.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    emit(data, summary.render())


# -- moving data ---------------------------------------------------------------------------------------------


@click.command("apply")
@click.argument("file", type=click.Path(path_type=Path, allow_dash=True))
@click.option("--keep-going", is_flag=True, help="Continue after a rejected line.")
def apply(file: Path, keep_going: bool) -> None:
    """Apply a file of commands, one JSON object per line ({"command": "...", ...}); report each line as JSON.
    Exit 2 when a line was rejected, 75 when a concurrent writer won (retry from that line)."""
    lines = sys.stdin.buffer if str(file) == "-" else _open(file)
    rejected = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        outcome = _apply_line(number, raw)
        click.echo(json.dumps(outcome, ensure_ascii=False, sort_keys=True))
        if not outcome["ok"]:
            if outcome.get("retry"):
                sys.exit(RetryableError.exit_code)
            rejected += 1
            if not keep_going:
                break
    context().ledger().read_models()
    if rejected:
        sys.exit(EXIT_INPUT)


def _open(file: Path) -> Any:
    if not file.exists():
        raise InputError("file", Rule.FILE_MUST_EXIST, str(file))
    if file.is_dir():
        raise InputError("file", Rule.FILE_MUST_BE_A_READABLE_TEXT_FILE, f"{file} is a directory")
    handle = file.open("rb")
    click.get_current_context().call_on_close(handle.close)
    return handle


def _apply_line(number: int, raw: bytes) -> dict[str, Any]:
    """One line of `apply`: its result, or why it was rejected."""
    try:
        try:
            text = raw.decode("utf-8")
            data = json.loads(text)
        except UnicodeDecodeError:
            raise InputError("line", Rule.LINE_MUST_BE_A_JSON_OBJECT, "not UTF-8") from None
        except (ValueError, RecursionError) as error:
            raise InputError("line", Rule.LINE_MUST_BE_A_JSON_OBJECT, str(error)[:80]) from None
        if not isinstance(data, dict):
            raise InputError("line", Rule.LINE_MUST_BE_A_JSON_OBJECT, type(data).__name__)
        model = COMMANDS.get(str(data.get("command")))
        if model is None:
            raise InputError("command", Rule.COMMAND_MUST_BE_KNOWN, str(data.get("command")))
        return {"line": number, "ok": True, "result": context().ledger().execute(
            model.model_validate_json(text), sign_as=context().key)}
    except ValidationError as error:
        return {"line": number, "ok": False, "error": validation_message(error)}
    except RetryableError as error:
        return {"line": number, "ok": False, "error": str(error), "retry": True}
    except LedgerError as error:
        return {"line": number, "ok": False, "error": str(getattr(error, "error", error))}


@click.command("export")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
def export(out: Path | None) -> None:
    """Every signed envelope in global order, one canonical (JCS) envelope per line: the log's entries."""
    check_output_path("out", out)
    ledger = context().ledger()
    handle = sys.stdout.buffer if out is None else open_output("out", out)
    try:
        for _, entry in ledger.entries():
            handle.write(entry + b"\n")
    finally:
        handle.flush()
        if out is not None:
            handle.close()


def register_commands(main: click.Group) -> None:
    """Add the set-up commands to the main command."""
    for command in (init, migrate_command, keys_group, vault_group, demo, apply, export):
        main.add_command(command)

