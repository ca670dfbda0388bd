"""The pages without a browser: both message catalogs hold the same keys and every key the templates and the
pages' scripts use; the routes answer HTML with the same-origin Content-Security-Policy, Chinese first and English
on request; a missing plan or period is an HTML 404; card fields a later document format adds are shown; the
trust anchors' witness policy is checked; the service compresses what it may; every web file is packaged."""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.anchors import TrustAnchors
from ledger.api.app import create_app, service_state
from ledger.api.charts import Point, share_chart
from ledger.api.render import CSP, WEB, catalog, yuan
from ledger.bootstrap import Ledger
from ledger.canonical import canonical_bytes
from ledger.errors import InputError
from ledger.keys import SigningKey
from ledger.log.note import COSIGNATURE_V1, Signer, Verifier
from sim.services import serving
from tests.test_audit import history

ROOT = Path(__file__).resolve().parent.parent


def used_keys() -> set[str]:
    """Every message key the templates and the page scripts name literally."""
    keys: set[str] = set()
    for template in (WEB / "templates").glob("*.html"):
        keys |= set(re.findall(r"""\bt\("([a-z0-9_]+)"[,)]""", template.read_text(encoding="utf-8")))
    for script in (WEB / "static" / "js" / "pages").glob("*.js"):
        keys |= set(re.findall(r"""\bt\("([a-z0-9_]+)"[,)]""", script.read_text(encoding="utf-8")))
    return keys


def test_both_catalogs_hold_the_same_keys_and_every_key_used() -> None:
    chinese, english = catalog("zh-CN"), catalog("en")
    assert chinese.keys() == english.keys()
    assert used_keys() - chinese.keys() == set()
    steps = re.findall(r'^\s+\["([a-z]+\.[a-z]+)"', (WEB / "static" / "js" / "bundle.js").read_text(), re.M)
    named = {f"step_{s.replace('.', '_')}" for s in [*steps, "witness.policy", "disclosure.event",
                                                     "disclosure.document"]}
    assert named - chinese.keys() == set()
    assert all(value.strip() for value in [*chinese.values(), *english.values()])


def test_money_is_shown_from_integer_fen() -> None:
    assert [yuan(v) for v in (0, 5, 123456789, -250, None)] == ["0.00", "0.05", "1,234,567.89", "-2.50", "–"]


def test_the_share_chart_draws_every_period_and_escapes_its_labels() -> None:
    chart = share_chart([Point("1", 300), Point("<2>", 1250)], "share & more", "¥")
    assert chart.count("<circle") == 2 and "&lt;2&gt;" in chart and "share &amp; more" in chart
    assert share_chart([], "t", "¥") == ""


def test_the_witness_policy_of_the_trust_anchors_is_checked(sqlite_app: Ledger) -> None:
    anchors = TrustAnchors.load(sqlite_app.settings.data_dir / "trust-anchors.json")
    witness = Signer("w.example", Ed25519PrivateKey.generate()).verifier(COSIGNATURE_V1).encode()
    policy = anchors.with_witness_policy([witness], 1)
    assert policy.witness_policy == ((witness,), 1)
    assert TrustAnchors.parse(policy.entries).witness_policy == ((witness,), 1)
    for keys, threshold in (([witness], 2), ([witness, witness], 1), (["not a key"], 0),
                            ([Verifier.parse(anchors.log_verifier_key or "").encode()], 1)):
        with pytest.raises(InputError) as caught:
            anchors.with_witness_policy(keys, threshold)
        assert (caught.value.field, caught.value.rule) == ("trust_anchors", "trust_anchors_must_be_valid")
    with pytest.raises(InputError):
        TrustAnchors.parse({**anchors.entries, "witnesses": {"keys": [witness], "threshold": True}})


def test_the_anchors_fingerprint_names_the_log_key_and_the_witness_policy_only(sqlite_app: Ledger) -> None:
    anchors = TrustAnchors.load(sqlite_app.settings.data_dir / "trust-anchors.json")
    fingerprint = anchors.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{32}", fingerprint)
    trusted = {"log": anchors.entries["log"]}
    assert fingerprint == hashlib.sha256(canonical_bytes(trusted)).hexdigest()[:32]
    witness = Signer("w.example", Ed25519PrivateKey.generate()).verifier(COSIGNATURE_V1).encode()
    policies = {anchors.with_witness_policy([witness], threshold).fingerprint() for threshold in (0, 1)}
    assert len(policies) == 2 and fingerprint not in policies  # any change of the policy is another fingerprint
    other_log = TrustAnchors.parse({**anchors.entries, "log": {**anchors.entries["log"], "origin": "other/log"}})
    assert other_log.fingerprint() != fingerprint
    custodian = SigningKey.generate("custodian", "custodian")
    with_custodian = anchors.with_key("custodian", {"key_id": custodian.key_id, "role": "custodian",
                                                    "public_key": custodian.public_base64})
    assert with_custodian.fingerprint() == fingerprint  # the browser does not use it: pinning it would change nothing
    without_log = TrustAnchors.parse({"operator-root": anchors.entries["operator-root"]})
    with pytest.raises(InputError) as caught:
        without_log.fingerprint()
    assert (caught.value.field, caught.value.rule) == ("trust_anchors", "log_verifier_key_must_be_known")


