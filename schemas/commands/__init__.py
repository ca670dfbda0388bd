"""Commands: what a client asks the ledger to do, one model per command, validated before anything runs.

Every command carries `command` (its name) and `command_id` (chosen by the client: repeating a command with the
same id returns the first result and writes nothing). Each module here declares the commands of one aggregate and
registers them in `COMMANDS`; the CLI, `apply FILE.jsonl` and the JSON Schema export all read that registry.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from schemas.common import Frozen

COMMANDS: dict[str, type[Command]] = {}
"""Every command model by name."""


class Command(Frozen):
    """Base of all commands."""

    NAME: ClassVar[str]
    ROLE: ClassVar[str]
    """The role whose key signs the events this command writes (a member request may be signed by the
    operator on the member's behalf)."""
    SCHEMA_VERSION: ClassVar[int] = 1
    SEALS: ClassVar[bool] = False
    """Whether the command carries values the ledger seals (`ledger.sealing`): its receipt keeps only a keyed hash of
    the request, so a copy of the store cannot confirm a guessed value."""

    command: str
    command_id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", description="client-chosen idempotency key"
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = getattr(cls, "NAME", None)
        if name is not None:
            assert name not in COMMANDS, f"command {name} declared twice"
            COMMANDS[name] = cls
