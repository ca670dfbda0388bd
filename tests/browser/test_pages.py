"""The pages in headless Chromium against a real server (uvicorn, `create_app`) on a store with a settled, disclosed
period: the 公示's "verify this disclosure" passes, and fails on a tampered document; a member signs in with their
key file and "Verify my history" ends all ✓, names the event and the check when one byte of a served entry changes,
and raises the misbehaviour alert with downloadable evidence when the log forks between two visits; a member
cannot read another member's records; the custodian's upload finds a planted discrepancy; the regulator queries and
publishes a report signed with its own key. No page logs a console error, asks another origin, or is wider than a
360 px phone; each is kept as a screenshot at 360×740 and 1280×800 (`$LEDGER_TEST_ARTIFACTS`, else
build/test-artifacts/screenshots)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, Route

from audit.reconcile import Movement, ledger_movements, write_statement
from ledger.anchors import TRUST_ANCHORS_FILE, TrustAnchors
from ledger.api.app import create_app, service_state
from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger
from ledger.log.note import COSIGNATURE_V1, Signer, Verifier
from ledger.log.witness import Witness
from ledger.service import ledger_with_parties, member_key
from ledger.store import decode_entry
from schemas.commands.membership import Deposit
from sim.services import free_port, serving
from tests.browser.conftest import Problems, _console
from tests.support import cid, clock_of
from tests.test_audit import history

ROOT = Path(__file__).resolve().parents[2]
SIZES = {"phone": (360, 740), "desktop": (1280, 800)}


def artifacts() -> Path:
    """Where the screenshots are kept."""
    directory = Path(os.environ.get("LEDGER_TEST_ARTIFACTS") or ROOT / "build" / "test-artifacts") / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Site:
    """A store with a disclosed period, its members' keys, and what a browser is given."""

    base: Path
    ledger: Ledger
    members: list[str]
    key_file: Path
    period: str
    plan: str
    witnesses: list[Witness]

    def key_file_of(self, party: str, name: str) -> Path:
        return self.base / party / "keys" / f"{name}.pem"


def witness(site_base: Path, ledger: Ledger, role: str) -> Witness:
    """A witness cosigning with the role's key (as a custodian or regulator running one would)."""
    return Witness(Signer(f"{role}.witness", ledger.signers.load(role).private_key),
                   site_base / f"{role}-witness.sqlite3", site_base / f"{role}-evidence.json")


def cosigned_checkpoint(ledger: Ledger, witnesses: list[Witness]) -> None:
    """Publish a checkpoint of everything written, cosigned by `witnesses`."""
    log = ledger.checkpoints
    stored = log.publish(ledger.clock.now())
    for number, w in enumerate(witnesses, start=1):
        stored = log.add_cosignature(stored.size, w.cosign(stored.note, log.verifier, log.log.consistency_proof,
                                                           int(ledger.clock.now().timestamp()) + number), w.verifier)


def with_witness_policy(ledger: Ledger, witnesses: list[Witness], threshold: int) -> None:
    """Write the witness policy into the trust anchors the service publishes."""
    path = ledger.settings.data_dir / TRUST_ANCHORS_FILE
    keys = [Verifier(w.verifier.name, w.verifier.public_key, COSIGNATURE_V1).encode() for w in witnesses]
    TrustAnchors.load(path).with_witness_policy(keys, threshold).save(path)


def members_in_join_order(ledger: Ledger) -> list[str]:
    return [decode_entry(e).stream for _, e in ledger.entries() if b'"member.joined"' in e]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A settled, disclosed period; member 0 holds a key file; two witnesses, of which one cosigns and the policy
    needs one; the service's clock is the real one (the browser signs with its own)."""
    tmp_path = tmp_path / "store"
    ledger = ledger_with_parties(tmp_path, SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC)))
    history(ledger)
    members = members_in_join_order(ledger)
    key = member_key(ledger, members[0])
    clock_of(ledger).set(datetime.now(UTC))
    witnesses = [witness(tmp_path, ledger, "custodian"), witness(tmp_path, ledger, "regulator")]
    with_witness_policy(ledger, witnesses, 1)
    cosigned_checkpoint(ledger, witnesses[:1])
    models = ledger.read_models()
    period = str(models.periods.all()[0]["id"])
    site = Site(tmp_path, ledger, members, tmp_path / "members" / "keys" / f"{key.name}.pem", period,
                str(models.periods.all()[0]["plan"]), witnesses)
    yield site
    ledger.close()


