"""A ledger read over the network, from its public endpoints, by outsiders holding the trust anchors alone.

`RemoteLog(url)` reads the service's `/api/v1/log/` routes — published checkpoints, entries up to the latest one,
consistency proofs — and offers what the offline tools read from a store (`all()`, `log.consistency_proof`,
`entries()`), so `audit verify`, `audit monitor` and `log proof member` work the same on a URL. Nothing the server
says is taken on trust: checkpoints are checked against the log key, proofs against signed roots, entries by
recomputing the root, bundles by `audit.bundle.verify_bundle`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from ledger.errors import InputError
from ledger.httpsig import sign_request
from ledger.keys import SigningKey
from ledger.log.checkpoints import StoredCheckpoint
from ledger.rules import Rule

API = "/api/v1"


class RemoteLog:
    """The log of the ledger served at `url` (see the module docstring)."""

    def __init__(self, url: str, timeout_seconds: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(timeout=timeout_seconds)

    @property
    def log(self) -> RemoteLog:
        """Itself: proofs are read from the same endpoints (as `CheckpointLog.log` gives the tree)."""
        return self

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """The JSON of a GET; a failure is an input error naming the URL and what the server answered."""
        try:
            response = self.http.get(f"{self.url}{path}", headers=headers)
        except httpx.HTTPError as error:
            raise InputError("log_url", Rule.LOG_URL_MUST_ANSWER, f"{self.url}: {error}") from None
        if response.status_code != 200:
            raise InputError("log_url", Rule.LOG_URL_MUST_ANSWER,
                             f"{self.url}{path.split('?')[0]}: HTTP {response.status_code} {response.text[:300]}")
        try:
            return response.json()
        except ValueError:
            raise InputError("log_url", Rule.LOG_URL_MUST_ANSWER, f"{self.url}{path}: not JSON") from None

    def pages(self, path: str) -> Iterator[dict[str, Any]]:
        """Every item of a cursor-paginated list."""
        separator = "&" if "?" in path else "?"
        page = self.get(path)
        while True:
            yield from page["items"]
            if page["next_cursor"] is None:
                return
            page = self.get(f"{path}{separator}cursor={quote(page['next_cursor'])}")

    def all(self) -> list[StoredCheckpoint]:
        """Every published checkpoint, smallest first."""
        return [StoredCheckpoint(int(c["size"]), str(c["note"]), str(c["published_at"]))
                for c in self.pages(f"{API}/log/checkpoints?limit=500")]

    def consistency_proof(self, old_size: int, size: int) -> list[bytes]:
        """The consistency proof between two published sizes."""
        proof = self.get(f"{API}/log/proofs/consistency?old={old_size}&size={size}")["proof"]
        return [base64.b64decode(value, validate=True) for value in proof]

    def entries(self) -> Iterator[bytes]:
        """Every entry up to the latest published checkpoint, in order."""
        for item in self.pages(f"{API}/log/entries?limit=5000"):
            yield str(item["entry"]).encode()

    def latest_note(self) -> str:
        """The latest published checkpoint's note."""
        return str(self.get(f"{API}/log/checkpoint")["note"])

    def member_bundle(self, member: str, key: SigningKey, now: datetime) -> dict[str, Any]:
        """A member's proof bundle, the request signed with the member's own key (RFC 9421)."""
        path = f"{API}/members/{quote(member)}/bundle"
        fields = sign_request("GET", f"{self.url}{path}", [], b"", key, now)
        bundle = self.get(path, headers=fields)
        if not isinstance(bundle, dict):
            raise InputError("log_url", Rule.LOG_URL_MUST_ANSWER, "the bundle is not a JSON object")
        return bundle

    def close(self) -> None:
        """Close the connections."""
        self.http.close()
