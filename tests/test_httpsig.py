"""RFC 9421 request signatures on the server side: a signed request verifies and names its key; a changed method,
path, query, authority, digest or body, a stale or future signature, a long validity, a replay, an unknown key or
missing coverage is refused naming the field and the rule."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable

import pytest

from ledger.bootstrap import Ledger
from ledger.httpsig import (
    MAX_VALIDITY_SECONDS,
    ReplayGuard,
    SignatureRejectedError,
    SignedRequest,
    sign_request,
    verify_request,
)
from ledger.keys import SigningKey
from ledger.service import member_key
from tests.support import create_plan, join

NOW = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
URL = "http://127.0.0.1:8000/api/v1/members/m-1/statement?year=2026"


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate("member-m-1", "member", "m-1")


def lookup(key: SigningKey) -> Callable[[str], bytes | None]:
    return lambda key_id: key.public_raw if key_id == key.key_id else None


def signed(key: SigningKey, method: str = "GET", url: str = URL, body: bytes = b"", now: dt.datetime = NOW,
           validity_seconds: int = 60) -> SignedRequest:
    headers = [("Host", "127.0.0.1:8000"), ("Content-Type", "application/json")]
    fields = sign_request(method, url, headers, body, key, now, validity_seconds)
    return SignedRequest(method, url, [*headers, *fields.items()], body)


def refused(request: SignedRequest, key: SigningKey, field: str, rule: str, now: dt.datetime = NOW) -> None:
    with pytest.raises(SignatureRejectedError) as caught:
        verify_request(request, lookup(key), now)
    assert (caught.value.field, caught.value.rule) == (field, rule), str(caught.value)


def test_a_signed_request_verifies_and_names_its_key(key: SigningKey) -> None:
    verified = verify_request(signed(key), lookup(key), NOW, ReplayGuard())
    assert verified.key_id == key.key_id
    assert verified.covered == ('"@method"', '"@authority"', '"@path"', '"@query"')
    body = b'{"statement": "csv"}'
    verified = verify_request(signed(key, "POST", body=body), lookup(key), NOW)
    assert verified.covered[-1] == '"content-digest"'
    assert verified.expires - verified.created == 60


@pytest.mark.parametrize(("change", "field"), [
    (lambda r: SignedRequest("DELETE", r.url, r.headers, r.body), "Signature"),
    (lambda r: SignedRequest(r.method, r.url.replace("m-1/", "m-2/"), r.headers, r.body), "Signature"),
    (lambda r: SignedRequest(r.method, r.url.replace("2026", "2025"), r.headers, r.body), "Signature"),
    (lambda r: SignedRequest(r.method, r.url.replace("?year=2026", ""), r.headers, r.body), "Signature"),
    (lambda r: SignedRequest(r.method, r.url.replace("127.0.0.1", "127.0.0.2"), r.headers, r.body), "Signature"),
    (lambda r: SignedRequest(r.method, r.url, r.headers, r.body + b" "), "content-digest"),
    (lambda r: SignedRequest(r.method, r.url, [(n, v.replace("sha-256=:", "sha-256=:A") if n == "Content-Digest"
                                                else v) for n, v in r.headers], r.body), "Signature"),
])
def test_a_changed_method_path_query_authority_body_or_digest_is_refused(
        key: SigningKey, change: Callable[[SignedRequest], SignedRequest], field: str) -> None:
    request = signed(key, "POST", body=b'{"amount_fen": 100}')
    verify_request(request, lookup(key), NOW)
    refused(change(request), key, field, "signature_must_verify")


def test_an_expired_or_future_signature_is_refused_within_the_clock_skew(key: SigningKey) -> None:
    request = signed(key)
    verify_request(request, lookup(key), NOW + dt.timedelta(seconds=60 + 29))
    refused(request, key, "expires", "signature_must_not_have_expired", NOW + dt.timedelta(seconds=60 + 31))
    verify_request(request, lookup(key), NOW - dt.timedelta(seconds=29))
    refused(request, key, "created", "signature_must_not_be_created_in_the_future", NOW - dt.timedelta(seconds=31))


def test_a_long_validity_is_refused(key: SigningKey) -> None:
    refused(signed(key, validity_seconds=MAX_VALIDITY_SECONDS + 1), key, "expires",
            "signature_validity_must_be_short")


def test_a_replayed_request_is_refused(key: SigningKey) -> None:
    guard = ReplayGuard()
    request = signed(key)
    verify_request(request, lookup(key), NOW, guard)
    with pytest.raises(SignatureRejectedError) as caught:
        verify_request(request, lookup(key), NOW, guard)
    assert (caught.value.field, caught.value.rule) == ("nonce", "signature_nonce_must_be_new")
    verify_request(signed(key), lookup(key), NOW, guard)  # a new nonce is a new request


def test_a_full_replay_guard_forgets_only_expired_nonces(key: SigningKey) -> None:
    guard = ReplayGuard(capacity=2)
    verify_request(signed(key), lookup(key), NOW, guard)
    verify_request(signed(key), lookup(key), NOW, guard)
    with pytest.raises(SignatureRejectedError, match="signed_requests_must_fit_the_replay_window"):
        verify_request(signed(key), lookup(key), NOW, guard)
    later = NOW + dt.timedelta(seconds=120)
    verify_request(signed(key, now=later), lookup(key), later, guard)


def test_a_key_the_keyring_does_not_hold_or_another_key_is_refused(key: SigningKey) -> None:
    other = SigningKey.generate("member-m-2", "member", "m-2")
    refused(signed(other), key, "keyid", "signature_key_must_be_in_the_keyring")
    impostor = signed(other)
    headers = [(n, v.replace(other.key_id, key.key_id)) for n, v in impostor.headers]
    refused(SignedRequest(impostor.method, impostor.url, headers, impostor.body), key, "Signature",
            "signature_must_verify")


def test_missing_signature_fields_and_parameters_are_refused(key: SigningKey) -> None:
    request = signed(key, "POST", body=b"{}")
    bare = [(n, v) for n, v in request.headers if n not in ("Signature", "Signature-Input")]
    refused(SignedRequest("POST", URL, bare, b"{}"), key, "Signature-Input", "signature_input_must_be_present")
    for old, new, field, rule in (
            (';alg="ed25519"', "", "alg", "signature_algorithm_must_be_ed25519"),
            (';tag="mutual-ledger"', ';tag="other"', "Signature-Input", "signature_must_be_tagged_for_the_ledger"),
            (' "@query"', "", "Signature-Input", "signature_must_cover_method_authority_path_and_query"),
            (' "content-digest"', "", "content-digest", "signature_must_cover_the_content_digest")):
        headers = [(n, v.replace(old, new) if n == "Signature-Input" else v) for n, v in request.headers]
        assert headers != request.headers
        refused(SignedRequest("POST", URL, headers, b"{}"), key, field, rule)
    nonce = [(n, v.split(";nonce=")[0] + ';tag="mutual-ledger"' if n == "Signature-Input" else v)
             for n, v in request.headers]
    refused(SignedRequest("POST", URL, nonce, b"{}"), key, "nonce", "signature_nonce_must_be_16_to_128_characters")


def test_a_member_key_registered_in_the_keyring_signs_requests_the_keyring_verifies(
        sqlite_app: Ledger) -> None:
    app = sqlite_app
    member = join(app, create_plan(app))
    key = member_key(app, member)
    keyring = app.app.keyring()

    def from_keyring(key_id: str) -> bytes | None:
        registered = keyring.keys.get(key_id)
        return registered.public_key if registered is not None and registered.valid_at(NOW) else None

    verified = verify_request(signed(key), from_keyring, NOW)
    registered = keyring.keys[verified.key_id]
    assert (registered.role, registered.member) == ("member", member)
    assert base64.b64encode(registered.public_key).decode() == key.public_base64


def with_input(request: SignedRequest, replace: Callable[[str], str]) -> SignedRequest:
    """The request with its Signature-Input header rewritten."""
    return SignedRequest(request.method, request.url,
                         [(n, replace(v) if n == "Signature-Input" else v) for n, v in request.headers],
                         request.body)


@pytest.mark.parametrize(("replace", "field", "rule"), [
    (lambda v: "not a dictionary ((", "Signature-Input", "signature_input_must_be_a_structured_dictionary"),
    (lambda v: v.replace('("@method"', '(1 "@method"'), "Signature-Input", "signature_components_must_be_strings"),
    (lambda v: v.replace(';keyid="', ';keyid="X'), "keyid", "signature_keyid_must_be_a_key_id"),
    (lambda v: re.sub(r";created=\d+", ';created="soon"', v), "created", "signature_times_must_be_integers"),
    (lambda v: v.replace('"@query")', '"@query" "x-not-sent")'), "Signature", "signature_must_verify"),
])
def test_a_malformed_signature_input_is_refused_naming_the_parameter(
        key: SigningKey, replace: Callable[[str], str], field: str, rule: str) -> None:
    refused(with_input(signed(key), replace), key, field, rule)
