"""The ledger's errors: one tree, each family carrying the exit status the command line reports for it.

    LedgerError
    ├── RuleError                          names the field and the rule (`ledger.rules`)
    │   ├── InputError            exit 2   an input breaks a rule; nothing was written
    │   │   ├── DomainRuleError            a command breaks a rule of the domain
    │   │   ├── CommandIdReusedError       a command id is reused for a different request
    │   │   ├── ConfigError                an environment variable (the field is its name)
    │   │   ├── KeyDirectoryError          a key name, a key file, a passphrase
    │   │   └── AlreadyInitializedError    `init` on a directory that holds a ledger
    │   └── RefusedError          exit 3   signed material refused by a named rule (a witness, a tile)
    ├── VerificationError         exit 3   signed material does not verify: says where (entry index, stream, seq)
    └── RetryableError            exit 75  another writer got there first: nothing was written, retrying is safe
        ├── ConcurrencyConflictError
        └── StoreBusyError                 the database failed the write (serialization, lock, connection)
            └── ConnectionLostError        the connection went away; the writer retries on a new one first

Errors are raised where the fault is found and mapped to a message and an exit status once, at the edge (the
command line, the HTTP service): `str(error)` is the one-line message, `error.exit_code` the status. Anything else
that escapes is a defect, and the edge reports it without a traceback (sigstore's `errors.py` is the model).
"""

from __future__ import annotations

from typing import ClassVar

from ledger.rules import Rule

EXIT_INPUT = 2
EXIT_VERIFICATION = 3
EXIT_RETRY = 75


class LedgerError(Exception):
    """Every error the ledger reports to a user; `exit_code` is what the command line exits with."""

    exit_code: ClassVar[int] = 1


class RuleError(LedgerError):
    """An error that names the field and the rule (`ledger.rules`): `field` names what was wrong, `rule` which rule
    it breaks, `detail` what was found. The exit status is the family's."""

    def __init__(self, field: str, rule: Rule, detail: str = "") -> None:
        super().__init__(f"{field}: {rule}" + (f" ({detail})" if detail else ""))
        self.field = field
        self.rule = rule
        self.detail = detail


class InputError(RuleError):
    """An input breaks a rule; nothing was written."""

    exit_code: ClassVar[int] = EXIT_INPUT


class DomainRuleError(InputError):
    """A command breaks a rule of the domain (checked in a fixed order before anything is written)."""


def check(condition: bool, field: str, rule: Rule, detail: str = "") -> None:
    """Raise DomainRuleError unless `condition` holds."""
    if not condition:
        raise DomainRuleError(field, rule, detail)


class CommandIdReusedError(InputError):
    """A command id was reused for a different request."""

    def __init__(self, command_id: str) -> None:
        super().__init__("command_id", Rule.COMMAND_ID_MUST_NOT_BE_REUSED_FOR_A_DIFFERENT_REQUEST, command_id)


class ConfigError(InputError):
    """A configuration variable is malformed; the field is the variable's name."""


class KeyDirectoryError(InputError):
    """A key is missing, named outside the key directory, unreadable, or its passphrase does not open it."""


class AlreadyInitializedError(InputError):
    """`init` was asked to create a ledger where one exists."""


class VerificationError(LedgerError):
    """Signed material does not verify; the message says which check failed and where."""

    exit_code: ClassVar[int] = EXIT_VERIFICATION


class RefusedError(RuleError):
    """Signed material refused by a named rule (a witness refusing a checkpoint, a stored tile that does not match
    its leaf): a verification failure."""

    exit_code: ClassVar[int] = EXIT_VERIFICATION


class RetryableError(LedgerError):
    """Another writer got there first; nothing was written and the same request can be sent again."""

    exit_code: ClassVar[int] = EXIT_RETRY


class ConcurrencyConflictError(RetryableError):
    """Another writer changed a stream this command read (or ran the same command id); nothing was written."""

    def __init__(self, message: str = "another writer changed a stream this command read (or ran the same command "
                 "id); nothing was written; retry") -> None:
        super().__init__(message)


class StoreBusyError(RetryableError):
    """The database failed a write for a reason of its own or another session's (a serialization failure, a
    deadlock, a lock timeout, a dropped connection); retrying the same command id is safe: it
    either runs or returns the first result, if the write did commit."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"the store did not complete the write ({cause}); retry with the same command id")


class ConnectionLostError(StoreBusyError):
    """The connection to the database went away during a batch (the server ended it, or the network did): its
    transaction either committed or wrote nothing, never part of it. The writer runs the batch again on a new
    connection — a command it did commit returns its first result — and raises this only when that kept failing."""


class BatchError(LedgerError):
    """Command number `position` of a batch failed; the commands before it were saved. Reported as its cause."""

    def __init__(self, position: int, error: Exception) -> None:
        super().__init__(f"command {position + 1} of the batch failed: {error}")
        self.position = position
        self.error = error

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        """The exit status of the cause."""
        return self.error.exit_code if isinstance(self.error, LedgerError) else 1
