"""Batch signing in worker processes, so that a batch's Ed25519 signatures are made on the other cores.

Signing is about a fifth of the cost of appending a signed event. A thread cannot take it over: it needs the
interpreter lock between signatures and gets it back only at the interpreter's switch interval (measured: about
1,400 signatures a second while the main thread runs Python code). In batch mode the application hands each new event's
hash to a `BatchSigner` as soon as the command that recorded it has passed every rule; the signer sends
the hashes in chunks to worker processes (`python -m ledger.signing`), which sign while the batch's next commands
run, and the mapper takes each event's signature from it when the batch is saved. What was never sent (the last
partial chunk, or everything when no worker runs) is signed in this process. The signature is the same either
way: Ed25519 is deterministic, and the worker signs exactly `EVENT_SIGNATURE_PREFIX + event_hash` with
`ledger.keys.ed25519_sign`.

A worker holds the private keys it was sent over its own pipe (stdin), in memory only. If a worker fails, the
signer stops using workers and signs what is missing itself, so a batch never depends on a worker.

Pipe protocol (binary, one worker per pipe pair): requests on stdin are `K` + key id (16 ASCII bytes) + the
64-byte secret key (`SigningKey.secret_key`), or `S` + count (4 bytes, big-endian) + count x (key id + 32-byte
event hash); for each `S` the worker writes count x 64-byte signatures to stdout, in order. At most
`MAX_CHUNKS_IN_FLIGHT` chunks are unanswered per worker, so neither pipe fills while the other waits (no deadlock).
"""

from __future__ import annotations

import base64
import struct
import subprocess
import sys
from collections import deque
from dataclasses import dataclass, field
from typing import IO

from ledger.keys import EVENT_SIGNATURE_PREFIX, SigningKey, ed25519_sign

CHUNK_EVENTS = 64
"""Hashes per request: large enough to make a pipe round trip negligible, small enough that the last partial chunk
of a batch, which this process signs, is short."""
MAX_CHUNKS_IN_FLIGHT = 8
"""Unanswered chunks per worker (8 x 64 signatures = 32 KiB, under a pipe's 64 KiB buffer)."""
_KEY_ID_BYTES = 16
_HASH_BYTES = 32
_SIGNATURE_BYTES = 64
_SECRET_KEY_BYTES = 64


class SigningWorkerError(RuntimeError):
    """A signing worker stopped answering or answered with something other than signatures."""


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) != size:
        raise SigningWorkerError(f"signing worker: expected {size} bytes, got {0 if data is None else len(data)}")
    return data


def serve(requests: IO[bytes], responses: IO[bytes]) -> None:
    """The worker's loop: read key and sign requests until the pipe closes."""
    keys: dict[bytes, bytes] = {}
    while True:
        kind = requests.read(1)
        if not kind:
            return
        if kind == b"K":
            key_id = _read_exactly(requests, _KEY_ID_BYTES)
            keys[key_id] = _read_exactly(requests, _SECRET_KEY_BYTES)
        elif kind == b"S":
            (count,) = struct.unpack(">I", _read_exactly(requests, 4))
            body = _read_exactly(requests, count * (_KEY_ID_BYTES + _HASH_BYTES))
            signatures = bytearray()
            for offset in range(0, len(body), _KEY_ID_BYTES + _HASH_BYTES):
                key = keys[body[offset:offset + _KEY_ID_BYTES]]
                event_hash = body[offset + _KEY_ID_BYTES:offset + _KEY_ID_BYTES + _HASH_BYTES]
                signatures += ed25519_sign(key, EVENT_SIGNATURE_PREFIX + event_hash)
            responses.write(signatures)
            responses.flush()
        else:
            raise SigningWorkerError(f"signing worker: unknown request {kind!r}")


