"""The live feed: new checkpoints and disclosures as server-sent events, resumable with `Last-Event-ID`.

Event ids follow the log, so that resuming after any id misses nothing and repeats nothing: a `disclosure` whose
`disclosure.published` event is entry `i` has id `2i + 1`; a `checkpoint` of size `n` has id `2n` (it comes after
every entry below `n`). The feed sends only what the latest published checkpoint covers — an item is sent once that
checkpoint is, and never later than one with a greater id — in id order. A client that reconnects sends the last
id it received (`Last-Event-ID`, as browsers' `EventSource` do; or `?last_event_id=`) and gets every item after it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ledger.api.dependencies import service
from ledger.api.problem import problem_responses
from ledger.api.state import ServiceState
from ledger.errors import InputError
from ledger.rules import Rule
from schemas.api import FeedCheckpoint, FeedDisclosure

router = APIRouter(tags=["public"])
POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
EVENT_STREAM = "text/event-stream"


def feed_items(state: ServiceState, after: int) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, event name, data) of every item after `after`, up to the latest published checkpoint, in id order."""
    latest = state.latest()  # (1) before the store is read: every entry it covers is stored already
    if latest is None:
        return []
    horizon = 2 * latest.size
    items: list[tuple[int, str, dict[str, Any]]] = []
    for followed in state.followed.of("disclosure.published"):  # (2)
        index = state.index_of(followed.notification_id)
        if index is None or not after < 2 * index + 1 < horizon:
            continue
        body = followed.envelope["body"]
        items.append((2 * index + 1, "disclosure", FeedDisclosure(
            period=body["period"], plan=body["plan"], number=body["number"], document_hash=body["document_hash"],
            published_at=followed.envelope["at"], index=index).model_dump()))
    items += [(2 * stored.size, "checkpoint", FeedCheckpoint(**vars(stored)).model_dump())
              for stored in state.checkpoints.all() if after < 2 * stored.size <= horizon]
    return sorted(items, key=lambda item: item[0])


def _event(item: tuple[int, str, dict[str, Any]]) -> bytes:
    identifier, name, data = item
    return f"id: {identifier}\nevent: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def _last_id(header: str | None, query: int | None) -> int:
    if query is not None:
        return query
    if header is None or not header.strip():
        return 0
    if not header.strip().isascii() or not header.strip().isdigit():
        raise InputError("Last-Event-ID", Rule.LAST_EVENT_ID_MUST_BE_ONE_THE_FEED_SENT, header[:40])
    return int(header.strip())


@router.get("/feed", response_class=StreamingResponse, responses={
    200: {"description": "Server-sent events: `checkpoint` (FeedCheckpoint) and `disclosure` (FeedDisclosure).",
          "content": {EVENT_STREAM: {"schema": {"type": "string"}}}}, **problem_responses(400)})
async def feed(request: Request, state: Annotated[ServiceState, Depends(service)],
               last_event_id: Annotated[str | None, Header()] = None,
               after: Annotated[int | None, Query(alias="last_event_id", ge=0)] = None) -> StreamingResponse:
    """New checkpoints and disclosures as they are published (see the module docstring for ids and resuming)."""
    start = _last_id(last_event_id, after)
    stopping: asyncio.Event = request.app.state.stopping

    async def events() -> AsyncIterator[bytes]:
        last, quiet = start, 0.0
        yield b"retry: 2000\n\n"
        while not stopping.is_set() and not await request.is_disconnected():
            items = await run_in_threadpool(feed_items, state, last)
            for item in items:
                yield _event(item)
                last = item[0]
            quiet = 0.0 if items else quiet + POLL_SECONDS
            if quiet >= KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                quiet = 0.0
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(events(), media_type=EVENT_STREAM, headers={"Cache-Control": "no-store",
                                                                          "X-Accel-Buffering": "no"})
