"""RFC 9457 problem details: every error of the HTTP services is `application/problem+json` naming field and rule.

The ledger's errors (`ledger.errors`) are mapped here, once, for every route:

| error | status |
|---|---|
| `SignatureRejectedError` (a request's RFC 9421 signature) | 401, with `Accept-Signature` saying what to sign |
| `AccessDeniedError` (a valid key that may not read this) | 403, the same body whatever was asked for |
| `InputError` whose rule says a thing must exist | 404 |
| `InputError` (any other) and a request the schema refuses | 400 |
| `RetryableError`, no database connection free in time, a database connection lost | 503 with `Retry-After` |
| `VerificationError` (stored data that does not verify) | 500, saying which check failed |
| anything else (a defect) | 500, one line, never a traceback |
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import psycopg
from eventsourcing.persistence import ConnectionUnavailableError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from starlette.responses import Response

from ledger.errors import InputError, LedgerError, RetryableError, RuleError, VerificationError
from ledger.rules import Rule
from schemas.api import Problem

PROBLEM_JSON = "application/problem+json"
NOT_FOUND_RULES = frozenset({Rule.PLAN_MUST_EXIST, Rule.PERIOD_MUST_EXIST, Rule.MEMBERSHIP_MUST_EXIST,
                             Rule.CLAIM_MUST_EXIST})
ACCEPT_SIGNATURE = ('ledger=("@method" "@authority" "@path" "@query");alg="ed25519";tag="mutual-ledger"'
                    ';keyid="<your key id>"')
"""RFC 9421 §5.1: what a signature to this API covers (`content-digest` too when the request has a body)."""

log = logging.getLogger("ledger.api")


class AccessDeniedError(InputError):
    """A request signed with a valid key that may not read what it asks for: another member's records, or a route
    of another role. The body is the same whether or not what was asked for exists."""


def rule_problem(status: int, error: RuleError, headers: Mapping[str, str] | None = None) -> Response:
    """The problem for an error of the ledger's tree that names its field and rule."""
    return problem(status, error.detail or str(error), field=error.field, rule=error.rule, headers=headers)


def problem(status: int, detail: str, *, field: str | None = None, rule: Rule | None = None,
            headers: Mapping[str, str] | None = None) -> Response:
    """A problem details response (RFC 9457 §3); `field` and `rule` are extension members (§3.2)."""
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, field=field, rule=rule)
    return Response(json.dumps(body.model_dump(exclude_none=True), ensure_ascii=False), status_code=status,
                    media_type=PROBLEM_JSON, headers={"Cache-Control": "no-store", **(headers or {})})


def problem_for(error: Exception) -> Response:
    """The problem response for an error raised while answering a request (the table of the module docstring)."""
    from ledger.httpsig import SignatureRejectedError

    if isinstance(error, SignatureRejectedError):
        return problem(401, "the request's signature was refused", field=error.field, rule=error.rule,
                       headers={"Accept-Signature": ACCEPT_SIGNATURE})
    if isinstance(error, AccessDeniedError):
        return problem(403, error.detail, field=error.field, rule=error.rule)
    if isinstance(error, InputError):
        status = 404 if error.rule in NOT_FOUND_RULES else 400
        return problem(status, str(error), field=error.field, rule=error.rule)
    if isinstance(error, RetryableError | ConnectionUnavailableError):  # busy: every connection is in use
        return problem(503, str(error), headers={"Retry-After": "1"})
    if isinstance(error, psycopg.OperationalError | StoreOperationalError):  # the connection was lost: the pool
        log.warning("database connection lost answering a request: %s", error)  # replaces it; ask again
        return problem(503, "the database connection was lost; ask again", headers={"Retry-After": "1"})
    if isinstance(error, VerificationError):
        return problem(500, f"stored data does not verify: {error}")
    if isinstance(error, LedgerError):
        return problem(500, str(error))
    log.error("a defect answering a request: %s: %s", type(error).__name__, error)
    return problem(500, "an unexpected failure; nothing more is known")


def validation_problem(errors: Sequence[Mapping[str, Any]]) -> Response:
    """400 for a request the API's schema refuses: the first error's parameter as the field."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    location = [str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body", "header")]
    return rule_problem(400, InputError(".".join(location) or "request", Rule.REQUEST_MUST_MATCH_THE_API_SCHEMA,
                                        f"{'.'.join(location) or 'request'}: {first.get('msg', 'invalid')}"))


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for routes that answer these statuses with a problem."""
    schema = Problem.model_json_schema()
    return {status: {"description": HTTPStatus(status).phrase, "content": {PROBLEM_JSON: {"schema": schema}}}
            for status in statuses}
