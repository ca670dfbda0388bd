"""Read models, one module each, all built the one way (`ledger.projections.base.Projection`)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from typing import Any

from ledger.memory import paused_gc
from ledger.projections.balances import Balances
from ledger.projections.base import EntrySource, Projection, apply_together
from ledger.projections.cases import Cases
from ledger.projections.charges import Charges
from ledger.projections.journal import Journal
from ledger.projections.periods import Periods
from ledger.projections.sql import SqlStore

PROJECTIONS: tuple[type[Projection], ...] = (Balances, Journal, Periods, Cases, Charges)
"""Every projection, by the order `projections digest` prints them."""


@dataclass
class ReadModels:
    """All read models of one database."""

    balances: Balances
    journal: Journal
    periods: Periods
    cases: Cases
    charges: Charges

    @classmethod
    def open(cls, source: EntrySource, sql: SqlStore | None = None, balances: Balances | None = None,
             create: bool = True) -> ReadModels:
        """Open every read model over `source`, creating their tables when `create` (a database of views; the
        ledger's own store has them from `ledger.migrations`)."""
        sql = sql or SqlStore(source.recorder.datastore)
        return cls(balances or Balances(source, sql, create=create), Journal(source, sql, create=create),
                   Periods(source, sql, create=create), Cases(source, sql, create=create),
                   Charges(source, sql, create=create))

    def all(self) -> tuple[Projection, ...]:
        """Every read model, in PROJECTIONS order."""
        return (self.balances, self.journal, self.periods, self.cases, self.charges)

    def catch_up(self, page: int = 200_000) -> int:
        """Bring every read model up to the last stored event, reading and parsing each event once and applying
        each batch of `page` events to all of them in one transaction (the store is read through its own paging).
        Batches are large because a commit writes every index page the batch touched, and new members' random ids
        touch nearly every page of the member index: the fewer the commits, the fewer times it is written."""
        source = self.balances.source
        read = 0
        while True:
            start = min(p.position() for p in self.all()) + 1
            with paused_gc():
                batch = list(islice(source.entries(start), page))
                if not batch:
                    return read
                with self.balances.sql.transaction() as cursor:
                    apply_together(cursor, self.all(), batch)
            read += len(batch)

    def rebuild(self) -> int:
        """Reset every read model and apply every stored event again (secondary indexes built at the end)."""
        for projection in self.all():
            projection.reset()
            projection.drop_indexes()
        try:
            return self.catch_up()
        finally:
            for projection in self.all():
                projection.create_indexes()

    def digests(self) -> dict[str, str]:
        """`NAME → digest` of every read model."""
        return {p.NAME: p.digest() for p in self.all()}

    def status(self) -> dict[str, Any]:
        """Each read model's position."""
        return {p.NAME: p.position() for p in self.all()}
