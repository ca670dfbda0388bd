"""Fixtures: a fresh, initialized ledger per test, its parties each with their own key directory, on the embedded
default (SQLite) and on PostgreSQL.

`ledger_app` is parametrized over both backends, so every application test runs on both; `sqlite_app` is for
tests that need only one. The PostgreSQL server comes from tests.services (found or started; never skipped).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ledger.bootstrap import Ledger
from ledger.errors import RuleError
from ledger.rules import Rule
from sim.services import fresh_schema, kafka_server
from tests.services import TansuBroker, postgres_server, tansu_broker
from tests.support import new_ledger


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for this test session."""
    try:
        with postgres_server() as url:
            yield url
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """A Kafka-protocol broker for this test session (found or started; never skipped)."""
    try:
        with kafka_server() as bootstrap:
            yield bootstrap
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def own_broker() -> Iterator[TansuBroker]:
    """A Kafka-protocol broker of the test's own, which it may stop (losing everything) and start again."""
    with ExitStack() as stack:
        try:
            broker = stack.enter_context(tansu_broker())
        except RuntimeError as error:
            pytest.fail(str(error), pytrace=False)
        yield broker


@pytest.fixture
def postgres_dsn(postgres_url: str) -> Iterator[str]:
    """A database URL selecting a fresh, empty schema (dropped after the test)."""
    with fresh_schema(postgres_url) as url:
        yield url


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Ledger]:
    """An initialized ledger on a fresh SQLite file, its parties set up, driven by a simulated clock."""
    ledger = new_ledger(tmp_path, None)
    yield ledger
    ledger.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """An initialized ledger with its parties and a simulated clock, on each backend in turn."""
    if request.param == "sqlite":
        ledger = new_ledger(tmp_path, None)
        yield ledger
        ledger.close()
        return
    with fresh_schema(request.getfixturevalue("postgres_url")) as url:
        ledger = new_ledger(tmp_path, url)
        yield ledger
        ledger.close()


# -- every rule broken on purpose somewhere in the suite -----------------------------------------------------------

BROKEN_RULES: set[str] = set()
"""Every rule an error named during this run (see `test_rules.py`)."""
_rule_error_init = RuleError.__init__


def _recording_init(self: RuleError, field: str, rule: Rule, detail: str = "") -> None:
    BROKEN_RULES.add(str(rule))
    _rule_error_init(self, field, rule, detail)


RuleError.__init__ = _recording_init  # type: ignore[method-assign]

RULE_COVERAGE = "tests/test_rules.py::test_every_rule_is_broken_on_purpose_somewhere_in_the_suite"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The rule-coverage test runs last, and only when the whole suite runs (a selection breaks fewer rules)."""
    coverage = [item for item in items if item.nodeid == RULE_COVERAGE]
    if not coverage:
        return
    items.remove(coverage[0])
    whole = (not config.option.keyword and not config.option.markexpr and not config.option.deselect
             and not getattr(config.option, "lf", False)
             and all(Path(arg).resolve() == Path(__file__).parent for arg in config.args))
    if whole:
        items.append(coverage[0])
    else:
        config.hook.pytest_deselected(items=coverage)
