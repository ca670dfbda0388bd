"""The public transparency log over HTTP: C2SP tlog-tiles under `/log/`, for any tlog-tiles client.

- `/log/checkpoint` — the latest signed checkpoint with the witnesses' cosignatures (`text/plain; charset=utf-8`,
  cached a few seconds at most: tlog-tiles §Checkpoints);
- `/log/tile/<L>/<N>[.p/<W>]` — hash tiles, and `/log/tile/entries/<N>[.p/<W>]` — entry bundles
  (`application/octet-stream`; bundles gzip-compressed when the client accepts it: §Log entries);
- `/log/key` — the log's verifier key (`name+hash+base64`), and `/log/trust-anchors.json` — the public keys a
  verifier is given.

A full tile or bundle never changes: it is served `Cache-Control: public, max-age=31536000, immutable` with a strong
ETag (the SHA-256 of the bytes sent), and `If-None-Match` with that tag gets 304. Partial tiles, the checkpoint and
the keys are short-lived. Anything beyond the latest checkpoint's tree is 404; every error is RFC 9457
`application/problem+json`. The router reads through narrow interfaces (`ledger.log.tiles.TiledLog` over the
transparency log and the checkpoint log), so any service can mount it: `app.include_router(log_router(reader))`.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ledger.api.problem import problem_responses, rule_problem
from ledger.errors import InputError
from ledger.log.note import Verifier
from ledger.log.tiles import TiledLog, TileError, TileNotFoundError, TilePathError, parse_tile_path
from ledger.rules import Rule

IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_LIVED = "public, max-age=5"
"""tlog-tiles §Checkpoints: headers SHOULD prevent caching beyond a few seconds."""
KEYS_CACHE = "public, max-age=300"
OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"
Endpoint = Callable[..., Response]


@dataclass(frozen=True)
class PublicLog:
    """What `/log/` serves: the tiled log, the log's verifier key, and the trust anchors file (read per request,
    so a re-published file is served at once)."""

    tiles: TiledLog
    verifier_key: Verifier
    trust_anchors: Path | None = None


def get_and_head(router: APIRouter, path: str, **options: Any) -> Callable[[Endpoint], Endpoint]:
    """Register an endpoint for GET and for HEAD as two routes, so that each method is an operation of its own in
    the OpenAPI description (one route with both would give both the same operation id)."""

    def register(endpoint: Endpoint) -> Endpoint:
        for method in ("GET", "HEAD"):
            router.api_route(path, methods=[method], **options)(endpoint)
        return endpoint

    return register


def log_router(reader: PublicLog) -> APIRouter:
    """The `/log/` routes over `reader`."""
    router = APIRouter(prefix="/log", tags=["log"])

    @get_and_head(router, "/checkpoint", response_class=Response,
                      responses={200: {"content": {TEXT: {}}}, **problem_responses(404)})
    def checkpoint(request: Request) -> Response:
        """The latest signed checkpoint with its cosignatures."""
        try:
            note = reader.tiles.checkpoint().note
        except TileError as error:
            return _problem(error)
        return _resource(request, note.encode(), TEXT, SHORT_LIVED)

    @get_and_head(router, "/key", response_class=Response,
                      responses={200: {"content": {TEXT: {}}}})
    def key(request: Request) -> Response:
        """The log's verifier key, `name+hash+base64(0x01 || public key)` (C2SP signed-note)."""
        return _resource(request, (reader.verifier_key.encode() + "\n").encode(), TEXT, KEYS_CACHE)

    @get_and_head(router, "/trust-anchors.json", response_class=Response,
                      responses={200: {"content": {"application/json": {}}}, **problem_responses(404)})
    def trust_anchors(request: Request) -> Response:
        """The public keys a verifier is given out of band (operator root, custodian, regulator, log)."""
        path = reader.trust_anchors
        if path is None or not path.is_file():
            return rule_problem(404, InputError("path", Rule.TRUST_ANCHORS_MUST_BE_PUBLISHED,
                                                "this ledger publishes no trust anchors file"))
        return _resource(request, path.read_bytes(), "application/json", KEYS_CACHE)

    @get_and_head(router, "/tile/{tile_path:path}", response_class=Response,
                      responses={200: {"content": {OCTET_STREAM: {}}}, **problem_responses(400, 404, 500)})
    def tile(tile_path: str, request: Request) -> Response:
        """A hash tile `<L>/<N>[.p/<W>]` or an entry bundle `entries/<N>[.p/<W>]` (C2SP tlog-tiles)."""
        try:
            address = parse_tile_path(f"tile/{tile_path}")
            body = reader.tiles.read(address)
        except TileError as error:
            return _problem(error)
        cache = IMMUTABLE if address.width is None else SHORT_LIVED
        if address.is_entry_bundle:
            return _entry_bundle(request, body, cache)
        return _resource(request, body, OCTET_STREAM, cache)

    return router


def _problem(error: TileError) -> Response:
    if isinstance(error, TilePathError):
        status = 400
    elif isinstance(error, TileNotFoundError):
        status = 404
    else:
        status = 500
    return rule_problem(status, error)


def _resource(request: Request, body: bytes, media_type: str, cache: str, etag: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
    """`body` with its cache headers and strong ETag; 304 when the client already holds these bytes."""
    tag = etag or f'"{hashlib.sha256(body).hexdigest()}"'
    all_headers = {"ETag": tag, "Cache-Control": cache, **(headers or {})}
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=all_headers)
    return Response(body, media_type=media_type, headers=all_headers)


def _entry_bundle(request: Request, body: bytes, cache: str) -> Response:
    """tlog-tiles §Log entries: bundles SHOULD be compressed at the HTTP layer — gzip when the client accepts it
    (a distinct representation, so a distinct strong ETag)."""
    headers = {"Vary": "Accept-Encoding"}
    digest = hashlib.sha256(body).hexdigest()
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return _resource(request, gzip.compress(body, mtime=0), OCTET_STREAM, cache, f'"{digest}-gzip"', headers)
    return _resource(request, body, OCTET_STREAM, cache, f'"{digest}"', headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: `*` or any listed tag equal under the weak comparison."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether `Accept-Encoding` lists gzip without `q=0` (RFC 9110 §12.5.3)."""
    for item in accept_encoding.split(","):
        coding, _, parameters = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            quality = parameters.strip().removeprefix("q=").strip() if parameters.strip().startswith("q=") else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False
