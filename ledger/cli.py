"""`mutual-ledger`: the command line of the ledger.

Global options: `--data-dir DIR` (database, keys and trust anchors of the embedded default; `LEDGER_DATA_DIR`,
else `./ledger-data`) and `--key NAME` (sign with that key from the key directory instead of the role's own).
Subcommands: `init`; one subcommand per domain command (generated from the command schemas, each with `--json`);
`apply FILE.jsonl`; `export`; `verify`; `demo`.

Exit status: 0 success; 2 bad input or a broken rule (stderr names the field and the rule); 3 verification
failed; 75 a concurrent writer got there first — nothing was written, retry.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from consumers.cli import register as register_distributed_commands
from ledger.aggregates.base import DomainRuleError
from ledger.application import (
    BatchError,
    CommandIdReusedError,
    ConcurrencyConflictError,
    SigningKeyMissingError,
)
from ledger.cli_context import CliContext, cli_context
from ledger.config import ConfigError, Settings
from ledger.log.cli import register as register_log_commands
from ledger.projections.cli import register as register_read_model_commands
from ledger.service import AlreadyInitializedError, initialize
from schemas.commands import COMMANDS, Command

EXIT_BAD_INPUT = 2
EXIT_VERIFY_FAILED = 3
EXIT_RETRY = 75


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print an error to stderr and exit with `code`."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def validation_message(error: ValidationError) -> str:
    """`field: rule (message)` for each error of a pydantic validation."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'command'}: {e['type']} ({e['msg']})" for e in error.errors()
    )


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn the ledger's errors into messages and exit codes."""
    try:
        yield
    except BatchError as error:
        with reported_errors():
            raise error.error from None
    except DomainRuleError as error:
        fail(str(error))
    except ValidationError as error:
        fail(validation_message(error))
    except CommandIdReusedError as error:
        fail(str(error))
    except ConcurrencyConflictError as error:
        fail(str(error), EXIT_RETRY)
    except (SigningKeyMissingError, AlreadyInitializedError, ConfigError) as error:
        fail(str(error))


def emit(result: dict[str, Any], as_json: bool) -> None:
    """Print a result, as JSON or as `key: value` lines."""
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, sort_keys=True))
        return
    for key, value in result.items():
        if key == "events":
            for event in value:
                click.echo(f"  {event['type']}  {event['stream']}#{event['seq']}")
        else:
            click.echo(f"{key}: {value}")


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Where the embedded default keeps its database, keys and trust anchors.")
@click.option("--key", "key", default=None, help="Sign with this key from the key directory.")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, key: str | None) -> None:
    """An event-sourced, verifiable transparency ledger for mutual-aid health plans."""
    import ledger.handlers  # noqa: F401  (registers every command)

    with reported_errors():
        ctx.obj = CliContext(Settings.from_env(data_dir=data_dir), key)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init(as_json: bool) -> None:
    """Create the keys and the log (the root key registers itself, then the institutional keys)."""
    with reported_errors():
        emit(initialize(cli_context().app()), as_json)


