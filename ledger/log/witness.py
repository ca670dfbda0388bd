"""Witnesses: custodians and regulators countersign the operator's checkpoints, never two forks.

A witness keeps its own state — the last checkpoint it cosigned — in a file of its own. To cosign a new
checkpoint it (1) verifies the operator's signature with the log's verifier key, (2) refuses a smaller tree, (3)
fetches a consistency proof from its last cosigned size and verifies it against both roots, and only then (4) adds
a tlog-cosignature/v1 line. When the proof fails — two signed checkpoints that cannot both be true — it refuses and
writes the evidence (both signed checkpoints and the failing proof) to a file anyone can check.

`WitnessPolicy` decides whether a checkpoint carries enough cosignatures, naming those present and those missing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.log.merkle import ProofError, verify_consistency
from ledger.log.note import (
    COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    add_signature,
    cosign_line,
    verify_cosignature,
    verify_note,
)


def witness_name(key_name: str, origin: str) -> str:
    """The name a witness cosigns under: its key's name joined to the log's origin, dots for slashes."""
    return f"{key_name}.{origin}".replace("/", ".")


ProofSource = Callable[[int, int], list[bytes]]
"""Fetches the log's consistency proof between two sizes."""


class ForkError(Exception):
    """Two signed checkpoints are inconsistent; the evidence was written to `evidence_path`."""

    def __init__(self, message: str, evidence_path: Path) -> None:
        super().__init__(f"{message}; evidence written to {evidence_path}")
        self.evidence_path = evidence_path


class WitnessRefusedError(Exception):
    """The witness will not cosign (bad signature, a shrinking tree)."""


@dataclass
class CheckpointFollower:
    """Follows one log's checkpoints with its own state file (the last checkpoint accepted): each new one must be
    signed by the log key, not smaller, and consistent with the last; a fork leaves evidence in a file."""

    state_path: Path
    evidence_path: Path
    name: str = "follower"

    def last_accepted(self) -> str | None:
        """The last checkpoint note accepted."""
        if not self.state_path.exists():
            return None
        return str(json.loads(self.state_path.read_text())["checkpoint"])

    def check(self, note: str, log_key: Verifier, proofs: ProofSource) -> Checkpoint:
        """Verify `note` against the last accepted checkpoint (raises WitnessRefusedError or ForkError)."""
        try:
            text = verify_note(note, log_key)
        except NoteError as error:
            raise WitnessRefusedError(f"the operator's signature does not verify: {error}") from None
        new = Checkpoint.parse(text)
        previous_note = self.last_accepted()
        if previous_note is not None:
            previous = Checkpoint.parse(verify_note(previous_note, log_key))
            if new.origin != previous.origin:
                raise WitnessRefusedError(f"origin changed from {previous.origin} to {new.origin}")
            if new.size < previous.size:
                raise WitnessRefusedError(f"the tree shrank from {previous.size} to {new.size}")
            proof: list[bytes] = []
            try:
                if new.size == previous.size:
                    verify_consistency(previous.size, new.size, previous.root, new.root, [])
                elif previous.size > 0:
                    proof = proofs(previous.size, new.size)
                    verify_consistency(previous.size, new.size, previous.root, new.root, proof)
            except ProofError as error:
                self.write_evidence(previous_note, note, proof, str(error))
                raise ForkError(f"checkpoints {previous.size} and {new.size} are inconsistent ({error})",
                                self.evidence_path) from None
        return new

    def accept(self, note: str, checkpoint: Checkpoint) -> None:
        """Remember a checked checkpoint as the last accepted."""
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        self.state_path.write_text(json.dumps({"checkpoint": note, "size": checkpoint.size}, indent=2) + "\n")

    def write_evidence(self, old_note: str, new_note: str, proof: Sequence[bytes], error: str) -> None:
        """Both signed checkpoints and the failing proof, as JSON."""
        self.evidence_path.parent.mkdir(parents=True, exist_ok=True)
        self.evidence_path.write_text(json.dumps({
            "kind": "inconsistent checkpoints",
            "observer": self.name,
            "older_checkpoint": old_note,
            "newer_checkpoint": new_note,
            "consistency_proof": [base64.b64encode(p).decode() for p in proof],
            "failure": error,
        }, indent=2) + "\n")


class Witness(CheckpointFollower):
    """A follower that also cosigns: its state is the last checkpoint it cosigned."""

    def __init__(self, signer: Signer, state_path: Path, evidence_path: Path) -> None:
        super().__init__(state_path, evidence_path, signer.verifier(COSIGNATURE_V1).encode())
        self.signer = signer

    @property
    def verifier(self) -> Verifier:
        """The witness's cosignature verifier key (type 0x04)."""
        return self.signer.verifier(COSIGNATURE_V1)

    def last_cosigned(self) -> str | None:
        """The last checkpoint note this witness cosigned."""
        return self.last_accepted()

    def cosign(self, note: str, log_key: Verifier, proofs: ProofSource, timestamp: int) -> str:
        """Check `note` against the last cosigned checkpoint and return it with this witness's cosignature."""
        checkpoint = self.check(note, log_key, proofs)
        cosigned = add_signature(note, cosign_line(checkpoint.text(), self.signer, timestamp))
        self.accept(note, checkpoint)
        return cosigned


@dataclass(frozen=True)
class PolicyResult:
    """Which required cosignatures a checkpoint carries."""

    present: tuple[str, ...]
    missing: tuple[str, ...]
    satisfied: bool


@dataclass(frozen=True)
class WitnessPolicy:
    """A checkpoint is trusted once it carries valid cosignatures from at least `threshold` of `witnesses`."""

    witnesses: tuple[Verifier, ...]
    threshold: int

    def evaluate(self, note: str) -> PolicyResult:
        """Check every required witness's cosignature on `note`."""
        present, missing = [], []
        for witness in self.witnesses:
            try:
                verify_cosignature(note, Verifier(witness.name, witness.public_key, COSIGNATURE_V1))
                present.append(witness.name)
            except NoteError:
                missing.append(witness.name)
        return PolicyResult(tuple(present), tuple(missing), len(present) >= self.threshold)
