"""Real uvicorn servers on free loopback ports for the HTTP tests: in a thread of the test process (an app over the
test's own ledger), or as a witness process of its own that a test can kill with SIGKILL and start again; and signed
requests to them (RFC 9421, as members, custodians and regulators sign)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import httpx
import uvicorn
from starlette.types import ASGIApp

from ledger.bootstrap import Ledger
from ledger.httpsig import sign_request
from ledger.keys import SigningKey

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: ASGIApp, lifespan: Literal["on", "off"] = "off", port: int | None = None) -> Iterator[str]:
    """Serve `app` with uvicorn in a thread (on `port`, else a free one); yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port or free_port(), log_level="warning",
                                           lifespan=lifespan, timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the uvicorn server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(20)


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
