"""The log's side of C2SP tlog-witness: push each new checkpoint to the configured witnesses, store their
cosignatures.

For each witness (`LEDGER_WITNESSES`) the client sends `old <size>`, the consistency proof from that size, and the
signed checkpoint. The old size is the size the witness last cosigned, as far as this client knows (0 at first);
a 409 answer carries the witness's real size (`text/x.tlog.size`), and the request is sent once more from it. A
witness ahead of this checkpoint is left alone. Each cosignature returned is verified with the witness's key before
`CheckpointLog.add_cosignature` stores it (once per witness). A witness that refuses, fails or cannot be reached is
reported, never raised: the log keeps publishing, and the next push catches the witness up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from ledger.config import WitnessEndpoint
from ledger.log.checkpoints import CheckpointLog, StoredCheckpoint
from ledger.log.note import NoteError
from ledger.log.witness import AddCheckpoint

TLOG_SIZE = "text/x.tlog.size"


@dataclass(frozen=True)
class PushResult:
    """What one push achieved: the witnesses that cosigned the checkpoint, and why the others did not."""

    size: int
    cosigned: tuple[str, ...]
    refused: tuple[tuple[str, str], ...]
    """(witness name, what went wrong)."""


class WitnessUnavailableError(Exception):
    """A witness did not cosign: its answer, or why there was none."""


class WitnessClient:
    """Pushes checkpoints of one log to its witnesses over HTTP."""

    def __init__(self, checkpoints: CheckpointLog, witnesses: Sequence[WitnessEndpoint], *,
                 timeout_seconds: float = 10.0, http: httpx.Client | None = None) -> None:
        self.checkpoints = checkpoints
        self.witnesses = tuple(witnesses)
        self.http = http or httpx.Client(timeout=timeout_seconds)
        self._known_sizes: dict[str, int] = {}

    def push(self, stored: StoredCheckpoint | None = None) -> PushResult:
        """Ask every witness to cosign `stored` (default: the latest checkpoint) and store the cosignatures."""
        target = stored or self.checkpoints.latest()
        if target is None:
            return PushResult(0, (), ())
        cosigned: list[str] = []
        refused: list[tuple[str, str]] = []
        for witness in self.witnesses:
            try:
                target = self._push_one(witness, target)
                cosigned.append(witness.verifier.name)
            except WitnessUnavailableError as error:
                refused.append((witness.verifier.name, str(error)))
        return PushResult(target.size, tuple(cosigned), tuple(refused))

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def _push_one(self, witness: WitnessEndpoint, stored: StoredCheckpoint) -> StoredCheckpoint:
        old_size = self._known_sizes.get(witness.url, 0)
        response = self._send(witness, stored, old_size)
        if response.status_code == 409 and response.headers.get("content-type", "").startswith(TLOG_SIZE):
            old_size = _size(response.text)  # the witness's own latest size: one more try from there
            response = self._send(witness, stored, old_size)
        if response.status_code != 200:
            raise WitnessUnavailableError(f"HTTP {response.status_code}: {response.text.strip()[:300]}")
        try:
            updated = self.checkpoints.add_cosignature(stored.size, stored.note + response.text, witness.verifier)
        except (NoteError, ValueError) as error:
            raise WitnessUnavailableError(f"the cosignature returned does not verify: {error}") from None
        self._known_sizes[witness.url] = stored.size
        return updated

    def _send(self, witness: WitnessEndpoint, stored: StoredCheckpoint, old_size: int) -> httpx.Response:
        if old_size > stored.size:
            raise WitnessUnavailableError(f"the witness has cosigned a larger tree ({old_size})")
        try:
            proof = self.checkpoints.log.consistency_proof(old_size, stored.size) if 0 < old_size < stored.size \
                else []
        except ValueError as error:
            raise WitnessUnavailableError(f"no consistency proof from the witness's size: {error}") from None
        body = AddCheckpoint(old_size, tuple(proof), stored.note).encode()
        try:
            return self.http.post(f"{witness.url}/add-checkpoint", content=body)
        except httpx.HTTPError as error:
            raise WitnessUnavailableError(f"unreachable: {error}") from None


def _size(text: str) -> int:
    value = text.strip()
    if not value.isascii() or not value.isdigit():
        raise WitnessUnavailableError(f"a 409 answer without a tree size ({text[:40]!r})")
    return int(value)
