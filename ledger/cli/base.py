"""What every subcommand shares: the context built from the global options, output in two forms, the parsing of
dates and references, and the one place where errors become messages and exit statuses.

Global options, honoured by every subcommand: `--data-dir DIR` (this party's own directory: its keys, its trust
anchors, its state; for the operator also the embedded database), `--ledger DIR|URL` (the ledger to work on when it
is not in the data directory: the operator's data directory or a postgresql:// URL), `--key NAME` (sign with that
key of the key directory), `--json` (machine-readable output; also accepted after any subcommand).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from uuid import UUID

import click
from pydantic import ValidationError

from ledger.anchors import TRUST_ANCHORS_FILE, TrustAnchors
from ledger.application import Clock, SystemClock
from ledger.bootstrap import Ledger, bootstrap
from ledger.config import Settings
from ledger.errors import EXIT_INPUT, InputError, LedgerError
from ledger.keys import check_key_name
from ledger.public import PublicStore
from ledger.rules import Rule

F = TypeVar("F", bound=Callable[..., Any])
LOG_INDEX = 2**62
"""Above any log size or index the store can hold (both backends keep 64-bit integers)."""
EXIT_DEFECT = 70
"""An error the ledger did not foresee (a defect): reported in one line, never as a traceback."""


@dataclass
class Context:
    """The state of one `mutual-ledger` invocation: the global options, and the settings they give."""

    data_dir: Path | None = None
    location: str | None = None
    key: str | None = None
    as_json: bool = False
    clock: Clock | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _ledger: Ledger | None = field(default=None, repr=False)
    _public: PublicStore | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        """The environment's settings with `--data-dir` and `--ledger` applied (read at the first use)."""
        if self._settings is None:
            self._settings = Settings.from_env(data_dir=self.data_dir).on_ledger(self.location)
        return self._settings

    def ledger(self, create: bool = False) -> Ledger:
        """The operator's ledger in the data directory (created only by `init` and `demo`)."""
        if self._ledger is None:
            self._ledger = bootstrap(self.settings, clock=self.clock, create=create)
            click.get_current_context().call_on_close(self._ledger.close)
        return self._ledger

    def public(self) -> PublicStore:
        """The ledger opened read-only, as outsiders read it: `--ledger DIR|URL`, else `LEDGER_DATABASE_URL`, else
        the data directory's own store."""
        if self._public is None:
            self._public = PublicStore(self.settings)
            click.get_current_context().call_on_close(self._public.close)
        return self._public

    def now(self) -> datetime:
        """The current instant (the simulated clock of a test, else the system's), in UTC."""
        return (self.clock or SystemClock()).now().astimezone(UTC)

    def anchors(self, path: Path | None = None) -> TrustAnchors | None:
        """The trust anchors given (`--trust-anchors`), else this directory's own, else None."""
        chosen = path or self.settings.data_dir / TRUST_ANCHORS_FILE
        if path is None and not chosen.exists():
            return None
        return TrustAnchors.load(chosen)


def context() -> Context:
    """The Context of the running command."""
    found = click.get_current_context().find_object(Context)
    assert found is not None, "run through the mutual-ledger command"
    return found


def _set_data_dir(ctx: click.Context, _: click.Parameter, value: Path | None) -> None:
    if value is not None:
        context().data_dir = value


