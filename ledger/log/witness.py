"""Witnesses: custodians and regulators countersign the operator's checkpoints, and never two inconsistent ones.

One witness core (`Witness`) serves every way of witnessing — the HTTP service of C2SP tlog-witness
(`ledger/api/witness.py`) and a witness that pulls the latest checkpoint from a store it can read. Its state is
durable: a SQLite file in the witness's own directory holding, for each log origin, the latest checkpoint it
cosigned with the cosignature it returned, every checkpoint it ever cosigned, and the fork evidence it kept.

`add-checkpoint` (C2SP tlog-witness, §add-checkpoint) is checked in the spec's order, and the check of the old size
against the stored state and the storing of the new checkpoint happen in one write transaction:

1. the request parses (`old <size>`, at most 63 base64 proof hashes, a blank line, a signed checkpoint) — else 400;
2. the origin is one whose log key the witness trusts — else 404;
3. the checkpoint carries a valid signature by a trusted key of that origin, and no failing one — else 403;
4. the old size is not larger than the checkpoint's — else 400; a checkpoint of size 0 has the empty tree's root —
   else 422;
5. a checkpoint whose size the witness already cosigned under another root is a fork: the evidence is kept (both
   signed checkpoints), and the request refused (409 or 422 below);
6. the old size equals the size of the latest checkpoint cosigned for the origin (0 if none) — else 409 with that
   size;
7. the consistency proof from the old size verifies (RFC 9162 §2.1.4.2; empty from 0; equal roots at equal sizes)
   — else 422, and the evidence (both signed checkpoints and the failing proof) is kept;
8. the checkpoint is the latest already cosigned: the stored cosignature is returned again, never a second one;
   otherwise a tlog-cosignature/v1 line (Ed25519, type 0x04, with a timestamp) is made, stored, and returned.

A witness key is a custodian's or a regulator's: `witness_signer` refuses a key of any operator role, and the core
refuses a key that is one of the log keys it trusts.

`CheckpointFollower` is the monitor's side: it follows one log's checkpoints with its own state file and treats a
checkpoint inconsistent with any it has seen — one whose consistency proof to or from the last accepted fails, or a
second one of a size it has seen with another root — as a fork, writing the evidence. `WitnessPolicy` decides
whether a checkpoint carries enough cosignatures.

Errors: `WitnessRefusedError` (with the tlog-witness HTTP status on each subclass: `MalformedRequestError` 400,
`UntrustedCheckpointError` 403, `UnknownOriginError` 404, `StaleCheckpointError` 409, `UnprovenCheckpointError` 422 and
its `ForkError`), `WitnessKeyError` for a key that may not witness, and `WitnessStateError` for a state file that
cannot be used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import InputError, RefusedError
from ledger.keys import SigningKey
from ledger.log.merkle import EMPTY_ROOT, ProofError, verify_consistency
from ledger.log.note import (
    COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    add_signature,
    cosign_line,
    line_signer,
    split_note,
    verify_cosignature,
    verify_note,
)
from ledger.rules import Rule


def witness_name(key_name: str, origin: str) -> str:
    """The name a witness cosigns under: its key's name joined to the log's origin, dots for slashes."""
    return f"{key_name}.{origin}".replace("/", ".")


ProofSource = Callable[[int, int], list[bytes]]
"""Fetches the log's consistency proof between two sizes."""

WITNESS_ROLES = frozenset({"custodian", "regulator"})
"""The roles whose keys may witness: never the operator's (its root, operator or log keys)."""
MAX_PROOF_LINES = 63
"""tlog-witness: a client sends at most 63 consistency proof lines."""
_SIZE = re.compile(r"0|[1-9][0-9]*")


class WitnessKeyError(InputError):
    """The key may not witness: it belongs to one of the operator's roles, or it is a log key the witness trusts."""

    def __init__(self, detail: str) -> None:
        super().__init__("key", Rule.WITNESS_KEY_MUST_BE_A_CUSTODIANS_OR_REGULATORS, detail)


