"""The browser's building blocks against the published vectors and the Python implementations: RFC 8785, RFC 9162
proofs, C2SP signed notes, Ed25519 with libsodium's strictness on both backends, the sharing formula, and the check
of a new checkpoint against a remembered one with its evidence of a fork."""

from __future__ import annotations

import base64
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import nacl.bindings
import pytest
from playwright.sync_api import Page

from ledger.keys import SigningKey, ed25519_verify
from ledger.log.merkle import ProofError, consistency_proof, inclusion_proof, leaf_hash, verify_consistency
from ledger.log.note import Checkpoint, Verifier, split_note, verify_note
from ledger.sharing import assess
from tests.browser.conftest import run_module
from tests.test_bundle_vectors import load

VECTORS = Path(__file__).parents[1] / "vectors"
TERMS = ("locked_members", "aid_fen", "fee_fen", "need_fen", "uncapped_share_fen", "cap_applied", "share_fen",
         "subsidy_fen", "funded_aid_fen", "funded_fee_fen", "surplus_out_fen")


def test_canonical_json_matches_every_rfc_8785_vector(page: Page) -> None:
    cases = {path.name: [path.read_text(), (VECTORS / "rfc8785" / "output" / path.name).read_text()]
             for path in sorted((VECTORS / "rfc8785" / "input").glob("*.json"))}
    found = run_module(page, """
        const { canonicalize } = await modules("jcs");
        const out = {};
        for (const [name, [input]] of Object.entries(argument)) out[name] = canonicalize(JSON.parse(input));
        return out;""", cases)
    assert found == {name: output for name, (_, output) in cases.items()}


def test_rfc_9162_proofs_verify_exactly_when_the_published_vectors_say(page: Page) -> None:
    cases = [json.loads(p.read_text()) | {"kind": p.parent.parent.name, "file": str(p)}
             for p in sorted((VECTORS / "rfc9162-proofs").glob("*/*/*.json"))]
    assert len(cases) > 20
    found = run_module(page, """
        const { verifyInclusion, verifyConsistency } = await modules("merkle");
        const { base64Decode } = await modules("bytes");
        const b = (v) => base64Decode(v ?? "");
        const results = [];
        for (const c of argument) {
          try {
            if (c.kind === "inclusion") {
              await verifyInclusion(c.leafIdx, c.treeSize, b(c.leafHash), (c.proof ?? []).map(b), b(c.root));
            } else {
              await verifyConsistency(c.size1, c.size2, b(c.root1), b(c.root2), (c.proof ?? []).map(b));
            }
            results.push(false);
          } catch (error) { results.push(error.name === "Error" ? true : `${error.name}: ${error.message}`); }
        }
        return results;""", cases)
    assert found == [_python_refuses(c) for c in cases]
    assert sum(found) > 10 and not all(found)


def _python_refuses(case: dict[str, Any]) -> bool:
    """Whether ledger.log.merkle refuses a published case (stricter than the vectors on sizes and hash lengths)."""
    from ledger.log.merkle import verify_inclusion

    def b(value: str | None) -> bytes:
        return base64.b64decode(value or "")

    try:
        if case["kind"] == "inclusion":
            verify_inclusion(case["leafIdx"], case["treeSize"], b(case["leafHash"]),
                             [b(p) for p in case["proof"] or []], b(case["root"]))
        else:
            verify_consistency(case["size1"], case["size2"], b(case["root1"]), b(case["root2"]),
                               [b(p) for p in case["proof"] or []])
    except ProofError:
        return True
    return False


def test_every_inclusion_and_consistency_proof_of_small_trees_verifies_and_a_flipped_bit_fails(page: Page) -> None:
    hashes = [leaf_hash(f"entry {i}".encode()) for i in range(33)]
    inclusion = [[i, n, *_b64([hashes[i], *inclusion_proof(i, hashes[:n]),
                               _root(hashes[:n])])] for n in range(1, 34) for i in range(n)]
    consistency = [[m, n, *_b64([_root(hashes[:m]), _root(hashes[:n]), *consistency_proof(m, hashes[:n])])]
                   for n in range(1, 34) for m in range(1, n + 1)]
    found = run_module(page, """
        const { verifyInclusion, verifyConsistency } = await modules("merkle");
        const { base64Decode } = await modules("bytes");
        const flip = (h) => { const c = Uint8Array.from(h); c[7] ^= 1; return c; };
        const outcome = async (check) => { try { await check(); return true; } catch { return false; } };
        const good = [], bad = [];
        for (const [i, n, leaf, ...rest] of argument.inclusion) {
          const [proof, root] = [rest.slice(0, -1).map(base64Decode), base64Decode(rest[rest.length - 1])];
          good.push(await outcome(() => verifyInclusion(i, n, base64Decode(leaf), proof, root)));
          for (let k = 0; k < proof.length; k++) {
            const changed = proof.map((h, j) => (j === k ? flip(h) : h));
            bad.push(await outcome(() => verifyInclusion(i, n, base64Decode(leaf), changed, root)));
          }
        }
        for (const [m, n, oldRoot, newRoot, ...proof] of argument.consistency) {
          const hashes = proof.map(base64Decode);
          good.push(await outcome(() => verifyConsistency(m, n, base64Decode(oldRoot), base64Decode(newRoot), hashes)));
          for (let k = 0; k < hashes.length; k++) {
            const changed = hashes.map((h, j) => (j === k ? flip(h) : h));
            bad.push(await outcome(() =>
              verifyConsistency(m, n, base64Decode(oldRoot), base64Decode(newRoot), changed)));
          }
        }
        return { good: good.every(Boolean), checked: good.length, bad: bad.some(Boolean), flipped: bad.length };""",
        {"inclusion": inclusion, "consistency": consistency})
    assert found["good"] and not found["bad"]
    assert found["checked"] == len(inclusion) + len(consistency) and found["flipped"] > 1000


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(v).decode() for v in values]


