"""RFC 9421 HTTP Message Signatures with Ed25519: how members, custodians and regulators authenticate to the API.

A request is signed with a key the keyring holds (a member's own key, the custodian's, a regulator's). What is
covered and required — the browser's signer (`ledger/web/static/js/httpsig.js`) and `sign_request` below make
exactly this:

- components (RFC 9421 §2.2): `"@method"`, `"@authority"`, `"@path"`, `"@query"`, and `"content-digest"` (RFC 9530,
  SHA-256 or SHA-512 of the body) whenever the request has a body;
- parameters (§2.3): `created`, `expires` (at most `MAX_VALIDITY_SECONDS` after `created`), `nonce`, `keyid` (the
  keyring's 16-hex key id), `alg="ed25519"` (§3.3.6) and `tag="mutual-ledger"`, under any label.

`verify_request` checks, in order, each refusal a `SignatureRejectedError` naming the field and the rule (the API
turns it into a 401 problem+json that reveals nothing else): (1) exactly one signature tagged `mutual-ledger`;
(2) its parameters: `alg`, a key id, `created`, `expires` and a `nonce`; (3) the covered components; (4) the time:
`created` not after now and `expires` not before now, each within `MAX_CLOCK_SKEW_SECONDS`, and the validity short;
(5) the key id names a key the caller's lookup returns (the seam: the service asks its keyring, `KeyLookup`);
(6) the Ed25519 signature over the signature base (§2.5), by libsodium as every signature of the ledger; (7) the
body against the signed Content-Digest; (8) the nonce not seen before for that key within its validity (replay).
It returns the key id; the caller then checks that the keyring holds that key for the member or role the request
is about. The signature base is built by the `http-message-signatures` package (RFC 9421 §2.5).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import http_sf
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureAlgorithm,
    HTTPSignatureKeyResolver,
)
from http_message_signatures.exceptions import InvalidSignature

from ledger.errors import InputError
from ledger.keys import SigningKey, ed25519_sign, ed25519_verify
from ledger.rules import Rule

TAG = "mutual-ledger"
"""The application tag (§2.3) every signature to the ledger's API carries."""
LABEL = "ledger"
"""The label `sign_request` uses (labels are not signed; the verifier selects by tag)."""
MAX_VALIDITY_SECONDS = 300
"""The longest a signature may be valid (`expires - created`): with the nonce, the bound on replay."""
MAX_CLOCK_SKEW_SECONDS = 30
"""How far the signer's clock may be from the server's."""
REQUIRED_COMPONENTS = ('"@method"', '"@authority"', '"@path"', '"@query"')
BODY_COMPONENT = '"content-digest"'
_KEY_ID = re.compile(r"[0-9a-f]{16}")

KeyLookup = Callable[[str], bytes | None]
"""The raw 32-byte Ed25519 public key of a key id the keyring holds (valid now), or None: the service's seam."""


class SignatureRejectedError(InputError):
    """A request's signature is missing, malformed, stale, replayed or does not verify; names the field and rule."""



@dataclass(frozen=True)
class VerifiedRequest:
    """What a verified signature establishes: who signed (the key id), when, and which components it covers."""

    key_id: str
    created: int
    expires: int
    nonce: str
    covered: tuple[str, ...]


class _Headers:
    """Header field lines in order, with the mapping-like access the signature package reads and writes."""

    def __init__(self, lines: Iterable[tuple[str, str]]) -> None:
        self.lines = list(lines)

    def items(self) -> list[tuple[str, str]]:
        return list(self.lines)

    def __iter__(self) -> Iterator[str]:
        return iter([name for name, _ in self.lines])

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self.lines)

    def __getitem__(self, name: str) -> str:
        return ", ".join(v for n, v in self.lines if n.lower() == name.lower())

    def __setitem__(self, name: str, value: str) -> None:
        del self[name]
        self.lines.append((name, value))

    def __delitem__(self, name: str) -> None:
        self.lines = [(n, v) for n, v in self.lines if n.lower() != name.lower()]