class WitnessStateError(InputError):
    """The witness's state file is not a witness database, or cannot be read or written."""

    def __init__(self, detail: str) -> None:
        super().__init__("state", Rule.STATE_FILE_MUST_BE_VALID, detail)


class WitnessRefusedError(RefusedError):
    """The witness will not cosign; `status` is the HTTP status C2SP tlog-witness gives the refusal."""

    status = 400


class MalformedRequestError(WitnessRefusedError):
    """The request is not an add-checkpoint body, or its old size exceeds the checkpoint's size."""

    status = 400


class UntrustedCheckpointError(WitnessRefusedError):
    """No valid signature by a trusted log key, or a trusted key's signature fails to verify."""

    status = 403


class UnknownOriginError(WitnessRefusedError):
    """The witness trusts no key for the checkpoint's origin."""

    status = 404


class StaleCheckpointError(WitnessRefusedError):
    """The old size is not the size of the latest checkpoint cosigned for the origin (`latest_size`)."""

    status = 409

    def __init__(self, latest_size: int, old_size: int) -> None:
        super().__init__("old", Rule.WITNESS_OLD_SIZE_MUST_BE_THE_LATEST_COSIGNED,
                         f"the latest checkpoint cosigned has size {latest_size}, not {old_size}")
        self.latest_size = latest_size


class UnprovenCheckpointError(WitnessRefusedError):
    """The checkpoint is not shown consistent with the latest one cosigned (a bad or missing proof)."""

    status = 422


class ForkError(UnprovenCheckpointError):
    """Two signed checkpoints of one origin are inconsistent; `evidence` holds both and the failing proof."""

    def __init__(self, detail: str, evidence: dict[str, Any], evidence_path: Path | None = None) -> None:
        where = f"; evidence written to {evidence_path}" if evidence_path is not None else "; evidence kept"
        super().__init__("checkpoint", Rule.CHECKPOINT_MUST_BE_CONSISTENT_WITH_EVERY_CHECKPOINT_SEEN, detail + where)
        self.evidence = evidence
        self.evidence_path = evidence_path


def witness_signer(key: SigningKey, name: str, operator_keys: Iterable[bytes] = ()) -> Signer:
    """The cosigning identity of a custodian's or regulator's key under `name`; refuses a key of any operator
    role, and a key whose raw public key is one of `operator_keys` (the root key, the log key …)."""
    if key.role not in WITNESS_ROLES:
        raise WitnessKeyError(f"{key.name!r} is a key of role {key.role!r}; a witness key belongs to a "
                              "custodian or a regulator, never to the operator")
    if key.public_raw in set(operator_keys):
        raise WitnessKeyError(f"{key.name!r} is one of the operator's keys and may not witness")
    return Signer(name, key.private_key)


STATE_FILE = "witness.sqlite3"
"""The witness's state, in its own directory."""
EVIDENCE_FILE = "fork-evidence.json"
"""The latest fork evidence as a file, beside the state (every one is also kept in the state and served)."""


def open_witness(directory: Path, key: SigningKey, name: str, log_keys: Sequence[Verifier],
                 operator_keys: Iterable[bytes] = ()) -> Witness:
    """The witness of a custodian's or regulator's `key`, with its state in `directory`: refuses (before anything
    is written) a key of an operator role or one of `operator_keys` or of the log keys it is to trust."""
    signer = witness_signer(key, name, [*operator_keys, *(log_key.public_key for log_key in log_keys)])
    return Witness(signer, directory / STATE_FILE, directory / EVIDENCE_FILE, log_keys=log_keys)