@dataclass
class _Worker:
    """One worker process, the keys it was sent, and its unanswered chunks."""

    process: subprocess.Popen[bytes]
    sent_keys: set[str] = field(default_factory=set)
    in_flight: deque[int] = field(default_factory=deque)
    """Sizes of the chunks sent and not yet answered, oldest first."""

    @classmethod
    def start(cls) -> _Worker:
        process = subprocess.Popen([sys.executable, "-m", "ledger.signing"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, close_fds=True)
        return cls(process)

    def send(self, chunk: list[tuple[SigningKey, bytes]]) -> None:
        assert self.process.stdin is not None
        message = bytearray()
        for key, _ in chunk:
            if key.key_id not in self.sent_keys:
                message += b"K" + key.key_id.encode("ascii") + key.secret_key
                self.sent_keys.add(key.key_id)
        message += b"S" + struct.pack(">I", len(chunk))
        for key, event_hash in chunk:
            message += key.key_id.encode("ascii") + event_hash
        self.process.stdin.write(message)
        self.process.stdin.flush()
        self.in_flight.append(len(chunk))

    def receive(self) -> list[bytes]:
        """The signatures of the oldest unanswered chunk."""
        assert self.process.stdout is not None
        count = self.in_flight.popleft()
        data = _read_exactly(self.process.stdout, count * _SIGNATURE_BYTES)
        return [data[i:i + _SIGNATURE_BYTES] for i in range(0, len(data), _SIGNATURE_BYTES)]

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)


class BatchSigner:
    """Event signatures for one batch at a time, made by worker processes where possible (module docstring)."""

    def __init__(self, workers: int) -> None:
        self.worker_count = workers
        self._workers: list[_Worker] = []
        self._chunk: list[tuple[SigningKey, bytes]] = []
        self._chunk_ids: list[int] = []
        self._routes: deque[tuple[_Worker, list[int]]] = deque()
        """Chunks sent, oldest first: the worker and the ids of the events whose hashes it holds."""
        self._signatures: dict[int, str] = {}
        self._next_worker = 0

    def begin(self) -> None:
        """Forget the previous batch (its answers are read and dropped, to keep the pipes in step)."""
        self._drain(keep=False)
        self._chunk, self._chunk_ids, self._signatures = [], [], {}

    def submit(self, event_id: int, key: SigningKey, event_hash: bytes) -> None:
        """Ask for the signature of an event (`event_id`: the event object's `id()`, alive until the batch is
        saved) by `key` over `event_hash`."""
        if self.worker_count == 0:
            return
        self._chunk.append((key, event_hash))
        self._chunk_ids.append(event_id)
        if len(self._chunk) >= CHUNK_EVENTS:
            self._send()

    def finish(self) -> None:
        """Before the batch is saved: sign the last partial chunk here while the workers finish theirs, then
        collect their answers."""
        for event_id, (key, event_hash) in zip(self._chunk_ids, self._chunk, strict=True):
            self._signatures[event_id] = key.sign(event_hash)
        self._chunk, self._chunk_ids = [], []
        self._drain(keep=True)

    def signature(self, event_id: int) -> str | None:
        """The base64 signature made for a submitted event, or None when this process must sign it (it was not
        submitted, or its worker failed)."""
        return self._signatures.pop(event_id, None)

    def close(self) -> None:
        """Stop the workers."""
        for worker in self._workers:
            try:
                worker.stop()
            except (OSError, subprocess.TimeoutExpired):
                worker.process.kill()
        self._workers, self._routes = [], deque()
        self.worker_count = 0

    def _send(self) -> None:
        chunk, ids = self._chunk, self._chunk_ids
        self._chunk, self._chunk_ids = [], []
        try:
            if not self._workers:
                self._workers = [_Worker.start() for _ in range(self.worker_count)]
            worker = self._workers[self._next_worker % len(self._workers)]
            self._next_worker += 1
            if len(worker.in_flight) >= MAX_CHUNKS_IN_FLIGHT:
                self._drain(keep=True, until=worker)
            worker.send(chunk)
        except (OSError, SigningWorkerError):
            self._fail()
            return
        self._routes.append((worker, ids))

    def _drain(self, keep: bool, until: _Worker | None = None) -> None:
        """Read answers oldest first: all of them, or until `until` has room for another chunk."""
        try:
            while self._routes and (until is None or len(until.in_flight) >= MAX_CHUNKS_IN_FLIGHT):
                worker, ids = self._routes.popleft()
                signatures = worker.receive()
                if keep:
                    for event_id, signature in zip(ids, signatures, strict=True):
                        self._signatures[event_id] = base64.b64encode(signature).decode("ascii")
        except (OSError, SigningWorkerError, ValueError):
            self._fail()

    def _fail(self) -> None:
        """A worker broke: stop using workers; what they did not answer is signed in this process."""
        for worker in self._workers:
            worker.process.kill()
        self._workers, self._routes = [], deque()
        self.worker_count = 0


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
