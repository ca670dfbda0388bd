"""What the routers share: the service state, who signed a request (RFC 9421, `ledger.httpsig`), and cursor
pagination.

Authentication: every member, custodian and regulator route depends on `caller`, which verifies the request's
signature against the keyring (a key registered and valid now), then on a check of the key's role — and, for a
member's records, that the key is that member's own. A refused signature is a 401 naming its field and rule; a
valid key asking for what it may not read is a 403 whose body is the same whatever was asked for (another member's
records look exactly like records that do not exist).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request

from ledger.aggregates.keyring import RegisteredKey
from ledger.api.problem import AccessDeniedError
from ledger.api.state import ServiceState
from ledger.errors import InputError
from ledger.httpsig import SignedRequest, verify_request
from ledger.rules import Rule

T = TypeVar("T")
DEFAULT_PAGE = 100
MAX_PAGE = 500


async def service(request: Request) -> ServiceState:
    """The service state of the application answering this request (a coroutine: FastAPI runs a plain function
    dependency in its thread pool, a hand-off that costs more than the lookup)."""
    state = request.app.state.ledger
    assert isinstance(state, ServiceState)
    return state


@dataclass(frozen=True)
class Caller:
    """Who signed a request: the key id, its role, and for a member's key the member."""

    key_id: str
    role: str
    member: str | None


async def caller(request: Request) -> Caller:
    """Verify the request's signature (`verify_request`) and return the keyring's facts about its key (looked up
    once: the key the signature was checked against is the one described)."""
    state = await service(request)
    body = await request.body()
    signed = SignedRequest(request.method, str(request.url), list(request.headers.items()), body)
    looked_up: list[RegisteredKey] = []

    def public_key(key_id: str) -> bytes | None:
        registered = state.registered_key(key_id)
        if registered is None:
            return None
        looked_up.append(registered)
        return registered.public_key

    verified = verify_request(signed, public_key, state.now(), state.replay)
    registered = looked_up[-1]
    assert registered.key_id == verified.key_id, "verify_request returned a key the lookup did not give"
    return Caller(verified.key_id, registered.role, registered.member)


DENIED = "this key may not read this"


def require_role(who: Caller, role: str) -> Caller:
    """The caller, if its key is registered for `role`; else a 403."""
    if who.role != role:
        raise AccessDeniedError("keyid", Rule.SIGNING_KEY_MUST_HAVE_THE_ROUTES_ROLE, DENIED)
    return who


def require_member(who: Caller, member: str) -> Caller:
    """The caller, if its key is the member's own; else a 403 that does not say whether the member exists."""
    if who.role != "member" or who.member != member:
        raise AccessDeniedError("keyid", Rule.SIGNING_KEY_MUST_BE_THE_MEMBERS_OWN, DENIED)
    return who


# -- pagination ----------------------------------------------------------------------------------------------


def encode_cursor(key: Sequence[Any]) -> str:
    """An opaque cursor: the sort key of the last item given."""
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    """The sort key a cursor carries, or a 400 naming the cursor."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InputError("cursor", Rule.CURSOR_MUST_BE_ONE_THE_SERVICE_GAVE, cursor[:80]) from None
    if not isinstance(decoded, list) or not all(isinstance(part, str | int) and not isinstance(part, bool)
                                                 for part in decoded):
        raise InputError("cursor", Rule.CURSOR_MUST_BE_ONE_THE_SERVICE_GAVE, cursor[:80])
    return decoded


def paginate(items: Sequence[T], key: Callable[[T], Sequence[Any]], cursor: str | None, limit: int
             ) -> dict[str, Any]:
    """One page of `items` (sorted by `key`, ascending) after the cursor's key: `{"items", "next_cursor"}`."""
    chosen = list(items)
    if cursor is not None:
        after = decode_cursor(cursor)
        try:
            chosen = [item for item in chosen if list(key(item)) > after]
        except TypeError:
            raise InputError("cursor", Rule.CURSOR_MUST_BE_ONE_THE_SERVICE_GAVE, cursor[:80]) from None
    page = chosen[:limit]
    more = len(chosen) > limit
    return {"items": page, "next_cursor": encode_cursor(key(page[-1])) if more and page else None}
