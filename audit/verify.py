"""`audit verify`: re-check everything docs/design.md promises, from the raw events and the public keys alone.

Over the entries in global order (an `export` JSONL file or a live store), one numbered procedure:

1–7. Envelope and canonical bytes, schema, per-stream `seq` and `prev` chain, the keyring anchored by the trust
     anchors, key validity for the role at the event's time, Ed25519 signature, role rules — as `ledger.verify`.
8.   Every period recomputed from the events before its assessment: the rules version in force at the cutoff, the
     locked set (members active at the cutoff), the cases (exactly the approved claims decided by the cutoff and not
     yet included, at their approved amounts), surplus carried in (the previous period's surplus out less debits
     left uncollected by settlements since), the annual cap left, every term of the formula (`ledger.sharing`), and
     the roll root and size — each compared with the signed `period.assessed`. Under schema 2 the surplus in is
     the surpluses carried by settlements since the previous assessment (money held), and who funds the period
     (the operator: its announced final periods and tail periods after the end, members charged 0). Every schema-2
     `period.settled`: the shares uncollected (debits failed and not recovered), advances within the shortfall,
     and the payouts sized from the money held (`ledger.sharing.settle`).
9.   Every disclosure document rebuilt from the events and its hash compared with its `disclosure.published`.
10.  Money: the double-entry journal rebuilt from the events, every event's postings balanced, the trial balance
     zero and custody complete; every wind-down refund whose deadline has passed (by the last event's time) paid
     in full by that deadline.
11.  Claims: filed under the rules version in force on the diagnosis day (a plan day, Asia/Shanghai); paid at
     most once, only when approved (after notice or by a jury) and included in an assessed period, after that
     period settled for exactly the case's payable amount (schema 1: its funded amount), never above the plan
     maximum for the age at diagnosis.
12.  Checkpoints (live store, or `--checkpoints FILE`): each signed by the log key, its root equal to the Merkle root
     of the entries up to its size, and consistent with the previous one.
13.  Sealed values (`audit.sealed`): given the revealed values and salts, each opens its commitment and every rule
     that needs an exact value is re-checked (age at joining within the plan's ages, juror age, a fraud finding's
     claim, claimant, diagnosis day, claim window and wind-down tail, waiting period, rules version of the diagnosis
     day, age covered and agreeing with the age at joining, and check 11's plan maximum); without them (or for the
     events of members it was given none for), the report counts the events whose checks needed them
     (`needs_sealed_values`).

Every failure is evidence: the global index, stream and seq, the check, and the expected and found values.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections import ChainMap, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.sqlite import SQLiteDatastore

from audit.sealed import (
    NEEDS,
    SealedChecks,
    check_exclusion,
    check_filing,
    check_joining_age,
    check_juror_age,
    plan_day,
)
from ledger.ages import join_age_years, past_top_age_at, top_age_years
from ledger.aggregates.sharing_period import operator_funds, plan_date, plan_midnight
from ledger.anchors import TrustAnchors
from ledger.canonical import document_digest
from ledger.envelope import (
    EnvelopeError,
    cut_entry,
    event_hash_of,
    format_at,
    parse_at,
    read_envelope,
    split_entry,
)
from ledger.errors import InputError
from ledger.keys import event_signature_is_valid, public_key_from_base64
from ledger.log.index import ENDED
from ledger.log.merkle import MerkleFold, leaf_hash
from ledger.log.note import Checkpoint, NoteError, Verifier, verify_note
from ledger.memory import paused_gc
from ledger.plan_days import day_end, whole_years
from ledger.projections.base import EntriesInMemory, Entry, apply_together
from ledger.projections.cases import DOCUMENT_FORMAT_V1, Cases, disclosure_document
from ledger.projections.journal import Journal, UnbalancedPostingError
from ledger.projections.periods import Periods
from ledger.projections.sql import SqlStore
from ledger.sealing import Revealed
from ledger.sharing import assess, member_charge, raised_of, roll_leaf_hashes, settle
from ledger.verify import CheckedSignatures, Failure, Problem, Report, envelope_problem, schema_problem
from ledger.verify import Verifier as EventVerifier
from schemas.events import PlanRules

CHUNK = 4000
"""Entries a worker process examines at a time."""
AHEAD = 4
"""Chunks queued per worker beyond the one the checks in order wait for (what is held in memory: the chunks in
flight)."""
BOOKS_BATCH = 50_000
"""Entries applied to the scratch read models per transaction."""
KEY_REGISTERED = b'"type":"key.registered","v":1}'
"""How a canonical `key.registered` entry ends (the candidate keys are taken from those only: an entry in another
form fails check 1, and its key never enters the keyring)."""
FEW_KEYS = 256
"""Up to this many keys registered, every chunk takes all their candidates (no need to find which sign it)."""
SIGNER = b'{"actor":{"key":"'
"""How every canonical entry begins, its signer's key id next (JCS puts `actor` first, and `key` first in it)."""
TERMS = ("locked_members", "aid_fen", "fee_bps", "fee_fen", "surplus_in_fen", "need_fen", "uncapped_share_fen",
         "per_case_cap_fen", "annual_cap_remaining_fen", "cap_applied", "share_fen", "excess_policy", "subsidy_fen",
         "funded_aid_fen", "funded_fee_fen", "surplus_out_fen")
SCHEMA_3_TERMS = ("charged_fen", "members_capped")

SETTLEMENT_TERMS = ("collected_fen", "advance_fen", "available_fen", "owed_fen", "shortfall_fen", "fee_payable_fen",
                    "surplus_carried_fen")


@dataclass(frozen=True)
class ExaminedChunk:
    """Checks 2 and 6 of consecutive entries, done ahead of the order on each entry presumed in canonical form (the
    main process decodes every entry and checks that form, check 1, and keeps these only for the entries in it):
    each entry's event hash (None when the entry cannot be in that form), the failures of check 2 by index, and
    the signatures' outcomes."""

    hashes: list[bytes | None]
    schema: dict[int, Problem]
    signatures: CheckedSignatures


def examine_chunk(first: int, entries: list[bytes], candidates: dict[str, str]) -> ExaminedChunk:
    """Checks 2 and 6 for the entries at `first`, `first + 1`, … (run in worker processes): all that needs no
    order but the decoded envelope, which only the main process builds (one JSON decoding per entry): the unsigned
    bytes, the body, the signature, the type, the schema and the key id are cut from the bytes where canonical form
    puts them (`ledger.envelope.cut_entry`, no decoding). Each signature is checked under the candidate key of its
    key id (`CheckedSignatures`)."""
    with paused_gc():  # thousands of acyclic objects a chunk: nothing to collect
        keys: dict[str, Any] = {}
        for kid, public in candidates.items():
            try:
                keys[kid] = public_key_from_base64(public)
            except ValueError:
                continue  # not a key: its signatures are left to the checks in order
        hashes: list[bytes | None] = []
        schema: dict[int, Problem] = {}
        signed: list[tuple[int, bytes, bytes, str]] = []
        start = len(SIGNER)
        for index, entry in enumerate(entries, first):
            try:
                unsigned, body, sig, kind, version = cut_entry(entry)
            except ValueError:  # not in canonical form: check 1 fails in the main process
                hashes.append(None)
                continue
            event_hash = event_hash_of(unsigned)
            hashes.append(event_hash)
            problem = schema_problem(kind, version, body)
            if problem is not None:
                schema[index] = problem
            key = keys.get(entry[start:start + 16].decode("ascii", "replace")) if entry.startswith(SIGNER) else None
            if key is not None:
                signed.append((index, key, event_hash, sig))
        # the signatures last, one after another: the verifier's tables stay in the processor's caches between them
        failing = [index for index, key, event_hash, sig in signed
                   if not event_signature_is_valid(key, event_hash, sig)]
        return ExaminedChunk(hashes, schema, CheckedSignatures({kid: candidates[kid] for kid in keys},
                                                               frozenset(failing)))


