"""Schemathesis runs the service's own OpenAPI description against a real uvicorn server (SQLite and PostgreSQL):
for valid and invalid requests to every operation, no 5xx, every response matches its schema and status list, and
bad input gets RFC 9457 problem details. The live feed never ends a response, so it is left to its own test
(tests/test_service.py); the authenticated routes answer unsigned requests here (401), signed ones there. Every
default check runs but one: a schema-valid request may still be refused (400), because cursors are opaque and plans
and periods are named by references (a name, `PLAN:NUMBER`) whose validity no schema can express."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from ledger.api.app import create_app, service_state
from ledger.bootstrap import Ledger
from sim.services import serving
from tests.test_audit import history


@pytest.fixture
def api_schema(ledger_app: Ledger) -> Iterator[Any]:
    history(ledger_app)
    with serving(create_app(service_state(ledger_app))) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


def test_every_operation_answers_within_its_schema(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        if operation.path == "/api/v1/feed":
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            check_operation(operation, mode)


def check_operation(operation: Any, mode: GenerationMode) -> None:
    """Generated requests of one kind to one operation, each response checked."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: Any) -> None:
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        if response.status_code >= 400:
            assert response.headers["content-type"][0] == "application/problem+json", response.text

    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, f"no valid request to {operation.method} {operation.path}"
        # nothing of this operation's request can be invalid (no parameter, no body)
