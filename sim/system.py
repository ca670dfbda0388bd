"""The processes of the distributed ledger, started, killed and started again by the simulation: the writer, the
Kafka relay and broker, the four consumers, two witnesses (the custodian's and the regulator's) and the HTTP service
running the operator's jobs (catch-up, integration, checkpoints, pushing them to the witnesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from ledger.projections import PROJECTIONS
from sim.services import TansuBroker, free_port

ROOT = Path(__file__).resolve().parent.parent
CONSUMERS = tuple(p.NAME for p in PROJECTIONS)


class StartError(Exception):
    """A process of the system did not come up."""


@dataclass
class Process:
    """One long-running process of the system, with the command that starts it again after a kill."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready_url: str | None = None
    """An HTTP address answering once the process serves."""
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def running(self) -> bool:
        """Whether the process runs now."""
        return self.popen is not None and self.popen.poll() is None

    def start(self, stdin: int | None = None) -> None:
        """Start it and, when it serves HTTP, wait until it answers."""
        self.starts += 1
        handle: IO[bytes] = self.log.open("ab")
        handle.write(f"--- start {self.starts} at {time.time():.3f}\n".encode())
        handle.flush()
        self.popen = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdin=stdin, stdout=subprocess.PIPE
                                      if stdin is not None else handle, stderr=handle)
        handle.close()
        if self.ready_url is None:
            return
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise StartError(f"{self.name} exited with {self.popen.returncode} (see {self.log})")
            try:
                if httpx.get(self.ready_url, timeout=2).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise StartError(f"{self.name} did not answer at {self.ready_url} (see {self.log})")

    def kill(self) -> None:
        """SIGKILL: nothing is flushed, nothing finished."""
        if self.popen is not None:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(30)
            for stream in (self.popen.stdin, self.popen.stdout):
                if stream is not None:
                    stream.close()
            self.popen = None


@dataclass
class System:
    """Every process of one simulated deployment (see the module docstring)."""

    work: Path
    env: dict[str, str]
    parties: Path
    broker: TansuBroker
    witness_keys: dict[str, str] = field(default_factory=dict)
    """Party → its witness's cosignature verifier key."""
    processes: dict[str, Process] = field(default_factory=dict)

    def cli(self, name: str, *args: str, env: dict[str, str] | None = None, ready_url: str | None = None) -> Process:
        """A `mutual-ledger` process of the system."""
        process = Process(name, [sys.executable, "-m", "ledger.cli", *args], {**self.env, **(env or {})},
                          self.work / "logs" / f"{name}.log", ready_url)
        self.processes[name] = process
        return process

    def build(self) -> None:
        """Describe every process (nothing starts yet)."""
        (self.work / "logs").mkdir(exist_ok=True)
        writer = Process("writer", [sys.executable, "-m", "sim.writer", str(self.parties)], dict(self.env),
                         self.work / "logs" / "writer.log")
        self.processes["writer"] = writer
        self.cli("relay", "kafka", "relay", "--interval", "0.1", "--batch", "500")
        for name in CONSUMERS:
            self.cli(f"consumer:{name}", "kafka", "consume", name, "--group", f"sim-{name}")
        witnesses = []
        for party in ("custodian", "regulator"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            self.cli(f"witness:{party}", "--data-dir", str(self.parties / party), "--key", party, "witness", "serve",
                     "--port", str(port), ready_url=f"{url}/key")
            witnesses.append(f"{self.witness_keys[party]}={url}")
        port = free_port()
        self.service_url = f"http://127.0.0.1:{port}"
        self.cli("service", "serve", "--port", str(port), ready_url=f"{self.service_url}/api/v1/plans",
                 env={"LEDGER_WITNESSES": ",".join(witnesses), "LEDGER_CHECKPOINT_INTERVAL": "1"})

    def start_all(self) -> None:
        """Start the broker and every process but the writer (the client starts it)."""
        for name, process in self.processes.items():
            if name != "writer":
                process.start()

    def stop_all(self) -> None:
        """Kill every process and the broker."""
        for process in self.processes.values():
            process.kill()
        self.broker.stop()

    def restart_broker(self) -> None:
        """The broker killed and started again on its port with nothing in it."""
        self.broker.stop()
        self.broker.start()


def base_env(data_dir: Path, database_url: str | None, views_url: str, bootstrap: str, topic: str) -> dict[str, str]:
    """The `LEDGER_*` settings every process of the system shares."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env |= {"LEDGER_DATA_DIR": str(data_dir), "LEDGER_VIEWS_URL": views_url, "LEDGER_KAFKA_BOOTSTRAP_SERVERS":
            bootstrap, "LEDGER_KAFKA_TOPIC": topic, "LEDGER_SIGNING_WORKERS": "0", "PYTHONPATH": str(ROOT)}
    if database_url is not None:
        env["LEDGER_DATABASE_URL"] = database_url
    return env
