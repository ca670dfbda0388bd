"""Real servers on free loopback ports for the HTTP tests: a witness process of its own that a test can kill with
SIGKILL and start again (an app over the test's own ledger is served in a thread by `sim.services.serving`); and
signed requests to them (RFC 9421, as members, custodians and regulators sign)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from ledger.bootstrap import Ledger
from ledger.httpsig import sign_request
from ledger.keys import SigningKey
from sim.services import free_port

ROOT = Path(__file__).resolve().parent.parent


class WitnessProcess:
    """`tests.witness_server` in a process of its own, on a fixed port across restarts."""

    def __init__(self, directory: Path, key_name: str, name: str, log_keys: Sequence[str]) -> None:
        self.arguments = [sys.executable, "-m", "tests.witness_server", str(directory), key_name, name, *log_keys]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process and wait until it answers."""
        self.process = subprocess.Popen([*self.arguments, "--port", str(self.port)], cwd=ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                assert self.process.stderr is not None
                raise RuntimeError(f"the witness exited: {self.process.stderr.read().decode()}")
            try:
                if httpx.get(f"{self.url}/key", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("the witness did not start")

    def kill(self) -> None:
        """SIGKILL: no chance to flush or finish anything."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(20)

    def stop(self) -> None:
        """End the process if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.kill()


@contextmanager
def witness_process(directory: Path, key_name: str, name: str, log_keys: Sequence[str]) -> Iterator[WitnessProcess]:
    """A started witness process, ended when the test is done."""
    process = WitnessProcess(directory, key_name, name, log_keys)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def signed(ledger: Ledger, method: str, url: str, key: SigningKey, body: bytes = b"",
           content_type: str | None = None) -> httpx.Response:
    """Send a request signed with `key` at the ledger's (simulated) time."""
    headers = [("content-type", content_type)] if content_type else []
    fields = sign_request(method, url, headers, body, key, ledger.clock.now())
    return httpx.request(method, url, headers={**dict(headers), **fields}, content=body, timeout=60)
