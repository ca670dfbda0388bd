"""The one declared rule set: every rule is broken on purpose somewhere in the suite, and the rules page in `docs/`
is generated from it."""

from __future__ import annotations

from pathlib import Path

from ledger.rules import Rule, document, sections
from tests.conftest import BROKEN_RULES

ROOT = Path(__file__).parent.parent


def test_the_rules_document_is_generated_from_the_enum() -> None:
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == document(ROOT), (
        "docs/rules.md is out of date: run `python -m ledger.rules`")
    assert sum(len(members) for members in sections().values()) == len(Rule)


def test_every_rule_is_enforced_somewhere_and_named_once() -> None:
    from ledger.rules import where_enforced

    assert len({rule.value for rule in Rule}) == len(Rule)
    unused = [rule.value for rule in Rule if not where_enforced(rule, ROOT)]
    assert not unused, f"rules no module raises: {unused}"


def test_every_rule_is_broken_on_purpose_somewhere_in_the_suite() -> None:
    """Runs last, after the whole suite (tests/conftest.py): each rule was named by an error some test provoked."""
    missing = sorted(rule.value for rule in Rule if rule.value not in BROKEN_RULES)
    assert not missing, f"{len(missing)} rules no test breaks: {missing}"
