"""Shared field types for event bodies and commands.

Every body value is an integer (money in fen), a string, a boolean or null — the JSON domain RFC 8785 handles
exactly (see `ledger.canonical`). Dates are ISO `YYYY-MM-DD` strings and instants RFC 3339 UTC strings, so that a
body's canonical bytes never depend on a Python type.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Sequence
from datetime import date, datetime
from functools import cache
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, WrapSerializer

MAX_FEN = 2**53 - 1


class Frozen(BaseModel):
    """Base for all schema models: immutable, no extra keys, strict types (an amount is never "12.5")."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    @classmethod
    def dumps_in_ledger_domain(cls) -> bool:
        """Whether every field's type keeps `model_dump(mode="json")` in the ledger's JSON domain, but for the
        magnitude of integers (which `ledger.canonical` still checks): then the dump needs no walk before it is
        canonicalized. Decided once per class from the field types; strict validation guarantees the values."""
        return _model_in_ledger_domain(cls)

    def json_value(self) -> dict[str, Any]:
        """`model_dump(mode="json")`, taken from the instance's own values when every field of its class holds a
        string, integer, boolean or null (decided once per class, `_model_is_flat`): the dump is then exactly
        those values, and it runs per event."""
        if _model_is_flat(type(self)):
            return dict(self.__dict__)
        return self.model_dump(mode="json")

    @classmethod
    def from_json_value(cls, value: object) -> Self:
        """Validate a parsed JSON value in JSON mode: strict types, but a JSON array may fill a tuple field. The
        value is written back to JSON by orjson (it runs per event), or by the standard library for what orjson
        refuses (integers beyond 2^53, lone surrogates), which the model then rejects with its own message."""
        try:
            return cls.model_validate_json(orjson.dumps(value, option=orjson.OPT_STRICT_INTEGER))
        except orjson.JSONEncodeError:
            return cls.model_validate_json(json.dumps(value, ensure_ascii=False))


def _in_ledger_domain(annotation: Any) -> bool:
    """Whether values of this field type dump to JSON strings, integers, booleans, null, arrays of those, or
    objects with fixed ASCII keys (nested models) — the ledger's JSON domain (`ledger.canonical`)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _in_ledger_domain(get_args(annotation)[0])
    if origin in (Union, types.UnionType, tuple):
        return all(arg is Ellipsis or _in_ledger_domain(arg) for arg in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Frozen):
        return annotation.dumps_in_ledger_domain()
    return _is_scalar(annotation)


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
    datetime.fromisoformat(value[:-1])  # a real date and time: 2026-02-30 is refused
    return value


@cache
def _model_in_ledger_domain(model: type[Frozen]) -> bool:
    return all(_in_ledger_domain(field.annotation) for field in model.model_fields.values())


def _is_scalar(annotation: Any) -> bool:
    """Whether values of this field type are JSON scalars as they are: str, int, bool, None, or a union or
    literal of those."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_scalar(get_args(annotation)[0]) and not _serializes(get_args(annotation)[1:])
    if origin is Literal:
        return all(type(value) in (str, int, bool) for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        return all(_is_scalar(arg) for arg in get_args(annotation))
    return annotation in (str, int, bool, type(None))


@cache
def _model_is_flat(model: type[Frozen]) -> bool:
    """Whether `model_dump(mode="json")` of this class is its instances' `__dict__`: scalar fields only, none
    excluded, and no serializer or computed field that could change a value."""
    decorators = model.__pydantic_decorators__
    return (
        not decorators.field_serializers and not decorators.model_serializers and not model.model_computed_fields
        and all(_is_scalar(field.annotation) and not field.exclude and not _serializes(field.metadata)
                for field in model.model_fields.values())
    )


def _serializes(metadata: Sequence[Any]) -> bool:
    """Whether a field's annotations include a serializer of its own."""
    return any(isinstance(item, PlainSerializer | WrapSerializer) for item in metadata)


IsoDate = Annotated[str, AfterValidator(_iso_date), Field(description="A date, YYYY-MM-DD.")]
Instant = Annotated[
    str, AfterValidator(_instant), Field(description="An instant, RFC 3339 UTC, microseconds, Z.")
]
Month = Annotated[str, StringConstraints(pattern=r"^\d{4}-(0[1-9]|1[0-2])$"), Field(description="A month, YYYY-MM.")]
AgeBand = Annotated[
    str, StringConstraints(pattern=r"^\d{1,3}-\d{1,3}$"), Field(description="A 5-year age band, e.g. 40-44.")
]
Role = Literal["operator", "custodian", "investigator", "juror", "member", "regulator"]
Province = Annotated[
    str, StringConstraints(pattern=r"^[a-z]{2}$"), Field(description="Two-letter province code.")
]
