"""`mutual-ledger serve`: the operator's HTTP service (`ledger.api.app`) with its periodic jobs, in one process or,
with `--workers N`, in N worker processes that share the listening socket and the replay guard while the command's
own process runs the jobs once for all."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
import uvicorn
from fastapi import APIRouter, FastAPI

from ledger.bootstrap import Ledger
from ledger.cli.base import context

if TYPE_CHECKING:
    from ledger.api.jobs import OperatorJobs

REPLAY_FILE = "replay-nonces.sqlite3"

LOCATION_VARIABLE = "LEDGER_SERVE_LEDGER"
"""How `serve --workers` passes `--ledger` down to its worker processes (the rest of the settings is the
environment they inherit, `--data-dir` as LEDGER_DATA_DIR)."""
REPLAY_VARIABLE = "LEDGER_SERVE_REPLAY_FILE"
"""Where the workers of one `serve --workers` share the nonces they saw: a file in a directory of the command's own,
removed when it ends (nothing of it belongs to the ledger)."""


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Worker processes answering requests (about one per core); the jobs run once, in this process.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the ledger over HTTP: the JSON API under /api/v1 (OpenAPI at /openapi.json), the live feed, the log as
    C2SP tlog-tiles under /log, the in-browser verifier under /static; and, every LEDGER_CHECKPOINT_INTERVAL seconds
    at most, catch the read models up, integrate, publish a checkpoint when the tree grew and ask the witnesses to
    cosign it."""
    from ledger.api.app import create_app, service_state
    from ledger.api.jobs import OperatorJobs, configured_witnesses
    from ledger.application import LOG_KEY

    ledger = context().ledger()
    state = service_state(ledger)
    own_models = None if ledger.settings.views_url is not None else state.models
    jobs = OperatorJobs(ledger, own_models, ledger.settings.checkpoint_interval_seconds,
                        push=configured_witnesses(ledger), publish=ledger.signers.exists(LOG_KEY))
    click.echo(f"serving {ledger.settings.data_dir} on http://{host}:{port}/ (API /api/v1, OpenAPI /openapi.json) "
               f"with {workers} worker{'s' if workers > 1 else ''}; checkpoints every "
               f"{ledger.settings.checkpoint_interval_seconds:g} s when the tree grew", err=True)
    if workers == 1:
        config = uvicorn.Config(create_app(state, routers=[log_router_of(ledger)], jobs=jobs), host=host, port=port,
                                log_level="warning", timeout_graceful_shutdown=5)
        settle_heap()
        GracefulServer(config).run()
        return
    os.environ["LEDGER_DATA_DIR"] = str(ledger.settings.data_dir)
    if context().location is not None:
        os.environ[LOCATION_VARIABLE] = context().location or ""
    with jobs_beside(jobs), tempfile.TemporaryDirectory(prefix="mutual-ledger-serve-") as runtime:
        os.environ[REPLAY_VARIABLE] = str(Path(runtime) / REPLAY_FILE)
        uvicorn.run("ledger.cli.serve:worker_app", factory=True, workers=workers, host=host, port=port,
                    log_level="warning", timeout_graceful_shutdown=5)


def log_router_of(ledger: Ledger) -> APIRouter:
    """The `/log/` router over the ledger's tiled log, its verifier key and its published trust anchors."""
    from ledger.anchors import TRUST_ANCHORS_FILE
    from ledger.api.log import PublicLog, log_router
    from ledger.log.tiles import TiledLog

    return log_router(PublicLog(TiledLog(ledger.log, ledger.checkpoints), ledger.checkpoints.verifier,
                                ledger.settings.data_dir / TRUST_ANCHORS_FILE))


def worker_app() -> FastAPI:
    """The application of one worker process of `serve --workers N`: the ledger opened again from the settings the
    command passed down, without the jobs (the command's process runs them), with the replay guard every worker
    shares (`ledger.api.state.SharedReplayGuard`)."""
    from ledger.api.app import create_app, service_state
    from ledger.api.state import SharedReplayGuard
    from ledger.application import SystemClock
    from ledger.bootstrap import bootstrap
    from ledger.config import Settings

    settings = Settings.from_env().on_ledger(os.environ.get(LOCATION_VARIABLE) or None)
    ledger = bootstrap(settings, clock=SystemClock())
    state = service_state(ledger, SharedReplayGuard(Path(os.environ[REPLAY_VARIABLE])))
    app = create_app(state, routers=[log_router_of(ledger)])
    settle_heap()
    return app


def settle_heap() -> None:
    """Collect once, then freeze what the process built to serve (it lives as long as the process): a full
    collection no longer scans it while requests wait (over a million-member store's startup objects one took
    ~40-160 ms, measured on a shared 2-core machine)."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def jobs_beside(jobs: OperatorJobs) -> Iterator[None]:
    """Run the operator's jobs in a thread of this process while the workers serve; stop them after."""
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(jobs.run(stopping),), daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stopping.set)
        thread.join(60)
        loop.close()


class GracefulServer(uvicorn.Server):
    """uvicorn's server, which ends normally (status 0) after SIGTERM or SIGINT has shut it down gracefully
    instead of raising the signal again once it is done."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn's signal handling, forgetting the signals it caught before it would raise them again."""
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()
