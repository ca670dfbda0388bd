"""A small local web server for the browser tests: the ledger's static files and the test vectors from one loopback
origin, a blank page to run modules in, and an endpoint that records signed requests as they arrive.

The service will serve the same static files from its own origin; until then this stands in for it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MOUNTS = {"/static/": ROOT / "ledger" / "web" / "static", "/vectors/": ROOT / "tests" / "vectors"}
TYPES = {".js": "text/javascript; charset=utf-8", ".json": "application/json", ".html": "text/html; charset=utf-8",
         ".md": "text/plain; charset=utf-8"}
BLANK = b"<!doctype html><html lang=\"zh-CN\"><meta charset=\"utf-8\"><title>mutual-ledger</title><body></body></html>"


@dataclass(frozen=True)
class Received:
    """A request to `/signed/` as the server saw it."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class LocalServer:
    """The running server: its origin and the signed requests it received."""

    origin: str
    received: list[Received] = field(default_factory=list)


def _handler(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests look at what they need."""

        def do_GET(self) -> None:
            if self.path.startswith("/signed/"):
                self.record()
            elif self.path == "/":
                self.reply(200, BLANK, TYPES[".html"])
            else:
                self.file()

        def do_POST(self) -> None:
            self.record()

        def do_DELETE(self) -> None:
            self.record()

        def record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("Host", "")
            server.received.append(Received(self.command, f"http://{host}{self.path}", list(self.headers.items()),
                                            body))
            self.reply(204, b"", "text/plain")

        def file(self) -> None:
            path = self.path.split("?", 1)[0]
            for prefix, directory in MOUNTS.items():
                if path.startswith(prefix):
                    target = (directory / path[len(prefix):]).resolve()
                    if target.is_file() and directory.resolve() in target.parents:
                        self.reply(200, target.read_bytes(), TYPES.get(target.suffix, "application/octet-stream"))
                        return
            self.reply(404, b"not found", "text/plain")

        def reply(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serving() -> Iterator[LocalServer]:
    """Serve on a free loopback port until the block ends."""
    state = LocalServer("")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.origin = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
