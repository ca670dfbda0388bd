"""`audit monitor`: follow a log's published checkpoints over time and keep the evidence if it ever forks.

Every published checkpoint must be signed by the log key and consistent with every checkpoint the monitor accepted
before (its own state file): a larger one by a consistency proof from the last accepted, a smaller one by a proof up
to it — both checked with proofs the log serves and the RFC 9162 algorithm — and one of a size the monitor has
already seen by carrying the same root. A second checkpoint of a seen size with another root is a fork, as is any
failing proof: both signed checkpoints are written, with the proof, to the evidence file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.log.checkpoints import StoredCheckpoint
from ledger.log.note import Checkpoint, Verifier, split_note
from ledger.log.witness import CheckpointFollower, ForkError, WitnessRefusedError


class ProofSource(Protocol):
    """Where consistency proofs come from: the log's stored tree, or its public endpoints."""

    def consistency_proof(self, old_size: int, size: int) -> list[bytes]:
        """The consistency proof between two sizes."""
        ...


class PublishedCheckpoints(Protocol):
    """A log's published checkpoints and its proofs: `CheckpointLog`, or `audit.remote.RemoteLog` over a URL."""

    @property
    def log(self) -> ProofSource:
        """The tree the checkpoints sign."""
        ...

    def all(self) -> Sequence[StoredCheckpoint]:
        """Every published checkpoint, smallest first."""
        ...


@dataclass
class MonitorRun:
    """What one pass saw: the sizes newly accepted, and the first problem (a fork is one)."""

    accepted: list[int] = field(default_factory=list)
    problem: str | None = None
    fork: bool = False


def monitor_once(follower: CheckpointFollower, log: PublishedCheckpoints, log_key: Verifier) -> MonitorRun:
    """Check every stored checkpoint not yet accepted with the same root, in order; stop at the first problem."""
    run = MonitorRun()
    try:
        for stored in log.all():
            seen = follower.seen(stored.size)
            if seen is not None and Checkpoint.parse(split_note(seen)[0]) == stored.checkpoint:
                continue
            try:
                checkpoint = follower.check(stored.note, log_key, log.log.consistency_proof)
            except WitnessRefusedError as error:
                run.problem, run.fork = str(error), isinstance(error, ForkError)
                return run
            follower.accept(stored.note, checkpoint, save=False)
            run.accepted.append(checkpoint.size)
    finally:
        if run.accepted:
            follower.save()
    return run
