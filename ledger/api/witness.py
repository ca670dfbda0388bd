"""A witness as an HTTP service: C2SP tlog-witness over the one witness core (`ledger.log.witness.Witness`).

- `POST /add-checkpoint` — old size, consistency proof, checkpoint (§add-checkpoint); 200 with the cosignature
  line(s); 409 `text/x.tlog.size` with the size of the latest checkpoint cosigned when the old size is not that
  size; 400, 403, 404 and 422 as the spec says, as RFC 9457 problems;
- `GET /<origin hash>/checkpoint` — the latest checkpoint cosigned for a log, with the log's signature and the
  witness's cosignature (§Monitor Retrieval Mechanism; the origin hash is lowercase hex SHA-256 of the origin);
- `GET /evidence` — every fork evidence kept (both signed checkpoints and the proof), as JSON;
- `GET /key` — the witness's cosignature verifier key.

`witness_app(witness)` builds the ASGI app; `serve_witness(witness, host, port)` runs it with uvicorn, and
`run_witness(directory, key_name, …)` opens a witness from its own directory and serves it (`witness serve`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ledger.api.problem import problem_responses, rule_problem
from ledger.errors import InputError
from ledger.keys import KeyDirectory
from ledger.log.note import Verifier
from ledger.log.witness import AddCheckpoint, StaleCheckpointError, Witness, WitnessRefusedError, open_witness
from ledger.rules import Rule

MAX_REQUEST_BYTES = 64 * 1024
"""An add-checkpoint body: 64 lines of proof and a checkpoint with its signatures fit many times over."""
TLOG_SIZE = "text/x.tlog.size"
TEXT = "text/plain; charset=utf-8"


def witness_app(witness: Witness) -> FastAPI:
    """The witness's ASGI application."""
    app = FastAPI(title=f"witness {witness.name}", summary="C2SP tlog-witness", openapi_url=None)
    app.add_exception_handler(HTTPException, _http_problem)
    app.add_exception_handler(RequestValidationError, _validation_problem)

    @app.post("/add-checkpoint", response_class=Response,
              responses={200: {"content": {TEXT: {}}}, 409: {"content": {TLOG_SIZE: {}}},
                         **problem_responses(400, 403, 404, 413, 422)})
    async def add_checkpoint(request: Request) -> Response:
        """Check a checkpoint against the witness's state and cosign it."""
        body = b""
        async for chunk in request.stream():  # bounded whether or not a Content-Length was sent
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return rule_problem(413, InputError("body", Rule.WITNESS_REQUEST_MUST_BE_AT_MOST_64_KIB,
                                                    f"the body must be at most {MAX_REQUEST_BYTES} bytes"))
        try:
            parsed = AddCheckpoint.parse(body)
            line = await run_in_threadpool(witness.add_checkpoint, parsed)
        except StaleCheckpointError as error:
            return Response(f"{error.latest_size}\n", status_code=409,  # exactly this type, with no charset
                            headers={"Content-Type": TLOG_SIZE, "Cache-Control": "no-store"})
        except WitnessRefusedError as error:
            return rule_problem(error.status, error)
        return Response(line, media_type=TEXT, headers={"Cache-Control": "no-store"})

    @app.get("/{origin_hash}/checkpoint", response_class=Response,
             responses={200: {"content": {TEXT: {}}}, **problem_responses(404)})
    def checkpoint(origin_hash: str) -> Response:
        """The latest checkpoint cosigned for the log whose origin hashes to `origin_hash`."""
        for cosigned in witness.latest_all():
            if hashlib.sha256(cosigned.origin.encode()).hexdigest() == origin_hash:
                return Response(cosigned.cosigned_note, media_type=TEXT, headers={"Cache-Control": "no-cache"})
        return rule_problem(404, InputError("origin_hash", Rule.CHECKPOINT_ORIGIN_MUST_BE_A_LOG_THE_WITNESS_FOLLOWS,
                                            "this witness has cosigned no checkpoint of that log"))

    @app.get("/evidence", response_class=Response, responses={200: {"content": {"application/json": {}}}})
    def evidence() -> Response:
        """Every fork evidence this witness kept."""
        return Response(json.dumps(witness.evidence(), indent=1), media_type="application/json",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/key", response_class=Response, responses={200: {"content": {TEXT: {}}}})
    def key() -> Response:
        """The witness's cosignature verifier key (`name+hash+base64(0x04 || public key)`)."""
        return Response(witness.verifier.encode() + "\n", media_type=TEXT)

    return app


async def _http_problem(request: Request, error: Exception) -> Response:
    """Routing errors (no such path, wrong method) as problems."""
    assert isinstance(error, HTTPException)
    return rule_problem(error.status_code, InputError("path", Rule.REQUEST_MUST_NAME_A_RESOURCE, str(error.detail)))


async def _validation_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": ("request",), "msg": "invalid"}
    return rule_problem(400, InputError(".".join(map(str, first["loc"])), Rule.REQUEST_MUST_MATCH_THE_API_SCHEMA,
                                        str(first["msg"])))


def serve_witness(witness: Witness, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Run the witness service with uvicorn until interrupted."""
    uvicorn.run(witness_app(witness), host=host, port=port, log_level="warning")


def run_witness(directory: Path, key_name: str, name: str, log_keys: Sequence[Verifier], *,
                operator_keys: Iterable[bytes] = (), passphrase: bytes | None = None, host: str = "127.0.0.1",
                port: int = 8080) -> None:
    """`witness serve`: the witness of the key `key_name` from `directory/keys` (a custodian's or a regulator's,
    never the operator's), with its state in `directory`, served until interrupted. Raises `KeyDirectoryError` for
    a missing key and `WitnessKeyError` for a key that may not witness — before anything is written."""
    key = KeyDirectory(directory / "keys", passphrase).load(key_name)
    serve_witness(open_witness(directory, key, name, log_keys, operator_keys), host, port)