def _set_location(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        context().location = value


def _set_key(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        context().key = check_key_name(value)


def _set_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        context().as_json = True


def global_options() -> list[click.Option]:
    """`--data-dir`, `--ledger`, `--key` and `--json`: given before the subcommand or after it, the same."""
    return [
        click.Option(["--data-dir"], type=click.Path(path_type=Path, file_okay=False), default=None,
                     expose_value=False, callback=_set_data_dir,
                     help="This party's directory: keys, trust anchors, state; the operator's also holds the "
                          "embedded database (default: LEDGER_DATA_DIR, else ./ledger-data)."),
        click.Option(["--ledger"], default=None, metavar="DIR|URL", expose_value=False, callback=_set_location,
                     help="The ledger to work on when it is not in --data-dir: the operator's data directory or a "
                          "postgresql:// URL."),
        click.Option(["--key"], default=None, expose_value=False, callback=_set_key,
                     help="Sign with this key of the key directory."),
        click.Option(["--json"], is_flag=True, expose_value=False, callback=_set_json,
                     help="Print JSON (machine-readable) instead of text."),
    ]


def json_option(command: F) -> F:
    """A no-op kept for readability at the definition of commands whose output has a JSON form; the option itself
    is added to every command by `add_global_options`."""
    return command


def add_global_options(command: click.Command) -> None:
    """Give every leaf command under `command` the global options (so that they also work after it)."""
    if isinstance(command, click.Group):
        for child in command.commands.values():
            add_global_options(child)
        return
    names = {name for param in command.params for name in param.opts}
    command.params.extend(option for option in global_options() if not set(option.opts) & names)


def emit(data: Any, text: str | None = None) -> None:
    """Print a result: JSON with `--json`, else `text` when given, else `key: value` lines."""
    if context().as_json:
        click.echo(json.dumps(data, ensure_ascii=False, sort_keys=True))
    elif text is not None:
        click.echo(text)
    else:
        click.echo(as_text(data))


def as_text(data: Any, indent: str = "") -> str:
    """Readable `key: value` lines for nested data (lists of records as indented blocks)."""
    if isinstance(data, dict):
        lines = []
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{indent}{key}:")
                lines.append(as_text(value, indent + "  "))
            else:
                lines.append(f"{indent}{key}: {'' if value is None else value}")
        return "\n".join(lines)
    if isinstance(data, list):
        return "\n".join(f"{indent}- " + as_text(item, indent + "  ").lstrip() if isinstance(item, dict)
                         else f"{indent}- {item}" for item in data)
    return f"{indent}{data}"


def parse_date(field_name: str, value: str | None) -> date | None:
    """A `YYYY-MM-DD` option, or an input error naming it."""
    if value is None:
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(field_name, Rule.MUST_BE_A_DATE, f"YYYY-MM-DD, found {value!r}") from None


def date_range(since: str | None, until: str | None) -> tuple[date | None, date | None]:
    """`--from` and `--to` (exclusive) as dates; `--to` must come after `--from`."""
    start, end = parse_date("from", since), parse_date("to", until)
    if start is not None and end is not None and end <= start:
        raise InputError("to", Rule.DATE_RANGE_MUST_NOT_BE_EMPTY, f"{until} is not after {since}")
    return start, end


def parse_id(field_name: str, value: str) -> str:
    """A stream id (UUID), in its canonical form, or an input error naming the field."""
    try:
        return str(UUID(value))
    except ValueError:
        raise InputError(field_name, Rule.MUST_BE_AN_ID, f"a UUID, found {value!r}") from None


def choice(field_name: str, value: str | None, allowed: Sequence[str]) -> str | None:
    """A value that must be one of `allowed`, or an input error naming the field."""
    if value is not None and value not in allowed:
        raise InputError(field_name, Rule.MUST_BE_ONE_OF_THE_KNOWN_VALUES, f"{value!r} not in {', '.join(allowed)}")
    return value


def write_file(field_name: str, path: Path, data: bytes) -> None:
    """Write an output file the user named; a missing directory is an input error (checked before any write)."""
    if not path.parent.is_dir():
        raise InputError(field_name, Rule.OUTPUT_DIRECTORY_MUST_EXIST, str(path.parent))
    try:
        path.write_bytes(data)
    except OSError as error:
        raise InputError(field_name, Rule.OUTPUT_FILE_MUST_BE_WRITABLE, f"{path}: {error.strerror}") from None


def open_output(field_name: str, path: Path) -> BinaryIO:
    """An output file the user named, opened for writing; a missing directory or a path that cannot be written is an
    input error naming the field."""
    check_output_path(field_name, path)
    try:
        return path.open("wb")
    except OSError as error:
        raise InputError(field_name, Rule.OUTPUT_FILE_MUST_BE_WRITABLE, f"{path}: {error.strerror}") from None


def check_output_path(field_name: str, path: Path | None) -> None:
    """Refuse an output path whose directory does not exist, before anything is written."""
    if path is not None and not path.parent.is_dir():
        raise InputError(field_name, Rule.OUTPUT_DIRECTORY_MUST_EXIST, str(path.parent))


def read_text_file(field_name: str, path: Path) -> str:
    """The text of a file the user named, or an input error naming the field."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(field_name, Rule.FILE_MUST_EXIST, str(path)) from None
    except IsADirectoryError:
        raise InputError(field_name, Rule.FILE_MUST_BE_A_READABLE_TEXT_FILE, f"{path} is a directory") from None
    except UnicodeDecodeError:
        raise InputError(field_name, Rule.FILE_MUST_BE_A_READABLE_TEXT_FILE, f"{path} is not UTF-8 text") from None
    except OSError as error:
        raise InputError(field_name, Rule.FILE_MUST_BE_A_READABLE_TEXT_FILE, f"{path}: {error.strerror}") from None


def read_json_file(field_name: str, path: Path) -> Any:
    """The JSON value of a file the user named, or an input error naming the field."""
    text = read_text_file(field_name, path)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise InputError(field_name, Rule.FILE_MUST_HOLD_JSON, f"{path}: {error}") from None


def validation_message(error: ValidationError) -> str:
    """`field: rule (message)` for each error of a pydantic validation, without links."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'command'}: {e['type']} ({e['msg']})" for e in error.errors(
            include_url=False)
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


class LedgerGroup(click.Group):
    """The root group: runs the command and turns every error into one line on stderr and an exit status
    (`ledger.errors`): 2 bad input, 3 verification failed, 75 retry, 70 a defect. Never a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run without click's own error handling, so that every error is reported here, once."""
        kwargs["standalone_mode"] = False
        kwargs.setdefault("obj", Context())
        try:
            with reported():
                result = super().main(*args, **kwargs)
        except click.exceptions.Exit as done:
            sys.exit(done.exit_code)
        if isinstance(result, int) and result:
            sys.exit(result)
        sys.exit(0)


@contextmanager
def reported() -> Iterator[None]:
    """Map errors to a message and an exit status (the one place this happens)."""
    try:
        yield
    except click.exceptions.Exit:
        raise
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.ctx.get_help() if error.ctx else str(error))
        sys.exit(EXIT_INPUT)
    except click.ClickException as error:
        click.echo(f"error: {_one_line(error.format_message())}", err=True)
        sys.exit(EXIT_INPUT)
    except click.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(1)
    except LedgerError as error:
        cause = getattr(error, "error", None)  # a batch reports the command that failed
        message = str(error) if cause is None else f"{error}"
        click.echo(f"error: {_one_line(message)}", err=True)
        sys.exit(error.exit_code)
    except ValidationError as error:
        click.echo(f"error: {_one_line(validation_message(error))}", err=True)
        sys.exit(EXIT_INPUT)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as error:  # a defect: reported in one line, never a traceback
        click.echo(f"error: an unexpected failure ({type(error).__name__}: {_one_line(str(error))}); nothing "
                   "more is known — please report it", err=True)
        sys.exit(EXIT_DEFECT)
