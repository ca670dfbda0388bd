"""Case cards of the 公示 (docs/claims.md, "Disclosure"): format v2 names the investigation firm by the public name
its key was registered under, the province by its names and, for a sealed claim, only coarse values; a document
published in v1 is still rebuilt byte-exactly in v1. Filing rules: a condition fits the age at diagnosis; a join
names a province of China; only a party's key carries a public name."""

from __future__ import annotations

import json
from typing import Any

from ledger.bootstrap import Ledger
from ledger.canonical import document_digest
from ledger.keys import SigningKey
from ledger.projections.cases import DOCUMENT_FORMAT, DOCUMENT_FORMAT_V1, disclosure_document, render_disclosure
from ledger.service import PARTY_NAMES
from schemas.commands.keys import RegisterKey
from schemas.commands.membership import Join
from sim.fixtures import commitment
from tests.support import advance, cid, create_plan, join, rejected
from tests.test_audit import Store, audit, history, resign
from tests.test_claim import file


def document_of(app: Ledger, document_format: str | None = None) -> dict[str, Any]:
    models = app.read_models()
    period = models.periods.all()[0]["id"]
    return disclosure_document(period, models.periods, models.cases, models.balances.failed_periods(),
                               document_format)


def test_a_v2_card_names_the_firm_and_the_province_and_keeps_a_sealed_claim_coarse(ledger_app: Ledger) -> None:
    app = ledger_app
    history(app)
    document = document_of(app)
    assert document["format"] == DOCUMENT_FORMAT
    [card] = document["cases"]
    assert card["investigation_firm"]["name"] == PARTY_NAMES["investigator"]
    assert card["province"] == {"zh-CN": "浙江", "en": "Zhejiang"}
    assert card["member"] is None and "diagnosed_on" not in card and "age_at_diagnosis" not in card
    assert card["diagnosis_month"] == "2026-04" and card["age_band"] == "30-34"
    assert "investigated by " + PARTY_NAMES["investigator"] in render_disclosure(document)
    assert "浙江 Zhejiang" in render_disclosure(document)
    published = app.read_models().periods.all()[0]
    assert published["disclosure_hash"] == document_digest(document)[0]  # what was published is v2
    assert audit(app).ok, audit(app).failures[:3]


def test_a_disclosure_published_in_v1_is_rebuilt_in_v1(ledger_app: Ledger) -> None:
    """A store written before v2: its `disclosure.published` (schema 1) pinned the v1 document; the audit and the
    reads rebuild it in v1, byte for byte. Claiming v2 for the v1 hash is caught."""
    app = ledger_app
    history(app)
    v1 = document_of(app, DOCUMENT_FORMAT_V1)
    assert v1["format"] == DOCUMENT_FORMAT_V1 and isinstance(v1["cases"][0]["province"], str)
    assert "investigation_firm" not in v1["cases"][0]
    store = Store(app)
    _, nid, envelope = store.find("disclosure.published")
    body = {k: v for k, v in envelope["body"].items() if k != "format"}
    digest, size = document_digest(v1)
    envelope = {**envelope, "schema": 1, "body": {**body, "document_hash": digest, "document_bytes": size}}
    store.set_state(nid, resign(envelope, app.signers.load("operator")))
    def failures() -> list[str]:  # the rewritten log no longer matches its checkpoint (check 12): the rest holds
        return [f.check for f in audit(app).failures if not f.check.startswith("12 ")]

    assert failures() == []
    envelope["schema"], envelope["body"] = 2, {**envelope["body"], "format": DOCUMENT_FORMAT}
    store.set_state(nid, resign(envelope, app.signers.load("operator")))
    assert failures() == ["9 disclosure (document hash)"]


def test_a_condition_must_fit_the_age_at_diagnosis(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app)
    adult, child = join(app, plan, age=40), join(app, plan, age=3)
    advance(app, days=100)
    rejected(app, lambda: file(app, adult, "2026-04-10", age=40, condition="neuroblastoma"), "condition",
             "condition_must_fit_the_members_age")
    assert file(app, child, "2026-04-10", age=3, condition="neuroblastoma")


def test_a_join_names_a_province_of_china(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app)
    unknown = Join(command_id=cid(), plan=plan, age_years=30, sex="f", province="xx",
                   consent_commitment=commitment(), health_declaration_commitment=commitment())
    rejected(app, lambda: app.execute(unknown), "province", "province_must_be_a_province_of_china")


def test_only_a_party_key_carries_a_public_name(ledger_app: Ledger) -> None:
    app = ledger_app
    plan = create_plan(app)
    member = join(app, plan)
    key = SigningKey.generate("m", "member", member)
    rejected(app, lambda: app.execute(RegisterKey(command_id=cid(), role="member", public_key=key.public_base64,
                                                  member=member, party_name="Someone")),
             "party_name", "only_a_party_key_carries_a_public_name")
    firm = SigningKey.generate("firm", "investigator")
    app.execute(RegisterKey(command_id=cid(), role="investigator", public_key=firm.public_base64,
                            party_name="第二调查公司 Second Investigators"))
    registered = [json.loads(e) for _, e in app.entries() if json.loads(e)["type"] == "key.registered"]
    assert registered[-1]["schema"] == 2 and registered[-1]["body"]["party_name"].startswith("第二")
    assert app.read_models().periods.party(firm.key_id) == ("investigator", "第二调查公司 Second Investigators")
    assert audit(app).ok
