"""The public log over a real uvicorn server: a tlog-tiles client written from the spec reads the checkpoint, tiles
and entry bundles, recomputes the root and finds every entry of `export`; forgeries are rejected; caching, 304 and
404 behave as the spec and HTTP say. On SQLite and on PostgreSQL."""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ledger.anchors import TRUST_ANCHORS_FILE
from ledger.api.app import create_app, service_state
from ledger.api.log import IMMUTABLE, SHORT_LIVED, PublicLog, log_router
from ledger.bootstrap import Ledger
from ledger.log.checkpoints import CheckpointLog
from ledger.log.note import Signer
from ledger.log.tiles import TiledLog
from schemas.commands.membership import Join
from sim.fixtures import START, commitment
from sim.services import serving
from tests.support import INITIAL, cid, create_plan, join
from tests.tlog_client import Fetch, LogClientError, NoteKey, TiledLogClient, http_fetch


@dataclass
class Served:
    """A ledger of 707 entries (two full level-0 tiles and a partial one) with a published checkpoint, served."""

    app: Ledger
    checkpoints: CheckpointLog
    url: str
    http: httpx.Client

    def client(self, fetch: Fetch | None = None) -> TiledLogClient:
        return TiledLogClient(fetch or http_fetch(f"{self.url}/log/", self.http),
                              NoteKey.parse(self.checkpoints.verifier.encode()))


def served_log(app: Ledger) -> Iterator[Served]:
    tree = app.log
    checkpoints = app.checkpoints
    service = FastAPI()
    service.include_router(log_router(PublicLog(TiledLog(tree, checkpoints), checkpoints.verifier,
                                                app.settings.data_dir / TRUST_ANCHORS_FILE)))
    with serving(service) as url, httpx.Client() as http:
        yield Served(app, checkpoints, url, http)


@pytest.fixture
def served(ledger_app: Ledger) -> Iterator[Served]:
    plan = create_plan(ledger_app)
    ledger_app.execute_many([Join(command_id=cid("join"), plan=plan, age_years=30, sex="f", province="zj",
                                  consent_commitment=commitment("consent"),
                                  health_declaration_commitment=commitment("health"))
                              for _ in range(701 + 6 - INITIAL - 1)])  # 707 entries in all
    yield from served_log(ledger_app)


def test_a_tlog_tiles_client_recomputes_the_root_and_finds_every_entry_of_the_export(served: Served) -> None:
    served.checkpoints.publish(START)
    checkpoint, entries = served.client().read()
    assert (checkpoint.origin, checkpoint.size) == (served.app.settings.log_origin, 707)
    assert entries == [entry for _, entry in served.app.entries()]  # byte for byte what `export` prints


def test_the_checkpoint_carries_the_witnesses_cosignatures(served: Served) -> None:
    from ledger.log.note import COSIGNATURE_V1, cosign_line

    stored = served.checkpoints.publish(START)
    witness = Signer("custodian.example", served.app.signers.load("custodian").private_key)
    line = cosign_line(stored.checkpoint.text(), witness, 1_700_000_000)
    served.checkpoints.add_cosignature(stored.size, stored.note + line, witness.verifier(COSIGNATURE_V1))
    client = served.client()
    client.witness_keys = [NoteKey.parse(witness.verifier(COSIGNATURE_V1).encode())]
    assert client.checkpoint().cosigners == ("custodian.example",)


def forging(fetch: Fetch, path: str, change: int = 100) -> Fetch:
    """Fetch through a party that flips one byte of one resource on its way."""

    def forged(requested: str) -> bytes:
        data = fetch(requested)
        if requested != path:
            return data
        at = min(change, len(data) - 1)
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]

    return forged


def test_a_forged_tile_entry_or_checkpoint_is_rejected_by_the_client(served: Served) -> None:
    served.checkpoints.publish(START)
    honest = http_fetch(f"{served.url}/log/", served.http)
    served.client(honest).read()
    for path in ["tile/0/000", "tile/0/002.p/195", "tile/1/000.p/2", "tile/entries/001", "tile/entries/002.p/195"]:
        with pytest.raises(LogClientError):
            served.client(forging(honest, path)).read()
    with pytest.raises(LogClientError):  # a character of the root hash
        served.client(forging(honest, "checkpoint", 30)).read()


