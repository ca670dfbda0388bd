"""Shared field types for event bodies and commands.

Every body value is an integer (money in fen), a string, a boolean or null — the JSON domain RFC 8785 handles
exactly (see `ledger.canonical`). Dates are ISO `YYYY-MM-DD` strings and instants RFC 3339 UTC strings, so that a
body's canonical bytes never depend on a Python type.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Literal, Self

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

MAX_FEN = 2**53 - 1


class Frozen(BaseModel):
    """Base for all schema models: immutable, no extra keys, strict types (an amount is never "12.5")."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @classmethod
    def from_json_value(cls, value: object) -> Self:
        """Validate a parsed JSON value in JSON mode: strict types, but a JSON array may fill a tuple field. The
        value is written back to JSON by orjson (it runs per event), or by the standard library for what orjson
        refuses (integers beyond 2^53, lone surrogates), which the model then rejects with its own message."""
        try:
            return cls.model_validate_json(orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER))
        except orjson.JSONEncodeError:
            return cls.model_validate_json(json.dumps(value, ensure_ascii=False))


Fen = Annotated[int, Field(ge=0, le=MAX_FEN, description="Amount in integer fen (1/100 yuan).")]
SignedFen = Annotated[
    int, Field(ge=-MAX_FEN, le=MAX_FEN, description="Signed amount in fen (a deficit is negative).")
]
Count = Annotated[int, Field(ge=0, le=MAX_FEN)]
Id = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    Field(description="A lowercase hyphenated UUID: a pseudonymous stream id."),
]
Commitment = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{64}$"),
    Field(description="Salted SHA-256 commitment (hex) to a document kept off the log."),
]
HashHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
Reference = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$"),
    Field(description="A bank or channel reference, as the custodian's statement shows it."),
]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=120)]


def _iso_date(value: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be a date YYYY-MM-DD")
    date.fromisoformat(value)
    return value


def _instant(value: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", value):
        raise ValueError("must be RFC 3339 UTC with microseconds and Z")
    return value


IsoDate = Annotated[str, AfterValidator(_iso_date), Field(description="A date, YYYY-MM-DD.")]
Instant = Annotated[
    str, AfterValidator(_instant), Field(description="An instant, RFC 3339 UTC, microseconds, Z.")
]
Role = Literal["operator", "custodian", "investigator", "juror", "member", "regulator"]
Province = Annotated[
    str, StringConstraints(pattern=r"^[a-z]{2}$"), Field(description="Two-letter province code.")
]
