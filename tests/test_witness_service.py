"""Witnesses over C2SP tlog-witness, on real uvicorn servers: the log pushes its checkpoints and stores one
cosignature per witness; stale and forked checkpoints are refused with the spec's status codes and the evidence is
kept and served; a witness killed with SIGKILL and restarted never cosigns two inconsistent checkpoints; an
operator key never witnesses. The log runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ledger.api.witness import witness_app
from ledger.api.witness_client import WitnessClient
from ledger.bootstrap import Ledger
from ledger.config import Settings, WitnessEndpoint
from ledger.errors import ConfigError
from ledger.keys import KeyDirectory, SigningKey
from ledger.log.checkpoints import CheckpointLog, StoredCheckpoint, cosigners
from ledger.log.merkle import EMPTY_ROOT, ProofError, consistency_proof, root_from_leaf_hashes, verify_consistency
from ledger.log.note import COSIGNATURE_V1, Checkpoint, Signer, sign_note, split_note, verify_cosignature, verify_note
from ledger.log.witness import STATE_FILE, AddCheckpoint, MalformedRequestError, Witness, WitnessKeyError, open_witness
from schemas.commands.membership import Join
from sim.fixtures import START, commitment
from sim.services import serving
from tests.http_servers import WitnessProcess
from tests.support import cid, create_plan, signer_of


@dataclass
class Log:
    """The operator's side: a ledger, its checkpoints, and a plan to join."""

    app: Ledger
    checkpoints: CheckpointLog
    plan: str

    def grow(self, members: int) -> None:
        self.app.execute_many([Join(command_id=cid("join"), plan=self.plan, age_years=30, sex="f", province="zj",
                                    consent_commitment=commitment("consent"),
                                    health_declaration_commitment=commitment("health")) for _ in range(members)])

    def publish(self) -> StoredCheckpoint:
        return self.checkpoints.publish(START)

    def leaf_hashes(self, size: int) -> list[bytes]:
        return [self.checkpoints.log.leaf_hash(index) for index in range(size)]

    def fork(self, shared: int, size: int) -> tuple[str, list[bytes]]:
        """A checkpoint of `size` signed with the log key over a history that shares only its first `shared`
        entries with the stored one, and that history's leaf hashes (to prove consistency within it)."""
        leaves = self.leaf_hashes(shared) + [hashlib.sha256(b"fork %d" % i).digest() for i in range(size - shared)]
        checkpoint = Checkpoint(self.app.settings.log_origin, size, root_from_leaf_hashes(leaves))
        return sign_note(checkpoint.text(), signer_of(self.checkpoints)), leaves


@pytest.fixture
def log(ledger_app: Ledger) -> Log:
    checkpoints = ledger_app.checkpoints
    return Log(ledger_app, checkpoints, create_plan(ledger_app))


def own_key(directory: Path, name: str, role: str) -> SigningKey:
    """A key a party generated in its own directory."""
    key = SigningKey.generate(name, role)
    KeyDirectory(directory / "keys").save(key)
    return key


def open_custodian(tmp_path: Path, log: Log, name: str = "custodian.example/witness") -> Witness:
    directory = tmp_path / name.replace("/", "-")
    return open_witness(directory, own_key(directory, "custodian", "custodian"), name, [log.checkpoints.verifier])


@contextmanager
def witness_server(witness: Witness) -> Iterator[str]:
    """The witness's ASGI app on a real uvicorn server."""
    with serving(witness_app(witness)) as url:
        yield url


def post(url: str, old_size: int, proof: list[bytes], note: str) -> httpx.Response:
    return httpx.post(f"{url}/add-checkpoint", content=AddCheckpoint(old_size, tuple(proof), note).encode())


