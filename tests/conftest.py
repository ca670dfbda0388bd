"""Fixtures: a fresh, initialized ledger per test on the embedded default (SQLite)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.application import LedgerApplication, SimulatedClock
from ledger.config import Settings
from ledger.service import initialize
from tests.support import START


@pytest.fixture
def ledger_app(tmp_path: Path) -> Iterator[LedgerApplication]:
    """An initialized ledger on a fresh SQLite file, driven by a simulated clock."""
    app = LedgerApplication(Settings(data_dir=tmp_path / "data"), SimulatedClock(START))
    initialize(app)
    yield app
    app.close()
