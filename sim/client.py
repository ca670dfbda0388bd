"""The writer's caller: sends each batch of commands to the writer process, survives its deaths, and remembers
every result acknowledged to it (a result is acknowledged once this client has read it).

Between the workload's batches it sends seeded invalid commands — a wrong signer, an unknown reference, a schema
violation, a command id reused for another request, an action repeated under a new id — each expected to be refused
with nothing written, and retries of acknowledged commands, each expected to return its first result.
"""

from __future__ import annotations

import random
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ledger.application import SimulatedClock
from schemas.commands import Command
from sim.invariants import InvariantBrokenError
from sim.system import Process

PROBE_RATE = 0.2
"""How often an invalid command or a retry goes before a batch of the workload."""
NOT_REPEATABLE = frozenset({"pay_claim", "deposit", "settle_period", "assess_period", "decide_claim", "notice_claim",
                            "cast_vote", "receive_subsidy", "publish_disclosure", "disburse_refund", "wind_down",
                            "terminate_plan"})
"""Commands whose action, repeated under a new command id, the ledger must refuse."""
WRONG_SIGNER = {"operator": "investigator", "custodian": "investigator", "investigator": "regulator",
                "regulator": "custodian", "member": "investigator", "juror": "custodian"}
"""For a command of a role, a key of another role that may not sign it."""
REFERENCES = ("claim", "period", "member", "plan")
"""Fields naming a stream the command acts on."""


@dataclass
class Acknowledged:
    """A command whose result reached the client, as it was sent."""

    data: dict[str, Any]
    sign_as: str | None
    result: dict[str, Any]


def first_result(result: dict[str, Any]) -> dict[str, Any]:
    """A result without the mark a repeat carries."""
    return {k: v for k, v in result.items() if k != "repeated"}