def test_full_tiles_are_immutable_and_partial_ones_and_the_checkpoint_short_lived(served: Served) -> None:
    served.checkpoints.publish(START)
    log = f"{served.url}/log"
    full = served.http.get(f"{log}/tile/0/001")
    assert full.status_code == 200 and len(full.content) == 8192
    assert full.headers["cache-control"] == IMMUTABLE
    assert full.headers["content-type"] == "application/octet-stream"
    etag = full.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = served.http.get(f"{log}/tile/0/001", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert served.http.get(f"{log}/tile/0/001", headers={"If-None-Match": '"other"'}).status_code == 200
    head = served.http.head(f"{log}/tile/0/001")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag
    partial = served.http.get(f"{log}/tile/0/002.p/195")
    assert partial.headers["cache-control"] == SHORT_LIVED and len(partial.content) == 195 * 32
    checkpoint = served.http.get(f"{log}/checkpoint")
    assert checkpoint.headers["cache-control"] == SHORT_LIVED
    assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
    bundle = served.http.get(f"{log}/tile/entries/000", headers={"Accept-Encoding": "gzip"})
    assert bundle.headers["content-encoding"] == "gzip" and bundle.headers["cache-control"] == IMMUTABLE
    plain = served.http.get(f"{log}/tile/entries/000", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == bundle.content
    assert plain.headers["etag"] != bundle.headers["etag"]
    assert gzip.decompress(_raw_body(f"{log}/tile/entries/000")) == plain.content


def _raw_body(url: str) -> bytes:
    """The bytes on the wire, before httpx decodes the content encoding."""
    with httpx.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        return b"".join(response.iter_raw())


def test_a_tile_beyond_the_tree_is_404_and_a_bad_path_is_a_problem_naming_the_field(served: Served) -> None:
    log = f"{served.url}/log"
    missing = served.http.get(f"{log}/checkpoint")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert served.http.get(f"{log}/tile/0/000").status_code == 404  # nothing is public before a checkpoint
    served.checkpoints.publish(START)
    join(served.app, create_plan(served.app))
    served.checkpoints.log.integrate()  # stored and integrated, but no checkpoint covers it
    beyond = served.http.get(f"{log}/tile/0/002.p/197")
    assert beyond.status_code == 404
    problem = beyond.json()
    assert (problem["status"], problem["field"], problem["rule"]) == (404, "path", "tile_must_lie_within_the_tree")
    assert beyond.headers["cache-control"] == "no-store"
    assert served.http.get(f"{log}/tile/entries/003").status_code == 404
    for path, field in [("tile/0/1", "index"), ("tile/0/x000/001", "path"), ("tile/99/000", "level"),
                        ("tile/0/000.p/256", "width")]:
        bad = served.http.get(f"{log}/{path}")
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
        assert bad.json()["field"] == field


def test_the_log_key_and_the_trust_anchors_are_served_at_fixed_paths(served: Served, tmp_path: Path) -> None:
    key = served.http.get(f"{served.url}/log/key")
    assert key.text.strip() == served.checkpoints.verifier.encode()
    anchors = served.http.get(f"{served.url}/log/trust-anchors.json")
    assert anchors.json() == json.loads((served.app.settings.data_dir / TRUST_ANCHORS_FILE).read_text())


def test_a_service_without_trust_anchors_says_so_as_a_problem(sqlite_app: Ledger) -> None:
    (sqlite_app.settings.data_dir / TRUST_ANCHORS_FILE).unlink()
    for served_app in served_log(sqlite_app):
        response = served_app.http.get(f"{served_app.url}/log/trust-anchors.json")
        assert response.status_code == 404 and response.json()["rule"] == "trust_anchors_must_be_published"


def test_each_method_of_the_log_routes_is_an_operation_of_its_own_in_the_openapi_description(
        sqlite_app: Ledger) -> None:
    checkpoints = sqlite_app.checkpoints
    app = create_app(service_state(sqlite_app), routers=[log_router(PublicLog(
        TiledLog(sqlite_app.log, checkpoints), checkpoints.verifier))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns of a duplicate operation id
        description = app.openapi()
    operations = [(path, method, operation["operationId"]) for path, methods in description["paths"].items()
                  for method, operation in methods.items()]
    ids = [operation_id for _, _, operation_id in operations]
    assert len(ids) == len(set(ids))
    log_methods = {(path, method) for path, method, _ in operations if path.startswith("/log/")}
    assert {("/log/checkpoint", "get"), ("/log/checkpoint", "head"), ("/log/tile/{tile_path}", "head")} <= log_methods
