"""Real uvicorn servers on free loopback ports for the HTTP tests, in a thread of the test process (an application
over the test's own ledger), and signed requests to them (RFC 9421, as members, custodians and regulators sign)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import httpx
import uvicorn
from starlette.types import ASGIApp

from ledger.api.httpsig import sign_request
from ledger.bootstrap import Ledger
from ledger.keys import SigningKey


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(app: ASGIApp, lifespan: Literal["on", "off"] = "off") -> Iterator[str]:
    """Serve `app` with uvicorn in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
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


def signed(ledger: Ledger, method: str, url: str, key: SigningKey, body: bytes = b"",
           content_type: str | None = None) -> httpx.Response:
    """Send a request signed with `key` at the ledger's (simulated) time."""
    headers = [("content-type", content_type)] if content_type else []
    fields = sign_request(method, url, headers, body, key, ledger.clock.now())
    return httpx.request(method, url, headers={**dict(headers), **fields}, content=body, timeout=60)