@dataclass
class WriterClient:
    """See the module docstring. `before_step(step)` runs the faults scheduled for a step and says whether the
    writer is to be killed while it runs that step's batch (and after how many seconds)."""

    writer: Process
    clock: SimulatedClock
    rng: random.Random
    before_step: Callable[[int], float | None]
    last_event: Callable[[], int]
    receipts: Callable[[Sequence[str]], set[str]]
    after_writer_recovery: Callable[[], None] = lambda: None
    """Runs before the step after one in which the writer was started again (its batch acknowledged by then)."""
    max_steps: int | None = None
    writer_restarted: bool = False
    step: int = 0
    acknowledged: dict[str, Acknowledged] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    probes: int = 0
    transcript: list[Any] = field(default_factory=list)
    """What each step sent and got back (command ids, acknowledged or the rule refused): the run's outcome."""

    def count(self, name: str) -> None:
        """Add one to a counter of the report."""
        self.counts[name] = self.counts.get(name, 0) + 1

    # -- the workload's batches ------------------------------------------------------------------------

    def execute_many(self, commands: Sequence[Command], sign_as: str | None = None) -> list[dict[str, Any]]:
        """Run a batch of valid commands (after, sometimes, a probe); every one must be done."""
        if self.rng.random() < PROBE_RATE:
            self.probe(commands[0], sign_as)
        data = [c.model_dump(mode="json") for c in commands]
        answer = self.send(data, sign_as)
        if not answer["ok"]:
            raise InvariantBrokenError("valid commands are done",
                                       f"{data[answer.get('position', 0)]['command_id']} refused: {answer}")
        results: list[dict[str, Any]] = answer["results"]
        for item, result in zip(data, results, strict=True):
            self.acknowledge(item, sign_as, result)
        self.transcript.append(["ok", [item["command_id"] for item in data]])
        return results

    def acknowledge(self, data: dict[str, Any], sign_as: str | None, result: dict[str, Any]) -> None:
        """Remember a result read from the writer; a command id seen before must give its first result."""
        command_id = data["command_id"]
        earlier = self.acknowledged.get(command_id)
        if earlier is None:
            self.acknowledged[command_id] = Acknowledged(data, sign_as, first_result(result))
            self.order.append(command_id)
            self.count("commands acknowledged")
        elif first_result(result) != earlier.result:
            raise InvariantBrokenError("a retried command id returns its first result",
                                       f"{command_id}: first {earlier.result}, now {result}")

    # -- the transport -------------------------------------------------------------------------------

    def send(self, commands: list[dict[str, Any]], sign_as: str | None) -> dict[str, Any]:
        """One step: the batch to the writer and its answer, through whatever the step's faults do."""
        self.step += 1
        if self.max_steps is not None and self.step > self.max_steps:
            raise StepsDoneError
        if self.writer_restarted:
            self.writer_restarted = False
            self.after_writer_recovery()
        kill_after = self.before_step(self.step)
        line = orjson.dumps({"at": self.clock.now().isoformat(), "sign_as": sign_as, "commands": commands}) + b"\n"
        if kill_after is not None:
            self._write(line)
            time.sleep(kill_after)
            self.writer.kill()  # whatever it answered is never read: not acknowledged
        for _ in range(20):
            answer = self._roundtrip(line)
            if kill_after is not None:
                self.writer_restarted = True
            if answer is None or answer.get("crash"):  # the writer carries on through every fault but its kill
                raise InvariantBrokenError("a process ends only when killed",
                                           f"writer: {answer['crash'] if answer else 'ended without answering'}")
            if answer.get("retry"):
                self.count("retryable refusals")
                continue
            return answer
        raise InvariantBrokenError("the writer recovers", f"step {self.step}: no answer after 20 tries")

    def _write(self, line: bytes) -> None:
        if not self.writer.running:
            self.writer.start(stdin=subprocess.PIPE)
        popen = self.writer.popen
        assert popen is not None and popen.stdin is not None
        try:
            popen.stdin.write(line)
            popen.stdin.flush()
        except BrokenPipeError:
            self.writer.kill()

    def _roundtrip(self, line: bytes) -> dict[str, Any] | None:
        self._write(line)
        popen = self.writer.popen
        if popen is None or popen.stdout is None:
            return None
        raw = popen.stdout.readline()
        if not raw:
            return None
        answer: dict[str, Any] = orjson.loads(raw)
        return answer

    # -- probes --------------------------------------------------------------------------------------

    def probe_id(self) -> str:
        """A new command id for a probe."""
        self.probes += 1
        return f"probe-{self.probes}"

    def probe(self, next_command: Command, sign_as: str | None) -> None:
        """One seeded invalid command (or retry); see the module docstring."""
        kinds = ["wrong signer", "unknown reference", "schema violation"]
        if self.acknowledged:
            kinds += ["retry", "retry", "reused id", "repeated action"]
        kind = self.rng.choice(kinds)
        data = next_command.model_dump(mode="json")
        signer = sign_as
        if kind == "retry":
            earlier = self.acknowledged[self.rng.choice(self.order)]
            answer = self.send([earlier.data], earlier.sign_as)
            if not answer["ok"]:
                raise InvariantBrokenError("a retried command id returns its first result",
                                           f"{earlier.data['command_id']} refused on retry: {answer}")
            self.acknowledge(earlier.data, earlier.sign_as, answer["results"][0])
            self.count("probe: retry")
            self.transcript.append(["retry", earlier.data["command_id"]])
            return
        if kind == "wrong signer":
            signer = WRONG_SIGNER[type(next_command).ROLE]
            if data["command"] == "register_key":
                signer = "custodian"
        elif kind == "unknown reference":
            present = [name for name in REFERENCES if isinstance(data.get(name), str)]
            if not present:
                return
            data[present[0]] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            data["command_id"] = self.probe_id()
        elif kind == "schema violation":
            data["command_id"] = self.probe_id()
            if "amount_fen" in data:
                data["amount_fen"] = -100
            elif "age_years" in data:
                data["age_years"] = 300
            else:
                data["command_id"] = "-" + data["command_id"]
        elif kind == "reused id":
            first = self.acknowledged[self.rng.choice(self.order)]
            other = self.acknowledged[self.rng.choice(self.order)]
            if first.data == other.data:
                return
            data = {**other.data, "command_id": first.data["command_id"]}
            signer = other.sign_as
        else:
            done = [c for c in self.order if self.acknowledged[c].data["command"] in NOT_REPEATABLE]
            if not done:
                return
            earlier = self.acknowledged[self.rng.choice(done)]
            data = {**earlier.data, "command_id": self.probe_id()}
            signer = earlier.sign_as
        self.refused(kind, data, signer)

    def refused(self, kind: str, data: dict[str, Any], sign_as: str | None) -> None:
        """Send an invalid command: it must be refused and nothing written (no event, no receipt for a new id)."""
        before = self.last_event()
        answer = self.send([data], sign_as)
        if answer["ok"]:
            raise InvariantBrokenError("an invalid command is refused",
                                       f"{kind}: {data['command']} {data['command_id']} was done: {answer}")
        after = self.last_event()
        fresh = data["command_id"] not in self.acknowledged
        if after != before or (fresh and self.receipts([data["command_id"]])):
            raise InvariantBrokenError("a refused command writes nothing",
                                       f"{kind}: {data['command_id']}: events {before} → {after}")
        self.count(f"probe: {kind}")
        self.transcript.append(["refused", kind, data["command"], answer.get("field"), answer.get("rule")])


class StepsDoneError(Exception):
    """The run reached its last step."""
