"""`mutual-ledger serve`: the operator's HTTP service (`ledger.api.app`) with its periodic jobs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click
import uvicorn

from ledger.cli.base import context


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the ledger over HTTP: the JSON API under /api/v1 (OpenAPI at /openapi.json), the live feed, the log as
    C2SP tlog-tiles under /log, the in-browser verifier under /static; and, every LEDGER_CHECKPOINT_INTERVAL seconds
    at most, catch the read models up, integrate, publish a checkpoint when the tree grew and ask the witnesses to
    cosign it."""
    from ledger.anchors import TRUST_ANCHORS_FILE
    from ledger.api.app import create_app, service_state
    from ledger.api.jobs import OperatorJobs, configured_witnesses
    from ledger.api.log import PublicLog, log_router
    from ledger.application import LOG_KEY
    from ledger.log.tiles import TiledLog

    ledger = context().ledger()
    state = service_state(ledger)
    own_models = None if ledger.settings.views_url is not None else state.models
    jobs = OperatorJobs(ledger, own_models, ledger.settings.checkpoint_interval_seconds,
                        push=configured_witnesses(ledger), publish=ledger.signers.exists(LOG_KEY))
    click.echo(f"serving {ledger.settings.data_dir} on http://{host}:{port}/ (API /api/v1, OpenAPI /openapi.json); "
               f"checkpoints every {ledger.settings.checkpoint_interval_seconds:g} s when the tree grew", err=True)
    public_log = PublicLog(TiledLog(ledger.log, ledger.checkpoints), ledger.checkpoints.verifier,
                           ledger.settings.data_dir / TRUST_ANCHORS_FILE)
    config = uvicorn.Config(create_app(state, routers=[log_router(public_log)], jobs=jobs), host=host, port=port,
                            log_level="warning",
                            timeout_graceful_shutdown=5)
    GracefulServer(config).run()


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