def _is_string_field(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(option.get("type") == "string" or ("enum" in option and all(
        isinstance(v, str) for v in option["enum"])) for option in options)


def _parse_option(value: str, is_string: bool) -> Any:
    if value.startswith("@"):
        value = Path(value[1:]).read_text()
    if is_string:
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def command_from_options(model: type[Command], options: dict[str, str | None]) -> Command:
    """Build and validate a command (in JSON mode, so types stay strict) from its options."""
    properties = model.model_json_schema()["properties"]
    data: dict[str, Any] = {"command": model.NAME}
    for name, value in options.items():
        if value is not None:
            data[name] = _parse_option(value, _is_string_field(properties[name]))
    return model.model_validate_json(json.dumps(data))


def _domain_command(model: type[Command]) -> click.Command:
    """A click subcommand for one domain command, with one option per field."""
    properties = model.model_json_schema()["properties"]
    required = set(model.model_json_schema().get("required", []))

    def run(as_json: bool, **options: str | None) -> None:
        with reported_errors():
            command = command_from_options(model, options)
            context = cli_context()
            emit(context.app().execute(command, sign_as=context.key), as_json)

    params: list[click.Parameter] = [click.Option(["--json", "as_json"], is_flag=True, help="Print JSON.")]
    for name, schema in properties.items():
        if name == "command":
            continue
        params.append(click.Option(
            [f"--{name.replace('_', '-')}", name], required=name in required and name != "command",
            help=schema.get("description") or schema.get("title"),
        ))
    doc = (model.__doc__ or "").strip().splitlines()[0]
    return click.Command(model.NAME.replace("_", "-"), callback=run, params=params,
                         help=f"{doc} Complex values take JSON or @file.json.")


def _register_domain_commands() -> None:
    import ledger.handlers  # noqa: F401  (imports every command module)

    for model in COMMANDS.values():
        main.add_command(_domain_command(model))


@main.command()
@click.argument("file", type=click.File("r"))
@click.option("--keep-going", is_flag=True, help="Continue after a rejected line.")
def apply(file: Any, keep_going: bool) -> None:
    """Apply a file of commands, one JSON object per line ({"command": "...", ...}); report each line."""
    app = cli_context().app()
    rejected = 0
    for number, line in enumerate(file, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            name = str(data.get("command")) if isinstance(data, dict) else repr(data)
            model = COMMANDS.get(name)
            if model is None:
                raise ValueError(f"command: must_name_a_known_command ({name})")
            result: dict[str, Any] = {"line": number, "ok": True,
                                      "result": app.execute(model.model_validate_json(line), sign_as=cli_context().key)}
        except ValidationError as error:
            result = {"line": number, "ok": False, "error": validation_message(error)}
        except (DomainRuleError, CommandIdReusedError, SigningKeyMissingError, ValueError) as error:
            result = {"line": number, "ok": False, "error": str(error)}
        except ConcurrencyConflictError as error:
            click.echo(json.dumps({"line": number, "ok": False, "error": str(error)}))
            sys.exit(EXIT_RETRY)
        click.echo(json.dumps(result, ensure_ascii=False, sort_keys=True))
        if not result["ok"]:
            rejected += 1
            if not keep_going:
                break
    if rejected:
        sys.exit(EXIT_BAD_INPUT)


@main.command()
def export() -> None:
    """Every signed envelope in global order, one canonical (JCS) envelope per line."""
    out = sys.stdout.buffer
    for _, entry in cli_context().app().entries():
        out.write(entry + b"\n")
    out.flush()


@main.command()
@click.option("--input", "input_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="Verify an export file instead of the live store.")
@click.option("--trust-anchors", type=click.Path(exists=True, path_type=Path), default=None,
              help="Public keys given out of band (default: the data directory's trust-anchors.json).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report.")
def verify(input_path: Path | None, trust_anchors: Path | None, as_json: bool) -> None:
    """Check every entry: envelope, schema, chain, keys, signature and role rules (see ledger.verify)."""
    from ledger.service import TRUST_ANCHORS_FILE
    from ledger.verify import TrustAnchors, read_export, verify_entries

    context = cli_context()
    anchors_path = trust_anchors or context.settings.data_dir / TRUST_ANCHORS_FILE
    anchors = TrustAnchors.load(anchors_path) if anchors_path.exists() else None
    if input_path is not None:
        report = verify_entries(read_export(input_path), anchors)
    else:
        report = verify_entries((entry for _, entry in context.app().entries()), anchors)
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
    else:
        for failure in report.failures:
            click.echo(str(failure), err=True)
        click.echo(f"{report.entries} entries: {'all checks hold' if report.ok else 'VERIFICATION FAILED'}"
                   + ("" if anchors else " (no trust anchors given: the root key was taken from the log itself)"))
    if not report.ok:
        sys.exit(EXIT_VERIFY_FAILED)


def _looks_like_a_ledger_data_dir(path: Path) -> bool:
    known = {"ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm", "ledger.sqlite3-journal", "keys",
             "trust-anchors.json", "demo-summary.json"}
    return path.is_dir() and {p.name for p in path.iterdir()} <= known


@main.command()
@click.option("--members", type=click.IntRange(10, 10_000_000), default=2000, show_default=True)
@click.option("--periods", type=click.IntRange(1, 48), default=3, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(members: int, periods: int, seed: int, as_json: bool) -> None:
    """Build a realistic history on a simulated clock in a fresh data directory and summarise its periods."""
    from ledger.application import SimulatedClock
    from ledger.demo import DEMO_START, run_demo

    context = cli_context()
    data_dir = context.settings.data_dir
    if context.settings.database_url is None and data_dir.exists():
        if not _looks_like_a_ledger_data_dir(data_dir):
            fail(f"--data-dir: demo_needs_a_fresh_or_ledger_data_directory ({data_dir} holds other files)")
        shutil.rmtree(data_dir)
    context.clock = SimulatedClock(DEMO_START)
    app = context.app()
    if app.recorder.max_notification_id():
        fail("LEDGER_DATABASE_URL: demo_needs_an_empty_database")
    with reported_errors():
        summary = run_demo(app, members=members, periods=periods, seed=seed, progress=not as_json)
    (data_dir / "demo-summary.json").write_text(json.dumps(summary.to_json(), indent=2, sort_keys=True) + "\n")
    click.echo(json.dumps(summary.to_json(), sort_keys=True) if as_json else summary.render())


_register_domain_commands()
register_log_commands(main)
register_read_model_commands(main)
register_distributed_commands(main)


if __name__ == "__main__":
    main()
