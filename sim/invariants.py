"""The invariants the simulation checks after each recovery (docs/simulation.md lists them)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from eventsourcing.sqlite import SQLiteDatastore

from consumers.topic import entry_partitions
from ledger.bootstrap import Ledger
from ledger.log.note import Checkpoint, split_note
from ledger.log.witness import STATE_FILE
from ledger.projections import PROJECTIONS
from ledger.projections.sql import SqlStore

UNCOLLECTED = ("member.debit_failed", "member.debit_recovered", "member.lapsed")
"""Events that carry what failed to be collected into the surplus, which may then be negative: docs/domain.md, the
surplus carried in is "what the previous collection raised beyond what was needed, less what it failed to
collect"."""


class InvariantBrokenError(Exception):
    """An invariant does not hold: which one, and what was found."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


def require(condition: bool, invariant: str, detail: str) -> None:
    """Raise when the invariant does not hold."""
    if not condition:
        raise InvariantBrokenError(invariant, detail)


class Checks:
    """The checks over one simulated deployment, counting how often each ran."""

    def __init__(self, ledger: Ledger, views: SqlStore, work: Path) -> None:
        self.ledger = ledger
        self.views = views
        self.work = work
        self.counts: dict[str, int] = {}
        self.positions: dict[str, int] = {}
        self.setup_events = sum(1 for _ in ledger.entries())
        """The events written before the simulated deployment started (initialization, the parties' keys)."""

    def ran(self, name: str) -> None:
        """Count a check that held."""
        self.counts[name] = self.counts.get(name, 0) + 1

    # -- after every recovery --------------------------------------------------------------------------

    def quick(self, acknowledged: Mapping[str, Any], settled: bool = False) -> None:
        """The checks that read the store and the views as they are: exactly once, the books, the positions;
        `settled` once every period is settled."""
        self.exactly_once(acknowledged)
        self.books(settled)
        self.positions_never_go_back()

    def exactly_once(self, acknowledged: Mapping[str, Any]) -> None:
        """Every acknowledged command has its receipt with its first result, and the store holds exactly the events
        the receipts name: none twice, none half-written."""
        app = self.ledger.app
        receipts = app.ledger_recorder.select_receipts(list(acknowledged))
        for command_id, ack in acknowledged.items():
            receipt = receipts.get(command_id)
            require(receipt is not None, "every acknowledged command is stored", command_id)
            assert receipt is not None
            stored = {k: v for k, v in json.loads(receipt.result).items() if k != "repeated"}
            require(stored == ack.result, "every acknowledged command is stored with its first result",
                    f"{command_id}: acknowledged {ack.result}, stored {stored}")
        named = self.setup_events + sum(len(ack.result["events"]) for ack in acknowledged.values())
        counted = sum(1 for _ in self.ledger.entries())
        require(named == counted, "the store holds exactly the events of the acknowledged commands, once",
                f"set-up and acknowledged commands wrote {named} events, the store holds {counted}")
        self.ran("acknowledged commands stored exactly once with their first result")

    def books(self, settled: bool = False) -> None:
        """The journal balances; no balance, surplus or custodian cash is negative (the surplus only once every
        period is settled: until then a failed debit is charged to it, and its settlement gives it back)."""
        models = self.ledger.read_models()
        journal = models.journal
        require(journal.trial_balance() == 0, "the journal balances", f"debits − credits = {journal.trial_balance()}")
        balances = journal.balances()
        require(balances["custodian_cash"] >= 0, "custodian cash is never negative", str(balances))
        with journal.sql.transaction(commit=False) as cursor:
            row = cursor.execute(f"SELECT COALESCE(SUM(debit_fen) - SUM(credit_fen), 0) FROM {journal.postings} "
                                 "WHERE account = 'surplus' AND event NOT IN (?, ?, ?)", UNCOLLECTED).fetchone()
        assert row is not None
        require(int(row[0]) <= 0, "the surplus is never negative (but for what failed to be collected)",
                f"surplus from assessments and refunds: {-int(row[0])} fen; {balances}")
        require(not settled or balances["surplus"] <= 0, "the surplus is never negative once settled", str(balances))
        require(balances["member_balances"] <= 0, "members' balances are never negative", str(balances))
        self.ran("the journal balances, nothing negative")

    def stored_positions(self) -> dict[str, int]:
        """Every lane's position in the consumers' views."""
        for projection_class in PROJECTIONS:
            projection_class(self.ledger.app, self.views)
        with self.views.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT name, position FROM {self.views.table('projection_tracking')}").fetchall()
        return {str(name): int(position) for name, position in rows}

    def positions_never_go_back(self) -> None:
        """A lane's position only moves forward (the views are never rebuilt in a run)."""
        now = self.stored_positions()
        for lane, position in now.items():
            require(position >= self.positions.get(lane, 0), "a projection never goes back",
                    f"{lane}: {self.positions.get(lane)} → {position}")
        self.positions = now
        self.ran("projection positions only move forward")

    # -- once everything is quiet ----------------------------------------------------------------------

    def final_positions(self) -> dict[str, int]:
        """The position of every lane once every stored event is applied."""
        partitions = self.ledger.settings.kafka_partitions
        last = [0] * partitions
        for index, entry in self.ledger.entries():
            for partition in entry_partitions(entry, partitions):
                last[partition] = index
        positions: dict[str, int] = {}
        for projection_class in PROJECTIONS:
            if projection_class.STREAM_LOCAL:
                positions |= {f"{projection_class.NAME} partition {p}/{partitions}": last[p]
                              for p in range(partitions)}
            else:
                positions[projection_class.NAME] = max(last)
        return positions

    def caught_up(self, seconds: float, supervise: Callable[[], None]) -> None:
        """Wait until the consumers have applied every stored event (liveness after the faults), starting again
        whatever ends meanwhile."""
        expected = self.final_positions()
        deadline = time.monotonic() + seconds
        while True:
            now = self.stored_positions()
            behind = {lane: (now.get(lane, 0), end) for lane, end in expected.items() if now.get(lane, 0) != end}
            if not behind:
                break
            require(time.monotonic() < deadline, "the consumers catch up after the faults",
                    f"after {seconds:g} s, lanes behind (at, end): {behind}")
            supervise()
            time.sleep(0.3)
        self.positions_never_go_back()
        self.ran("consumers caught up: no event skipped")

    def digests(self) -> None:
        """The Kafka-fed views equal a fresh rebuild from the store (an event applied twice or skipped would show)."""
        app = self.ledger.app
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            fresh_sql = SqlStore(SQLiteDatastore(str(Path(tmp) / "fresh.sqlite3")))
            for projection_class in PROJECTIONS:
                fresh = projection_class(app, fresh_sql)
                fresh.catch_up()
                fed = projection_class(app, self.views).digest()
                require(fed == fresh.digest(), "Kafka-fed digests equal a fresh rebuild",
                        f"{projection_class.NAME}: views {fed}, rebuild {fresh.digest()}")
        self.ran("Kafka-fed digests equal a fresh rebuild")

    def service(self, url: str) -> None:
        """The HTTP service answers from the consumers' views, and serves a checkpoint of this log."""
        plans = httpx.get(f"{url}/api/v1/plans", timeout=30)
        for _ in range(3):  # a client honours 503 + Retry-After (a connection the database dropped was replaced)
            if plans.status_code != 503:
                break
            time.sleep(float(plans.headers.get("Retry-After", "1")))
            plans = httpx.get(f"{url}/api/v1/plans", timeout=30)
        ids = {plan["id"] for plan in plans.json()["items"]} if plans.status_code == 200 else set()
        stored = {row["id"] for row in self.ledger.read_models().periods.plans_list()}
        require(ids == stored, "the service answers from the views", f"{plans.status_code}: {ids} ≠ {stored}")
        served = httpx.get(f"{url}/log/checkpoint", timeout=30)
        require(served.status_code == 200, "the service serves the log", f"/log/checkpoint: {served.status_code}")
        checkpoint = Checkpoint.parse(split_note(served.text)[0])
        log = self.ledger.log
        log.integrate()
        require(checkpoint.size <= log.size() and checkpoint.root == log.root(checkpoint.size),
                "every checkpoint is of this log", f"served size {checkpoint.size}")
        self.ran("the service answers from the views and serves this log's checkpoint")

    def audit(self, witness_dirs: list[Path]) -> None:
        """`audit verify` over chains, signatures and checkpoints — every checkpoint the log stored and every one a
        witness cosigned — and no witness cosigned two inconsistent checkpoints."""
        log = self.ledger.log
        log.integrate()
        size = log.size()
        notes = [stored.note for stored in self.ledger.checkpoints.all()]
        for directory in witness_dirs:
            with sqlite3.connect(directory / STATE_FILE) as connection:
                rows = connection.execute("SELECT size, root, note FROM cosigned ORDER BY size").fetchall()
            for cosigned_size, root, note in rows:
                require(cosigned_size <= size and bytes(root) == log.root(cosigned_size),
                        "no witness cosigned two inconsistent checkpoints",
                        f"{directory.name} cosigned size {cosigned_size} with a root the log does not have")
                notes.append(note)
        for note in notes:
            checkpoint = Checkpoint.parse(split_note(note)[0])
            require(checkpoint.size <= size and checkpoint.root == log.root(checkpoint.size),
                    "every checkpoint is of this log", f"size {checkpoint.size}")
        held = self.work / "held-checkpoints.json"
        notes = sorted(set(notes), key=lambda note: (Checkpoint.parse(split_note(note)[0]).size, note))
        held.write_text(json.dumps(notes))
        settings = self.ledger.settings
        location = settings.database_url or str(settings.data_dir)
        done = subprocess.run([sys.executable, "-m", "ledger.cli", "--data-dir", str(settings.data_dir),
                               "--ledger", location, "audit", "verify", "--checkpoints", str(held)],
                              capture_output=True, text=True, timeout=600)
        require(done.returncode == 0, "audit verify passes", (done.stdout + done.stderr).strip()[-800:])
        self.ran("audit verify (chains, signatures, checkpoints); witnesses consistent")
