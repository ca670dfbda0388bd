"""RFC 9457 problem details: every error of the HTTP services is `application/problem+json` naming field and rule."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus

from starlette.responses import Response

from ledger.errors import RuleError
from ledger.rules import Rule

PROBLEM_JSON = "application/problem+json"


def rule_problem(status: int, error: RuleError, headers: Mapping[str, str] | None = None) -> Response:
    """The problem for an error of the ledger's tree that names its field and rule."""
    return problem(status, error.detail or str(error), field=error.field, rule=error.rule, headers=headers)


def problem(status: int, detail: str, *, field: str | None = None, rule: Rule | None = None,
            headers: Mapping[str, str] | None = None) -> Response:
    """A problem details response (RFC 9457 §3): `type` is `about:blank`, so `title` is the status phrase
    (§4.2.1); `field` and `rule` are extension members (§3.2) naming what was wrong and the rule it broke."""
    body: dict[str, object] = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
                               "detail": detail}
    if field is not None:
        body["field"] = field
    if rule is not None:
        body["rule"] = rule
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type=PROBLEM_JSON,
                    headers={"Cache-Control": "no-store", **(headers or {})})


PROBLEM_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "field": {"type": "string"},
        "rule": {"type": "string"},
    },
}
"""The JSON Schema of a problem body, for the OpenAPI description of the routes that return one."""


def problem_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` entries for routes that answer these statuses with a problem."""
    return {status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}
            for status in statuses}