def test_the_log_pushes_each_checkpoint_and_keeps_one_cosignature_per_witness(log: Log, tmp_path: Path) -> None:
    custodian = open_custodian(tmp_path, log, "custodian.example/witness")
    regulator = open_custodian(tmp_path, log, "regulator.example/witness")
    with witness_server(custodian) as custodian_url, witness_server(regulator) as regulator_url:
        endpoints = [WitnessEndpoint(custodian.verifier, custodian_url),
                     WitnessEndpoint(regulator.verifier, regulator_url)]
        client = WitnessClient(log.checkpoints, endpoints)
        first = log.publish()
        result = client.push()
        assert (result.size, result.cosigned, result.refused) == (first.size, (custodian.name, regulator.name), ())
        client.push()  # the same checkpoint again: the witnesses answer with the cosignature they gave
        stored = log.checkpoints.latest()
        assert stored is not None and len(split_note(stored.note)[1]) == 3  # the log's line and one per witness
        assert len(cosigners(stored.note, log.checkpoints.verifier)) == 2
        for witness in (custodian, regulator):
            verify_cosignature(stored.note, witness.verifier)
        log.grow(40)
        second = log.publish()
        restarted = WitnessClient(log.checkpoints, endpoints)  # knows nothing: 409 tells it each witness's size
        assert restarted.push().cosigned == (custodian.name, regulator.name)
        latest = log.checkpoints.latest()
        assert latest is not None and latest.size == second.size
        assert cosigners(latest.note, log.checkpoints.verifier) == tuple(sorted(
            f"{w.name}+{w.verifier.hash.hex()}" for w in (custodian, regulator)))
        client.close()
        restarted.close()


def test_an_unreachable_or_refusing_witness_is_reported_and_the_others_still_cosign(log: Log,
                                                                                   tmp_path: Path) -> None:
    custodian = open_custodian(tmp_path, log)
    with witness_server(custodian) as url:
        gone = WitnessEndpoint(Signer("gone.example", SigningKey.generate("x", "regulator").private_key)
                               .verifier(COSIGNATURE_V1), "http://127.0.0.1:9")
        impostor = WitnessEndpoint(Signer("impostor.example", SigningKey.generate("y", "regulator").private_key)
                                   .verifier(COSIGNATURE_V1), url)  # answers, but with another key's cosignature
        log.publish()
        result = WitnessClient(log.checkpoints, [gone, impostor, WitnessEndpoint(custodian.verifier, url)]).push()
        assert result.cosigned == (custodian.name,)
        assert [name for name, _ in result.refused] == ["gone.example", "impostor.example"]
        assert "does not verify" in result.refused[1][1]
        stored = log.checkpoints.latest()
        assert stored is not None and len(split_note(stored.note)[1]) == 2


def test_a_stale_request_gets_409_with_the_witness_latest_size(log: Log, tmp_path: Path) -> None:
    with witness_server(open_custodian(tmp_path, log)) as url:
        first = log.publish()
        assert post(url, 0, [], first.note).status_code == 200
        log.grow(5)
        second = log.publish()
        stale = post(url, 0, [], second.note)
        assert stale.status_code == 409
        assert stale.headers["content-type"] == "text/x.tlog.size"
        assert stale.text == f"{first.size}\n"
        proof = log.checkpoints.log.consistency_proof(first.size, second.size)
        assert post(url, first.size, proof, second.note).status_code == 200
        assert post(url, first.size, proof, second.note).text == f"{second.size}\n"  # now stale in its turn


def test_a_forked_checkpoint_is_refused_and_the_evidence_kept_and_served(log: Log, tmp_path: Path) -> None:
    witness = open_custodian(tmp_path, log)
    with witness_server(witness) as url:
        log.grow(10)
        honest = log.publish()
        assert post(url, 0, [], honest.note).status_code == 200
        same_size, _ = log.fork(honest.size - 4, honest.size)
        assert post(url, 0, [], same_size).status_code == 409  # stale, and a fork: refused, evidence kept
        assert post(url, honest.size, [], same_size).status_code == 422
        larger, leaves = log.fork(honest.size - 4, honest.size + 6)
        refused = post(url, honest.size, consistency_proof(honest.size, leaves), larger)
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["rule"] == "checkpoint_must_be_consistent_with_every_checkpoint_seen"
        evidence = httpx.get(f"{url}/evidence").json()
    assert [e["newer_checkpoint"] for e in evidence] == [same_size, larger]  # the same pair kept once
    for document in evidence:  # anyone can check it with the log's key alone
        older = Checkpoint.parse(verify_note(document["older_checkpoint"], log.checkpoints.verifier))
        newer = Checkpoint.parse(verify_note(document["newer_checkpoint"], log.checkpoints.verifier))
        assert older.size == honest.size
        with pytest.raises(ProofError):
            verify_consistency(older.size, newer.size, older.root, newer.root,
                               [base64.b64decode(h) for h in document["consistency_proof"]])
    assert json.loads(witness.evidence_path.read_text())["newer_checkpoint"] == larger  # type: ignore[union-attr]
    latest = witness.latest(log.app.settings.log_origin)
    assert latest is not None and latest.size == honest.size  # the state never moved to the fork