def _chunks(entries: Iterable[bytes]) -> Iterator[tuple[int, list[bytes], dict[str, str]]]:
    """The entries CHUNK at a time: the index of the first, the entries, and the candidate key of each key id that
    signs them (the last key the log registered under that id by the chunk's end)."""
    candidates: dict[str, str] = {}
    chunk: list[bytes] = []
    first = 0
    for entry in entries:
        if entry.endswith(KEY_REGISTERED):
            _note_candidate(candidates, entry)
        chunk.append(entry)
        if len(chunk) == CHUNK:
            yield first, chunk, _signing(chunk, candidates)
            first, chunk = first + CHUNK, []
    if chunk:
        yield first, chunk, _signing(chunk, candidates)


def _note_candidate(candidates: dict[str, str], entry: bytes) -> None:
    """Take the key a `key.registered` entry names as the candidate of its key id: only a hint for checking
    signatures ahead of the order (the keyring, followed in order, decides which key counts)."""
    try:
        data = orjson.loads(entry)
    except orjson.JSONDecodeError:
        return
    body = data.get("body") if isinstance(data, dict) and data.get("type") == "key.registered" else None
    if isinstance(body, dict) and isinstance(body.get("key_id"), str) and isinstance(body.get("public_key"), str):
        candidates[body["key_id"]] = body["public_key"]


def _signing(chunk: list[bytes], candidates: dict[str, str]) -> dict[str, str]:
    """The candidates of the key ids that sign the chunk's entries (an entry that does not begin as a canonical one
    fails check 1, and needs none); all of them when they are few."""
    if len(candidates) <= FEW_KEYS:
        return dict(candidates)
    start = len(SIGNER)
    signers = {entry[start:start + 16].decode("ascii", "replace") for entry in chunk if entry.startswith(SIGNER)}
    return {kid: candidates[kid] for kid in signers if kid in candidates}


class _Books:
    """The read models checks 9 and 10 read — journal, periods, cases; not the member roster, which no check reads —
    rebuilt in a scratch database from the entries of the types they read, BOOKS_BATCH at a time as they go by."""

    def __init__(self, directory: Path) -> None:
        self.sql = SqlStore(SQLiteDatastore(str(directory / "audit.sqlite3")))
        source = EntriesInMemory([], self.sql)  # the pass feeds them: nothing to catch up from
        self.journal, self.periods, self.cases = Journal(source, self.sql), Periods(source, self.sql), Cases(
            source, self.sql)
        self.read = frozenset(kind for book in (self.journal, self.periods, self.cases) for kind in book.appliers())
        self.batch: list[tuple[int, Entry]] = []
        self.error: Exception | None = None
        """Why the books could not take an entry; they take none after it."""
        self.where: tuple[int, dict[str, Any] | None] = (0, None)
        """The entry whose postings did not balance (index, decoded envelope)."""

    def add(self, index: int, entry: Entry) -> None:
        """Take the entry at `index`: its decoded envelope (the books do not decode it again), or its bytes when it
        is not an envelope in canonical form (the books try it as they would any entry)."""
        if self.error is None:
            self.batch.append((index + 1, entry))
            if len(self.batch) >= BOOKS_BATCH:
                self.flush()

    def flush(self) -> None:
        """Apply what was taken, in one transaction."""
        batch, self.batch = self.batch, []
        if self.error is not None or not batch:
            return
        try:
            with self.sql.transaction() as cursor:
                apply_together(cursor, (self.journal, self.periods, self.cases), batch)
        except UnbalancedPostingError as error:
            self.error = error
            self.where = next(((nid - 1, envelope) for nid, envelope in _decoded(batch)
                               if f"{envelope.get('stream')}#{envelope.get('seq')}" in str(error)), (0, None))
        except (KeyError, TypeError, ValueError) as error:
            self.error = error


STREAM = b'"stream":"'


def _stream_of(entry: bytes) -> str:
    """The stream a canonical entry names (its last `"stream":"`: JCS puts the envelope's own after its body)."""
    at = entry.rfind(STREAM) + len(STREAM)
    return entry[at:at + 36].decode("ascii", "replace")


