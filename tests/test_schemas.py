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
    assert {f"{c}.v{model.SCHEMA_VERSION}.json" for c, model in COMMANDS.items()} <= names
    assert json.loads((JSON_DIR / "envelope.v1.json").read_text())["additionalProperties"] is False


def test_an_outside_validator_accepts_the_ledgers_events_with_the_files_alone(sqlite_app: object) -> None:
    import jsonschema

    from ledger.bootstrap import Ledger
    from tests.support import create_plan, deposit, join, prepaid_rules

    assert isinstance(sqlite_app, Ledger)
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


def test_a_request_hash_is_sha256_of_the_command_as_json_without_its_id() -> None:
    """Receipts written earlier must keep matching: the hash is of `model_dump_json` without the command id."""
    import hashlib

    from ledger.application import request_hash
    from schemas.commands.membership import Join
    from schemas.commands.plan import CreatePlan
    from sim.fixtures import commitment, rules

    join = Join(command_id="a", plan="00000000-0000-4000-8000-000000000000", age_years=30, sex="f",
                province="zj", consent_commitment=commitment("c"), health_declaration_commitment=commitment("h"))
    plan = CreatePlan(command_id="b", name="Plan 一", kind="cancer", rules=rules())
    for command in (join, plan):
        expected = hashlib.sha256(command.model_dump_json(exclude={"command_id"}).encode()).hexdigest()
        assert request_hash(command) == expected
        assert request_hash(command.model_copy(update={"command_id": "other"})) == expected
    assert request_hash(join) != request_hash(join.model_copy(update={"age_years": 31}))