@pytest.fixture
def browser_page(context: BrowserContext, page_problems: Problems) -> Iterator[Page]:
    """A page of a fresh profile that fails the test on console errors and on requests to another origin."""
    page = context.pages[0] if context.pages else context.new_page()
    page.on("console", lambda message: _console(page_problems, message))
    page.on("pageerror", lambda error: page_problems.messages.append(f"page error: {error}"))
    yield page
    page_problems.check()


@contextmanager
def served(ledger: Ledger, page: Page, problems: Problems, port: int | None = None) -> Iterator[str]:
    """The service over `ledger` on a loopback port; the page may ask nothing of another origin."""
    with serving(create_app(service_state(ledger)), port=port) as base:
        def only_ours(route: Route) -> None:
            if route.request.url.startswith(base + "/"):
                route.continue_()
            else:
                problems.messages.append(f"request to another origin: {route.request.url}")
                route.abort()

        page.route("**/*", only_ours)
        try:
            yield base
        finally:
            page.unroute("**/*")


def screenshots(page: Page, name: str) -> None:
    """Keep the page at both sizes; at the phone's width nothing may be wider than the screen."""
    for size, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        if size == "phone":
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{name} is {wide} px wide at {width} px"
        page.screenshot(path=str(artifacts() / f"{name}-{width}x{height}.png"), full_page=True)


def checklist(page: Page) -> dict[str, Any]:
    """The checklist as shown: each step's mark, and each failure's step and text."""
    shown: dict[str, Any] = page.evaluate("""() => ({
      steps: Object.fromEntries([...document.querySelectorAll('#checklist > li')].map((li) =>
        [li.dataset.step, li.classList.contains('ok')])),
      failures: [...document.querySelectorAll('#checklist .failures li')].map((li) =>
        ({ step: li.dataset.step, text: li.textContent })) })""")
    return shown


def sign_in(page: Page, base: str, path: str, key_file: Path) -> None:
    page.goto(f"{base}{path}")
    page.set_input_files("#key-file", str(key_file))
    page.wait_for_selector("#signed-in:not([hidden])")
    if path.startswith("/member"):
        page.wait_for_selector("#history:not([hidden])")


def verify_history(page: Page) -> str:
    page.click("#verify-history")
    page.wait_for_selector("#history-result.ok, #history-result.failed", timeout=60_000)
    return str(page.text_content("#history-result"))


# -- public pages ----------------------------------------------------------------------------------------------