@dataclass(frozen=True)
class AddCheckpoint:
    """An add-checkpoint request body (C2SP tlog-witness, §add-checkpoint)."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str

    def encode(self) -> bytes:
        """`old <size>`, one base64 hash per line, a blank line, then the signed checkpoint."""
        lines = [f"old {self.old_size}", *(base64.b64encode(h).decode() for h in self.proof)]
        return ("\n".join(lines) + "\n\n" + self.note).encode()

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpoint:
        """Parse a request body strictly (every line ends in a newline; sizes without leading zeros)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedRequestError("body", Rule.WITNESS_REQUEST_MUST_BE_UTF8, "the request is not UTF-8") from None
        head, separator, note = text.partition("\n\n")
        lines = head.split("\n")
        if not separator or not lines[0].startswith("old "):
            raise MalformedRequestError("body", Rule.WITNESS_REQUEST_MUST_BE_OLD_SIZE_PROOF_AND_CHECKPOINT,
                                        "must be an old size line, proof lines, a blank line and a checkpoint")
        size_text = lines[0][4:]
        if not _SIZE.fullmatch(size_text):
            raise MalformedRequestError("old", Rule.WITNESS_OLD_SIZE_MUST_BE_A_PLAIN_DECIMAL,
                                        f"must be a decimal without leading zeros ({size_text!r})")
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise MalformedRequestError("proof", Rule.WITNESS_PROOF_MUST_HAVE_AT_MOST_63_LINES,
                                        f"{len(lines) - 1} proof lines")
        return cls(int(size_text), tuple(_proof_hash(line) for line in lines[1:]), note)


def _proof_hash(line: str) -> bytes:
    try:
        value = base64.b64decode(line, validate=True)
    except binascii.Error:
        raise MalformedRequestError("proof", Rule.WITNESS_PROOF_MUST_BE_BASE64_HASHES,
                                    "a proof line is not base64") from None
    if len(value) != 32:
        raise MalformedRequestError("proof", Rule.WITNESS_PROOF_MUST_BE_BASE64_HASHES, "a proof hash is not 32 bytes")
    return value


def fork_evidence(observer: str, older: str, newer: str, proof: Sequence[bytes], failure: str) -> dict[str, Any]:
    """Evidence anyone can check: both signed checkpoints, the proof that failed between them, and why."""
    return {
        "kind": "inconsistent checkpoints",
        "observer": observer,
        "older_checkpoint": older,
        "newer_checkpoint": newer,
        "consistency_proof": [base64.b64encode(p).decode() for p in proof],
        "failure": failure,
    }


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a crash leaves the old file or the new one, never a mix: a temporary file
    in the same directory, flushed to disk, renamed over the target, and the directory entry flushed too."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass(frozen=True)
class Cosigned:
    """The latest checkpoint a witness cosigned for one origin: the note as the log signed it, and the
    cosignature line the witness returned for it."""

    origin: str
    size: int
    root: bytes
    note: str
    cosignature: str
    timestamp: int

    @property
    def cosigned_note(self) -> str:
        """The checkpoint with the log's signature and this witness's cosignature (tlog-witness §Monitor
        Retrieval Mechanism)."""
        return add_signature(self.note, self.cosignature)


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS latest (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL, "
    "note TEXT NOT NULL, cosignature TEXT NOT NULL, timestamp INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cosigned (origin TEXT NOT NULL, size INTEGER NOT NULL, root BLOB NOT NULL, "
    "note TEXT NOT NULL, PRIMARY KEY (origin, size))",
    "CREATE TABLE IF NOT EXISTS evidence (id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL, "
    "recorded_at INTEGER NOT NULL, pair TEXT NOT NULL UNIQUE, document TEXT NOT NULL)",
)