def _decoded(batch: list[tuple[int, Entry]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """The entries of a batch that are (or decode to) JSON objects, decoded."""
    for nid, entry in batch:
        try:
            envelope = orjson.loads(entry) if isinstance(entry, bytes) else entry
        except orjson.JSONDecodeError:
            continue
        if isinstance(envelope, dict):
            yield nid, envelope


class _Roots:
    """The Merkle root of the first n entries for each size n a checkpoint names, taken as the entries go by (no
    leaf hash is kept)."""

    def __init__(self, sizes: Iterable[int]) -> None:
        self.fold = MerkleFold()
        self.wanted = sorted(set(sizes), reverse=True)  # the next size last
        self.roots: dict[int, bytes] = {}
        self._take()

    def _take(self) -> None:
        while self.wanted and self.wanted[-1] <= self.fold.size:
            size = self.wanted.pop()
            if size == self.fold.size:
                self.roots[size] = self.fold.root()

    def extend(self, entries: list[bytes]) -> None:
        """The next entries of the log."""
        start = 0
        while self.wanted and start < len(entries):
            stop = min(len(entries), start + self.wanted[-1] - self.fold.size)
            self.fold.extend(leaf_hash(entry) for entry in entries[start:stop])
            start = stop
            self._take()


class _Members:
    """Every plan's members — when each joined (at what age) and first lapsed, left, was excluded, wound down or
    aged out — in an on-disk SQLite table, written in batches as the entries go by: the auditor's memory does not
    grow with the members. An assessment's locked set is read back sorted and hashed as it streams (`roll`); the
    periods' shares and the members charged otherwise than the share (schema 3) are kept beside them, so that each
    member's charges of a plan year are summed from the table (`ledger.projections.balances` does the same on the
    writer's side, independently)."""

    def __init__(self, directory: Path) -> None:
        self.db = sqlite3.connect(directory / "members.sqlite3", isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE members (plan TEXT NOT NULL, member TEXT NOT NULL, joined_at TEXT NOT NULL, "
                        "ended_at TEXT, age_years INTEGER, PRIMARY KEY (plan, member)) WITHOUT ROWID")
        self.db.execute("CREATE TABLE periods (period TEXT PRIMARY KEY, plan TEXT NOT NULL, cutoff_at TEXT NOT NULL, "
                        "share_fen INTEGER NOT NULL)")
        self.db.execute("CREATE TABLE charges (period TEXT NOT NULL, member TEXT NOT NULL, amount_fen INTEGER NOT "
                        "NULL, PRIMARY KEY (period, member))")
        # the members another pays for, with the account that pays (`pays_for`)
        self.db.execute("CREATE TABLE accounts (member TEXT PRIMARY KEY, account TEXT NOT NULL) WITHOUT ROWID")
        self.db.execute("CREATE TABLE positions (account TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID")
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        """What is to be written to the members table (joins, ends), in order."""
        self.pending_accounts: list[tuple[str, tuple[Any, ...]]] = []
        """What is to be written to the accounts and their positions (payers, moves), in order: no statement of one
        queue reads a table the other writes, so each is written in its own order, in runs of one statement."""
        self.joined: set[tuple[str, str]] = set()
        """(plan, member) of the joins pending."""
        self.others_pay = False
        """Whether any member's account was another's (until then no member has a row in `accounts`)."""

    def join(self, plan: str, member: str, at: str, age_years: int | None) -> None:
        """A join (a new span: any earlier end is forgotten)."""
        self.pending.append(("INSERT OR REPLACE INTO members VALUES (?, ?, ?, NULL, ?)", (plan, member, at, age_years)))
        self.joined.add((plan, member))
        if len(self.pending) >= BOOKS_BATCH:
            self.flush()

    def pays_for(self, member: str, account: str) -> None:
        """The prepaid account a member's charges are taken from: their payer's, or their own. The table holds only
        the members another pays for (a member without a row pays from their own account), so that a join in the
        usual case writes nothing to it."""
        if account != member:
            self.pending_accounts.append(("INSERT OR REPLACE INTO accounts VALUES (?, ?)", (member, account)))
            self.others_pay = True
        elif self.others_pay:  # a member another paid for may join again paying for themselves
            self.pending_accounts.append(("DELETE FROM accounts WHERE member = ?", (member,)))

    def move(self, member: str, amount_fen: int) -> None:
        """Add to the position of the account paying for `member` (deposits, failed debits; negative: recoveries,
        balance refunded)."""
        if amount_fen == 0:
            return
        self.pending_accounts.append(("INSERT INTO positions SELECT COALESCE((SELECT account FROM accounts WHERE "
                                      "member = ?), ?), ? WHERE true ON CONFLICT (account) DO UPDATE SET position = "
                                      "position + excluded.position", (member, member, amount_fen)))
        if len(self.pending_accounts) >= BOOKS_BATCH:
            self.flush()

    def charge(self, plan: str, period: str, cutoff: str, share_fen: int) -> list[tuple[str, int]]:
        """Take a prepaid period's charges from the accounts (the share of each locked member, or their exception
        kept by `assessed`) and return (account, amount) of those whose position before it could not cover them:
        the part beyond it, sorted by account. Two queries over the locked members, grouped by account in SQL."""
        self.flush()
        charged = ("SELECT COALESCE(a.account, m.member) AS account, SUM(COALESCE(x.amount_fen, ?)) AS charged "
                   "FROM members m LEFT JOIN accounts a ON a.member = m.member LEFT JOIN charges x "
                   "ON x.period = ? AND x.member = m.member WHERE m.plan = ? AND m.joined_at <= ? "
                   "AND (m.ended_at IS NULL OR m.ended_at > ?) GROUP BY COALESCE(a.account, m.member)")
        params = (share_fen, period, plan, cutoff, cutoff)
        rows = self.db.execute(f"SELECT c.account, c.charged - MAX(COALESCE(p.position, 0), 0) FROM ({charged}) c "
                               "LEFT JOIN positions p ON p.account = c.account WHERE c.charged > "
                               "MAX(COALESCE(p.position, 0), 0) ORDER BY c.account", params).fetchall()
        self.db.execute("BEGIN")
        self.db.execute(f"INSERT INTO positions SELECT account, -charged FROM ({charged}) WHERE charged > 0 "
                        "ON CONFLICT (account) DO UPDATE SET position = position + excluded.position", params)
        self.db.execute("COMMIT")
        return [(str(account), int(amount)) for account, amount in rows]

    def end(self, plan: str, member: str, at: str) -> None:
        """The first end of a member's span; KeyError for a member who never joined the plan."""
        if (plan, member) not in self.joined and self.db.execute(
                "SELECT 1 FROM members WHERE plan = ? AND member = ?", (plan, member)).fetchone() is None:
            raise KeyError(f"member {member} of plan {plan}")
        self.pending.append(("UPDATE members SET ended_at = ? WHERE plan = ? AND member = ? AND ended_at IS NULL",
                             (at, plan, member)))
        if len(self.pending) >= BOOKS_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write what is pending, each queue in order, each run of one statement with one `executemany`."""
        self.db.execute("BEGIN")
        for pending in (self.pending, self.pending_accounts):
            for statement, rows in groupby(pending, key=itemgetter(0)):
                batch = [row for _, row in rows]
                if statement.startswith("INSERT"):  # in key order, the table filled page by page (a stable sort: a
                    batch.sort(key=itemgetter(0, 1))  # member who joined twice in the run keeps the later join)
                self.db.executemany(statement, batch)
            pending.clear()
        self.db.execute("COMMIT")
        self.joined.clear()

    def joined_at(self, plan: str, member: str) -> str | None:
        """When the member joined the plan (the current span), or None."""
        self.flush()
        row = self.db.execute("SELECT joined_at FROM members WHERE plan = ? AND member = ?", (plan, member)).fetchone()
        return None if row is None else str(row[0])

    def roll(self, plan: str, cutoff: str, period: str, share_fen: int, ages: tuple[int, int] | None = None,
             listed: frozenset[str] = frozenset()) -> tuple[bytes, int, list[str], int, list[str]]:
        """The roll root and size over the plan's members active at the cutoff, sorted by id (code-point order:
        SQLite's BINARY collation), hashed as they are read, without the members the assessment `listed` as past the
        top age (schema 3). With `ages` (top age, zone): also the members whose known age at joining disagrees with
        that list (past the top age and not listed, or listed and not past it), how many locked members' age is not
        known (sealed, not revealed: the list could not be checked for them), and the listed members not in the
        plan at the cutoff."""
        self.flush()
        fold = MerkleFold()
        wrong: list[str] = []
        unknown = 0
        seen: set[str] = set()
        at = parse_at(cutoff)
        rows = self.db.execute("SELECT member, age_years, joined_at FROM members WHERE plan = ? AND joined_at <= ? "
                               "AND (ended_at IS NULL OR ended_at > ?) ORDER BY member", (plan, cutoff, cutoff))
        while batch := rows.fetchmany(100_000):
            locked = []
            for member, age, joined_at in batch:
                if member in listed:
                    seen.add(member)
                else:
                    locked.append(member)
                if ages is not None:
                    if age is None:
                        unknown += 1
                    elif past_top_age_at(age, joined_at, at, ages[0], ages[1]) != (member in listed):
                        wrong.append(member)
            fold.extend(roll_leaf_hashes(period, locked, share_fen))
        return fold.root(), fold.size, wrong, unknown, sorted(listed - seen)

    def near_cap(self, plan: str, year_start: str, cutoff: str, threshold_fen: int) -> list[tuple[str, int]]:
        """(member, charged this plan year) of the members whose span holds the cutoff and whom the periods with
        cutoffs in [year_start, cutoff) charged more than `threshold_fen`: those whose cap may leave less than the
        share (the others, nearly everyone, are never listed)."""
        rows = self.db.execute(
            "SELECT m.member, SUM(COALESCE(x.amount_fen, p.share_fen)) FROM members m JOIN periods p "
            "ON p.plan = m.plan AND p.cutoff_at >= m.joined_at AND (m.ended_at IS NULL OR p.cutoff_at < m.ended_at) "
            "LEFT JOIN charges x ON x.period = p.period AND x.member = m.member "
            "WHERE m.plan = ? AND p.cutoff_at >= ? AND p.cutoff_at < ? AND m.joined_at <= ? "
            "AND (m.ended_at IS NULL OR m.ended_at > ?) GROUP BY m.member "
            "HAVING SUM(COALESCE(x.amount_fen, p.share_fen)) > ?", (plan, year_start, cutoff, cutoff, cutoff,
                                                                    threshold_fen))
        return [(str(member), int(total)) for member, total in rows]

    def year_shares(self, plan: str, year_start: str, cutoff: str) -> int:
        """The plan's shares with cutoffs in [year_start, cutoff): at least any member's charges of them."""
        row = self.db.execute("SELECT COALESCE(SUM(share_fen), 0) FROM periods WHERE plan = ? AND cutoff_at >= ? "
                              "AND cutoff_at < ?", (plan, year_start, cutoff)).fetchone()
        return int(row[0])

    def assessed(self, plan: str, period: str, cutoff: str, share_fen: int, charges: dict[str, int]) -> None:
        """Keep an assessment's share and the members it charged otherwise (0 for those left out)."""
        self.db.execute("BEGIN")
        self.db.execute("INSERT OR REPLACE INTO periods VALUES (?, ?, ?, ?)", (period, plan, cutoff, share_fen))
        self.db.executemany("INSERT OR REPLACE INTO charges VALUES (?, ?, ?)",
                            [(period, member, amount) for member, amount in charges.items()])
        self.db.execute("COMMIT")

    def close(self) -> None:
        """Close the table's database."""
        self.db.close()


@dataclass
class _Plan:
    versions: list[tuple[str, int, PlanRules]] = field(default_factory=list)
    periods: dict[int, dict[str, Any]] = field(default_factory=dict)
    closing: tuple[str, str, int] | None = None
    """(announced at, ends at, final periods the operator pays) once closing is announced."""
    settlements: list[tuple[str, int, int]] = field(default_factory=list)
    """(when, uncollected, surplus carried) of every settlement of the plan's periods."""
    closing_tail_days: int | None = None
    """The claim tail of a plan whose closing was announced (None while it is open)."""
    released: int = 0
    """The surplus released after the plan's end."""

    def rules_at(self, instant: str) -> tuple[int, PlanRules]:
        current = self.versions[0]
        for version in self.versions[1:]:
            if version[0] <= instant:
                current = version
        return current[1], current[2]

    def rules_on_day(self, day: str, filed_at: str) -> tuple[int, PlanRules]:
        """The rules version in force on a plan day (its last instant in plan time, the zone read from the rules
        in force when the claim was filed): as the claim handler chooses it."""
        _, now = self.rules_at(filed_at)
        return self.rules_at(format_at(day_end(date.fromisoformat(day), now.utc_offset_minutes)))


class Auditor:
    """Runs the procedure (module docstring)."""

    def __init__(self, anchors: TrustAnchors | None, log_key: Verifier | None = None,
                 revealed: Iterable[Revealed] | None = None) -> None:
        self.events = EventVerifier(anchors)
        self.sealed = SealedChecks.of(revealed)
        """Check 13: the revealed values given (`--revealed`), or none."""
        self.joined_ages: dict[str, int] = {}
        """Member → age in years at joining, public on a v1 join (what a sealed age at diagnosis is checked
        against)."""
        self.revealed_ages: dict[str, int] = {}
        """Member → age in years at joining, sealed on a v2 join and revealed to the auditor."""
        self.report: Report = self.events.report
        self.log_key = log_key
        self.plans: dict[str, _Plan] = {}
        self.claims: dict[str, dict[str, Any]] = {}
        self.included: set[str] = set()
        self.period_plan: dict[str, str] = {}
        self.failed: dict[str, set[str]] = {}
        """Member → periods whose debit for them failed and was not recovered (what a disclosure counts)."""
        self.members: _Members
        """Every plan's members, on disk (made by `run` in its scratch directory)."""
        self.wind_down_refunds: dict[str, list[Any]] = {}
        """Member → [index, envelope, due, deadline, paid by the deadline] of a wind-down refund."""
        self.last_at = ""
        """The time of the last event followed."""
        self.notice_on: dict[str, str] = {}
        """Period → its notice day."""
        self.prepaid_periods: set[str] = set()
        self.uncovered_due: tuple[int, dict[str, Any], list[tuple[str, int]]] | None = None
        """(index, envelope, the accounts it left short) of a schema-4 assessment whose listing must come next."""
        """The periods assessed under a prepaid rules version (their charges are taken from the accounts)."""
        self.uncollected: dict[str, int] = {}
        """Period → fen of its debits failed and not recovered."""
        self.advances: dict[str, int] = {}
        """Period → operator advances received."""
        self.settled: dict[str, tuple[str, dict[str, Any]]] = {}
        """Period → (when, body) of its settlement."""
        self.disclosures: list[tuple[int, dict[str, Any]]] = []
        """(index, envelope) of every `disclosure.published`, checked once the books hold every entry."""

    def fail(self, index: int, envelope: dict[str, Any] | None, check: str, expected: object, found: object) -> None:
        """Record evidence."""
        self.report.failures.append(Failure.of(index, envelope, check, expected, found))

    def run(self, entries: Iterable[bytes], checkpoints: list[str] | None = None, workers: int | None = None
            ) -> Report:
        """The whole procedure, in one pass that holds no entry beyond the chunks in flight. Checks 1, 2 and 6 — all
        that needs no order: strict parse, canonical form, schema, event hash, signature — are done a chunk at a
        time by worker processes, one per core, ahead of this process, which follows the chunks in order for the
        rest; the books of checks 9 and 10 are filled, and the Merkle roots of check 12 taken, as entries go by."""
        workers = workers if workers is not None else (os.cpu_count() or 1)
        notes = [self.checkpoint_note(note) for note in checkpoints or []]
        roots = _Roots(note.size for note in notes if isinstance(note, Checkpoint))
        pool = ProcessPoolExecutor(workers) if workers > 1 else None
        try:
            with tempfile.TemporaryDirectory() as tmp:
                books = _Books(Path(tmp))
                self.members = _Members(Path(tmp))
                self.events.streams.spill_to(Path(tmp))
                try:
                    with paused_gc():  # millions of long-lived acyclic objects: nothing to collect
                        self._pass(self._examined(entries, pool, workers), books, roots)
                        books.flush()
                    if not self.report.entries:
                        self.fail(0, None, "log", "at least one entry", "an empty log")
                        return self.report
                    self.money_and_disclosures(books)
                finally:
                    self.members.close()
                    self.events.streams.close()
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        self.checkpoints(notes, roots)
        self.report.needs_sealed_values = dict(self.sealed.needed)
        self.report.failures.sort(key=lambda f: (f.index, int(f.check.split()[0]) if f.check[0].isdigit() else 0))
        return self.report

    def _examined(self, entries: Iterable[bytes], pool: ProcessPoolExecutor | None, workers: int
                  ) -> Iterator[tuple[int, list[bytes], ExaminedChunk]]:
        """The entries a chunk at a time, in order, with checks 1, 2 and 6 done; with a pool, up to AHEAD chunks per
        worker are queued beyond the one awaited, so that the workers do not wait for this process."""
        queued: deque[tuple[int, list[bytes], Future[ExaminedChunk]]] = deque()
        for first, chunk, candidates in _chunks(entries):
            if pool is None:
                yield first, chunk, examine_chunk(first, chunk, candidates)
                continue
            queued.append((first, chunk, pool.submit(examine_chunk, first, chunk, candidates)))
            if len(queued) > AHEAD * workers:
                done = queued.popleft()
                yield done[0], done[1], done[2].result()
        while queued:
            done = queued.popleft()
            yield done[0], done[1], done[2].result()

    def _pass(self, chunks: Iterable[tuple[int, list[bytes], ExaminedChunk]], books: _Books, roots: _Roots) -> None:
        """Checks 3–8 and 11 over the entries in order (1, 2 and 6 come done with each chunk); each entry goes on
        to the books, when they read its type, and to the checkpoint roots."""
        failures, follow, read = self.report.failures, self.events.follow, books.read
        for first, chunk, examined in chunks:
            roots.extend(chunk)
            self.events.streams.prefetch(_stream_of(entry) for entry in chunk)
            self.report.entries += len(chunk)
            hashes, schema = examined.hashes, examined.schema
            for index, entry in enumerate(chunk, first):
                before = len(failures)
                try:
                    envelope = read_envelope(entry)
                except EnvelopeError as error:  # not an envelope: the books still try it, as they would any entry
                    failures.append(Failure.of(index, None, *envelope_problem(entry, error)))
                    books.add(index, entry)
                    continue
                event_hash = hashes[index - first]
                signatures: CheckedSignatures | None = examined.signatures
                problem = schema.get(index) if schema else None
                if event_hash is None:  # the worker cuts every canonical entry; should it not, cut here
                    unsigned, body = split_entry(entry, envelope["sig"])
                    event_hash, signatures = event_hash_of(unsigned), None
                    problem = schema_problem(envelope["type"], envelope["schema"], body)
                if problem is not None:
                    failures.append(Failure.of(index, envelope, *problem))
                follow(index, envelope, event_hash, signatures)
                kind = envelope["type"]
                if kind in read:
                    books.add(index, envelope)
                if kind == "disclosure.published":
                    self.disclosures.append((index, envelope))
                if len(failures) > before:
                    continue  # a broken envelope, key or signature: the domain checks would only repeat it
                try:
                    self.domain(index, envelope)
                except (KeyError, TypeError, ValueError) as error:
                    self.fail(index, envelope, "8 period (inputs)", "events a period can be recomputed from", error)

    # -- 8 and 11: the domain, recomputed ------------------------------------------------------------------

    def domain(self, index: int, e: dict[str, Any]) -> None:
        """Follow the facts periods and claims depend on; check assessments and payouts when they come."""
        kind, body, stream, at = e["type"], e["body"], e["stream"], e["at"]
        self.last_at = max(self.last_at, at)
        if self.uncovered_due is not None or kind == "period.uncovered_listed":
            self.uncovered(index, e)
        if kind == "plan.created":
            self.plans[stream] = _Plan([(at, 1, PlanRules.from_json_value(body["rules"]))])
        elif kind == "plan.rules_amended":
            self.plans[stream].versions.append((body["effective_from"], body["version"],
                                                PlanRules.from_json_value(body["rules"])))
        elif kind == "plan.closing_announced":
            self.plans[stream].closing = (at, body["ends_at"], body["operator_pays_final_periods"])
            self.plans[stream].closing_tail_days = body["claim_tail_days"]
        elif kind == "member.joined":
            self.plans[body["plan"]]  # a plan that exists (KeyError otherwise)
            age = join_age_years(body)  # in the clear (v1); sealed (v2): the revealed value, when given
            if e["schema"] == 1:
                self.joined_ages[stream] = body["age_years"]
            elif (values := self.sealed_event(index, e, "joining")) is not None:
                self.revealed_ages[stream] = values["age_years"]
                age = int(values["age_years"])
            self.members.join(body["plan"], stream, at, age)
            self.members.pays_for(stream, body["payer"] or stream)
        elif kind == "member.deposit_received":
            self.members.move(stream, body["amount_fen"])
        elif kind in ("member.juror_qualified", "member.fraud_recorded") and e["schema"] == 2:
            self.sealed_event(index, e, "juror age" if kind == "member.juror_qualified" else "fraud finding")
        elif kind in ENDED:
            self.plans[body["plan"]]  # a plan that exists (KeyError otherwise)
            self.members.end(body["plan"], stream, at)
            self.members.move(stream, -(body.get("refund_due_fen", 0) - body.get("shares_paid_fen", 0)))
            if kind == "member.wind_down_refund_due":
                self.wind_down_refunds[stream] = [index, e, body["refund_due_fen"], body["deadline"], 0]
            if kind == "member.excluded" and e["schema"] == 2:
                self.sealed_event(index, e, "waiting period")
        elif kind == "claim.filed":
            self.claims[stream] = {"plan": body["plan"], "filing": body, "paid": 0, "filed_at": at,
                                   "schema": e["schema"]}
            if e["schema"] == 1:
                version, _ = self.plans[body["plan"]].rules_on_day(body["diagnosed_on"], at)
                if body["rules_version"] != version:
                    self.fail(index, e, "11 claim (rules_version of the diagnosis day)", version,
                              body["rules_version"])
            else:  # sealed: the rules version of the diagnosis day is check 13's
                self.claims[stream]["values"] = self.sealed_event(index, e, "filing")
        elif kind == "claim.vote_cast":
            self.juror_vote(index, e)
        elif kind == "claim.approved":
            self.claims[stream].update(approved=body, approved_at=at)
        elif kind == "claim.included":
            self.claims[stream]["period"] = body["period"]
        elif kind == "member.debit_failed":
            if body["period"] in self.prepaid_periods:
                self.members.move(stream, body["amount_fen"])
            self.failed.setdefault(stream, set()).add(body["period"])
            self.uncollected[body["period"]] = self.uncollected.get(body["period"], 0) + body["amount_fen"]
        elif kind == "member.debit_recovered":
            if body["period"] in self.prepaid_periods:
                self.members.move(stream, -body["amount_fen"])
            self.failed.get(stream, set()).discard(body["period"])
            self.uncollected[body["period"]] = self.uncollected.get(body["period"], 0) - body["amount_fen"]
        elif kind == "member.refund_disbursed" and body["reason"] == "wind_down" and stream in self.wind_down_refunds:
            owed = self.wind_down_refunds[stream]
            if at <= owed[3]:
                owed[4] += body["amount_fen"]
        elif kind == "period.advance_received":
            self.advances[stream] = self.advances.get(stream, 0) + body["amount_fen"]
        elif kind == "period.opened":
            self.period_plan[stream] = body["plan"]
            self.notice_on[stream] = body["notice_on"]
        elif kind == "period.settled":
            self.settlement(index, e)
            self.plans[self.period_plan[stream]].settlements.append(
                (at, body["uncollected_fen"], body["surplus_carried_fen"]))
            self.settled[stream] = (at, body)
        elif kind == "period.assessed":
            self.assessment(index, e)
        elif kind == "claim.paid":
            self.payout(index, e)
        elif kind == "plan.surplus_released":
            self.surplus_release(index, e)

    def sealed_event(self, index: int, e: dict[str, Any], what: str) -> dict[str, Any] | None:
        """Check 13 for a sealed event: its values opened and its rules re-checked; without values, counted."""
        def fail(check: str, expected: object, found: object) -> None:
            self.fail(index, e, check, expected, found)

        if not self.sealed.given(e):
            self.sealed.need(f"13 sealed ({what})")
            return None
        values = self.sealed.values(e, fail)
        if values is None:
            return None
        plan = self.plans[e["body"].get("plan") or self.plan_of(e["stream"])]
        if e["type"] == "member.joined":
            check_joining_age(e, values, plan, fail)
        elif e["type"] == "member.juror_qualified":
            check_juror_age(e, values, plan, fail)
        elif e["type"] == "member.fraud_recorded":
            if values["claim"] is not None and values["claim"] not in self.claims:
                fail(f"{NEEDS} (fraud finding)", "a claim on the log, or none", values["claim"])
        elif e["type"] == "claim.filed":
            joined = self.members.joined_at(e["body"]["plan"], str(values.get("member")))
            check_filing(e, values, {str(values.get("member")): joined} if joined else {},
                         ChainMap(self.joined_ages, self.revealed_ages), plan, fail)
        else:
            check_exclusion(e, values, self.members.joined_at(e["body"]["plan"], e["stream"]), plan, fail)
        return values

    def juror_vote(self, index: int, e: dict[str, Any]) -> None:
        """Check 13 for a vote by a juror whose age at joining is sealed: that age plus the whole years since (plan
        days) is at least the plan's juror age, as the writer checks it; counted as needed when the age was not
        revealed. (A juror who joined with a v1 join, its age public, is not re-checked here.)"""
        plan_id, juror = self.claims[e["stream"]]["plan"], e["body"]["juror"]
        joined_at = self.members.joined_at(plan_id, juror)
        if joined_at is None or juror in self.joined_ages:
            return
        age = self.revealed_ages.get(juror)
        if age is None:
            self.sealed.need("13 sealed (juror age at the vote)")
            return
        plan = self.plans[plan_id]
        _, rules = plan.rules_at(e["at"])
        now = age + whole_years(plan_day(joined_at, plan, e["at"]), plan_day(e["at"], plan, e["at"]))
        if now < rules.juror_min_age_years:
            self.fail(index, e, f"{NEEDS} (juror age at the vote)", f"at least {rules.juror_min_age_years}", now)

    def plan_of(self, member: str) -> str:
        """The plan a member joined (from the on-disk members, one lookup a plan: plans are few); KeyError for no
        member."""
        found = next((plan for plan in self.plans if self.members.joined_at(plan, member) is not None), None)
        if found is None:
            raise KeyError(f"member {member}")
        return found

    def assessment(self, index: int, e: dict[str, Any]) -> None:
        """Check 8 for one `period.assessed`."""
        body, period = e["body"], e["stream"]
        plan = self.plans[body["plan"]]
        cutoff = body["cutoff_at"]
        version, rules = plan.rules_at(cutoff)
        if body["rules_version"] != version:
            self.fail(index, e, "8 period (rules_version)", version, body["rules_version"])
        year = plan_date(parse_at(cutoff), rules).year
        year_start = format_at(plan_midnight(date(year, 1, 1), rules))
        per_member = e["schema"] >= 3
        if per_member:
            for term, value in (("top_age_years", top_age_years(rules)), ("plan_year", year),
                                ("utc_offset_minutes", rules.utc_offset_minutes)):
                if body[term] != value:
                    self.fail(index, e, f"8 period ({term})", value, body[term])
        ages = (top_age_years(rules), rules.utc_offset_minutes) if per_member else None
        left_out = list(body["left_out"]) if per_member else []
        roll, locked, wrong, unknown, strangers = self.members.roll(body["plan"], cutoff, period, body["share_fen"],
                                                                    ages, frozenset(left_out))
        if wrong or strangers or left_out != sorted(set(left_out)):
            self.fail(index, e, "8 period (left_out)", "the locked members past the top age, sorted",
                      {"wrong by age": wrong, "not in the plan": strangers})
        if per_member and unknown:
            self.sealed.need("8 period (locked set by age)")
        due = sorted(c for c, claim in self.claims.items() if claim["plan"] == body["plan"] and "approved" in claim
                     and claim["approved_at"] <= cutoff and c not in self.included)
        listed = [case["claim"] for case in body["cases"]]
        if sorted(listed) != due:
            self.fail(index, e, "8 period (cases)", due, sorted(listed))
        for case in body["cases"]:
            claim = self.claims.get(case["claim"], {})
            approved = claim.get("approved", {}).get("amount_fen")
            if case["approved_fen"] != approved:
                self.fail(index, e, f"8 period (case {case['claim']} approved_fen)", approved, case["approved_fen"])
            self.included.add(case["claim"])
        surplus_in = 0
        previous = plan.periods.get(body["number"] - 1)
        if previous is not None and "funded_by" in previous["body"]:  # after schema 2: money held only
            surplus_in = sum(carried for settled_at, _, carried in plan.settlements if settled_at > previous["at"])
        elif previous is not None:
            surplus_in = previous["body"]["surplus_out_fen"] - sum(
                uncollected for settled_at, uncollected, _ in plan.settlements if settled_at > previous["at"])
            if e["schema"] >= 2:
                surplus_in = max(0, surplus_in)
        used = sum(p["body"]["share_fen"] for p in plan.periods.values()
                   if year_start <= p["body"]["cutoff_at"] < cutoff)
        operator = False
        if e["schema"] >= 2:
            announced, ends, final = plan.closing if plan.closing else (None, None, 0)
            operator = operator_funds(parse_at(announced) if announced else None, parse_at(ends) if ends else None,
                                      final, date.fromisoformat(self.notice_on[period]), parse_at(cutoff), rules)
            if body["payment_model"] != rules.payment_model:
                self.fail(index, e, "8 period (payment_model)", rules.payment_model, body["payment_model"])
            if body["funded_by"] != ("operator" if operator else "members"):
                self.fail(index, e, "8 period (funded_by)", "operator" if operator else "members", body["funded_by"])
        cases = [(c["claim"], c["approved_fen"]) for c in body["cases"]]
        cap = rules.annual_cap_fen if per_member else max(0, rules.annual_cap_fen - used)
        capped: dict[str, int] = {}
        charged: tuple[int, int] | None = None
        if per_member:  # each member's own charges of the plan year (none can reach the cap below the plan's shares)
            share = assess(locked, cases, rules.fee_bps, surplus_in, rules.per_case_cap_fen, cap, rules.excess_policy,
                           operator, charged=(0, 0)).share_fen
            if share and self.members.year_shares(body["plan"], year_start, cutoff) + share > cap:
                aged = set(left_out)
                capped = {m: c for m, y in self.members.near_cap(body["plan"], year_start, cutoff, cap - share)
                          if m not in aged and (c := member_charge(share, cap, y)) < share}
            charged = (share * locked - sum(share - c for c in capped.values()), len(capped))
        expected = assess(locked, cases, rules.fee_bps, surplus_in, rules.per_case_cap_fen, cap, rules.excess_policy,
                          operator, charged=charged)
        self.members.assessed(body["plan"], period, cutoff, expected.share_fen,
                              {**dict.fromkeys(left_out, 0), **capped})
        for term in TERMS + (SCHEMA_3_TERMS if per_member else ()):
            if getattr(expected, term) != body[term]:
                self.fail(index, e, f"8 period ({term})", getattr(expected, term), body[term])
        funded = {c.claim: c.funded_fen for c in expected.cases}
        for case in body["cases"]:
            if funded.get(case["claim"]) != case["funded_fen"]:
                self.fail(index, e, f"8 period (case {case['claim']} funded_fen)", funded.get(case["claim"]),
                          case["funded_fen"])
        prepaid = body.get("payment_model", plan.versions[0][2].payment_model) == "prepaid"
        uncovered = self.members.charge(body["plan"], period, cutoff, expected.share_fen) if prepaid else []
        if prepaid:
            self.prepaid_periods.add(period)
        if e["schema"] >= 4:
            if sum(amount for _, amount in uncovered) != body["uncovered_fen"]:
                self.fail(index, e, "8 period (uncovered_fen)", sum(amount for _, amount in uncovered),
                          body["uncovered_fen"])
            if body["uncovered_fen"] or uncovered:
                self.uncovered_due = (index, e, uncovered)
        if (roll.hex(), locked) != (body["roll_root"], body["roll_size"]):
            self.fail(index, e, "8 period (roll)", f"{roll.hex()} over {locked}", f"{body['roll_root']} over "
                      f"{body['roll_size']}")
        plan.periods[body["number"]] = {"stream": period, "body": body, "at": e["at"]}

    def uncovered(self, index: int, e: dict[str, Any] | None) -> None:
        """Check 8 for the accounts a schema-4 assessment left short: the uncovered shares recomputed from every
        account's deposits, the charges of the prepaid periods before it, failed and recovered debits and balance
        refunded (none in a postpaid period) must be listed, with the assessment's sum, by the
        `period.uncovered_listed` of the same period that is the log's very next entry (`e`: the entry after the
        assessment, None at the end of the log); a listing anywhere else is refused."""
        due, self.uncovered_due = self.uncovered_due, None
        listing = e if e is not None and e["type"] == "period.uncovered_listed" else None
        if due is not None and (listing is None or listing["stream"] != due[1]["stream"]):
            self.fail(due[0], due[1], "8 period (uncovered)", due[2], "no listing right after the assessment")
            due = None
        if listing is None:
            return
        if due is None:
            self.fail(index, listing, "8 period (uncovered)", "a listing right after an assessment that left "
                      "accounts short", "a listing")
            return
        _, assessed, expected = due
        listed = [(share["account"], share["amount_fen"]) for share in listing["body"]["uncovered"]]
        if listed != expected:
            self.fail(index, listing, "8 period (uncovered)", expected, listed)
        if listing["body"]["uncovered_fen"] != assessed["body"]["uncovered_fen"]:
            self.fail(index, listing, "8 period (uncovered_fen)", assessed["body"]["uncovered_fen"],
                      listing["body"]["uncovered_fen"])

    def surplus_release(self, index: int, e: dict[str, Any]) -> None:
        """Check 8 for a `plan.surplus_released`: after the plan's claim tail, every period settled, the amount the
        pool holds (the surpluses carried by the settlements since the last assessment)."""
        plan = self.plans[e["stream"]]
        if plan.closing is None or plan.closing_tail_days is None:
            self.fail(index, e, "8 surplus release (after the claim tail)", "a plan that announced its closing", None)
            return
        tail_ends = format_at(parse_at(plan.closing[1]) + timedelta(days=plan.closing_tail_days))
        if e["at"] < tail_ends:
            self.fail(index, e, "8 surplus release (after the claim tail)", f"at or after {tail_ends}", e["at"])
        unsettled = [number for number, p in plan.periods.items() if p["stream"] not in self.settled]
        if unsettled:
            self.fail(index, e, "8 surplus release (every period settled)", [], unsettled)
        last = max(plan.periods.values(), key=lambda p: p["body"]["number"], default=None)
        held = 0 if last is None else sum(carried for settled_at, _, carried in plan.settlements
                                          if settled_at > last["at"])
        held -= plan.released
        if e["body"]["amount_fen"] != held:
            self.fail(index, e, "8 surplus release (amount_fen)", held, e["body"]["amount_fen"])
        plan.released += e["body"]["amount_fen"]

    def settlement(self, index: int, e: dict[str, Any]) -> None:
        """Check 8 for one schema-2 `period.settled`: the uncollected shares are the debits failed and not
        recovered, the payouts are sized from the money held (`ledger.sharing.settle`), and an advance never
        exceeded the shortfall it was for."""
        body, period = e["body"], e["stream"]
        assessed = self.assessed_body(period)
        if e["schema"] < 2 or assessed is None:
            return
        uncollected = self.uncollected.get(period, 0)
        if body["uncollected_fen"] != uncollected:
            self.fail(index, e, "8 settlement (uncollected_fen)", uncollected, body["uncollected_fen"])
        advance = self.advances.get(period, 0)
        raised = raised_of(assessed)
        cases = [(c["claim"], c["funded_fen"]) for c in assessed["cases"]]
        if not 0 <= uncollected <= raised:
            self.fail(index, e, "8 settlement (uncollected_fen)", f"0..{raised}", uncollected)
            return
        expected = settle(cases, assessed["funded_fee_fen"], raised, assessed["subsidy_fen"],
                          max(0, assessed["surplus_in_fen"]), uncollected, advance)
        without = settle(cases, assessed["funded_fee_fen"], raised, assessed["subsidy_fen"],
                         max(0, assessed["surplus_in_fen"]), uncollected, 0)
        if advance > without.shortfall_fen:
            self.fail(index, e, "8 settlement (advance within the shortfall)", f"at most {without.shortfall_fen}",
                      advance)
        for term in SETTLEMENT_TERMS:
            if getattr(expected, term) != body[term]:
                self.fail(index, e, f"8 settlement ({term})", getattr(expected, term), body[term])
        payable = [{"claim": claim, "funded_fen": funded, "payable_fen": amount}
                   for (claim, amount), (_, funded) in zip(expected.payable, cases, strict=True)]
        if body["cases"] != payable:
            self.fail(index, e, "8 settlement (cases)", payable, body["cases"])

    def assessed_body(self, period: str) -> dict[str, Any] | None:
        """The `period.assessed` body of a period, if it was assessed."""
        plan = self.plans.get(self.period_plan.get(period, ""))
        return next((p["body"] for p in plan.periods.values() if p["stream"] == period), None) if plan else None

    def payout(self, index: int, e: dict[str, Any]) -> None:
        """Check 11 for one `claim.paid`."""
        claim = self.claims.get(e["stream"])
        if claim is None or "approved" not in claim:
            self.fail(index, e, "11 claim (approved)", "an approved claim", "no approval")
            return
        claim["paid"] += 1
        if claim["paid"] > 1:
            self.fail(index, e, "11 claim (paid once)", 1, claim["paid"])
        approved = claim["approved"]
        if approved["basis"] not in ("notice", "jury"):
            self.fail(index, e, "11 claim (basis)", "notice or jury", approved["basis"])
        exact = claim["filing"] if claim["schema"] == 1 else claim.get("values")
        if exact is None:
            self.sealed.need("11 claim (plan maximum)")
        else:
            _, rules = self.plans[claim["plan"]].rules_on_day(exact["diagnosed_on"], claim["filed_at"])
            maximum = rules.max_aid_fen(exact["age_at_diagnosis"])
            if approved["amount_fen"] > maximum or approved["max_aid_fen"] != maximum:
                self.fail(index, e, "11 claim (plan maximum)", f"at most {maximum}", approved["amount_fen"])
        period = claim.get("period")
        assessed = next((p["body"] for plan in self.plans.values() for p in plan.periods.values()
                         if p["stream"] == period), None)
        case = next((c for c in (assessed or {}).get("cases", []) if c["claim"] == e["stream"]), None)
        if case is None or assessed is None:
            self.fail(index, e, "11 claim (included)", "a case of an assessed period", period)
            return
        total = e["body"]["amount_fen"] + e["body"]["arrears_deducted_fen"]
        if "funded_by" not in assessed:  # schema 1: the funded amount, whenever paid
            if total != case["funded_fen"]:
                self.fail(index, e, "11 claim (amount)", case["funded_fen"], total)
            return
        settled = self.settled.get(str(period))
        if settled is None:
            self.fail(index, e, "11 claim (paid after its period settles)", "a settled period", "not settled")
            return
        payable = next((c["payable_fen"] for c in settled[1].get("cases", []) if c["claim"] == e["stream"]), None)
        if total != payable:
            self.fail(index, e, "11 claim (amount)", payable, total)

    # -- 9 and 10: read models rebuilt from the events -----------------------------------------------------

    def money_and_disclosures(self, books: _Books) -> None:
        """Checks 10 and 9 once the books hold every entry: balanced postings, zero trial balance and complete
        custody; then every published disclosure rebuilt and its hash compared."""
        last = self.report.entries - 1
        if self.uncovered_due is not None:
            self.uncovered(last, None)
        for index, e, due, deadline, paid in self.wind_down_refunds.values():
            if deadline < self.last_at and paid < due:
                self.fail(index, e, "10 money (wind-down refund by its deadline)", f"{due} paid by {deadline}", paid)
        if isinstance(books.error, UnbalancedPostingError):
            self.fail(*books.where, "10 money (balanced postings)", "debits = credits", books.error)
            return
        if books.error is not None:
            self.fail(last, None, "10 money (journal)", "a journal built from the events", books.error)
            return
        if books.journal.trial_balance() != 0:
            self.fail(last, None, "10 money (trial balance)", 0, books.journal.trial_balance())
        if books.journal.custody_gap() != 0:
            self.fail(last, None, "10 money (custody)", 0, books.journal.custody_gap())
        failed = {member: periods for member, periods in self.failed.items() if periods}
        for index, e in self.disclosures:
            try:
                document = disclosure_document(e["body"]["period"], books.periods, books.cases, failed,
                                               e["body"].get("format", DOCUMENT_FORMAT_V1))
            except (KeyError, ValueError, InputError) as error:
                self.fail(index, e, "9 disclosure", "a settled period", error)
                continue
            if document_digest(document)[0] != e["body"]["document_hash"]:
                self.fail(index, e, "9 disclosure (document hash)", document_digest(document)[0],
                          e["body"]["document_hash"])

    # -- 12: checkpoints -----------------------------------------------------------------------------------

    def checkpoint_note(self, note: str) -> Checkpoint | NoteError:
        """A checkpoint note's signature by the log key, checked before the pass (which then takes the root at its
        size): the checkpoint, or why the note does not verify."""
        try:
            if self.log_key is None:
                raise NoteError("no --log-key given")
            return Checkpoint.parse(verify_note(note, self.log_key))
        except NoteError as error:
            return error

    def checkpoints(self, notes: list[Checkpoint | NoteError], roots: _Roots) -> None:
        """Check each checkpoint against the entries, in order."""
        entries = self.report.entries
        previous: Checkpoint | None = None
        for checkpoint in notes:
            if isinstance(checkpoint, NoteError):
                self.fail(entries - 1, None, "12 checkpoint (signature)", "signed by the log key", checkpoint)
                continue
            if checkpoint.size > entries:
                self.fail(checkpoint.size - 1, None, "12 checkpoint (size)", f"at most {entries}", checkpoint.size)
                continue
            root = roots.roots[checkpoint.size]
            if root != checkpoint.root:
                self.fail(max(0, checkpoint.size - 1), None, f"12 checkpoint {checkpoint.size} (root)", root.hex(),
                          checkpoint.root.hex())
            if previous is not None and checkpoint.size < previous.size:
                self.fail(checkpoint.size - 1, None, "12 checkpoint (order)", f">= {previous.size}", checkpoint.size)
            previous = checkpoint