@dataclass
class SignedRequest:
    """A request as the server received it: method, absolute URL (scheme, the Host it was sent to, path, query),
    header field lines in order, and the body bytes. From Starlette: `SignedRequest(request.method,
    str(request.url), list(request.headers.items()), await request.body())`."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def message(self) -> Any:
        """The object the signature package reads (`method`, `url`, `headers.items()`)."""
        return _Message(self.method, self.url, _Headers(self.headers))


@dataclass
class _Message:
    method: str
    url: str
    headers: _Headers


class _Ed25519(HTTPSignatureAlgorithm):
    """Ed25519 (RFC 9421 §3.3.6) on raw keys through ledger.keys: libsodium's strict verification."""

    algorithm_id = "ed25519"

    def __init__(self, public_key: Any = None, private_key: Any = None) -> None:
        self.public_key: bytes | None = public_key
        self.private_key: bytes | None = private_key

    def sign(self, message: bytes) -> bytes:
        assert self.private_key is not None
        return ed25519_sign(self.private_key, message)

    def verify(self, signature: bytes, message: bytes) -> None:
        if self.public_key is None or not ed25519_verify(self.public_key, signature, message):
            raise InvalidSignature("the Ed25519 signature does not verify")


@dataclass
class _Keys(HTTPSignatureKeyResolver):
    lookup: KeyLookup | None = None
    secret_key: bytes | None = None

    def resolve_public_key(self, key_id: str) -> bytes | None:
        return self.lookup(key_id) if self.lookup else None

    def resolve_private_key(self, key_id: str) -> bytes:
        assert self.secret_key is not None
        return self.secret_key


class _Verifier(HTTPMessageVerifier):
    """The package's verifier with the server's clock instead of the machine's (the time was checked before)."""

    require_created = True

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


@dataclass
class ReplayGuard:
    """Nonces seen, per key, until their signature expires: a nonce is accepted once. Bounded: when `capacity`
    unexpired nonces are held, new requests are refused until some expire (safer than forgetting one early)."""

    capacity: int = 100_000
    seen: dict[tuple[str, str], int] = field(default_factory=dict)

    def accept(self, key_id: str, nonce: str, expires: int, now: int) -> None:
        """Record a nonce; raise SignatureRejectedError when it was already used or the guard is full."""
        if len(self.seen) >= self.capacity:
            self.seen = {k: until for k, until in self.seen.items() if until + MAX_CLOCK_SKEW_SECONDS >= now}
        if (key_id, nonce) in self.seen:
            raise SignatureRejectedError("nonce", Rule.SIGNATURE_NONCE_MUST_BE_NEW)
        if len(self.seen) >= self.capacity:
            raise SignatureRejectedError("nonce", Rule.SIGNED_REQUESTS_MUST_FIT_THE_REPLAY_WINDOW)
        self.seen[(key_id, nonce)] = expires


def _selected(headers: Iterable[tuple[str, str]]) -> tuple[list[str], dict[str, Any]]:
    """The covered component identifiers and parameters of the one signature tagged `mutual-ledger`."""
    values = [v for n, v in headers if n.lower() == "signature-input"]
    if not values or not any(n.lower() == "signature" for n, _ in headers):
        raise SignatureRejectedError("Signature-Input", Rule.SIGNATURE_INPUT_MUST_BE_PRESENT)
    try:
        parsed: Any = http_sf.parse(", ".join(values).encode(), tltype="dictionary")
    except (ValueError, TypeError):
        raise SignatureRejectedError("Signature-Input", Rule.SIGNATURE_INPUT_MUST_BE_A_STRUCTURED_DICTIONARY) from None
    tagged = [(members, params) for members, params in parsed.values()
              if isinstance(members, list) and params.get("tag") == TAG]
    if len(tagged) != 1:
        raise SignatureRejectedError("Signature-Input", Rule.SIGNATURE_MUST_BE_TAGGED_FOR_THE_LEDGER)
    members, params = tagged[0]
    covered = []
    for value, item_params in members:
        if not isinstance(value, str):
            raise SignatureRejectedError("Signature-Input", Rule.SIGNATURE_COMPONENTS_MUST_BE_STRINGS)
        covered.append(str(http_sf.ser((value, item_params))))
    return covered, dict(params)