@pytest.fixture
def served(sqlite_app: Ledger) -> Iterator[tuple[Ledger, str]]:
    history(sqlite_app)
    sqlite_app.read_models()
    with serving(create_app(service_state(sqlite_app))) as base:
        yield sqlite_app, base


def test_every_page_is_html_under_a_same_origin_policy_in_chinese_or_english(served: tuple[Ledger, str]) -> None:
    ledger, base = served
    periods = ledger.read_models().periods
    period = periods.all()[0]
    pages = ["/", f"/plans/{period['plan']}", f"/plans/{periods.plans_list()[0]['name']}", f"/periods/{period['id']}",
             f"/periods/{period['plan']}:1", "/member", "/custodian", "/regulator"]
    for path in pages:
        for language, marker in (("", 'lang="zh-CN"'), ("?lang=en", 'lang="en"')):
            answer = httpx.get(base + path + language)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.headers["content-type"] == "text/html; charset=utf-8"
            assert answer.headers["content-security-policy"] == CSP
            assert marker in answer.text and "<script>" not in answer.text and "style=" not in answer.text
            assert "http://" not in answer.text.replace('xmlns="http://www.w3.org/2000/svg"', ""), path
            assert "https://" not in answer.text, path
    assert "default-src 'self'" in CSP and "'unsafe-inline'" not in CSP and "'unsafe-eval'" not in CSP


def test_a_missing_plan_or_period_is_an_html_page_saying_so(served: tuple[Ledger, str]) -> None:
    _, base = served
    for path, lang, words in (("/plans/no-such-plan", "", "找不到页面"), ("/periods/not-a-period", "?lang=en",
                                                                      "Not found"),
                              ("/periods/00000000-0000-4000-8000-000000000000", "", "找不到页面")):
        answer = httpx.get(base + path + lang)
        assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
        assert words in answer.text and "Traceback" not in answer.text


def test_the_disclosure_shows_every_card_field_the_document_has(served: tuple[Ledger, str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, base = served
    period = ledger.read_models().periods.all()[0]["id"]
    from ledger.projections.cases import disclosure_document as real

    def richer(*args: object) -> dict[str, object]:
        document = real(*args)  # type: ignore[arg-type]
        document["cases"] = [{**card, "investigation_firm": "平安调查", "jury_votes": 7, "new_field": "x<y"}
                             for card in document["cases"]]
        return document

    monkeypatch.setattr("ledger.api.routers.pages.disclosure_document", richer)
    text = httpx.get(f"{base}/periods/{period}").text
    assert "调查机构" in text and "平安调查" in text and "评议票数" in text and "new_field" in text
    assert "x&lt;y" in text


def test_the_disclosure_carries_the_key_registrations_its_signature_needs(served: tuple[Ledger, str]) -> None:
    ledger, base = served
    period = ledger.read_models().periods.all()[0]["id"]
    disclosure = httpx.get(f"{base}/api/v1/periods/{period}/disclosure").json()
    keys = [json.loads(k["entry"]) for k in disclosure["keys"]]
    signer = json.loads(disclosure["event"]["entry"])["actor"]["key"]
    assert [k["type"] for k in keys] == ["key.registered"] * 2 and disclosure["keys"][0]["index"] == 0
    assert keys[0]["body"]["key_id"] == keys[0]["actor"]["key"] and keys[1]["body"]["key_id"] == signer


def test_large_answers_are_compressed_but_the_feed_and_the_tiles_are_not(served: tuple[Ledger, str]) -> None:
    ledger, base = served
    period = ledger.read_models().periods.all()[0]["id"]
    for path in (f"/api/v1/periods/{period}/disclosure", f"/periods/{period}", "/openapi.json"):
        answer = httpx.get(base + path, headers={"Accept-Encoding": "gzip"})
        assert answer.headers.get("content-encoding") == "gzip", path
    from ledger.api.app import UNCOMPRESSED

    assert "text/event-stream" in UNCOMPRESSED and "application/octet-stream" in UNCOMPRESSED


def test_every_web_file_is_packaged() -> None:
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ledger"]
    files = {p.relative_to(ROOT / "ledger") for p in WEB.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    covered = {f for f in files if any(f.match(pattern) for pattern in patterns)}
    assert files == covered, files - covered


def test_the_case_counts_read_once_give_the_documents_the_ledger_published(tmp_path: Path) -> None:
    from ledger.canonical import document_digest
    from ledger.demo import run_demo
    from ledger.projections.cases import disclosure_document
    from ledger.store import decode_entry
    from tests.support import demo_ledger

    app = demo_ledger(tmp_path / "data")
    run_demo(app, members=120, periods=3, seed=5)
    models = app.read_models()
    published = {e.body["period"]: e.body["document_hash"] for e in map(decode_entry, (x for _, x in app.entries()))
                 if e.type == "disclosure.published"}
    assert len(published) >= 3
    helped = 0
    for period, pinned in published.items():
        document = disclosure_document(period, models.periods, models.cases, models.balances.failed_periods())
        assert document_digest(document)[0] == pinned
        helped += sum(card["helped_people"] for card in document["cases"])
        plan = models.periods.record(period)["plan"]  # type: ignore[index]
        counts = models.periods.case_counts(plan)
        assert counts == {p["id"]: len(models.periods.record(p["id"])["cases"])  # type: ignore[index]
                          for p in models.periods.all(plan) if models.periods.record(p["id"])["cases"]}  # type: ignore[index]
    assert helped > 0, "some case's member had paid into periods with cases"
    app.close()
