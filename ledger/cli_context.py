"""What every CLI command receives: the settings from `--data-dir` and the environment, and the open ledger."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from ledger.application import Clock, LedgerApplication
from ledger.config import Settings


@dataclass
class CliContext:
    """The `mutual-ledger` command's shared state, stored as the click context's `obj`."""

    settings: Settings
    key: str | None = None
    """`--key NAME`: sign with this key from the key directory instead of the role's default key."""
    clock: Clock | None = None
    _app: LedgerApplication | None = field(default=None, repr=False)

    def app(self) -> LedgerApplication:
        """The ledger application, opened on first use and closed when the command ends."""
        if self._app is None:
            self._app = LedgerApplication(self.settings, self.clock)
            click.get_current_context().call_on_close(self.close)
        return self._app

    def close(self) -> None:
        """Close the application's database connections."""
        if self._app is not None:
            self._app.close()
            self._app = None


def cli_context() -> CliContext:
    """The CliContext of the running command."""
    obj = click.get_current_context().find_object(CliContext)
    if obj is None:
        raise click.UsageError("no ledger context (run through the mutual-ledger command)")
    return obj