def _root(hashes: list[bytes]) -> bytes:
    from ledger.log.merkle import root_from_leaf_hashes

    return root_from_leaf_hashes(hashes)


def test_signed_note_vectors_verify_and_bad_keys_are_refused(page: Page) -> None:
    vectors = {v["name"]: v for v in json.loads((VECTORS / "signed-note.json").read_text())["vectors"]}
    found = run_module(page, """
        const { parseVerifier, verifyNote } = await modules("note");
        const texts = [];
        for (const v of argument.good) texts.push(await verifyNote(v.signed_note, await parseVerifier(v.verifier_key)));
        const refused = [];
        for (const key of argument.bad) {
          try { await parseVerifier(key); refused.push(false); } catch (error) { refused.push(error.name); }
        }
        const tampered = argument.good[0].signed_note.replace("cryptography", "Cryptography");
        let forged = "accepted";
        const key = await parseVerifier(argument.good[0].verifier_key);
        try { await verifyNote(tampered, key); } catch { forged = "refused"; }
        return { texts, refused, forged };""",
        {"good": [vectors["go-sumdb-note-sign"], vectors["c2sp-signed-note-example"]],
         "bad": vectors["go-sumdb-note-bad-keys"]["bad_verifier_keys"]})
    assert found["texts"] == [split_note(v["signed_note"])[0] for v in (vectors["go-sumdb-note-sign"],
                                                                         vectors["c2sp-signed-note-example"])]
    assert found["refused"] == ["Error"] * len(vectors["go-sumdb-note-bad-keys"]["bad_verifier_keys"])
    assert found["forged"] == "refused"


SMALL_ORDER_Y = [0, 1, 2**255 - 20, 2707385501144840649318225287225658788936804267575313519463743609750303402022,
                 2**255 - 19 - 2707385501144840649318225287225658788936804267575313519463743609750303402022]


def test_the_small_order_points_refused_are_those_libsodium_refuses() -> None:
    for y in SMALL_ORDER_Y:
        for sign in (0, 1):
            encoded = (y | (sign << 255)).to_bytes(32, "little")
            if y == 0 and sign:  # x = ±sqrt(-1): both signs are points
                encoded = (y | (1 << 255)).to_bytes(32, "little")
            assert not nacl.bindings.crypto_core_ed25519_is_valid_point(encoded)
    assert nacl.bindings.crypto_core_ed25519_is_valid_point(SigningKey.generate("k", "member").public_raw)


@pytest.mark.parametrize("backend", ["webcrypto", "noble"])
def test_ed25519_accepts_and_refuses_what_libsodium_does_on_both_backends(page: Page, backend: str) -> None:
    key = SigningKey.generate("k", "member")
    message = b"mutual-ledger/event/v1\n" + hashlib.sha256(b"event").digest()
    signature = nacl.bindings.crypto_sign(message, key.secret_key)[:64]
    group_order = 2**252 + 27742317777372353535851937790883648493
    malleated = signature[:32] + (int.from_bytes(signature[32:], "little") + group_order).to_bytes(32, "little")
    identity = (1).to_bytes(32, "little")
    order_eight = SMALL_ORDER_Y[3].to_bytes(32, "little")
    cases = [(key.public_raw, signature, message), (key.public_raw, malleated, message),
             (identity, identity + bytes(32), message), (order_eight, order_eight + bytes(32), message),
             (key.public_raw, signature, message + b"x"), (key.public_raw[:31], signature, message),
             ((2**255 - 19 + 1).to_bytes(32, "little"), signature, message)]
    found = run_module(page, """
        const ed25519 = await modules("ed25519");
        const { base64Decode } = await modules("bytes");
        ed25519.useBackend(argument.backend);
        const out = [];
        for (const [k, s, m] of argument.cases) {
          out.push(await ed25519.ed25519Verify(base64Decode(k), base64Decode(s), base64Decode(m)));
        }
        return { out, used: { ...ed25519.used } };""",
        {"backend": backend, "cases": [_b64(list(case)) for case in cases]})
    assert found["out"] == [ed25519_verify(*case) for case in cases] == [True] + [False] * (len(cases) - 1)
    assert found["used"][backend] >= 1


