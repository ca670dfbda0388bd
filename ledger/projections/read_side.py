"""The read models answering the write side's questions: `ledger.ports.LedgerReadSide` over `ReadModels`.

The composition root gives the application one of these. Before each unit of work it is refreshed (the balances
read model caught up with every stored event, whoever wrote them); a document a command pins is built after every
read model has caught up.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.projections import ReadModels
from ledger.projections.balances import Balances
from ledger.projections.base import EntrySource
from ledger.projections.cases import disclosure_document
from ledger.projections.metrics import report_document


class ReadSide:
    """`LedgerReadSide` backed by the read models on the store's own database."""

    def __init__(self, source: EntrySource) -> None:
        self.source = source
        self._models: ReadModels | None = None

    @property
    def models(self) -> ReadModels:
        """The read models, opened at the first use (as they are: not caught up here)."""
        if self._models is None:
            self._models = ReadModels.open(self.source, create=False)  # made by `ledger.migrations`
        return self._models

    @property
    def queries(self) -> Balances:
        """The balances read model answers `ledger.ports.LedgerQueries` as it is."""
        return self.models.balances

    def refresh(self) -> None:
        """Catch the balances and the charges (the exceptions the balances' sums subtract) up with every stored
        event (what the command handlers ask about)."""
        self.models.balances.catch_up()
        self.models.charges.catch_up()

    def caught_up(self) -> ReadModels:
        """Every read model, caught up with every stored event."""
        models = self.models
        models.catch_up()
        return models

    # -- LedgerDocuments -------------------------------------------------------------------------------------

    def disclosure(self, period: str) -> dict[str, Any]:
        """A settled period's disclosure, from every stored event."""
        models = self.caught_up()
        return disclosure_document(period, models.periods, models.cases, models.balances.failed_periods())

    def report(self, since: str, until: str, as_of: datetime) -> dict[str, Any]:
        """The regulator's report, from every stored event."""
        return report_document(self.caught_up(), since, until, as_of)
