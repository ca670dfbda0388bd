"""The composition root: every entry point — command line, consumers, HTTP service, tests, benchmarks — gets its
ledger from here, wired one way (cosmicpython's `bootstrap.py` is the model).

`bootstrap(settings)` builds the operator's `Ledger`: settings, clock, the key directories it may sign with, the
trust anchors, the event store with the application service, the read side that answers the handlers, the
transparency log and its checkpoints. Nothing else constructs these. `open_store(settings)` opens the same store
without keys for reading only, as outsiders with public material do (`ledger.public`).

The store of the embedded default is created only by `init` and `demo` (`create=True`, which runs the schema's
migration, `ledger.migrations`); every other command refuses a data directory that holds no ledger rather than
create one where the user did not ask, and a store whose schema is not the current version.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from ledger.aggregates.base import LedgerAggregate
from ledger.anchors import TRUST_ANCHORS_FILE, TrustAnchors
from ledger.application import LOG_KEY, Clock, LedgerApplication, SystemClock
from ledger.config import Settings
from ledger.errors import InputError
from ledger.keys import KeyDirectory, Signers
from ledger.log.checkpoints import CheckpointLog
from ledger.log.note import Signer, Verifier
from ledger.log.tree import TransparencyLog
from ledger.migrations import check_schema, migrate
from ledger.projections import ReadModels
from ledger.projections.balances import Balances
from ledger.projections.read_side import ReadSide
from ledger.projections.sql import SqlStore
from ledger.rules import Rule
from schemas.commands import Command

A = TypeVar("A", bound=LedgerAggregate)


def store_exists(settings: Settings) -> bool:
    """Whether the configured store holds a ledger (PostgreSQL: assumed, the server says otherwise)."""
    return settings.database_url is not None or settings.sqlite_path.exists()


def require_store(settings: Settings) -> None:
    """Refuse a data directory without a ledger, naming the flag and the command that makes one."""
    if not store_exists(settings):
        raise InputError("data_dir", Rule.LEDGER_MUST_BE_INITIALIZED,
                         f"{settings.data_dir} holds no ledger: run `mutual-ledger --data-dir {settings.data_dir} "
                         "init`, or give --data-dir of an existing ledger")


def load_anchors(settings: Settings) -> TrustAnchors | None:
    """The data directory's trust anchors, if it has them."""
    path = settings.data_dir / TRUST_ANCHORS_FILE
    return TrustAnchors.load(path) if path.exists() else None


@dataclass
class Ledger:
    """The operator's ledger, wired once (see the module docstring)."""

    settings: Settings
    clock: Clock
    signers: Signers
    app: LedgerApplication
    _log: TransparencyLog | None = field(default=None, repr=False)
    _checkpoints: CheckpointLog | None = field(default=None, repr=False)

    @property
    def anchors(self) -> TrustAnchors | None:
        """The trust anchors the writer checks against (the data directory's `trust-anchors.json`)."""
        return self.app.anchors

    @property
    def read_side(self) -> ReadSide:
        """The read models behind the handlers' questions."""
        read_side = self.app.read_side
        assert isinstance(read_side, ReadSide)
        return read_side

    def execute(self, command: Command, sign_as: str | None = None) -> dict[str, Any]:
        """Run one command (`LedgerApplication.execute`)."""
        return self.app.execute(command, sign_as=sign_as)

    def execute_many(self, commands: Sequence[Command], sign_as: str | None = None) -> list[dict[str, Any]]:
        """Run commands in one transaction (`LedgerApplication.execute_many`)."""
        return self.app.execute_many(commands, sign_as=sign_as)

    def entries(self, start: int = 1, page: int = 1000) -> Iterator[tuple[int, bytes]]:
        """Every stored entry in global order (`LedgerApplication.entries`)."""
        return self.app.entries(start, page)

    def read(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        """An aggregate for reading, or None (`LedgerApplication.read`)."""
        return self.app.read(aggregate_id, kind)

    def read_models(self, catch_up: bool = True) -> ReadModels:
        """Every read model; caught up with every stored event unless told not to (a read that must not write)."""
        return self.read_side.caught_up() if catch_up else self.read_side.models

    def balances(self) -> Balances:
        """The balances read model, caught up."""
        self.read_side.refresh()
        return self.read_side.models.balances

    @property
    def log(self) -> TransparencyLog:
        """The transparency log over the store's global order."""
        if self._log is None:
            self._log = TransparencyLog(self.app, create=False, index=True)
        return self._log

    @property
    def checkpoints(self) -> CheckpointLog:
        """The published checkpoints; signing new ones needs the log key, which only the operator holds."""
        if self._checkpoints is None:
            signer = None
            if self.signers.exists(LOG_KEY):
                signer = Signer(self.settings.log_origin, self.signers.load(LOG_KEY).private_key)
            verifier = signer.verifier() if signer else self.log_verifier()
            self._checkpoints = CheckpointLog(self.log, signer, verifier, create=False)
        return self._checkpoints

    def log_verifier(self) -> Verifier | None:
        """The log's verifier key from the trust anchors, when this process does not hold the log key."""
        anchors = self.anchors
        if anchors is None or anchors.log_verifier_key is None:
            return None
        return Verifier.parse(anchors.log_verifier_key)

    def close(self) -> None:
        """Close the store (and stop the signing workers)."""
        self.app.close()


def bootstrap(settings: Settings, *, clock: Clock | None = None, key_directories: Sequence[KeyDirectory] = (),
              create: bool = False) -> Ledger:
    """The operator's ledger from its settings.

    `key_directories` add other parties' key directories after the data directory's own (the demo and the tests
    play every party in one process); `create` allows making the embedded default's store (`init`, `demo`)."""
    if not create:
        require_store(settings)
    else:
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(settings)
    signers = Signers([KeyDirectory(settings.key_dir, settings.key_passphrase, "operator"), *key_directories])
    app = LedgerApplication(settings, clock or SystemClock(), signers, load_anchors(settings), ReadSide)
    try:
        check_schema(SqlStore(app.recorder.datastore),  # type: ignore[attr-defined]
                     "data_dir" if settings.database_url is None else "LEDGER_DATABASE_URL")
    except InputError:
        app.close()
        raise
    return Ledger(settings, app.clock, signers, app)
