"""The committed JSON Schema files equal a fresh export, and they accept the events the ledger writes."""

from __future__ import annotations

import json

from schemas.export import JSON_DIR, documents, render


def test_committed_schema_files_equal_a_fresh_export() -> None:
    wanted = documents()
    committed = {str(p.relative_to(JSON_DIR)) for p in JSON_DIR.rglob("*.json")}
    assert committed == set(wanted), "run: python -m schemas.export"
    for relative, document in wanted.items():
        assert (JSON_DIR / relative).read_text() == render(document), f"{relative} is stale: python -m schemas.export"


def test_every_event_type_and_command_has_a_schema_file() -> None:
    from schemas.commands import COMMANDS
    from schemas.events import EVENT_BODIES

    names = {p.name for p in JSON_DIR.rglob("*.json")}
    assert {f"{t}.v{v}.json" for t, v in EVENT_BODIES} <= names
    assert {f"{c}.v1.json" for c in COMMANDS} <= names
    assert json.loads((JSON_DIR / "envelope.v1.json").read_text())["additionalProperties"] is False


def test_an_outside_validator_accepts_the_ledgers_events_with_the_files_alone(sqlite_app: object) -> None:
    import jsonschema

    from ledger.application import LedgerApplication
    from tests.support import create_plan, deposit, join, prepaid_rules

    assert isinstance(sqlite_app, LedgerApplication)
    plan = create_plan(sqlite_app, prepaid_rules())
    deposit(sqlite_app, join(sqlite_app, plan), 900)
    envelope_schema = json.loads((JSON_DIR / "envelope.v1.json").read_text())
    for _, entry in sqlite_app.entries():
        envelope = json.loads(entry)
        jsonschema.validate(envelope, envelope_schema)
        body_schema = json.loads((JSON_DIR / "events" / f"{envelope['type']}.v{envelope['schema']}.json").read_text())
        jsonschema.validate(envelope["body"], body_schema)
        broken = {**envelope["body"], "unexpected": 1}
        try:
            jsonschema.validate(broken, body_schema)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"{envelope['type']} schema accepted an unknown key")