def test_the_same_checkpoint_twice_yields_one_cosignature(log: Log, tmp_path: Path) -> None:
    witness = open_custodian(tmp_path, log)
    with witness_server(witness) as url:
        stored = log.publish()
        first = post(url, 0, [], stored.note)
        again = post(url, stored.size, [], stored.note)
        assert first.status_code == again.status_code == 200 and first.text == again.text
        pulled = witness.cosign(stored.note, log.checkpoints.verifier, log.checkpoints.log.consistency_proof)
        assert pulled == stored.note + first.text  # the same witness core, the same cosignature
        for _ in range(2):
            log.checkpoints.add_cosignature(stored.size, pulled, witness.verifier)
        note = log.checkpoints.latest()
        assert note is not None and note.note == stored.note + first.text


def test_the_witness_answers_with_the_status_codes_of_the_spec(log: Log, tmp_path: Path) -> None:
    witness = open_custodian(tmp_path, log)
    origin = log.app.settings.log_origin
    with witness_server(witness) as url:
        stored = log.publish()
        stranger = Signer(origin, SigningKey.generate("s", "operator").private_key)
        assert post(url, 0, [], sign_note(stored.checkpoint.text(), stranger)).status_code == 403
        text, lines = split_note(stored.note)
        broken = text + "\n" + lines[0][:-6] + ("AAAA=\n" if not lines[0].endswith("AAAA=\n") else "BBBB=\n")
        assert post(url, 0, [], broken).status_code == 403  # the trusted key's line does not verify
        other_origin = Signer("elsewhere.example/log", signer_of(log.checkpoints).private_key)
        assert post(url, 0, [], sign_note(stored.checkpoint.text().replace(origin, "elsewhere.example/log"),
                                          other_origin)).status_code == 404
        assert post(url, stored.size + 1, [], stored.note).status_code == 400
        assert httpx.post(f"{url}/add-checkpoint", content=b"old 01\n\n" + stored.note.encode()).status_code == 400
        assert httpx.post(f"{url}/add-checkpoint", content=b"garbage").status_code == 400
        assert httpx.post(f"{url}/add-checkpoint", content=b"x" * 70_000).status_code == 413
        assert post(url, 0, [EMPTY_ROOT], stored.note).status_code == 422  # no proof from the empty tree
        empty = sign_note(Checkpoint(origin, 0, hashlib.sha256(b"not empty").digest()).text(),
                          signer_of(log.checkpoints))
        assert post(url, 0, [], empty).status_code == 422
        assert httpx.get(f"{url}/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint").status_code == 404
        cosignature = post(url, 0, [], stored.note)
        assert cosignature.status_code == 200 and cosignature.text.startswith("\u2014 custodian.example/witness ")
        served = httpx.get(f"{url}/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint").text
        assert verify_cosignature(served, witness.verifier) > 0 and verify_note(served, log.checkpoints.verifier)
        missing = httpx.get(f"{url}/no/such/path")
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        assert httpx.get(f"{url}/key").text.strip() == witness.verifier.encode()