def sharing_inputs(count: int) -> list[tuple[Any, ...]]:
    """Periods drawn from a fixed seed: edge values (nobody locked, no cases, surplus beyond the need, caps at 0)
    and ordinary ones, on both excess policies."""
    draw = random.Random(9421)
    inputs: list[tuple[Any, ...]] = [(0, [], 800, 0, 10, 18_800, "operator_pays"), (5, [], 800, 100, 10, 0, "pro_rata"),
                                     (3, [30_000_000], 800, 40_000_000, 300, 0, "pro_rata")]
    for _ in range(count):
        inputs.append((draw.choice([0, 1, 2, 7, 1_000, 1_000_000]), [draw.randint(0, 40_000_000) for _ in range(
            draw.randint(0, 4))], draw.randint(0, 10_000), draw.randint(-5_000_000, 5_000_000), draw.randint(0, 400),
            draw.randint(0, 20_000), draw.choice(["operator_pays", "pro_rata"])))
    return inputs


def test_the_browser_computes_every_term_of_the_sharing_formula_as_python_does(page: Page) -> None:
    inputs = sharing_inputs(500)
    found = run_module(page, """
        const { assess } = await modules("sharing");
        return argument.map(([locked, amounts, fee, surplus, perCase, annual, policy]) => {
          const a = assess(locked, amounts.map((x, i) => [`c${i}`, x]), fee, surplus, perCase, annual, policy);
          return Object.fromEntries(Object.entries(a).map(([k, v]) =>
            [k, Array.isArray(v) ? v.map(String) : String(v)]));
        });""", [list(i) for i in inputs])
    for given_input, browser in zip(inputs, found, strict=True):
        locked, amounts, fee, surplus, per_case, annual, policy = given_input
        python = assess(locked, [(f"c{i}", a) for i, a in enumerate(amounts)], fee, surplus, per_case, annual, policy)
        assert {t: browser[t] for t in TERMS} == {t: str(getattr(python, t)) for t in TERMS}
        assert browser["funded"] == [str(c.funded_fen) for c in python.cases]


def test_a_remembered_checkpoint_accepts_a_consistent_one_and_keeps_evidence_of_a_fork(page: Page) -> None:
    consistent, forked = load("upgrade-consistent"), load("upgrade-forked")
    found = run_module(page, """
        const { checkNewCheckpoint, evidenceFile } = await modules("consistency");
        const { parseVerifier } = await modules("note");
        const { base64Decode } = await modules("bytes");
        const { rememberCheckpoint, rememberedCheckpoint } = await modules("keystore");
        const logKey = await parseVerifier(argument.logKey);
        const [old, good, fork] = argument.notes;
        const first = await checkNewCheckpoint(null, old, [], logKey);
        await rememberCheckpoint("mutual-ledger.test/vectors", old);
        const remembered = await rememberedCheckpoint("mutual-ledger.test/vectors");
        const next = await checkNewCheckpoint(remembered, good, argument.goodProof.map(base64Decode), logKey);
        const forkProof = argument.forkProof.map(base64Decode);
        const forked = await checkNewCheckpoint(remembered, fork, forkProof, logKey, "phone");
        const older = await checkNewCheckpoint(good, old, [], logKey);
        const unsigned = await checkNewCheckpoint(old, fork.replace("\\n\\n", "\\n\\n— x AAAA\\n").split("\\n\\n")[0]
          + "\\n\\n— x AAAA\\n", [], logKey);
        return { statuses: [first.status, next.status, forked.status, older.status, unsigned.status],
                 evidence: forked.evidence, file: await evidenceFile(forked.evidence).text() };""",
        {"logKey": consistent["log_key"], "notes": [consistent["bundle"]["checkpoint"],
                                                   consistent["bundle"]["upgrade"]["checkpoint"],
                                                   forked["bundle"]["upgrade"]["checkpoint"]],
         "goodProof": consistent["bundle"]["upgrade"]["consistency"],
         "forkProof": forked["bundle"]["upgrade"]["consistency"]})
    assert found["statuses"] == ["first", "consistent", "inconsistent", "refused", "refused"]
    evidence = found["evidence"]
    assert json.loads(found["file"]) == evidence
    assert evidence["kind"] == "inconsistent checkpoints" and evidence["observer"] == "phone"
    log_key = Verifier.parse(consistent["log_key"])
    older = Checkpoint.parse(verify_note(evidence["older_checkpoint"], log_key))
    newer = Checkpoint.parse(verify_note(evidence["newer_checkpoint"], log_key))
    with pytest.raises(ProofError):  # the evidence convinces the Python tools too: both signed, no consistency
        verify_consistency(older.size, newer.size, older.root, newer.root,
                           [base64.b64decode(p) for p in evidence["consistency_proof"]])