class Witness:
    """The witness core: checks and cosigns checkpoints against its durable state (see the module docstring)."""

    def __init__(self, signer: Signer, state_path: Path, evidence_path: Path | None = None, *,
                 log_keys: Sequence[Verifier] = (), clock: Callable[[], float] = time.time) -> None:
        """`state_path` is the witness's SQLite file; `evidence_path`, if given, also receives each fork's
        evidence as a JSON file; `log_keys` are the log keys it trusts (their names are the logs' origins)."""
        self.signer = signer
        self.state_path = state_path
        self.evidence_path = evidence_path
        self.log_keys = tuple(log_keys)
        self.clock = clock
        self._refuse_log_keys(self.log_keys)
        state_path.parent.mkdir(parents=True, exist_ok=True)
        with self._transaction() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)

    @property
    def verifier(self) -> Verifier:
        """The witness's cosignature verifier key (type 0x04)."""
        return self.signer.verifier(COSIGNATURE_V1)

    @property
    def name(self) -> str:
        """The name the witness cosigns under."""
        return self.signer.name

    # -- the two ways in ---------------------------------------------------------------------------------

    def add_checkpoint(self, request: AddCheckpoint) -> str:
        """tlog-witness add-checkpoint with the configured log keys: the cosignature line(s) to return."""
        return self._add(request, self.log_keys)

    def cosign(self, note: str, log_key: Verifier, proofs: ProofSource, timestamp: int | None = None) -> str:
        """Pull mode: cosign `note` of a log this witness reads itself, fetching the consistency proof from the
        latest checkpoint it cosigned; returns the note with the cosignature added."""
        self._refuse_log_keys([log_key])
        try:
            checkpoint = Checkpoint.parse(split_note(note)[0])
        except NoteError as error:
            raise MalformedRequestError("checkpoint", Rule.CHECKPOINT_MUST_BE_A_SIGNED_NOTE, str(error)) from None
        latest = self.latest(checkpoint.origin)
        old_size = 0 if latest is None else latest.size
        proof = proofs(old_size, checkpoint.size) if 0 < old_size < checkpoint.size else []
        line = self._add(AddCheckpoint(old_size, tuple(proof), note), [log_key], timestamp)
        return note if line in split_note(note)[1] else add_signature(note, line)

    # -- reading the state -------------------------------------------------------------------------------

    def latest(self, origin: str) -> Cosigned | None:
        """The latest checkpoint cosigned for `origin`."""
        with self._transaction(write=False) as connection:
            return self._latest_in(connection, origin)

    def latest_all(self) -> list[Cosigned]:
        """The latest checkpoint cosigned for every origin."""
        with self._transaction(write=False) as connection:
            rows = connection.execute("SELECT origin, size, root, note, cosignature, timestamp FROM latest "
                                      "ORDER BY origin").fetchall()
        return [Cosigned(r[0], r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]

    def evidence(self) -> list[dict[str, Any]]:
        """Every fork evidence kept, oldest first, each with its `id` and `recorded_at`."""
        with self._transaction(write=False) as connection:
            rows = connection.execute("SELECT id, recorded_at, document FROM evidence ORDER BY id").fetchall()
        return [{"id": row[0], "recorded_at": row[1], **json.loads(row[2])} for row in rows]

    # -- the procedure -----------------------------------------------------------------------------------

    def _add(self, request: AddCheckpoint, log_keys: Sequence[Verifier], timestamp: int | None = None) -> str:
        """Steps 1–8 of the module docstring; the state is read and written in one write transaction, and the
        evidence of a fork is committed even though the request is refused."""
        checkpoint, note = self._verified(request, log_keys)  # (1)–(3)
        if request.old_size > checkpoint.size:  # (4)
            raise MalformedRequestError("old", Rule.WITNESS_OLD_SIZE_MUST_NOT_EXCEED_THE_CHECKPOINT,
                                        f"old size {request.old_size} exceeds the checkpoint's {checkpoint.size}")
        if checkpoint.size == 0 and checkpoint.root != EMPTY_ROOT:
            raise UnprovenCheckpointError("checkpoint", Rule.EMPTY_TREE_MUST_HAVE_THE_EMPTY_ROOT,
                                          "a checkpoint of size 0 must carry SHA-256 of the empty string")
        refusal: WitnessRefusedError | None = None
        forks: list[ForkError] = []
        with self._transaction() as connection:
            try:
                line = self._check_and_cosign(connection, request, checkpoint, note, forks, timestamp)
            except WitnessRefusedError as error:
                refusal = error
            for fork in forks:  # the same pair of checkpoints is kept once, however often it is sent
                pair = hashlib.sha256(json.dumps([fork.evidence["older_checkpoint"],
                                                  fork.evidence["newer_checkpoint"]]).encode()).hexdigest()
                connection.execute("INSERT OR IGNORE INTO evidence (origin, recorded_at, pair, document) "
                                   "VALUES (?, ?, ?, ?)", (checkpoint.origin, int(self.clock()), pair,
                                                           json.dumps(fork.evidence, sort_keys=True)))
        if forks and self.evidence_path is not None:
            write_atomically(self.evidence_path, json.dumps(forks[-1].evidence, indent=2) + "\n")
        if refusal is not None:
            raise refusal
        return line

    def _check_and_cosign(self, connection: sqlite3.Connection, request: AddCheckpoint, checkpoint: Checkpoint,
                          note: str, forks: list[ForkError], timestamp: int | None) -> str:
        """(5)–(8) inside the write transaction; every fork found is appended to `forks` to be kept."""
        latest = self._latest_in(connection, checkpoint.origin)
        fork = self._same_size_fork(connection, request, checkpoint, note)  # (5)
        if fork is not None:
            forks.append(fork)
        latest_size = 0 if latest is None else latest.size
        if request.old_size != latest_size:  # (6)
            raise StaleCheckpointError(latest_size, request.old_size)
        if fork is not None:
            raise fork
        try:
            self._check_proof(request, checkpoint, note, latest)  # (7)
        except ForkError as error:
            forks.append(error)
            raise
        if latest is not None and latest.size == checkpoint.size:  # (8) the same checkpoint: the same cosignature
            return latest.cosignature
        moment = max(int(self.clock() if timestamp is None else timestamp), 1,
                     0 if latest is None else latest.timestamp)
        line = cosign_line(checkpoint.text(), self.signer, moment)
        connection.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?, ?, ?)",
                           (checkpoint.origin, checkpoint.size, checkpoint.root, note, line, moment))
        connection.execute("INSERT OR IGNORE INTO cosigned VALUES (?, ?, ?, ?)",
                           (checkpoint.origin, checkpoint.size, checkpoint.root, note))
        return line

    def _verified(self, request: AddCheckpoint, log_keys: Sequence[Verifier]) -> tuple[Checkpoint, str]:
        """(1)–(3): the parsed checkpoint and the note reduced to its text and the trusted log signatures."""
        try:
            text, _ = split_note(request.note)
            checkpoint = Checkpoint.parse(text)
        except NoteError as error:
            raise MalformedRequestError("checkpoint", Rule.CHECKPOINT_MUST_BE_A_SIGNED_NOTE, str(error)) from None
        keys = [key for key in log_keys if key.name == checkpoint.origin]
        if not keys:
            raise UnknownOriginError("origin", Rule.CHECKPOINT_ORIGIN_MUST_BE_A_LOG_THE_WITNESS_FOLLOWS,
                                     f"this witness follows no log of origin {checkpoint.origin!r}")
        return checkpoint, _trusted_note(request.note, text, keys)

    def _same_size_fork(self, connection: sqlite3.Connection, request: AddCheckpoint, checkpoint: Checkpoint,
                        note: str) -> ForkError | None:
        """(5): a checkpoint of a size already cosigned under another root is a fork (returned, not raised)."""
        row = connection.execute("SELECT root, note FROM cosigned WHERE origin = ? AND size = ?",
                                 (checkpoint.origin, checkpoint.size)).fetchone()
        if row is None or bytes(row[0]) == checkpoint.root:
            return None
        failure = f"two signed checkpoints of size {checkpoint.size} with different roots"
        return ForkError(failure, fork_evidence(self.name, str(row[1]), note, request.proof, failure),
                         self.evidence_path)

    def _check_proof(self, request: AddCheckpoint, checkpoint: Checkpoint, note: str,
                     latest: Cosigned | None) -> None:
        """(7): the consistency proof from the latest cosigned checkpoint (none from the empty tree)."""
        if latest is None or request.old_size == 0:
            if request.proof:
                raise UnprovenCheckpointError("proof", Rule.WITNESS_PROOF_MUST_BE_EMPTY_FROM_SIZE_0,
                                              "the empty tree needs no consistency proof")
            return
        try:
            verify_consistency(latest.size, checkpoint.size, latest.root, checkpoint.root, request.proof)
        except ProofError as error:
            failure = f"checkpoints {latest.size} and {checkpoint.size} are inconsistent ({error})"
            raise ForkError(failure, fork_evidence(self.name, latest.note, note, request.proof, failure),
                            self.evidence_path) from None

    def _refuse_log_keys(self, log_keys: Iterable[Verifier]) -> None:
        own = self.signer.verifier().public_key
        if any(key.public_key == own for key in log_keys):
            raise WitnessKeyError(f"the witness {self.name!r} holds a log key it is asked to trust; a log "
                                  "never witnesses itself")

    @staticmethod
    def _latest_in(connection: sqlite3.Connection, origin: str) -> Cosigned | None:
        row = connection.execute("SELECT origin, size, root, note, cosignature, timestamp FROM latest "
                                 "WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else Cosigned(row[0], row[1], bytes(row[2]), row[3], row[4], row[5])

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction on the state file: a write one takes the database's write lock first (BEGIN IMMEDIATE),
        so that checking the old size and storing the new checkpoint are one step for every process; it is
        flushed to disk (synchronous=FULL) before it returns."""
        try:
            with closing(sqlite3.connect(self.state_path, timeout=30, isolation_level=None)) as connection:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = FULL")
                connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield connection
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
                connection.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            raise WitnessStateError(f"{self.state_path} cannot be used as the witness's state ({error})"
                                    ) from None


def _trusted_note(note: str, text: str, keys: Sequence[Verifier]) -> str:
    """(3): the checkpoint text with the signatures of the trusted keys, each verified; signatures by unknown keys
    are ignored, a failing one by a trusted key refuses the note."""
    _, lines = split_note(note)
    try:
        signers = [line_signer(line) for line in lines]
    except NoteError as error:
        raise MalformedRequestError("checkpoint", Rule.CHECKPOINT_MUST_BE_A_SIGNED_NOTE, str(error)) from None
    kept = []
    for key in keys:
        matching = [line for line, signer in zip(lines, signers, strict=True) if signer == (key.name, key.hash)]
        for line in matching:
            try:
                verify_note(add_signature(text, line), key)
            except NoteError:
                raise UntrustedCheckpointError("checkpoint", Rule.CHECKPOINT_TRUSTED_SIGNATURES_MUST_VERIFY,
                                               f"the signature by {key.name} does not verify") from None
        kept.extend(matching)
    if not kept:
        raise UntrustedCheckpointError("checkpoint", Rule.CHECKPOINT_MUST_BE_SIGNED_BY_A_TRUSTED_LOG_KEY,
                                       "no signature by a log key this witness trusts")
    note_out = text
    for line in kept:
        note_out = add_signature(note_out, line)
    return note_out


class CheckpointFollower:
    """Follows one log's checkpoints with its own state file: every checkpoint must be signed by the log key and
    consistent with every one accepted before — a larger one by a consistency proof from the last accepted, a
    smaller one by a proof up to it, one of a size already seen by carrying the same root. A fork leaves its
    evidence in a file. The state (the last accepted checkpoint and every one seen, by size) is kept in memory and
    replaced atomically on disk by `accept` or `save`."""

    def __init__(self, state_path: Path, evidence_path: Path, name: str = "follower") -> None:
        self.state_path = state_path
        self.evidence_path = evidence_path
        self.name = name
        self._loaded: dict[str, Any] | None = None

    def _state(self) -> dict[str, Any]:
        if self._loaded is None:
            self._loaded = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
            seen = self._loaded.setdefault("seen", {})
            if "checkpoint" in self._loaded:  # a state file written before sizes were remembered
                seen.setdefault(str(self._loaded["size"]), self._loaded["checkpoint"])
        return self._loaded

    def last_accepted(self) -> str | None:
        """The last (largest) checkpoint note accepted."""
        note = self._state().get("checkpoint")
        return None if note is None else str(note)

    def seen(self, size: int) -> str | None:
        """The checkpoint note accepted at `size`, if any."""
        note = self._state()["seen"].get(str(size))
        return None if note is None else str(note)

    def check(self, note: str, log_key: Verifier, proofs: ProofSource) -> Checkpoint:
        """Verify `note` against the checkpoints accepted before (raises WitnessRefusedError or ForkError)."""
        try:
            new = Checkpoint.parse(verify_note(note, log_key))
        except NoteError as error:
            raise UntrustedCheckpointError("checkpoint", Rule.CHECKPOINT_MUST_BE_SIGNED_BY_THE_LOG_KEY,
                                           f"the operator's signature does not verify: {error}") from None
        previous_note = self.last_accepted()
        if previous_note is None:
            return new
        previous = Checkpoint.parse(split_note(previous_note)[0])
        if new.origin != previous.origin:
            raise UnknownOriginError("origin", Rule.CHECKPOINT_ORIGIN_MUST_NOT_CHANGE,
                                     f"origin changed from {previous.origin} to {new.origin}")
        same_size = self.seen(new.size)
        if same_size is not None:
            self._check_pair(same_size, note, Checkpoint.parse(split_note(same_size)[0]), new, [])
        elif new.size < previous.size:
            self._check_pair(note, previous_note, new, previous, self._proof(proofs, new.size, previous.size))
        else:
            self._check_pair(previous_note, note, previous, new, self._proof(proofs, previous.size, new.size))
        return new

    @staticmethod
    def _proof(proofs: ProofSource, old_size: int, size: int) -> list[bytes]:
        return proofs(old_size, size) if 0 < old_size < size else []

    def _check_pair(self, older_note: str, newer_note: str, older: Checkpoint, newer: Checkpoint,
                    proof: list[bytes]) -> None:
        """The older checkpoint must be a prefix of the newer: equal roots at equal sizes, else the proof."""
        try:
            if older.size == newer.size:
                if older.root != newer.root:
                    raise ProofError(f"two signed checkpoints of size {older.size} with different roots")
            elif older.size > 0:
                verify_consistency(older.size, newer.size, older.root, newer.root, proof)
        except ProofError as error:
            failure = f"checkpoints {older.size} and {newer.size} are inconsistent ({error})"
            evidence = fork_evidence(self.name, older_note, newer_note, proof, failure)
            write_atomically(self.evidence_path, json.dumps(evidence, indent=2) + "\n")
            raise ForkError(failure, evidence, self.evidence_path) from None

    def accept(self, note: str, checkpoint: Checkpoint, save: bool = True) -> None:
        """Remember a checked checkpoint (as the last accepted when it is the largest so far); `save=False` defers
        writing the state file to `save()` (a pass over many checkpoints writes it once)."""
        state = self._state()
        state["seen"][str(checkpoint.size)] = note
        if checkpoint.size >= int(state.get("size", -1)):
            state["checkpoint"], state["size"] = note, checkpoint.size
        if save:
            self.save()

    def save(self) -> None:
        """Write the state file atomically."""
        write_atomically(self.state_path, json.dumps(self._state(), indent=2, sort_keys=True) + "\n")


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