def test_the_public_pages_show_the_plans_the_share_chart_and_a_disclosure_that_verifies(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        page.goto(base + "/")
        assert page.locator("h1").text_content() == "互助计划"
        screenshots(page, "plans")
        page.click(f"a[href='/plans/{site.plan}']")
        assert page.locator("svg.chart path.line").count() == 1
        assert page.locator("#periods tbody tr").count() == 1
        screenshots(page, "plan")
        page.goto(f"{base}/periods/{site.period}")
        assert page.locator("#case-cards li").count() == 1
        card = page.text_content("#case-cards li") or ""
        assert "公示无异议" in card and "年龄段" in card and site.members[0] not in card  # a sealed card: no member
        page.click("#verify-disclosure")
        page.wait_for_selector("#verify-result.ok, #verify-result.failed", timeout=30_000)
        assert "✓" in (page.text_content("#verify-result") or ""), page.text_content("#checklist")
        shown = checklist(page)
        assert all(shown["steps"].values()) and {"witness.policy", "checkpoint.signature", "event.signature",
                                                  "disclosure.event", "disclosure.document"} <= set(shown["steps"])
        screenshots(page, "disclosure")
        page.goto(f"{base}/periods/{site.period}?lang=en")
        assert page.locator("#verify-disclosure").text_content() == "Verify this disclosure"


def test_a_tampered_disclosure_fails_its_verification_naming_the_document(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        def tampered(route: Route) -> None:
            answer = route.fetch()
            disclosure = answer.json()
            disclosure["document"]["cases"][0]["age_band"] = "35-39"
            route.fulfill(response=answer, body=json.dumps(disclosure))

        page.route(f"{base}/api/v1/periods/*/disclosure", tampered)
        page.goto(f"{base}/periods/{site.period}")
        page.click("#verify-disclosure")
        page.wait_for_selector("#verify-result.failed", timeout=30_000)
        shown = checklist(page)
        assert shown["steps"]["disclosure.document"] is False and shown["steps"]["event.signature"] is True
        assert [f["step"] for f in shown["failures"]] == ["disclosure.document"]


# -- the member ------------------------------------------------------------------------------------------------


def test_a_member_signs_in_with_their_key_file_and_their_history_verifies(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        sign_in(page, base, "/member", site.key_file)
        assert page.text_content("#who") == site.members[0]
        assert "¥" in (page.text_content("#statement-facts") or "")
        screenshots(page, "member")
        result = verify_history(page)
        assert "✓" in result, page.text_content("#checklist")
        shown = checklist(page)
        assert all(shown["steps"].values()) and {"witness.policy", "checkpoint.cosignature", "event.inclusion",
                                                  "event.signature", "chain.link", "period.share",
                                                  "roll.inclusion"} <= set(shown["steps"])
        screenshots(page, "member-verified")
        page.reload()  # the key is kept: signed in again without the file; the checkpoint is remembered
        page.wait_for_selector("#signed-in:not([hidden])")
        assert "✓" in verify_history(page)
        kept = page.evaluate("""async () => { const { loadKey } = await import('/static/js/keystore.js');
            const key = await loadKey('reader'); return [key.privateKey.extractable, key.privateKey.type]; }""")
        assert kept == [False, "private"]


def test_a_member_cannot_read_another_members_records(site: Site, browser_page: Page,
                                                      page_problems: Problems) -> None:
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        sign_in(page, base, "/member", site.key_file)
        statuses = page.evaluate("""async (other) => {
            const { loadKey } = await import('/static/js/keystore.js');
            const { signedFetch } = await import('/static/js/httpsig.js');
            const key = await loadKey('reader');
            const answers = [];
            for (const what of ['statement', 'bundle']) {
              const response = await signedFetch(`${location.origin}/api/v1/members/${other}/${what}`, {}, key);
              answers.push([response.status, (await response.json()).rule]);
            }
            return answers; }""", site.members[1])
        assert statuses == [[403, "signing_key_must_be_the_members_own"]] * 2
    refused = [m for m in page_problems.messages if "status of 403 (Forbidden)" in m]
    assert len(refused) == 2, page_problems.messages  # the browser reports each refusal; nothing else went wrong
    page_problems.messages = [m for m in page_problems.messages if m not in refused]


def test_one_changed_byte_in_a_served_entry_fails_naming_the_event_and_the_check(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        changed: dict[str, Any] = {}

        def tampered(route: Route) -> None:
            answer = route.fetch()
            bundle = answer.json()
            item = next(e for e in bundle["events"] if '"member.deposit_received"' in e["entry"])
            item["entry"] = item["entry"].replace('"amount_fen":5000', '"amount_fen":5001', 1)
            changed["index"] = item["index"]
            route.fulfill(response=answer, body=json.dumps(bundle))

        page.route(f"{base}/api/v1/members/*/bundle", tampered)
        sign_in(page, base, "/member", site.key_file)
        result = verify_history(page)
        assert "✗" in result
        shown = checklist(page)
        assert shown["steps"]["event.inclusion"] is False
        first = shown["failures"][0]
        assert first["step"] == "event.inclusion"
        assert f"第 {changed['index']} 条记录（member.deposit_received" in first["text"]
        assert page.locator("#alert").is_hidden()


def test_a_checkpoint_short_of_the_witness_policy_fails_naming_the_policy(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    with_witness_policy(site.ledger, site.witnesses, 2)  # both must cosign; only the custodian's witness did
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        sign_in(page, base, "/member?lang=en", site.key_file)
        assert "✗" in verify_history(page)
        shown = checklist(page)
        assert shown["steps"]["witness.policy"] is False
        assert shown["steps"]["checkpoint.cosignature"] is False
        assert [f["text"] for f in shown["failures"] if f["step"] == "checkpoint.cosignature"] == [
            "witness regulator.witness: cosignature: none by regulator.witness"]


def test_a_log_that_forks_between_two_visits_raises_the_misbehaviour_alert_with_its_evidence(
        site: Site, browser_page: Page, page_problems: Problems, tmp_path: Path) -> None:
    ledger = site.ledger
    ledger.close()
    fork_base = tmp_path.parent / f"{tmp_path.name}-fork"
    shutil.copytree(site.base, fork_base)
    now = SimulatedClock(datetime.now(UTC))
    honest = ledger_with_parties(site.base, now)
    forked = ledger_with_parties(fork_base, SimulatedClock(datetime.now(UTC)))
    try:
        honest.execute(Deposit(command_id=cid(), member=site.members[0], amount_fen=100, reference=cid("bank")))
        for amount in (200, 300):  # another history from the same point, longer
            forked.execute(Deposit(command_id=cid(), member=site.members[0], amount_fen=amount,
                                   reference=cid("bank")))
        for store, place in ((honest, site.base), (forked, fork_base)):  # each witness sees one branch only
            cosigned_checkpoint(store, [witness(place, store, "custodian")])
            store.read_models()
        page = browser_page
        port = free_port()
        with served(honest, page, page_problems, port) as base:
            sign_in(page, base, "/member", site.key_file)
            assert "✓" in verify_history(page)
        with served(forked, page, page_problems, port) as base:
            page.goto(f"{base}/member")
            page.wait_for_selector("#signed-in:not([hidden])")
            assert "✗" in verify_history(page)
            assert page.locator("#alert").is_visible()
            assert all(checklist(page)["steps"].values()), "the forked log's own bundle verifies"
            screenshots(page, "member-alert")
            with page.expect_download() as download:
                page.click("#evidence")
            evidence = json.loads(Path(download.value.path()).read_text())
        assert evidence["kind"] == "inconsistent checkpoints" and evidence["observer"] == "browser"
        assert evidence["older_checkpoint"] == honest.checkpoints.latest().note  # type: ignore[union-attr]
        assert evidence["newer_checkpoint"] == forked.checkpoints.latest().note  # type: ignore[union-attr]
    finally:
        honest.close()
        forked.close()
        site.ledger = ledger_with_parties(site.base, now)


# -- pinning the trust anchors ---------------------------------------------------------------------------------


def fingerprint_of(ledger: Ledger) -> str:
    """The fingerprint of the anchors the service publishes, as `mutual-ledger keys fingerprint` prints it."""
    return TrustAnchors.load(ledger.settings.data_dir / TRUST_ANCHORS_FILE).fingerprint()


def grouped(fingerprint: str) -> str:
    return " ".join(fingerprint[i:i + 4] for i in range(0, len(fingerprint), 4))


def test_a_link_with_the_anchors_fingerprint_pins_them_and_anchors_changed_since_are_refused(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    page = browser_page
    pinned = fingerprint_of(site.ledger)
    with served(site.ledger, page, page_problems) as base:
        sign_in(page, base, f"/member#anchors={pinned}", site.key_file)
        page.wait_for_selector("#anchors:not([hidden])")
        assert page.get_attribute("#anchors-status", "data-status") == "pinned-now"
        assert page.text_content("#anchors-fingerprint") == grouped(pinned)  # the browser's is Python's
        assert "✓" in verify_history(page)
        screenshots(page, "member-pinned")
        page.goto(f"{base}/member")  # the next visit, without the link: held to the pin
        page.wait_for_selector("#anchors:not([hidden])")
        assert page.get_attribute("#anchors-status", "data-status") == "pinned"
        assert "✓" in verify_history(page)

        with_witness_policy(site.ledger, site.witnesses, 0)  # the service now serves other anchors
        changed = fingerprint_of(site.ledger)
        assert changed != pinned
        page.goto(f"{base}/member?lang=en")
        page.wait_for_selector("#anchors:not([hidden])")
        assert page.get_attribute("#anchors-status", "data-status") == "mismatch"
        alert = page.text_content("#anchors-alert-detail") or ""
        assert grouped(changed) in alert and grouped(pinned) in alert and "you pinned" in alert
        result = verify_history(page)
        assert result.startswith("✗ Not verified: the trust anchors") and checklist(page)["steps"] == {}
        page.click("#anchors-unpin")  # the reader forgets the old pin: a first visit again, nothing trusted yet
        page.wait_for_selector("#anchors-status[data-status=unpinned]")
        assert page.is_visible("#anchors-pin") and page.is_hidden("#anchors-alert")


def test_a_link_whose_fingerprint_differs_is_refused_and_a_reader_can_pin_what_they_compared(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    page = browser_page
    served_fingerprint = fingerprint_of(site.ledger)
    forged = f"{(int(served_fingerprint[0], 16) ^ 1):x}{served_fingerprint[1:]}"
    with served(site.ledger, page, page_problems) as base:
        page.goto(f"{base}/periods/{site.period}#anchors={forged}")
        page.wait_for_selector("#anchors:not([hidden])")
        assert page.get_attribute("#anchors-status", "data-status") == "mismatch"
        assert page.is_visible("#anchors-alert") and grouped(forged) in (page.text_content("#anchors-alert") or "")
        page.click("#verify-disclosure")
        page.wait_for_selector("#verify-result.failed", timeout=30_000)
        assert "信任锚" in (page.text_content("#verify-result") or "") and checklist(page)["steps"] == {}

        for malformed in ("zz%ZZ", ""):  # not a fingerprint: it matches nothing, and pins nothing
            page.goto(f"{base}/periods/{site.period}#anchors={malformed}")
            page.reload()  # a new fragment alone does not load the page again
            page.wait_for_selector("#anchors-status[data-status=mismatch]", state="attached")
            assert page.is_visible("#anchors-alert")
        page.goto(f"{base}/periods/{site.period}")  # nothing was pinned: a first visit
        page.wait_for_selector("#anchors:not([hidden])")
        assert page.get_attribute("#anchors-status", "data-status") == "unpinned"
        assert page.text_content("#anchors-fingerprint") == grouped(served_fingerprint)
        page.click("#anchors-pin")
        page.wait_for_selector("#anchors-status[data-status=pinned]")
        page.click("#verify-disclosure")
        page.wait_for_selector("#verify-result.ok, #verify-result.failed", timeout=30_000)
        assert "✓" in (page.text_content("#verify-result") or "")
        page.click("#anchors-unpin")
        page.wait_for_selector("#anchors-status[data-status=unpinned]")


# -- the custodian and the regulator ---------------------------------------------------------------------------


def test_the_custodians_upload_finds_a_planted_discrepancy(site: Site, browser_page: Page,
                                                           page_problems: Problems, tmp_path: Path) -> None:
    honest = ledger_movements([entry for _, entry in site.ledger.entries()])
    planted = [*honest[1:], replace(honest[0], amount_fen=honest[0].amount_fen + 1),
               Movement("2026-05-01", "bank-unknown", "in", 777, "member:zzzz****")]
    statement = tmp_path / "statement.csv"
    statement.write_text(write_statement(planted))
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        sign_in(page, base, "/custodian", site.key_file_of("custodian", "custodian"))
        page.wait_for_selector("#journal tbody tr")
        assert "0.00" in (page.text_content("#balance") or "")
        page.wait_for_selector("#cosignatures tbody tr")
        assert "custodian.witness" in (page.text_content("#cosignatures") or "")
        page.set_input_files("#statement-file", str(statement))
        page.wait_for_selector("#findings tbody tr")
        kinds = page.eval_on_selector_all("#findings tbody tr", "rows => rows.map((r) => r.dataset.kind)")
        assert sorted(kinds) == ["amount_mismatch", "missing_in_ledger"]
        screenshots(page, "custodian")


def test_the_regulator_queries_downloads_csv_and_publishes_a_report_it_signs(
        site: Site, browser_page: Page, page_problems: Problems) -> None:
    page = browser_page
    with served(site.ledger, page, page_problems) as base:
        sign_in(page, base, "/regulator", site.key_file_of("regulator", "regulator"))
        page.wait_for_selector("#charts svg")
        page.select_option("#query select[name=kind]", "periods")
        page.click("#query button[type=submit]")
        page.wait_for_selector("#rows tbody tr")
        with page.expect_download() as download:
            page.click("#csv")
        csv = Path(download.value.path()).read_text().splitlines()
        assert csv[0].startswith("id,") and len(csv) == 2
        before = site.ledger.app.recorder.max_notification_id()
        page.fill("#report input[name=from]", "2026-01-01")
        page.fill("#report input[name=to]", "2026-12-31")
        page.click("#report button[type=submit]")
        page.wait_for_selector("#report-result.ok, #report-result.failed", timeout=30_000)
        assert "✓" in (page.text_content("#report-result") or ""), page.text_content("#report-result")
        assert site.ledger.app.recorder.max_notification_id() == (before or 0) + 1
        screenshots(page, "regulator")
