"""The simulation's writer: a process of its own that applies batches of commands through the composition root
(`ledger.bootstrap`) on a clock the simulation sets, as the command line's `apply` does with the system clock.

It reads one JSON request per line on stdin — `{"at": ISO instant, "sign_as": key name or null, "commands": [...]}`
— runs the commands in one transaction (`Ledger.execute_many`) and answers one JSON line on stdout: `{"ok": true,
"results": [...]}`, or `{"ok": false, "position": k, "field": ..., "rule": ..., "retry": bool}` for the command
that was refused (those before it are saved, as `execute_many` promises). An error outside the ledger's error tree
(a database that went away) is answered `{"ok": false, "crash": "..."}` and ends the process: the simulation starts
a new writer and retries, as an operator's supervisor would.

`python -m sim.writer PARTIES_DIR` with the ledger's `LEDGER_*` settings in the environment.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

import ledger.handlers  # noqa: F401  (every command class, through the handlers that register them)
from ledger.application import SimulatedClock
from ledger.bootstrap import bootstrap
from ledger.config import Settings
from ledger.errors import BatchError, LedgerError, RetryableError, RuleError
from ledger.service import party_key_directories
from schemas.commands import COMMANDS, Command


def refusal(error: Exception, position: int) -> dict[str, Any]:
    """A refused command, as the simulation's client reads it."""
    if isinstance(error, BatchError):
        return refusal(error.error, error.position)
    answer: dict[str, Any] = {"ok": False, "position": position, "error": str(error)[:300],
                              "retry": isinstance(error, RetryableError)}
    if isinstance(error, RuleError):
        answer |= {"field": error.field, "rule": str(error.rule)}
    return answer


def parse(raw: list[dict[str, Any]]) -> list[Command] | dict[str, Any]:
    """The batch's commands, or the refusal of the first that does not validate (nothing of the batch runs)."""
    commands: list[Command] = []
    for position, data in enumerate(raw):
        model = COMMANDS.get(str(data.get("command")))
        if model is None:
            return {"ok": False, "position": position, "field": "command", "rule": "command_must_be_known"}
        try:
            commands.append(model.model_validate_json(orjson.dumps(data)))
        except ValidationError as error:
            first = error.errors()[0]
            return {"ok": False, "position": position, "field": ".".join(map(str, first["loc"])),
                    "rule": "schema", "error": first["msg"]}
    return commands


def main() -> None:
    """Serve requests until stdin ends."""
    settings = Settings.from_env()
    parties = Path(sys.argv[1])
    clock: SimulatedClock | None = None
    ledger = None
    for line in sys.stdin:
        request = orjson.loads(line)
        at = datetime.fromisoformat(request["at"])
        if clock is None:
            clock = SimulatedClock(at)
            ledger = bootstrap(settings, clock=clock, key_directories=party_key_directories(parties))
        elif at > clock.current:
            clock.set(at)
        assert ledger is not None
        parsed = parse(request["commands"])
        crashed = False
        if isinstance(parsed, dict):
            answer = parsed
        else:
            try:
                answer = {"ok": True, "results": ledger.execute_many(parsed, sign_as=request.get("sign_as"))}
            except LedgerError as error:
                answer = refusal(error, 0)
            except Exception as error:  # not of the ledger's tree: said, and this writer ends
                answer = {"ok": False, "crash": f"{type(error).__name__}: {error}"[:500]}
                crashed = True
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
        sys.stdout.flush()
        if crashed:
            sys.exit(70)


if __name__ == "__main__":
    main()
