"""A member signs in the browser with the key file the ledger's key directory wrote: imported once as a
non-extractable WebCrypto key, kept in IndexedDB, and used after a reload to sign requests (RFC 9421) that the
Python verifier accepts against the keyring — and refuses once the method, path, query, a covered header or the
body is changed, or the signature has expired."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from ledger.bootstrap import Ledger
from ledger.httpsig import SignatureRejectedError, SignedRequest, verify_request
from ledger.service import member_key
from tests.browser.conftest import run_module
from tests.browser.server import LocalServer, Received
from tests.support import create_plan, join

IMPORT_AND_KEEP = """
const { importKeyFile } = await modules("httpsig");
const { saveKey } = await modules("keystore");
const record = await importKeyFile(argument);
await saveKey("member", record);
let exported = "refused";
try { await crypto.subtle.exportKey("pkcs8", record.privateKey); exported = "allowed"; } catch {}
return { keyId: record.keyId, extractable: record.privateKey.extractable, exported };
"""

SIGN_AFTER_RELOAD = """
const { signedFetch } = await modules("httpsig");
const { loadKey } = await modules("keystore");
const key = await loadKey("member");
const statement = await signedFetch(`/signed/members/${argument}/statement?year=2026`, {}, key);
const report = await signedFetch(`/signed/members/${argument}/reports`, { method: "POST",
  headers: { "Content-Type": "application/json" }, body: JSON.stringify({ from: "2026-01-01", amount_fen: 100 }) },
  key);
return [statement.status, report.status, key.privateKey.extractable];
"""


def as_signed(received: Received, **changes: object) -> SignedRequest:
    request = SignedRequest(received.method, received.url, list(received.headers), received.body)
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def test_a_browser_signed_request_verifies_in_python_and_every_tampering_is_refused(
        page: Page, test_server: LocalServer, sqlite_app: Ledger) -> None:
    app = sqlite_app
    member = join(app, create_plan(app))
    key = member_key(app, member)
    pem = (app.signers.party("members").path / f"{key.name}.pem").read_text()
    kept = run_module(page, IMPORT_AND_KEEP, pem)
    assert kept == {"keyId": key.key_id, "extractable": False, "exported": "refused"}
    page.reload()
    test_server.received.clear()
    assert run_module(page, SIGN_AFTER_RELOAD, member) == [204, 204, False]
    statement, report = test_server.received
    keyring = app.app.keyring()
    now = dt.datetime.now(dt.UTC)

    def from_keyring(key_id: str) -> bytes | None:
        registered = keyring.keys.get(key_id)
        return registered.public_key if registered is not None and registered.valid_at(now) else None

    for received in (statement, report):
        verified = verify_request(as_signed(received), from_keyring, now)
        assert (keyring.keys[verified.key_id].role, keyring.keys[verified.key_id].member) == ("member", member)
    assert '"content-digest"' in verify_request(as_signed(report), from_keyring, now).covered

    tamperings: list[Callable[[], SignedRequest]] = [
        lambda: as_signed(report, method="PUT"),
        lambda: as_signed(report, url=report.url.replace(member, "0" * 8 + member[8:])),
        lambda: as_signed(statement, url=statement.url.replace("year=2026", "year=2025")),
        lambda: as_signed(report, headers=[(n, "sha-256=:" + "A" * 43 + "=:" if n.lower() == "content-digest"
                                            else v) for n, v in report.headers]),
        lambda: as_signed(report, body=report.body.replace(b"100", b"900")),
    ]
    for tampered in tamperings:
        with pytest.raises(SignatureRejectedError) as caught:
            verify_request(tampered(), from_keyring, now)
        assert caught.value.rule == "signature_must_verify"
    with pytest.raises(SignatureRejectedError) as expired:
        verify_request(as_signed(statement), from_keyring, now + dt.timedelta(minutes=10))
    assert (expired.value.field, expired.value.rule) == ("expires", "signature_must_not_have_expired")