def _check_parameters(params: Mapping[str, Any]) -> tuple[str, int, int, str]:
    """(2): key id, created, expires and nonce, each present and of its type; alg is ed25519."""
    if params.get("alg") != "ed25519":
        raise SignatureRejectedError("alg", Rule.SIGNATURE_ALGORITHM_MUST_BE_ED25519)
    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise SignatureRejectedError("keyid", Rule.SIGNATURE_KEYID_MUST_BE_A_KEY_ID)
    created, expires, nonce = params.get("created"), params.get("expires"), params.get("nonce")
    if type(created) is not int or type(expires) is not int:
        raise SignatureRejectedError("created", Rule.SIGNATURE_TIMES_MUST_BE_INTEGERS)
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
        raise SignatureRejectedError("nonce", Rule.SIGNATURE_NONCE_MUST_BE_16_TO_128_CHARACTERS)
    return key_id, created, expires, nonce


def _check_time(created: int, expires: int, now: int) -> None:
    """(4): within the validity, allowing the clock skew; a short validity."""
    if created > now + MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRejectedError("created", Rule.SIGNATURE_MUST_NOT_BE_CREATED_IN_THE_FUTURE)
    if expires < now - MAX_CLOCK_SKEW_SECONDS:
        raise SignatureRejectedError("expires", Rule.SIGNATURE_MUST_NOT_HAVE_EXPIRED)
    if not 0 < expires - created <= MAX_VALIDITY_SECONDS:
        raise SignatureRejectedError("expires", Rule.SIGNATURE_VALIDITY_MUST_BE_SHORT)


def verify_request(request: SignedRequest, keys: KeyLookup, now: dt.datetime,
                   replay: ReplayGuard | None = None) -> VerifiedRequest:
    """Check the request's signature (steps of the module docstring) and return who signed it."""
    covered, params = _selected(request.headers)  # (1)
    key_id, created, expires, nonce = _check_parameters(params)  # (2)
    missing = [c for c in REQUIRED_COMPONENTS if c not in covered]  # (3)
    if missing:
        raise SignatureRejectedError("Signature-Input", Rule.SIGNATURE_MUST_COVER_METHOD_AUTHORITY_PATH_AND_QUERY,
                                     ", ".join(missing))
    if request.body and BODY_COMPONENT not in covered:
        raise SignatureRejectedError("content-digest", Rule.SIGNATURE_MUST_COVER_THE_CONTENT_DIGEST)
    seconds = int(now.timestamp())
    _check_time(created, expires, seconds)  # (4)
    public_key = keys(key_id)  # (5)
    if public_key is None:
        raise SignatureRejectedError("keyid", Rule.SIGNATURE_KEY_MUST_BE_IN_THE_KEYRING)
    verifier = _Verifier(signature_algorithm=_Ed25519, key_resolver=_Keys(lambda _: public_key))
    try:  # (6), (7)
        verifier.verify(request.message(), expect_tag=TAG, max_age=None, body=request.body,
                        require_components=REQUIRED_COMPONENTS)
    except InvalidSignature as error:
        field_name = "content-digest" if "digest" in str(error).lower() else "Signature"
        raise SignatureRejectedError(field_name, Rule.SIGNATURE_MUST_VERIFY, str(error)) from None
    if replay is not None:  # (8)
        replay.accept(key_id, nonce, expires, seconds)
    return VerifiedRequest(key_id, created, expires, nonce, tuple(covered))


def sign_request(method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes, key: SigningKey,
                 now: dt.datetime, validity_seconds: int = 60, nonce: str | None = None) -> dict[str, str]:
    """The fields that sign a request with `key` (for the CLI and tests): Signature-Input, Signature and, when
    there is a body, Content-Digest. Add them to the request's headers."""
    message = _Message(method.upper(), url, _Headers(headers))
    signer = HTTPMessageSigner(signature_algorithm=_Ed25519, key_resolver=_Keys(secret_key=key.secret_key))
    components = list(REQUIRED_COMPONENTS)
    signer.sign(message, key_id=key.key_id, created=now, expires=now + dt.timedelta(seconds=validity_seconds),
                nonce=nonce or secrets.token_urlsafe(18), label=LABEL, tag=TAG,
                covered_component_ids=[c.strip('"') for c in components], body=body or None)
    added = {"signature-input", "signature", "content-digest"}
    return {name: value for name, value in message.headers.items() if name.lower() in added}
