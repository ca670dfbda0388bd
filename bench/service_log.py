"""Public log service benchmark: full tiles served per second, and checkpoint-to-cosigned latency with two witnesses.

Tiles: a log of synthetic entries (`bench.log.SyntheticSource`) is integrated and checkpointed, then one uvicorn
server process serves it through `log_router` and, on a second route of the same server, the same full tiles from a
dict in memory (the baseline, measured in the same run; target: tiles >= 0.5 x memory). A bounded load generator
(asyncio streams, `--concurrency` keep-alive connections) asks for random full tiles of levels 0 and 1, alternating
the two routes round by round; ratios are taken within a round and their median reported. The server's peak RSS is read
from /proc.

Witnesses: two witness services (their own processes, durable state), a log growing by `--batch` entries per round;
each round publishes a checkpoint and pushes it to both (`WitnessClient`); the time from the start of publication to
both cosignatures stored is reported (target: p99 < 1 s).

Run through `python -m bench.service --parts tiles witnesses [--entries 1000000] [--rounds 6]`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from pathlib import Path

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from starlette.responses import Response

from bench.http_load import Connection, peak_rss_mib
from bench.log import SyntheticSource, percentile
from ledger.api.log import PublicLog, log_router
from ledger.api.witness import run_witness
from ledger.api.witness_client import WitnessClient
from ledger.config import WitnessEndpoint
from ledger.keys import KeyDirectory, SigningKey
from ledger.log.checkpoints import CheckpointLog
from ledger.log.note import COSIGNATURE_V1, Signer
from ledger.log.tiles import TileAddress, TiledLog
from ledger.log.tree import WIDTH, TransparencyLog
from sim.services import free_port

ORIGIN = "bench.example/log"


def start_process(target: Callable[..., None], ready_url: str, *args: object, **kwargs: object) -> BaseProcess:
    """Start `target` in a fresh interpreter and wait until `ready_url` answers 200."""
    process = multiprocessing.get_context("spawn").Process(target=target, args=args, kwargs=kwargs)
    process.start()
    deadline = time.monotonic() + 600
    while True:
        try:
            if httpx.get(ready_url).status_code == 200:
                return process
        except httpx.HTTPError:
            if time.monotonic() > deadline or not process.is_alive():
                raise RuntimeError(f"{ready_url} did not come up") from None
            time.sleep(0.2)


def open_log(path: Path, count: int, key: Ed25519PrivateKey) -> CheckpointLog:
    """The checkpoint log over `count` synthetic entries in the SQLite file `path`."""
    return CheckpointLog(TransparencyLog(SyntheticSource(path, count)), Signer(ORIGIN, key))


def full_tiles(size: int) -> list[TileAddress]:
    """Every full tile of levels 0 and 1 of a tree of `size`."""
    return [TileAddress(level, index) for level in (0, 1) for index in range(size // WIDTH ** (level + 1))]


def serve(path: Path, count: int, seed: bytes, port: int) -> None:
    """The server process: `/log/` from storage, `/memory/<path>` the same full tiles from a dict."""
    checkpoints = open_log(path, count, Ed25519PrivateKey.from_private_bytes(seed))
    tiled = TiledLog(checkpoints.log, checkpoints)
    size = tiled.checkpoint().size
    memory = {address.path(): tiled.read(address, size) for address in full_tiles(size)}
    app = FastAPI()
    app.include_router(log_router(PublicLog(tiled, checkpoints.verifier)))

    @app.get("/memory/{tile_path:path}")
    def from_memory(tile_path: str) -> Response:
        return Response(memory[tile_path], media_type="application/octet-stream")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def load(port: int, prefix: str, paths: list[str], seconds: float, concurrency: int) -> float:
    """Responses per second for random `paths` under `prefix`, over `concurrency` keep-alive connections each with
    one request in flight (`bench.http_load.Connection`)."""
    rng = random.Random(7)
    done = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal done
        http = await Connection.open(port)
        while time.perf_counter() < deadline:
            status, body = await http.get(f"{prefix}/{rng.choice(paths)}")
            assert status == 200 and len(body) == WIDTH * 32, status
            done += 1
        await http.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return done / (time.perf_counter() - start)


def bench_tiles(directory: Path, count: int, rounds: int, seconds: float, concurrency: int) -> None:
    """Full tiles from storage against the same bytes from memory, alternating rounds."""
    key = Ed25519PrivateKey.generate()
    start = time.perf_counter()
    checkpoints = open_log(directory / "log.sqlite3", count, key)
    size = checkpoints.publish(datetime.now(UTC)).size
    print(f"log of {size:,} entries integrated and checkpointed in {time.perf_counter() - start:.1f} s")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_process(serve, f"{url}/log/checkpoint", directory / "log.sqlite3", count,
                           key.private_bytes_raw(), port)
    paths = [address.path() for address in full_tiles(size)]
    ratios = []
    try:
        for number in range(1, rounds + 1):
            stored = asyncio.run(load(port, "/log", paths, seconds, concurrency))
            memory = asyncio.run(load(port, "/memory", paths, seconds, concurrency))
            ratios.append(stored / memory)
            print(f"round {number}: {stored:,.0f} full tiles/s from storage, {memory:,.0f}/s from memory, "
                  f"ratio {stored / memory:.2f}")
        assert server.pid is not None
        print(f"median ratio {statistics.median(ratios):.2f} (target >= 0.5) over {len(paths):,} full tiles; "
              f"server peak RSS {peak_rss_mib(server.pid):.0f} MiB")
    finally:
        server.terminate()
        server.join()


def bench_witnesses(directory: Path, rounds: int, batch: int) -> None:
    """Checkpoint-to-cosigned latency with two witness processes."""
    key = Ed25519PrivateKey.generate()
    source = SyntheticSource(directory / "witnessed.sqlite3", batch)
    checkpoints = CheckpointLog(TransparencyLog(source), Signer(ORIGIN, key))
    endpoints, processes = [], []
    for role in ("custodian", "regulator"):
        home, name, port = directory / role, f"{role}.example/witness", free_port()
        witness_key = SigningKey.generate(role, role)
        KeyDirectory(home / "keys").save(witness_key)
        processes.append(start_process(run_witness, f"http://127.0.0.1:{port}/key", home, role, name,
                                       [checkpoints.verifier], port=port))
        endpoints.append(WitnessEndpoint(Signer(name, witness_key.private_key).verifier(COSIGNATURE_V1),
                                         f"http://127.0.0.1:{port}"))
    client = WitnessClient(checkpoints, endpoints)
    latencies = []
    try:
        for _ in range(rounds):
            source.count += batch
            start = time.perf_counter()
            result = client.push(checkpoints.publish(datetime.now(UTC)))
            latencies.append(time.perf_counter() - start)
            assert len(result.cosigned) == 2, result.refused
    finally:
        client.close()
        for process in processes:
            process.terminate()
            process.join()
    print(f"checkpoint to cosigned by 2 witnesses, {batch:,} new entries a round, {rounds} rounds: "
          f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms (target < 1 s)")