def test_an_operator_key_never_witnesses(log: Log, tmp_path: Path) -> None:
    directory = tmp_path / "operator-as-witness"
    for name, role in [("operator", "operator"), ("log", "operator")]:
        with pytest.raises(WitnessKeyError, match="never to the operator"):
            open_witness(directory, own_key(directory, name, role), "w.example", [log.checkpoints.verifier])
    relabelled = SigningKey("custodian", "custodian",
                            signer_of(log.checkpoints).private_key)  # the log key, renamed
    with pytest.raises(WitnessKeyError, match="operator's keys"):
        open_witness(directory, relabelled, "w.example", [log.checkpoints.verifier])
    root = log.app.signers.load("operator-root")
    with pytest.raises(WitnessKeyError, match="operator's keys"):
        open_witness(directory, SigningKey("custodian", "custodian", root.private_key), "w.example",
                     [log.checkpoints.verifier], operator_keys=[root.public_raw])
    assert not (directory / STATE_FILE).exists()  # refused before anything was written
    process = WitnessProcess(directory, "operator", "w.example", [log.checkpoints.verifier.encode()])
    with pytest.raises(RuntimeError, match="never to the operator"):
        process.start()


def test_a_witness_killed_and_restarted_never_cosigns_two_inconsistent_checkpoints(log: Log,
                                                                                   tmp_path: Path) -> None:
    """An honest pusher sends the log's checkpoints as it grows; an adversary sends checkpoints of a fork that
    shares the first entries, always claiming the witness has cosigned nothing; the witness is killed with SIGKILL
    and restarted again and again meanwhile. No checkpoint of the fork beyond the shared prefix is ever cosigned,
    and every answer for one checkpoint carries the same cosignature."""
    directory = tmp_path / "witness-custodian"
    own_key(directory, "custodian", "custodian")
    shared = log.publish().size
    honest: list[StoredCheckpoint] = []
    for _ in range(12):
        log.grow(7)
        honest.append(log.publish())
    forks = [log.fork(shared, size)[0] for size in range(shared + 3, shared + 60, 5)]
    process = WitnessProcess(directory, "custodian", "custodian.example/witness",
                             [log.checkpoints.verifier.encode()])
    process.start()
    answers: list[tuple[str, str]] = []  # (checkpoint note, cosignature) of every 200
    done, stop = threading.Event(), threading.Event()

    def send(old_size: int, proof: list[bytes], note: str) -> httpx.Response | None:
        try:
            response = post(process.url, old_size, proof, note)
        except httpx.HTTPError:
            time.sleep(0.02)  # the witness is down
            return None
        if response.status_code == 200:
            answers.append((note, response.text))
        return response

    def honest_pusher() -> None:
        known = 0
        for stored in honest:
            while True:
                proof = log.checkpoints.log.consistency_proof(known, stored.size) if 0 < known < stored.size else []
                response = send(known, proof, stored.note)
                if response is None:
                    continue
                if response.status_code == 409:
                    known = int(response.text)
                    continue
                assert response.status_code == 200, response.text
                known = stored.size
                break
            time.sleep(0.15)  # a log publishes now and then: kills land between and during pushes
        done.set()

    def adversary() -> None:
        while not stop.is_set():
            for note in forks:
                response = send(0, [], note)
                assert response is None or response.status_code in (409, 422), response.text
                time.sleep(0.005)

    threads = [threading.Thread(target=honest_pusher), threading.Thread(target=adversary)]
    try:
        threads[0].start()
        while not answers:
            time.sleep(0.01)
        threads[1].start()
        randomness = random.Random(7)
        for _ in range(4):
            time.sleep(randomness.uniform(0.05, 0.4))
            process.kill()
            process.start()
        threads[0].join(120)
        stop.set()
        threads[1].join(120)
    finally:
        stop.set()
        process.stop()
    assert done.is_set() and answers
    cosigned = dict(answers)
    assert not set(cosigned) & set(forks)
    verifier = Signer("custodian.example/witness",
                      KeyDirectory(directory / "keys").load("custodian").private_key).verifier(COSIGNATURE_V1)
    for note, line in answers:
        assert line == cosigned[note]  # one cosignature per checkpoint, however often it was asked
        verify_cosignature(note + line, verifier)
    assert split_note(honest[-1].note)[0] in {split_note(note)[0] for note in cosigned}


