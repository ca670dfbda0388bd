"""`audit verify`: re-check everything DESIGN.md promises, from the raw events and the public keys alone.

Over the entries in global order (an `export` JSONL file or a live store), one numbered procedure:

1–7. Envelope and canonical bytes, schema, per-stream `seq` and `prev` chain, the keyring anchored by the trust
     anchors, key validity for the role at the event's time, Ed25519 signature, role rules — as `ledger.verify`.
8.   Every period recomputed from the events before its assessment: the rules version in force at the cutoff, the
     locked set (members active at the cutoff), the cases (exactly the approved claims decided by the cutoff and not
     yet included, at their approved amounts), surplus carried in (the previous period's surplus out less debits
     left uncollected by settlements since), the annual cap left, every term of the formula (`ledger.sharing`), and
     the roll root and size — each compared with the signed `period.assessed`.
9.   Every disclosure document rebuilt from the events and its hash compared with its `disclosure.published`.
10.  Money: the double-entry journal rebuilt from the events, every event's postings balanced, the trial balance
     zero and custody complete.
11.  Claims: paid at most once, only when approved (after notice or by a jury) and included in an assessed period,
     for exactly the funded amount of that case, never above the plan maximum for the age at diagnosis.
12.  Checkpoints (live store, or `--checkpoints FILE`): each signed by the log key, its root equal to the Merkle root
     of the entries up to its size, and consistent with the previous one.

Every failure is evidence: the global index, stream and seq, the check, and the expected and found values.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from eventsourcing.sqlite import SQLiteDatastore

from ledger.aggregates.sharing_period import plan_date, plan_midnight
from ledger.envelope import format_at, parse_at
from ledger.log.merkle import leaf_hash, root_from_leaf_hashes
from ledger.log.note import Checkpoint, NoteError, Verifier, verify_note
from ledger.projections import PROJECTIONS, ReadModels
from ledger.projections.base import EntriesInMemory, apply_together, paused_gc
from ledger.projections.cases import disclosure_document, document_hash
from ledger.projections.journal import UnbalancedPostingError
from ledger.projections.sql import SqlStore
from ledger.sharing import assess, roll_root
from ledger.verify import Failure, Report, SignatureCheck, TrustAnchors, failing_signatures
from ledger.verify import Verifier as EventVerifier
from schemas.events import PlanRules

CHUNK = 4000
"""Signatures sent to a worker at a time."""
BOOKS_BATCH = 50_000
"""Entries applied to the scratch read models per transaction."""
TERMS = ("locked_members", "aid_fen", "fee_bps", "fee_fen", "surplus_in_fen", "need_fen", "uncapped_share_fen",
         "per_case_cap_fen", "annual_cap_remaining_fen", "cap_applied", "share_fen", "excess_policy", "subsidy_fen",
         "funded_aid_fen", "funded_fee_fen", "surplus_out_fen")


@dataclass
class _Plan:
    versions: list[tuple[str, int, PlanRules]] = field(default_factory=list)
    members: dict[str, list[str | None]] = field(default_factory=dict)
    periods: dict[int, dict[str, Any]] = field(default_factory=dict)
    settlements: list[tuple[str, int]] = field(default_factory=list)

    def rules_at(self, instant: str) -> tuple[int, PlanRules]:
        current = self.versions[0]
        for version in self.versions[1:]:
            if version[0] <= instant:
                current = version
        return current[1], current[2]


class Auditor:
    """Runs the procedure (module docstring)."""

    def __init__(self, anchors: TrustAnchors | None, log_key: Verifier | None = None) -> None:
        self.events = EventVerifier(anchors)
        self.report: Report = self.events.report
        self.log_key = log_key
        self.plans: dict[str, _Plan] = {}
        self.member_plan: dict[str, str] = {}
        self.claims: dict[str, dict[str, Any]] = {}
        self.included: set[str] = set()
        self.period_plan: dict[str, str] = {}
        self.failed: dict[str, set[str]] = {}
        """Member → periods whose debit for them failed and was not recovered (what a disclosure counts)."""

    def fail(self, index: int, envelope: dict[str, Any] | None, check: str, expected: object, found: object) -> None:
        """Record evidence."""
        self.report.failures.append(Failure(index, envelope["stream"] if envelope else None,
                                            envelope["seq"] if envelope else None, check, str(expected), str(found)))

    def run(self, entries: Iterable[bytes], checkpoints: list[str] | None = None, workers: int | None = None
            ) -> Report:
        """The whole procedure. Signatures (check 6) are verified in worker processes, one per core, while the
        other checks go on in this one; their failures are merged in order at the end."""
        workers = workers if workers is not None else (os.cpu_count() or 1)
        kept: list[bytes] = []
        kinds: list[str | None] = []  # each entry's type, once parsed (None: not an envelope)
        pool = ProcessPoolExecutor(workers) if workers > 1 else None
        futures: list[Future[list[SignatureCheck]]] = []
        if pool is not None:
            self.events.deferred = []
        try:
            with paused_gc():  # millions of long-lived acyclic objects (stream heads, members): not worth collecting
                self._check_entries(entries, kept, kinds, pool, futures)
            if pool is not None and self.events.deferred:
                futures.append(pool.submit(failing_signatures, self.events.deferred))
            if not kept:
                self.fail(0, None, "log", "at least one entry", "an empty log")
                return self.report
            self.read_models(kept, kinds)
            if checkpoints:
                self.checkpoints(kept, checkpoints)
            for future in futures:
                for index, _, _, _ in future.result():
                    e = json.loads(kept[index])
                    self.report.failures.append(Failure(index, e["stream"], e["seq"], "6 signature",
                                                        f"Ed25519 by {e['actor']['key']}", "a signature that fails"))
        finally:
            if pool is not None:
                pool.shutdown()
        self.report.failures.sort(key=lambda f: (f.index, int(f.check.split()[0]) if f.check[0].isdigit() else 0))
        return self.report

    def _check_entries(self, entries: Iterable[bytes], kept: list[bytes], kinds: list[str | None],
                       pool: ProcessPoolExecutor | None, futures: list[Future[list[SignatureCheck]]]) -> None:
        """Checks 1–8 and 11 over the entries in order, keeping each entry and its type; signatures go to the
        pool a chunk at a time."""
        for index, entry in enumerate(entries):
            kept.append(entry)
            self.report.entries += 1
            before = len(self.report.failures)
            parsed = self.events.entry(index, entry)
            kinds.append(None if parsed is None else parsed.type)
            if pool is not None and self.events.deferred is not None and len(self.events.deferred) >= CHUNK:
                futures.append(pool.submit(failing_signatures, self.events.deferred))
                self.events.deferred = []
            if len(self.report.failures) > before or parsed is None or parsed.parsed is None:
                continue  # a broken envelope or key: the domain checks would only repeat it
            envelope = parsed.parsed
            try:
                self.domain(index, envelope)
            except (KeyError, TypeError, ValueError) as error:
                self.fail(index, envelope, "8 period (inputs)", "events a period can be recomputed from", error)

    # -- 8 and 11: the domain, recomputed ------------------------------------------------------------------

    def domain(self, index: int, e: dict[str, Any]) -> None:
        """Follow the facts periods and claims depend on; check assessments and payouts when they come."""
        kind, body, stream, at = e["type"], e["body"], e["stream"], e["at"]
        if kind == "plan.created":
            self.plans[stream] = _Plan([(at, 1, PlanRules.from_json_value(body["rules"]))])
        elif kind == "plan.rules_amended":
            self.plans[stream].versions.append((body["effective_from"], body["version"],
                                                PlanRules.from_json_value(body["rules"])))
        elif kind == "member.joined":
            self.plans[body["plan"]].members[stream] = [at, None]
            self.member_plan[stream] = body["plan"]
        elif kind in ("member.lapsed", "member.exited", "member.excluded", "member.wind_down_refund_due"):
            span = self.plans[body["plan"]].members[stream]
            if span[1] is None:
                span[1] = at
        elif kind == "claim.filed":
            self.claims[stream] = {"plan": body["plan"], "filing": body, "paid": 0}
        elif kind == "claim.approved":
            self.claims[stream].update(approved=body, approved_at=at)
        elif kind == "claim.included":
            self.claims[stream]["period"] = body["period"]
        elif kind == "member.debit_failed":
            self.failed.setdefault(stream, set()).add(body["period"])
        elif kind == "member.debit_recovered":
            self.failed.get(stream, set()).discard(body["period"])
        elif kind == "period.opened":
            self.period_plan[stream] = body["plan"]
        elif kind == "period.settled":
            self.plans[self.period_plan[stream]].settlements.append((at, body["uncollected_fen"]))
        elif kind == "period.assessed":
            self.assessment(index, e)
        elif kind == "claim.paid":
            self.payout(index, e)

    def assessment(self, index: int, e: dict[str, Any]) -> None:
        """Check 8 for one `period.assessed`."""
        body, period = e["body"], e["stream"]
        plan = self.plans[body["plan"]]
        cutoff = body["cutoff_at"]
        version, rules = plan.rules_at(cutoff)
        if body["rules_version"] != version:
            self.fail(index, e, "8 period (rules_version)", version, body["rules_version"])
        locked = sorted(m for m, (joined, ended) in plan.members.items()
                        if joined is not None and joined <= cutoff and (ended is None or cutoff < ended))
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
        if previous is not None:
            surplus_in = previous["body"]["surplus_out_fen"] - sum(
                uncollected for settled_at, uncollected in plan.settlements if settled_at > previous["at"])
        year = plan_date(parse_at(cutoff), rules).year
        year_start = format_at(plan_midnight(date(year, 1, 1), rules))
        used = sum(p["body"]["share_fen"] for p in plan.periods.values()
                   if year_start <= p["body"]["cutoff_at"] < cutoff)
        expected = assess(len(locked), [(c["claim"], c["approved_fen"]) for c in body["cases"]], rules.fee_bps,
                          surplus_in, rules.per_case_cap_fen, max(0, rules.annual_cap_fen - used), rules.excess_policy)
        for term in TERMS:
            if getattr(expected, term) != body[term]:
                self.fail(index, e, f"8 period ({term})", getattr(expected, term), body[term])
        funded = {c.claim: c.funded_fen for c in expected.cases}
        for case in body["cases"]:
            if funded.get(case["claim"]) != case["funded_fen"]:
                self.fail(index, e, f"8 period (case {case['claim']} funded_fen)", funded.get(case["claim"]),
                          case["funded_fen"])
        root = roll_root(period, locked, body["share_fen"]).hex()
        if (root, len(locked)) != (body["roll_root"], body["roll_size"]):
            self.fail(index, e, "8 period (roll)", f"{root} over {len(locked)}", f"{body['roll_root']} over "
                      f"{body['roll_size']}")
        plan.periods[body["number"]] = {"stream": period, "body": body, "at": e["at"]}

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
        _, rules = self.plans[claim["plan"]].rules_at(claim["filing"]["diagnosed_on"] + "T23:59:59.999999Z")
        maximum = rules.max_aid_fen(claim["filing"]["age_at_diagnosis"])
        if approved["amount_fen"] > maximum or approved["max_aid_fen"] != maximum:
            self.fail(index, e, "11 claim (plan maximum)", f"at most {maximum}", approved["amount_fen"])
        period = claim.get("period")
        assessed = next((p["body"] for plan in self.plans.values() for p in plan.periods.values()
                         if p["stream"] == period), None)
        case = next((c for c in (assessed or {}).get("cases", []) if c["claim"] == e["stream"]), None)
        if case is None:
            self.fail(index, e, "11 claim (included)", "a case of an assessed period", period)
            return
        total = e["body"]["amount_fen"] + e["body"]["arrears_deducted_fen"]
        if total != case["funded_fen"]:
            self.fail(index, e, "11 claim (amount)", case["funded_fen"], total)

    # -- 9 and 10: read models rebuilt from the events -----------------------------------------------------

    def read_models(self, entries: list[bytes], kinds: list[str | None]) -> None:
        """Rebuild the journal and disclosures in a scratch database; check money and every published document.
        An entry whose type no book reads is not parsed again (`kinds`: each entry's type, None when the checks
        could not parse it, which the books then try)."""
        with tempfile.TemporaryDirectory() as tmp:
            sql = SqlStore(SQLiteDatastore(str(Path(tmp) / "audit.sqlite3")))
            source = EntriesInMemory(entries, sql)
            models = ReadModels(*(p(source, sql) for p in PROJECTIONS))  # type: ignore[arg-type]
            books = (models.journal, models.periods, models.cases)  # what checks 9 and 10 read (not the roster)
            read = {kind for book in books for kind in book.appliers()}
            try:
                for start in range(0, len(entries), BOOKS_BATCH):
                    stop = min(len(entries), start + BOOKS_BATCH)
                    with paused_gc(), sql.transaction() as cursor:
                        apply_together(cursor, books, [(index + 1, entries[index])
                                                       for index in range(start, stop)
                                                       if kinds[index] is None or kinds[index] in read], stop)
            except UnbalancedPostingError as error:
                where = next((i for i, entry in enumerate(entries)
                              if f"{json.loads(entry)['stream']}#{json.loads(entry)['seq']}" in str(error)), 0)
                self.fail(where, json.loads(entries[where]), "10 money (balanced postings)", "debits = credits",
                          error)
                return
            except (KeyError, TypeError, ValueError) as error:
                self.fail(len(entries) - 1, None, "10 money (journal)", "a journal built from the events", error)
                return
            if models.journal.trial_balance() != 0:
                self.fail(len(entries) - 1, None, "10 money (trial balance)", 0, models.journal.trial_balance())
            if models.journal.custody_gap() != 0:
                self.fail(len(entries) - 1, None, "10 money (custody)", 0, models.journal.custody_gap())
            failed = {member: periods for member, periods in self.failed.items() if periods}
            for index, entry in enumerate(entries):
                if b'"disclosure.published"' not in entry:
                    continue
                e = json.loads(entry)
                if e.get("type") != "disclosure.published":
                    continue
                try:
                    document = disclosure_document(e["body"]["period"], models.periods, models.cases, failed)
                except (KeyError, ValueError) as error:
                    self.fail(index, e, "9 disclosure", "a settled period", error)
                    continue
                if document_hash(document) != e["body"]["document_hash"]:
                    self.fail(index, e, "9 disclosure (document hash)", document_hash(document),
                              e["body"]["document_hash"])

    # -- 12: checkpoints -----------------------------------------------------------------------------------

    def checkpoints(self, entries: list[bytes], notes: list[str]) -> None:
        """Check each checkpoint against the entries."""
        hashes = [leaf_hash(entry) for entry in entries]
        previous: Checkpoint | None = None
        for note in notes:
            try:
                if self.log_key is None:
                    raise NoteError("no --log-key given")
                checkpoint = Checkpoint.parse(verify_note(note, self.log_key))
            except NoteError as error:
                self.fail(len(entries) - 1, None, "12 checkpoint (signature)", "signed by the log key", error)
                continue
            if checkpoint.size > len(entries):
                self.fail(checkpoint.size - 1, None, "12 checkpoint (size)", f"at most {len(entries)}",
                          checkpoint.size)
                continue
            root = root_from_leaf_hashes(hashes[:checkpoint.size])
            if root != checkpoint.root:
                self.fail(max(0, checkpoint.size - 1), None, f"12 checkpoint {checkpoint.size} (root)", root.hex(),
                          checkpoint.root.hex())
            if previous is not None and checkpoint.size < previous.size:
                self.fail(checkpoint.size - 1, None, "12 checkpoint (order)", f">= {previous.size}", checkpoint.size)
            previous = checkpoint

