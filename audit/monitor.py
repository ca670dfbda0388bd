"""`audit monitor`: follow a log's published checkpoints over time and keep the evidence if it ever forks.

Each checkpoint newer than the last one the monitor accepted (its own state file) must be signed by the log key and
consistent with that last one — checked with a consistency proof the log serves and the RFC 9162 algorithm — before
it is accepted. Two checkpoints that cannot both be true are written, with the failing proof, to the evidence file.
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
    """What one pass saw."""

    accepted: list[int] = field(default_factory=list)
    problem: str | None = None


def monitor_once(follower: CheckpointFollower, log: PublishedCheckpoints, log_key: Verifier) -> MonitorRun:
    """Check every stored checkpoint newer than the last accepted, in order; stop at the first problem."""
    run = MonitorRun()
    last = follower.last_accepted()
    last_size = Checkpoint.parse(split_note(last)[0]).size if last else -1
    for stored in log.all():
        if stored.size <= last_size:
            continue
        try:
            checkpoint = follower.check(stored.note, log_key, log.log.consistency_proof)
        except (ForkError, WitnessRefusedError) as error:
            run.problem = str(error)
            return run
        follower.accept(stored.note, checkpoint)
        run.accepted.append(checkpoint.size)
    return run
