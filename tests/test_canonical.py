"""RFC 8785 canonical bytes: the published vectors, and agreement with the `rfc8785` package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import PlainSerializer, field_serializer

from ledger.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalizationError,
    canonical_bytes,
    canonical_envelope_bytes,
    is_flat_ascii_object,
    is_ledger_value,
)
from schemas.common import Frozen, _model_is_flat
from schemas.events import EVENT_BODIES

VECTORS = Path(__file__).parent / "vectors" / "rfc8785"
NAMES = sorted(p.stem for p in (VECTORS / "input").glob("*.json"))


@pytest.mark.parametrize("name", NAMES)
def test_published_vectors_canonicalize_exactly(name: str) -> None:
    value = json.loads((VECTORS / "input" / f"{name}.json").read_text(encoding="utf-8"))
    expected = (VECTORS / "output" / f"{name}.json").read_bytes()
    assert canonical_bytes(value) == expected
    hex_expected = bytes.fromhex("".join((VECTORS / "outhex" / f"{name}.txt").read_text().split()))
    assert canonical_bytes(value) == hex_expected


ascii_keys = st.text(alphabet=st.characters(max_codepoint=127), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER)
    | st.text(alphabet=st.characters(categories=("L", "M", "N", "P", "S", "Z", "Cc", "Cf", "Co", "Cn")), max_size=20)
)
ledger_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(ascii_keys, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(ledger_values)
def test_fast_path_equals_rfc8785_for_every_ledger_value(value: Any) -> None:
    assert is_ledger_value(value)
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_non_ascii_keys_take_the_reference_path_and_sort_by_utf16() -> None:
    value = {"\U0001f602": 1, "\ufb33": 2}
    assert not is_ledger_value(value)
    assert canonical_bytes(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [float("nan"), 2**53, -(2**53), {"a": [float("inf")]}])
def test_values_without_a_canonical_form_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalizationError):
        canonical_bytes(value)


def test_finite_floats_are_canonical_json_but_not_ledger_values() -> None:
    # RFC 8785 defines floats; the ledger's schemas refuse them in bodies (money is integer fen).
    assert not is_ledger_value({"amount": 1.5})
    assert canonical_bytes({"amount": 1.5}) == b'{"amount":1.5}'


def test_booleans_are_not_integers() -> None:
    assert canonical_bytes([True, 1]) == b"[true,1]"


@settings(max_examples=200, deadline=None)
@given(ledger_values | st.floats(allow_nan=False, allow_infinity=False) | st.dictionaries(
    st.sampled_from(["\U0001f602", "\ufb33", "a"]), st.integers(-3, 3) | st.floats(-2, 2), max_size=3),
    st.integers(1, 2**60))
def test_envelope_fast_path_equals_rfc8785_whatever_the_body_and_seq(body: Any, seq: int) -> None:
    """Only the body is walked; a float or a non-ASCII key in it, or a seq beyond 2^53, takes the reference path."""
    data = {"v": 1, "stream": "s", "seq": seq, "type": "t.x", "schema": 1, "at": "a", "actor": {"role": "operator",
            "key": "k"}, "prev": None, "body": body, "sig": "g"}
    if seq > MAX_SAFE_INTEGER:
        with pytest.raises(CanonicalizationError):
            canonical_envelope_bytes(data)
    else:
        assert canonical_envelope_bytes(data) == rfc8785.dumps(data)


def test_a_flat_body_is_known_in_the_domain_without_a_walk_but_for_its_integers() -> None:
    assert is_flat_ascii_object({"a": "x", "b": 1, "c": None, "d": True})
    assert not is_flat_ascii_object({"a": 1.5}) and not is_flat_ascii_object({"\u00e9": 1})
    assert not is_flat_ascii_object({"a": [1]}) and not is_flat_ascii_object({1: "a"})
    with pytest.raises(CanonicalizationError):  # the encoding refuses it, and the reference path decides
        canonical_envelope_bytes({"v": 1, "body": {"n": MAX_SAFE_INTEGER + 1}})


class _WithFloat(Frozen):
    ratio: float


class _WithFreeKeys(Frozen):
    labels: dict[str, str]


class _Nested(Frozen):
    inner: tuple[_WithFloat, ...] | None


def test_typed_bodies_skip_the_domain_walk_only_when_their_field_types_stay_in_the_domain() -> None:
    assert all(model.dumps_in_ledger_domain() for model in EVENT_BODIES.values())
    assert not _WithFloat.dumps_in_ledger_domain()
    assert not _WithFreeKeys.dumps_in_ledger_domain()
    assert not _Nested.dumps_in_ledger_domain()


def test_a_typed_body_with_an_integer_beyond_2_53_still_has_no_canonical_form() -> None:
    envelope = {"v": 1, "seq": 1, "body": {"rules_version": MAX_SAFE_INTEGER + 1}}
    with pytest.raises(CanonicalizationError):
        canonical_envelope_bytes(envelope, body_in_domain=True)


class _Flat(Frozen):
    name: str
    count: int
    note: str | None
    kind: Literal["a", "b"]


class _Serialized(Frozen):
    name: str

    @field_serializer("name")
    def shout(self, name: str) -> str:
        return name.upper()


class _AnnotatedSerializer(Frozen):
    name: Annotated[str, PlainSerializer(lambda name: name.upper())] | None


def test_only_bodies_of_scalar_fields_without_serializers_are_written_from_their_own_values() -> None:
    assert not _model_is_flat(_AnnotatedSerializer)
    assert _AnnotatedSerializer(name="x").json_value() == {"name": "X"}
    assert _model_is_flat(_Flat)
    flat = _Flat(name="x", count=3, note=None, kind="a")
    assert flat.json_value() == flat.model_dump(mode="json")
    assert not _model_is_flat(_Nested) and not _model_is_flat(_WithFreeKeys)
    serialized = _Serialized(name="x")
    assert not _model_is_flat(_Serialized)
    assert serialized.json_value() == {"name": "X"}
