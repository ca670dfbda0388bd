"""The HTTP service against a real uvicorn server on a free loopback port, on SQLite and on PostgreSQL: a member
reads their own statement and bundle and nothing of anyone else's (the same 403 for another member and for no
member at all); the public routes, problem details and pagination; the live feed resumed with Last-Event-ID misses
nothing; a custodian reconciles an uploaded statement; a regulator queries and publishes a report it signed itself;
`mutual-ledger serve` runs the operator's jobs."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from audit.bundle import verify_bundle
from audit.reconcile import Movement, ledger_movements, write_statement
from ledger.api.app import create_app, service_state
from ledger.api.routers.feed import feed_items
from ledger.api.state import ServiceState, SharedReplayGuard
from ledger.bootstrap import Ledger
from ledger.config import Settings
from ledger.errors import ConfigError
from ledger.httpsig import SignatureRejectedError, sign_request
from ledger.keys import SigningKey, sign_event_hash
from ledger.log.tiles import TiledLog, parse_tile_path
from ledger.projections.sql import SqlStore
from ledger.reveal import check_records, parse_records
from ledger.sealing import Revealed, check_revealed
from ledger.service import member_key
from ledger.store import decode_entry
from sim.services import free_port, serving
from tests.http_servers import signed
from tests.support import advance
from tests.test_audit import history
from tests.test_privacy import scan

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Scene:
    """A ledger with a settled, disclosed period, a checkpoint, and a running service over it."""

    ledger: Ledger
    state: ServiceState
    base: str
    members: list[str]
    member_key: SigningKey
    custodian: SigningKey
    regulator: SigningKey
    period: str

    def url(self, path: str) -> str:
        return f"{self.base}/api/v1{path}"

    def entries(self) -> int:
        return self.ledger.app.recorder.max_notification_id() or 0


def members_in_join_order(ledger: Ledger) -> list[str]:
    return [decode_entry(e).stream for _, e in ledger.entries() if b'"member.joined"' in e]


@pytest.fixture
def scene(ledger_app: Ledger) -> Iterator[Scene]:
    history(ledger_app)
    members = members_in_join_order(ledger_app)
    key = member_key(ledger_app, members[0])
    models = ledger_app.read_models()
    ledger_app.checkpoints.publish(ledger_app.clock.now())
    state = service_state(ledger_app)
    parties = ledger_app.signers
    with serving(create_app(state)) as base:
        yield Scene(ledger_app, state, base, members, key, parties.party("custodian").load("custodian"),
                    parties.party("regulator").load("regulator"), str(models.periods.all()[0]["id"]))


def is_problem(response: httpx.Response, status: int, field: str | None = None, rule: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"] == "about:blank"
    if field is not None:
        assert (body["field"], body["rule"]) == (field, rule), body


# -- members -------------------------------------------------------------------------------------------------


def test_a_member_reads_their_own_statement_and_bundle(scene: Scene) -> None:
    member = scene.members[0]
    statement = signed(scene.ledger, "GET", scene.url(f"/members/{member}/statement"), scene.member_key)
    assert statement.status_code == 200, statement.text
    body = statement.json()
    assert body["member"] == member and body["periods_paid_into"] == 1 and body["claims"][0]["paid_fen"] > 0
    revealed = [Revealed.from_json_value(r) for r in body["revealed"]["records"]]  # the member's own sealed values
    claim = body["claims"][0]["claim"]
    assert {(r.stream, r.field) for r in revealed} >= {(claim, "member"), (claim, "diagnosed_on")}
    events = {(e.stream, e.seq): e for e in map(decode_entry, (x for _, x in scene.ledger.entries()))}
    assert all(check_revealed(events[(r.stream, r.seq)].type, 2, events[(r.stream, r.seq)].body, r) is None
               for r in revealed)
    assert {"from", "to"} <= body.keys()
    yearly = signed(scene.ledger, "GET", scene.url(f"/members/{member}/statement?year=2026"), scene.member_key)
    assert yearly.json()["shared_fen"] == body["shared_fen"]
    bundle = signed(scene.ledger, "GET", scene.url(f"/members/{member}/bundle"), scene.member_key)
    assert bundle.status_code == 200, bundle.text
    checked = verify_bundle(bundle.json(), scene.ledger.checkpoints.verifier, [])
    assert checked.member == member and [p["period"] for p in checked.periods] == [scene.period]


def test_another_members_records_and_records_that_do_not_exist_are_refused_alike(scene: Scene) -> None:
    other, nobody = scene.members[1], "00000000-0000-4000-8000-000000000000"
    answers = [signed(scene.ledger, "GET", scene.url(f"/members/{who}/{what}"), key)
               for who in (other, nobody) for what in ("statement", "bundle")
               for key in (scene.member_key, scene.custodian, scene.regulator)]
    for answer in answers:
        is_problem(answer, 403, "keyid", "signing_key_must_be_the_members_own")
    assert len({answer.content for answer in answers}) == 1, "the refusals differ"


def receipt_count(ledger: Ledger) -> int:
    """How many command receipts the store holds."""
    sql = SqlStore(ledger.app.ledger_recorder.datastore)
    with sql.transaction(commit=False) as cursor:
        row = cursor.execute(f"SELECT COUNT(*) FROM {sql.table('command_receipts')}").fetchone()
    assert row is not None
    return int(row[0])


def test_sealed_values_are_revealed_over_the_api_to_the_member_a_custodian_or_a_regulator_only(
        scene: Scene, caplog: pytest.LogCaptureFixture) -> None:
    member, other, nobody = scene.members[0], scene.members[1], "00000000-0000-4000-8000-000000000000"
    receipts = receipt_count(scene.ledger)
    log_entries = {entry for _, entry in scene.ledger.entries()}
    opened = []
    for key in (scene.member_key, scene.custodian, scene.regulator):
        answer = signed(scene.ledger, "GET", scene.url(f"/members/{member}/revealed"), key)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        records = parse_records(body)
        assert {r.field for r in records} >= {"age_years", "member", "diagnosed_on", "age_at_diagnosis"}
        assert all(entry.encode() in log_entries for entry in body["entries"])  # the log's own signed bytes
        events = {(e["stream"], e["seq"]): e for e in map(json.loads, body["entries"])}
        assert check_records(records, events) == []  # each record opens its commitment
        forged = [Revealed(r.stream, r.seq, r.field, r.value + 1, r.salt) if r.field == "age_years" else r
                  for r in records]
        assert [p.split(": ", 1)[1] for p in check_records(forged, events)] == [
            "age_years does not match its commitment age_years_sealed"]
        opened.append(body)
    assert opened[0] == opened[1] == opened[2]
    custodian_for_other = signed(scene.ledger, "GET", scene.url(f"/members/{other}/revealed"), scene.custodian)
    assert [r["stream"] for r in custodian_for_other.json()["records"]] == [other]  # any member's, to audit
    refusals = [signed(scene.ledger, "GET", scene.url(f"/members/{who}/revealed"), key)
                for who, key in ((other, scene.member_key), (nobody, scene.member_key),
                                 (member, scene.ledger.signers.load("operator")))]
    for refusal in refusals:
        is_problem(refusal, 403, "keyid",
                   "sealed_values_are_revealed_only_to_the_member_the_custodian_or_the_regulator")
    assert len({refusal.content for refusal in refusals}) == 1, "the refusals differ"
    is_problem(httpx.get(scene.url(f"/members/{member}/revealed")), 401, "Signature-Input",
               "signature_input_must_be_present")
    # nothing revealed was kept: no receipt written, no log line, no salt anywhere in the store
    assert receipt_count(scene.ledger) == receipts
    salts = [r["salt"] for r in opened[0]["records"]]
    assert not any(salt in record.getMessage() for salt in salts for record in caplog.records)
    needles = [bytes.fromhex(salt) for salt in salts] + [salt.encode() for salt in salts]
    assert scan(scene.ledger, scene.ledger.settings.data_dir, needles, []) == []


def test_an_unsigned_tampered_or_replayed_request_is_refused_naming_the_field_and_rule(scene: Scene) -> None:
    url = scene.url(f"/members/{scene.members[0]}/statement")
    is_problem(httpx.get(url), 401, "Signature-Input", "signature_input_must_be_present")
    assert "Accept-Signature" in httpx.get(url).headers

    fields = sign_request("GET", url, [], b"", scene.member_key, scene.ledger.clock.now())
    is_problem(httpx.get(url + "?year=2025", headers=fields), 401, "Signature", "signature_must_verify")
    assert httpx.get(url, headers=fields).status_code == 200
    is_problem(httpx.get(url, headers=fields), 401, "nonce", "signature_nonce_must_be_new")
    stranger = SigningKey.generate("member-x", "member", scene.members[0])
    is_problem(signed(scene.ledger, "GET", url, stranger), 401, "keyid", "signature_key_must_be_in_the_keyring")


# -- the public routes ---------------------------------------------------------------------------------------


def test_plans_periods_and_the_disclosure_with_the_proof_of_its_published_hash(scene: Scene) -> None:
    plans = httpx.get(scene.url("/plans")).json()
    assert [p["payment_model"] for p in plans["items"]] == ["prepaid"] and plans["next_cursor"] is None
    plan = plans["items"][0]["id"]
    by_name = httpx.get(scene.url(f"/plans/{plans['items'][0]['name']}")).json()
    assert by_name["id"] == plan
    period = httpx.get(scene.url(f"/periods/{plan}:1")).json()
    assert period["id"] == scene.period and period["status"] == "settled" and period["share_fen"] > 0
    assert httpx.get(scene.url(f"/plans/{plan}/shares")).json()["items"][0]["share_fen"] == period["share_fen"]
    disclosure = httpx.get(scene.url(f"/periods/{scene.period}/disclosure")).json()
    assert disclosure["matches"] and disclosure["published_hash"] == period["disclosure_hash"]
    event = disclosure["event"]
    from ledger.log.merkle import leaf_hash, verify_inclusion
    from ledger.log.note import Checkpoint, split_note, verify_note

    root = Checkpoint.parse(verify_note(event["checkpoint"]["note"], scene.ledger.checkpoints.verifier)).root
    verify_inclusion(event["index"], event["checkpoint"]["size"], leaf_hash(event["entry"].encode()),
                     [base64.b64decode(h) for h in event["proof"]], root)
    assert json.loads(event["entry"])["body"]["document_hash"] == disclosure["document_hash"]
    assert split_note(event["checkpoint"]["note"])[0].startswith(scene.ledger.settings.log_origin)
    cards = httpx.get(scene.url("/cases")).json()["items"]
    assert len(cards) == 1 and cards[0]["member"] is None and scene.members[0] not in json.dumps(cards)  # sealed
    assert httpx.get(scene.url("/metrics")).json()["plans"][0]["cases"]["approved"] == 1


def test_every_list_pages_by_cursor_and_the_log_stops_at_the_published_checkpoint(scene: Scene) -> None:
    published = scene.state.published_size()
    seen: list[int] = []
    url: str | None = scene.url("/log/entries?limit=7")
    while url is not None:
        page = httpx.get(url).json()
        seen += [item["index"] for item in page["items"]]
        url = None if page["next_cursor"] is None else scene.url(f"/log/entries?limit=7&cursor={page['next_cursor']}")
    assert seen == list(range(published))
    first = httpx.get(scene.url("/log/checkpoints?limit=1")).json()
    second = httpx.get(scene.url(f"/log/checkpoints?limit=1&cursor={first['next_cursor']}")).json()
    assert first["items"][0]["size"] < second["items"][0]["size"]
    is_problem(httpx.get(scene.url("/plans?cursor=not-a-cursor")), 400, "cursor",
               "cursor_must_be_one_the_service_gave")
    is_problem(httpx.get(scene.url(f"/log/proofs/inclusion?index=0&size={published + 1}")), 400, "size",
               "size_must_not_exceed_the_published_checkpoint")
    is_problem(httpx.get(scene.url("/plans?limit=0")), 400, "limit", "request_must_match_the_api_schema")
    is_problem(httpx.get(scene.url("/periods/nothing")), 400, "period",
               "period_reference_must_be_an_id_or_plan_number")
    is_problem(httpx.get(scene.url("/plans/no-such-plan")), 404, "plan", "plan_must_exist")
    is_problem(httpx.get(f"{scene.base}/no/such/path"), 404)


def test_the_in_browser_verifier_is_served_as_es_modules_from_the_same_origin(scene: Scene) -> None:
    module = httpx.get(f"{scene.base}/static/js/bundle.js")
    assert module.status_code == 200 and module.headers["content-type"] == "text/javascript; charset=utf-8"
    assert module.headers["x-content-type-options"] == "nosniff" and b"export" in module.content
    assert httpx.get(f"{scene.base}/openapi.json").json()["openapi"].startswith("3.1")


# -- the live feed -------------------------------------------------------------------------------------------


def read_feed(url: str, headers: dict[str, str], until_id: int) -> list[tuple[int, str, dict[str, Any]]]:
    """Events of the feed until one with an id of at least `until_id`, then disconnect."""
    events: list[tuple[int, str, dict[str, Any]]] = []
    with httpx.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                fields[name] = value.strip()
            elif not line and "id" in fields:
                events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
                fields = {}
                if events[-1][0] >= until_id:
                    return events
    return events


def test_the_feed_resumed_with_last_event_id_misses_nothing_and_repeats_nothing(scene: Scene) -> None:
    everything = feed_items(scene.state, 0)
    kinds = [name for _, name, _ in everything]
    assert "disclosure" in kinds and kinds.count("checkpoint") == 2
    first = read_feed(scene.url("/feed"), {}, everything[1][0])
    assert [item[0] for item in first] == [item[0] for item in everything[:2]]
    for round_number in range(3):  # while the client is away, the log grows and checkpoints are published
        member_key(scene.ledger, scene.members[round_number + 1])
        advance(scene.ledger, minutes=1)
        scene.ledger.checkpoints.publish(scene.ledger.clock.now())
    expected = feed_items(scene.state, 0)
    rest = read_feed(scene.url("/feed"), {"Last-Event-ID": str(first[-1][0])}, expected[-1][0])
    assert [item[0] for item in first + rest] == [item[0] for item in expected]
    assert [item[2] for item in first + rest] == [item[2] for item in expected]
    assert rest[-1][2]["size"] == scene.state.published_size()
    is_problem(httpx.get(scene.url("/feed"), headers={"Last-Event-ID": "yesterday"}), 400, "Last-Event-ID",
               "last_event_id_must_be_one_the_feed_sent")


# -- custodians ----------------------------------------------------------------------------------------------


def test_a_custodian_reconciles_an_uploaded_statement_and_reads_the_books(scene: Scene) -> None:
    url = scene.url("/custodian/reconciliation")
    honest = ledger_movements([entry for _, entry in scene.ledger.entries()])
    answer = signed(scene.ledger, "POST", url, scene.custodian, write_statement(honest).encode(), "text/csv")
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] and answer.json()["matched"] == len(honest)
    planted = [*honest[1:], replace(honest[0], amount_fen=honest[0].amount_fen + 1),
               Movement("2026-05-01", "bank-unknown", "in", 777, "member:zzzz****")]
    before = scene.entries()
    found = signed(scene.ledger, "POST", url, scene.custodian, write_statement(planted).encode(), "text/csv").json()
    assert {f["kind"] for f in found["findings"]} == {"amount_mismatch", "missing_in_ledger"} and not found["ok"]
    bad = signed(scene.ledger, "POST", url, scene.custodian, b"date,amount\n2026-01-01,5\n", "text/csv")
    is_problem(bad, 400, "statement", "statement_must_follow_the_format")
    is_problem(signed(scene.ledger, "POST", url, scene.custodian, b"{}", "application/json"), 400, "Content-Type",
               "statement_must_be_sent_as_csv")
    is_problem(signed(scene.ledger, "POST", url, scene.member_key, write_statement(honest).encode(), "text/csv"),
               403, "keyid", "signing_key_must_have_the_routes_role")
    assert scene.entries() == before, "reconciling wrote events"
    books = signed(scene.ledger, "GET", scene.url("/custodian/trial-balance"), scene.custodian).json()
    assert books == {"trial_balance_fen": 0, "custody_gap_fen": 0, "balanced": True}
    journal = signed(scene.ledger, "GET", scene.url("/custodian/journal"), scene.custodian).json()
    assert journal["accounts"]["custodian_cash"] > 0


# -- regulators ----------------------------------------------------------------------------------------------


def test_a_regulator_queries_without_seeing_a_member(scene: Scene) -> None:
    cases = signed(scene.ledger, "GET", scene.url("/regulator/cases?category=illness"), scene.regulator).json()
    periods = signed(scene.ledger, "GET", scene.url("/regulator/periods?from=2026-04-01"), scene.regulator).json()
    refunds = signed(scene.ledger, "GET", scene.url("/regulator/refunds"), scene.regulator).json()
    assert len(cases["items"]) == 1 and [p["number"] for p in periods["items"]] == [1] and refunds["items"] == []
    assert not set(scene.members) & set(json.dumps([cases, periods, refunds]).split('"'))
    fields = {r["field"] for r in cases["items"][0]["revealed"]["records"]}
    assert fields == {"diagnosed_on", "age_at_diagnosis"}  # the exact values, not who claimed nor when they joined
    is_problem(signed(scene.ledger, "GET", scene.url("/regulator/cases?reason=bribery"), scene.regulator), 400,
               "reason", "must_be_one_of_the_known_values")
    is_problem(signed(scene.ledger, "GET", scene.url("/regulator/cases"), scene.custodian), 403, "keyid",
               "signing_key_must_have_the_routes_role")


def draft(scene: Scene, key: SigningKey) -> dict[str, Any]:
    body = json.dumps({"from": "2026-01-01", "to": "2027-01-01"}).encode()
    answer = signed(scene.ledger, "POST", scene.url("/regulator/reports/drafts"), key, body, "application/json")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def publish(scene: Scene, key: SigningKey, envelope: dict[str, Any]) -> httpx.Response:
    body = json.dumps({"envelope": envelope}).encode()
    return signed(scene.ledger, "POST", scene.url("/regulator/reports"), key, body, "application/json")


def test_a_regulator_publishes_a_report_it_signed_and_nothing_else_is_stored(scene: Scene) -> None:
    drafted = draft(scene, scene.regulator)
    assert drafted["document"]["format"] == "mutual-ledger/regulator-report/v1"
    envelope = drafted["envelope"]
    assert envelope["actor"] == {"role": "regulator", "key": scene.regulator.key_id}
    signature = sign_event_hash(scene.regulator.secret_key, bytes.fromhex(drafted["event_hash"]))
    before = scene.entries()
    for tampered, field, rule in (
            ({**envelope, "sig": sign_event_hash(scene.custodian.secret_key, bytes.fromhex(drafted["event_hash"]))},
             "envelope.sig", "event_signature_must_verify"),
            ({**envelope, "body": {**envelope["body"], "document_bytes": 1}, "sig": signature}, "envelope.sig",
             "event_signature_must_verify"),
            ({**envelope, "stream": scene.period, "sig": signature}, "envelope",
             "report_envelope_must_be_a_drafted_one"),
            ({**envelope, "at": "2025-01-01T00:00:00.000000Z", "sig": signature}, "envelope.at",
             "report_draft_must_be_recent"),
            ({**envelope, "sig": "!"}, "envelope.sig", "report_envelope_must_be_a_drafted_one"),
            ({**envelope, "actor": {"role": "regulator", "key": scene.custodian.key_id}, "sig": signature},
             "envelope.actor", "report_must_be_signed_by_the_requesting_key")):
        is_problem(publish(scene, scene.regulator, tampered), 400, field, rule)
    is_problem(publish(scene, scene.custodian, {**envelope, "sig": signature}), 403, "keyid",
               "signing_key_must_have_the_routes_role")
    assert scene.entries() == before, "a refused report was stored"
    stored = publish(scene, scene.regulator, {**envelope, "sig": signature})
    assert stored.status_code == 201, stored.text
    assert scene.entries() == before + 1
    entry = decode_entry(next(e for n, e in scene.ledger.entries(before + 1)))
    assert entry.sig == signature and entry.body["document_hash"] == drafted["envelope"]["body"]["document_hash"]
    assert publish(scene, scene.regulator, {**envelope, "sig": signature}).status_code == 201
    assert scene.entries() == before + 1, "a repeated report was stored twice"
    listed = signed(scene.ledger, "GET", scene.url("/regulator/reports"), scene.regulator).json()["items"]
    assert [(r["report"], r["key"]) for r in listed] == [(envelope["stream"], scene.regulator.key_id)]


# -- the command and its jobs --------------------------------------------------------------------------------


@contextmanager
def serve_published(data_dir: Path, port: int, entries: int | None, *options: str) -> Iterator[subprocess.Popen[bytes]]:
    """`mutual-ledger serve` on `port`, once its jobs have published a checkpoint of `entries`; stopped with SIGTERM
    after the block, which it must end cleanly (exit 0, no traceback)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "--data-dir", str(data_dir), "serve", "--port", str(port), *options],
        cwd=ROOT, env={**os.environ, "LEDGER_CHECKPOINT_INTERVAL": "0.2", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        size, deadline = 0, time.monotonic() + 60
        while size != entries and time.monotonic() < deadline:
            try:
                size = httpx.get(f"http://127.0.0.1:{port}/api/v1/log/checkpoint").json().get("size", 0)
            except httpx.HTTPError:
                time.sleep(0.1)
        assert size == entries
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


def test_serve_answers_and_publishes_checkpoints_on_its_interval_then_stops_on_sigterm(sqlite_app: Ledger) -> None:
    history(sqlite_app)
    member_key(sqlite_app, members_in_join_order(sqlite_app)[0])  # entries beyond the last checkpoint
    entries = sqlite_app.app.recorder.max_notification_id()
    port = free_port()
    data_dir = sqlite_app.settings.data_dir
    sqlite_app.close()
    with serve_published(data_dir, port, entries):
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/plans").status_code == 200


def test_serve_with_workers_runs_the_jobs_once_and_every_worker_refuses_a_replay(sqlite_app: Ledger) -> None:
    history(sqlite_app)
    member = members_in_join_order(sqlite_app)[0]
    key = member_key(sqlite_app, member)  # entries beyond the last checkpoint: the jobs must publish them
    entries = sqlite_app.app.recorder.max_notification_id()
    port = free_port()
    data_dir = sqlite_app.settings.data_dir
    sqlite_app.close()
    with serve_published(data_dir, port, entries, "--workers", "2") as process:
        workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        assert len(workers) >= 2
        url = f"http://127.0.0.1:{port}/api/v1/members/{member}/statement"
        fields = sign_request("GET", url, [], b"", key, datetime.now(UTC))
        assert httpx.get(url, headers=fields).status_code == 200
        for _ in range(20):  # each on a connection of its own: the workers take them as they come
            is_problem(httpx.get(url, headers=fields), 401, "nonce", "signature_nonce_must_be_new")
        assert httpx.get(url, headers=sign_request("GET", url, [], b"", key, datetime.now(UTC))).status_code == 200
    assert sorted(path.name for path in data_dir.iterdir()) == ["keys", "ledger.sqlite3", "trust-anchors.json"]


def test_the_workers_replay_guard_refuses_a_nonce_any_of_them_saw_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "nonces.sqlite3"
    first, second = SharedReplayGuard(path, capacity=3), SharedReplayGuard(path, capacity=3)  # two workers
    first.accept("k1", "nonce-a", expires=1_060, now=1_000)
    with pytest.raises(SignatureRejectedError) as caught:
        second.accept("k1", "nonce-a", expires=1_060, now=1_001)
    assert (caught.value.field, caught.value.rule) == ("nonce", "signature_nonce_must_be_new")
    second.accept("k2", "nonce-a", expires=1_060, now=1_001)  # another key's nonce
    first.accept("k1", "nonce-b", expires=1_060, now=1_002)
    second.full = True  # as the periodic purge finds it: three unexpired nonces held
    with pytest.raises(SignatureRejectedError) as caught:
        second.accept("k1", "nonce-c", expires=1_070, now=1_010)
    assert caught.value.rule == "signed_requests_must_fit_the_replay_window"
    second.accept("k1", "nonce-c", expires=1_200, now=1_100)  # the others expired: purged, room again
    assert not second.full
    with pytest.raises(SignatureRejectedError):
        first.accept("k1", "nonce-c", expires=1_200, now=1_101)


def test_the_checkpoint_interval_is_a_number_of_seconds_in_range() -> None:
    assert Settings.from_env({}).checkpoint_interval_seconds == 60.0
    assert Settings.from_env({"LEDGER_CHECKPOINT_INTERVAL": "0.5"}).checkpoint_interval_seconds == 0.5
    for text in ("0", "-1", "soon", "86401", "nan"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env({"LEDGER_CHECKPOINT_INTERVAL": text})
        assert (caught.value.field, caught.value.rule) == ("LEDGER_CHECKPOINT_INTERVAL",
                                                           "must_be_a_number_of_seconds_in_range")



# -- outsiders' tools over the network -----------------------------------------------------------------------


def test_outsiders_verify_monitor_and_fetch_a_bundle_from_the_public_endpoints(scene: Scene, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ledger.cli import main
    from ledger.cli.base import Context

    anchors = scene.ledger.settings.data_dir / "trust-anchors.json"
    members_dir = scene.ledger.signers.party("members").path.parent
    shutil.copyfile(anchors, members_dir / "trust-anchors.json")
    runner = CliRunner()
    verified = runner.invoke(main, ["--data-dir", str(tmp_path), "audit", "verify", "--log-url", scene.base,
                                    "--trust-anchors", str(anchors), "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["entries"] == scene.state.published_size()
    state = tmp_path / "monitor.json"
    monitored = runner.invoke(main, ["--data-dir", str(tmp_path), "audit", "monitor", "--log-url", scene.base,
                                     "--trust-anchors", str(anchors), "--state", str(state)])
    assert monitored.exit_code == 0, monitored.output
    assert f"checkpoint {scene.state.published_size()}: consistent" in monitored.output
    out = tmp_path / "bundle.json"
    fetched = runner.invoke(main, ["--data-dir", str(members_dir), "log", "proof", "member", scene.members[0],
                                   "--url", scene.base, "--out", str(out)], obj=Context(clock=scene.ledger.clock))
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(out.read_text())["member"] == scene.members[0]
    refused = runner.invoke(main, ["--data-dir", str(members_dir), "--key", scene.member_key.name, "log", "proof",
                                   "member", scene.members[1], "--url", scene.base, "--out", str(tmp_path / "x")],
                            obj=Context(clock=scene.ledger.clock))
    assert refused.exit_code == 2 and "signing_key_must_be_the_members_own" in refused.output
    assert not (tmp_path / "x").exists()
    unreachable = runner.invoke(main, ["--data-dir", str(tmp_path), "audit", "verify", "--log-url",
                                       f"http://127.0.0.1:{free_port()}", "--trust-anchors", str(anchors)])
    assert unreachable.exit_code == 2 and "log_url_must_answer" in unreachable.output


def test_no_public_page_tile_or_entry_carries_an_exact_date_or_ties_a_condition_to_a_member(scene: Scene) -> None:
    diagnosed = b"2026-04-10"  # the claim's diagnosis day (tests.test_period.approved_claim): no event happens then
    size = scene.ledger.checkpoints.log.size()
    served = [httpx.get(scene.url(path)).content for path in (
        "/cases", f"/periods/{scene.period}/disclosure", f"/log/entries?limit={size}", "/plans")]
    tiles = TiledLog(scene.ledger.log, scene.ledger.checkpoints)  # what `serve` mounts under /log/
    served.append(tiles.read(parse_tile_path(f"tile/entries/000.p/{size}")))
    entries = b"".join(entry for _, entry in scene.ledger.entries())
    assert len(served[-1]) > size * 100  # the entry bundle holds every entry
    for page in (*served, entries):
        assert diagnosed not in page
    claim_entries = [x for _, x in scene.ledger.entries() if decode_entry(x).type.startswith("claim.")]
    assert claim_entries and not any(m.encode() in x for x in claim_entries for m in scene.members)
    for page in served[:2]:
        assert not any(m.encode() in page or m[:4].encode() + b"****" in page for m in scene.members)
