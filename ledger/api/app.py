"""The ledger's HTTP service: one ASGI application over one `Ledger` from the composition root.

    /api/v1/…            the JSON API (OpenAPI 3.1 at /openapi.json): one router per audience —
                         public (`routers/public.py`), member, custodian, regulator — and the live feed
    /static/…            the in-browser verifier's ES modules (`ledger/web/static/`), same origin
    /, /plans/…, /periods/…, /member, /custodian, /regulator
                         the pages people read (`routers/pages.py`, docs/pages.md)
    (more routers)       mounted with one `include_router` each: `create_app(state, routers=[log_router(...)])`

Responses a client accepts gzip for are compressed (what a phone downloads for "Verify my history" and the 公示),
but for the live feed and the log's tiles. Errors are RFC 9457 problem details (`ledger.api.problem`); no traceback
reaches a client. Requests only read, but for the regulator's signed report. While the application runs, the
operator's periodic jobs (`ledger.api.jobs`) run beside it when given.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ledger.api.jobs import OperatorJobs
from ledger.api.problem import problem, problem_for, validation_problem
from ledger.api.routers import custodian, feed, member, pages, public, regulator
from ledger.api.state import ServiceState
from ledger.bootstrap import Ledger
from ledger.errors import LedgerError
from ledger.httpsig import ReplayGuard
from ledger.projections import ReadModels

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
API_PREFIX = "/api/v1"
SCRIPT_TYPES = {".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8"}
UNCOMPRESSED = (*DEFAULT_EXCLUDED_CONTENT_TYPES, "application/octet-stream")
"""Responses never gzip-compressed on the way: the live feed (a stream) and the log's tiles (entry bundles are
compressed by the tiles router itself; a tile's ETag is the hash of the bytes sent)."""


class StaticModules(StaticFiles):
    """Static files with the content types ES modules need (browsers refuse a module of another type) and no
    sniffing."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        """The file, with its script type set exactly."""
        response = await super().get_response(path, scope)
        script_type = SCRIPT_TYPES.get(Path(path).suffix)
        if script_type is not None and response.status_code in (200, 304):
            response.headers["content-type"] = script_type
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def service_state(ledger: Ledger, replay: ReplayGuard | None = None) -> ServiceState:
    """What the service reads: the views database when the distributed deployment fills one (`LEDGER_VIEWS_URL`),
    else the read models beside the events; `replay` is the replay guard when the process shares one."""
    if ledger.settings.views_url is not None:
        from consumers.views import views_store

        return ServiceState(ledger, ReadModels.open(ledger.app, views_store(ledger.settings)), replay)
    return ServiceState(ledger, ledger.read_side.models, replay)


def create_app(state: ServiceState, *, routers: Sequence[APIRouter] = (), jobs: OperatorJobs | None = None
               ) -> FastAPI:
    """The ASGI application over `state`, with `routers` mounted beside the API and `jobs` run while it serves."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stopping: asyncio.Event = app.state.stopping
        task = asyncio.create_task(jobs.run(stopping)) if jobs is not None else None
        try:
            yield
        finally:
            stopping.set()
            if task is not None:
                await task

    app = FastAPI(title="mutual-ledger", version="1", summary="A verifiable ledger of mutual-aid health plans.",
                  openapi_url="/openapi.json", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.ledger = state
    app.state.stopping = asyncio.Event()
    api = APIRouter(prefix=API_PREFIX)
    for module in (public, feed, member, custodian, regulator):
        api.include_router(module.router)
    api.include_router(member.identity)
    app.include_router(api)
    app.include_router(pages.router)
    for router in routers:
        app.include_router(router)
    app.mount("/static", StaticModules(directory=STATIC), name="static")
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=6, exclude_content_types=UNCOMPRESSED)
    _handle_errors(app)
    return app


def _handle_errors(app: FastAPI) -> None:
    """Every error as problem details (the mapping is `ledger.api.problem.problem_for`)."""

    async def ledger_error(request: Request, error: Exception) -> Response:
        return problem_for(error)

    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return validation_problem(list(error.errors()))

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        headers: dict[str, Any] = dict(error.headers or {})
        return problem(error.status_code, str(error.detail), headers=headers)

    app.add_exception_handler(LedgerError, ledger_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, ledger_error)
