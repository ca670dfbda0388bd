"""The browser's verifier against the Python one on the fixed corpus of bundles: the same checklist — every step,
what it was about, ✓ or ✗ — and so the same outcome and failing step, with WebCrypto's Ed25519 and with the vendored
library in a browser without it."""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import BrowserContext, Page

from audit.bundle import STEPS, check_bundle
from ledger.log.note import Verifier
from tests.browser.conftest import run_module
from tests.test_bundle_vectors import NAMES, load

CHECK_EVERY_VECTOR = """
const { checkBundle } = await modules("bundle");
const { parseVerifier } = await modules("note");
const ed25519 = await modules("ed25519");
ed25519.useBackend(argument.backend);
const reports = {};
for (const name of argument.names) {
  const vector = await (await fetch(`/vectors/bundles/${name}.json`)).json();
  const report = await checkBundle(vector.bundle, await parseVerifier(vector.log_key),
    await Promise.all(vector.witness_keys.map(parseVerifier)));
  reports[name] = { ok: report.ok, failing_step: report.failing_step, statement: report.statement,
    findings: report.findings.map(({ step, subject, ok }) => ({ step, subject, ok })) };
}
return { reports, used: { ...ed25519.used }, backend: await ed25519.backendInUse(),
  webcrypto: await ed25519.webCryptoHasEd25519() };
"""

NO_WEBCRYPTO_ED25519 = """
for (const name of ["importKey", "verify", "sign", "generateKey"]) {
  const original = crypto.subtle[name].bind(crypto.subtle);
  crypto.subtle[name] = (...args) => {
    const algorithm = args.find((a) => a && (a === "Ed25519" || a.name === "Ed25519"));
    if (algorithm) return Promise.reject(new DOMException("Unrecognized name.", "NotSupportedError"));
    return original(...args);
  };
}
"""


def python_reports() -> dict[str, dict[str, Any]]:
    """The Python verifier's checklist of every vector, in the browser's shape."""
    reports = {}
    for name in NAMES:
        vector = load(name)
        report = check_bundle(vector["bundle"], Verifier.parse(vector["log_key"]),
                              [Verifier.parse(k) for k in vector["witness_keys"]]).to_json()
        reports[name] = {**report, "findings": [{k: f[k] for k in ("step", "subject", "ok")}
                                                for f in report["findings"]]}
    return reports


def assert_agree(browser: dict[str, dict[str, Any]]) -> None:
    python = python_reports()
    assert sorted(browser) == sorted(python) == NAMES
    for name in NAMES:
        expected = load(name)["expected"]
        assert browser[name]["ok"] == python[name]["ok"] == expected["ok"], name
        assert browser[name]["failing_step"] == python[name]["failing_step"] == expected.get("step"), name
        first = next((f for f in browser[name]["findings"] if not f["ok"]), None)
        assert (first or {}).get("subject", {}) == expected.get("subject", {}), name
        assert browser[name]["findings"] == python[name]["findings"], name
        assert json.dumps(browser[name]["statement"], sort_keys=True) == json.dumps(python[name]["statement"],
                                                                                    sort_keys=True), name


def test_with_webcrypto_the_browser_gives_the_python_checklist_on_every_bundle(page: Page) -> None:
    result = run_module(page, CHECK_EVERY_VECTOR, {"names": NAMES, "backend": "auto"})
    assert result["webcrypto"] is True and result["backend"] == "webcrypto"
    assert result["used"]["webcrypto"] > 0 and result["used"]["noble"] == 0
    assert_agree(result["reports"])


def test_without_ed25519_in_webcrypto_the_vendored_library_gives_the_same_checklist(context: BrowserContext,
                                                                                     page: Page) -> None:
    page.add_init_script(NO_WEBCRYPTO_ED25519)
    page.reload()
    result = run_module(page, CHECK_EVERY_VECTOR, {"names": NAMES, "backend": "auto"})
    assert result["webcrypto"] is False and result["backend"] == "noble"
    assert result["used"]["noble"] > 0 and result["used"]["webcrypto"] == 0
    assert_agree(result["reports"])


def test_the_browser_names_the_same_steps_in_the_same_order() -> None:
    from pathlib import Path

    source = (Path(__file__).parents[2] / "ledger" / "web" / "static" / "js" / "bundle.js").read_text()
    listed = source[source.index("export const STEPS = [") : source.index("];", source.index("export const STEPS"))]
    assert [json.loads(line.strip().rstrip(","))[0] for line in listed.splitlines()[1:]] == [s for s, _, _ in STEPS]


CHECK_UNDER_POLICY = """
const { checkHistory } = await modules("history");
const { parseVerifier } = await modules("note");
const reports = {};
for (const name of argument.names) {
  const vector = await (await fetch(`/vectors/bundles/${name}.json`)).json();
  for (const threshold of argument.thresholds) {
    const trust = { logKey: await parseVerifier(vector.log_key),
      witnesses: await Promise.all(vector.witness_keys.map(parseVerifier)), threshold };
    const report = await checkHistory(vector.bundle, trust);
    reports[`${name}@${threshold}`] = { ok: report.ok, failing_step: report.failing_step,
      findings: report.findings.map(({ step, subject, ok }) => ({ step, subject, ok })) };
  }
}
return reports;
"""


def python_under_policy(vector: dict[str, Any], threshold: int) -> dict[str, Any]:
    """What "Verify my history" must conclude, by the Python verifier and the ledger's `WitnessPolicy`: the bundle
    checked with the witnesses that cosigned when they meet the threshold, with all of them when they do not."""
    from ledger.log.witness import WitnessPolicy

    witnesses = [Verifier.parse(k) for k in vector["witness_keys"]]
    note = vector["bundle"].get("checkpoint") if isinstance(vector["bundle"], dict) else None
    policy = WitnessPolicy(tuple(witnesses), threshold)
    present, satisfied = (policy.evaluate(note).present, policy.evaluate(note).satisfied) if isinstance(
        note, str) else ((), threshold <= 0)
    chosen = [w for w in witnesses if w.name in present] if satisfied else witnesses
    report = check_bundle(vector["bundle"], Verifier.parse(vector["log_key"]), chosen).to_json()
    findings = [{"step": "witness.policy", "subject": {"witnesses": list(present)}, "ok": satisfied},
                *({k: f[k] for k in ("step", "subject", "ok")} for f in report["findings"])]
    first = next((f for f in findings if not f["ok"]), None)
    return {"ok": report["ok"] and satisfied, "failing_step": first["step"] if first else None, "findings": findings}


def test_under_a_witness_policy_the_browser_and_python_agree_on_every_bundle(page: Page) -> None:
    thresholds = [0, 1, 2]
    browser = run_module(page, CHECK_UNDER_POLICY, {"names": NAMES, "thresholds": thresholds})
    for name in NAMES:
        vector = load(name)
        for threshold in thresholds:
            assert browser[f"{name}@{threshold}"] == python_under_policy(vector, threshold), (name, threshold)
    # one cosignature of two is enough for a policy of one, not for a policy of two
    assert browser["cosignature-missing@1"]["ok"] is True
    assert browser["cosignature-missing@2"]["failing_step"] == "witness.policy"
    assert browser["good@2"]["ok"] is True