def test_ledger_witnesses_lists_each_witness_key_and_url() -> None:
    first = Signer("custodian.example/w", SigningKey.generate("a", "custodian").private_key).verifier(COSIGNATURE_V1)
    second = Signer("reg=ulator", SigningKey.generate("b", "regulator").private_key).verifier(COSIGNATURE_V1)
    text = f"{first.encode()}=https://custodian.example/witness/, {second.encode()}=http://127.0.0.1:8081"
    settings = Settings.from_env({"LEDGER_WITNESSES": text})
    assert settings.witnesses == (WitnessEndpoint(first, "https://custodian.example/witness"),
                                  WitnessEndpoint(second, "http://127.0.0.1:8081"))
    assert Settings.from_env({}).witnesses == ()
    log_key = Signer("log", SigningKey.generate("c", "operator").private_key).verifier()
    for bad, message in [
        ("https://custodian.example", "witness_entry_must_be_a_verifier_key_and_a_url (entry 1: <verifier key>="),
        (f"{first.encode()}=ftp://x", "witness_entry_must_be_a_verifier_key_and_a_url (entry 1"),
        (f"{first.encode()}=https://a,{first.encode()}=https://b", "witness_must_be_listed_once (entry 2)"),
        (f"{log_key.encode()}=https://a", "witness_key_must_be_a_cosignature_key (entry 1"),
        (f"{first.encode()[:-3]}AAA=https://a", "witness_entry_must_be_a_verifier_key_and_a_url (entry 1: verifier"),
    ]:
        with pytest.raises(ConfigError, match=f"^LEDGER_WITNESSES: {re.escape(message)}"):
            Settings.from_env({"LEDGER_WITNESSES": bad})


@pytest.mark.parametrize(("body", "field", "rule"), [
    (b"old 0\n\xff\n\nnote", "body", "witness_request_must_be_utf8"),
    (b"old 0\n" + b"AAAA\n" * 64 + b"\nnote", "proof", "witness_proof_must_have_at_most_63_lines"),
    (b"old 3\nnot base64!\n\nnote", "proof", "witness_proof_must_be_base64_hashes"),
    (b"old 3\n" + base64.b64encode(b"short") + b"\n\nnote", "proof", "witness_proof_must_be_base64_hashes"),
])
def test_a_malformed_add_checkpoint_body_names_the_field_and_rule(body: bytes, field: str, rule: str) -> None:
    with pytest.raises(MalformedRequestError) as caught:
        AddCheckpoint.parse(body)
    assert (caught.value.field, caught.value.rule, caught.value.status) == (field, rule, 400)


def test_a_pulled_note_that_is_no_checkpoint_is_refused(log: Log, tmp_path: Path) -> None:
    witness = open_custodian(tmp_path, log)
    with pytest.raises(MalformedRequestError) as caught:
        witness.cosign("not a signed note\n", log.checkpoints.verifier, log.checkpoints.log.consistency_proof, 1)
    assert caught.value.rule == "checkpoint_must_be_a_signed_note"


def test_a_follower_refuses_a_checkpoint_not_signed_by_the_log_key_or_of_another_origin(log: Log,
                                                                                      tmp_path: Path) -> None:
    from ledger.log.witness import CheckpointFollower, UnknownOriginError, UntrustedCheckpointError

    follower = CheckpointFollower(tmp_path / "monitor.json", tmp_path / "evidence.json", "monitor")
    stored = log.publish()
    follower.accept(stored.note, follower.check(stored.note, log.checkpoints.verifier, lambda a, b: []))
    stranger = Signer(log.app.settings.log_origin, SigningKey.generate("s", "operator").private_key)
    with pytest.raises(UntrustedCheckpointError) as untrusted:
        follower.check(sign_note(stored.checkpoint.text(), stranger), log.checkpoints.verifier, lambda a, b: [])
    assert untrusted.value.rule == "checkpoint_must_be_signed_by_the_log_key"
    moved = Signer("elsewhere.example/log", signer_of(log.checkpoints).private_key)
    elsewhere = sign_note(stored.checkpoint.text().replace(log.app.settings.log_origin, "elsewhere.example/log"),
                          moved)
    with pytest.raises(UnknownOriginError) as origin:
        follower.check(elsewhere, moved.verifier(), lambda a, b: [])
    assert origin.value.rule == "checkpoint_origin_must_not_change"
