"""Write the fixed corpus of proof bundles in `tests/vectors/bundles/` that the Python and browser verifiers share.

Run once, from the repository root: `python -m tests.bundle_vectors`. The history is built through the application
on a simulated clock with keys made from fixed seeds, a fixed vault key (so the keyed ids are fixed), salts drawn
from a fixed sequence and fixed command ids, so every run writes the same bytes. Files named `legacy-*` are kept:
bundles written by older code (v1 events, no revealed records) that must still verify.

The good bundle is the one `ledger.log.bundle.build_bundle` makes for a member who holds their own key, filed a
claim (sealed: the bundle carries the claimant record that opens it) and paid into two periods, cosigned by the
custodian and the regulator. Each other vector changes one thing
and names the step that must fail first and what it is about. Some changes are made by a dishonest log: it holds
every key, rewrites an event, re-signs it and the rest of its stream, and signs and gets cosigned a checkpoint over
the rewritten log — so every check passes but the one aimed at. Each file holds the bundle, the log's and the
witnesses' verifier keys, and `expected`: `{"ok": true}` or `{"ok": false, "step": ..., "subject": ...}`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.bundle import check_bundle
from ledger import vault
from ledger.aggregates.sharing_period import plan_midnight
from ledger.application import SimulatedClock, member_key_name
from ledger.bootstrap import Ledger, bootstrap
from ledger.canonical import canonical_bytes
from ledger.config import Settings
from ledger.envelope import event_hash_of
from ledger.keys import KeyDirectory, SigningKey
from ledger.log.bundle import build_bundle, upgrade_bundle
from ledger.log.checkpoints import CheckpointLog
from ledger.log.merkle import consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes
from ledger.log.note import COSIGNATURE_V1, Checkpoint, Signer, Verifier, cosign_line, sign_note, split_note
from ledger.reveal import claimant_records
from ledger.service import anchor, initialize, party_key_directories, register
from schemas.commands.claim import DecideClaim, FileClaim, InvestigateClaim, NoticeClaim, PayClaim
from schemas.commands.keys import RegisterKey
from schemas.commands.membership import Deposit, Join
from schemas.commands.period import AssessPeriod, CollectPeriod, OpenPeriod, SettlePeriod
from schemas.commands.plan import CreatePlan
from schemas.events import PlanRules
from sim.fixtures import START, commitment
from tests.support import prepaid_rules, signer_of

VECTORS = Path(__file__).parent / "vectors" / "bundles"
ORIGIN = "mutual-ledger.test/vectors"
WITNESSES = ("custodian", "regulator")
COSIGNED_AT = 1_790_000_000
"""The cosignatures' timestamp (seconds since the epoch): fixed, so that the files do not change between runs."""


def fixed_key(name: str, role: str, member: str | None = None) -> SigningKey:
    """A key whose seed is SHA-256 of its name: the same key in every run."""
    seed = hashlib.sha256(f"mutual-ledger test vectors: {name}".encode()).digest()
    return SigningKey(name, role, Ed25519PrivateKey.from_private_bytes(seed), member)


@dataclass
class History:
    """The application's log, its keys, and the member whose bundle is made."""

    app: Ledger
    checkpoints: CheckpointLog
    member: str
    keys: dict[str, SigningKey]
    """Every key by key id (a dishonest log re-signs with them)."""

    def now(self) -> datetime:
        """The simulated instant."""
        return self.app.clock.now()

    def entries(self) -> list[bytes]:
        """Every entry of the log, in order."""
        return [entry for _, entry in self.app.entries()]

    def witness(self, name: str) -> Signer:
        """A witness's cosigning key under its name."""
        key = next(k for k in self.keys.values() if k.name == name)
        return Signer(f"{name}.{ORIGIN}".replace("/", "."), key.private_key)

    def cosigned(self, note: str) -> str:
        """The note with the custodian's and the regulator's cosignatures."""
        text = split_note(note)[0]
        return note + "".join(cosign_line(text, self.witness(name), COSIGNED_AT) for name in WITNESSES)

    def verifier_keys(self) -> dict[str, Any]:
        """The log's and the witnesses' verifier keys as a member is given them."""
        return {"log_key": self.checkpoints.verifier.encode(),
                "witness_keys": [self.witness(name).verifier(COSIGNATURE_V1).encode() for name in WITNESSES]}


def _at_plan_day(app: Ledger, day: str, rules: PlanRules, hours: int = 1) -> None:
    clock = app.clock
    assert isinstance(clock, SimulatedClock)
    clock.set(plan_midnight(date.fromisoformat(day), rules) + timedelta(hours=hours))


def _advance(app: Ledger, days: int) -> None:
    clock = app.clock
    assert isinstance(clock, SimulatedClock)
    clock.set(clock.current + timedelta(days=days))


def _join(app: Ledger, plan: str, name: str, age: int) -> str:
    return str(app.execute(Join(command_id=f"join-{name}", plan=plan, age_years=age, sex="f", province="zj",
                                consent_commitment=commitment(f"consent {name}"),
                                health_declaration_commitment=commitment(f"health {name}")))["member"])


def _approved_claim(app: Ledger, member: str, name: str, age: int) -> str:
    today = app.clock.now().date()
    claim = str(app.execute(FileClaim(
        command_id=f"file-{name}", member=member, category="illness", condition="breast_cancer",
        diagnosed_on=(today - timedelta(days=1)).isoformat(), age_at_diagnosis=age,
        evidence_commitment=commitment(f"evidence {name}")))["claim"])
    app.execute(InvestigateClaim(command_id=f"investigate-{name}", claim=claim,
                                 report_commitment=commitment(f"report {name}"), opinion="approve",
                                 recommended_amount_fen=30_000_000, reason=None))
    app.execute(NoticeClaim(command_id=f"notice-{name}", claim=claim))
    _advance(app, 3)
    app.execute(DecideClaim(command_id=f"decide-{name}", claim=claim))
    return claim


def _period(app: Ledger, plan: str, number: int, rules: PlanRules) -> str:
    opened = app.execute(OpenPeriod(command_id=f"open-{number}", plan=plan, number=number))
    _at_plan_day(app, str(opened["notice_on"]), rules)
    app.execute(AssessPeriod(command_id=f"assess-{number}", period=str(opened["period"])))
    _at_plan_day(app, str(opened["collection_on"]), rules, hours=9)
    app.execute(CollectPeriod(command_id=f"collect-{number}", period=str(opened["period"])))
    return str(opened["period"])


def fixed_salts() -> Callable[[], bytes]:
    """Salts from a fixed sequence (SHA-256 of a counter) instead of random ones: the vectors' commitments and
    revealed records are the same in every run. For writing vectors only; the ledger draws salts at random."""
    counter = itertools.count()
    return lambda: hashlib.sha256(f"mutual-ledger test vectors: salt {next(counter)}".encode()).digest()


def build_history(directory: Path) -> History:
    """A prepaid plan with four members; the first holds their own key, files a claim, and pays into two periods
    (the second charges each member what the annual cap leaves, less than the share)."""
    settings = Settings(data_dir=directory / "operator", database_url=None, log_origin=ORIGIN, signing_workers=0)
    parties = party_key_directories(directory)
    own = {"operator-root": "operator", "operator": "operator", "log": "log"}
    for name, role in own.items():
        (directory / "operator" / "keys").mkdir(parents=True, exist_ok=True)
        KeyDirectory(directory / "operator" / "keys").save(fixed_key(name, role))
    fixed_vault_key = hashlib.sha256(b"mutual-ledger test vectors: vault key").digest()
    (directory / "operator" / "keys" / vault.VAULT_KEY_FILE).write_text(
        base64.b64encode(fixed_vault_key).decode() + "\n")
    vault.new_salt = fixed_salts()  # type: ignore[attr-defined]  # this process writes vectors only
    app = bootstrap(settings, clock=SimulatedClock(START), key_directories=parties, create=True)
    initialize(app)
    for role in ("custodian", "investigator", "regulator"):
        key = fixed_key(role, role)
        app.signers.party(role).save(key)
        if role in WITNESSES:
            app.app.anchors = anchor(settings.data_dir, role, key.public_facts())
        register(app, key.public_facts())
    rules = prepaid_rules(notice_days=3, annual_cap_fen=500)  # the second period is capped per member
    plan = str(app.execute(CreatePlan(command_id="plan", name="Prepaid plan", kind="cancer", rules=rules))["plan"])
    members = [_join(app, plan, name, age) for name, age in (("m", 30), ("a", 34), ("b", 41), ("c", 29))]
    member = members[0]
    own_key = fixed_key(member_key_name("member", member), "member", member)
    app.signers.party("members").save(own_key)
    app.execute(RegisterKey(command_id="key-m", role="member", public_key=own_key.public_base64, member=member))
    for number, (who, amount) in enumerate(zip(members, (10_000, 10_000, 10_000, 5_000), strict=True)):
        app.execute(Deposit(command_id=f"deposit-{number}", member=who, amount_fen=amount, reference=f"bank-{number}"))
    _advance(app, 100)
    claim = _approved_claim(app, member, "m", 30)
    first = _period(app, plan, 1, rules)
    app.execute(SettlePeriod(command_id="settle-1", period=first))  # a case is paid once its period settles
    app.execute(PayClaim(command_id="pay-m", claim=claim, reference="aid-m"))
    app.execute(Deposit(command_id="deposit-again", member=member, amount_fen=2_000, reference="bank-again"))
    _approved_claim(app, members[1], "a", 34)
    _period(app, plan, 2, rules)
    checkpoints = app.checkpoints
    keys = {key.key_id: key for key in (app.signers.load(name) for name in app.signers.names())}
    return History(app, checkpoints, member, keys)


# -- a dishonest log ------------------------------------------------------------------------------------------


def rewrite(history: History, entries: list[bytes], index: int, change: Callable[[dict[str, Any]], None],
            sign_with: SigningKey | None = None) -> list[bytes]:
    """The log with entry `index` changed and re-signed (by `sign_with`, else its own signer), and the rest of its
    stream re-linked and re-signed, as a log holding every key would do it."""
    rewritten = list(entries)
    envelope = json.loads(rewritten[index])
    change(envelope)
    rewritten[index] = _signed(envelope, sign_with or history.keys[envelope["actor"]["key"]])
    stream, previous = envelope["stream"], _event_hash(envelope)
    for later in range(index + 1, len(rewritten)):
        following = json.loads(rewritten[later])
        if following["stream"] == stream:
            following["prev"] = previous
            rewritten[later] = _signed(following, history.keys[following["actor"]["key"]])
            previous = _event_hash(following)
    return rewritten


def _event_hash(envelope: dict[str, Any]) -> str:
    return event_hash_of(canonical_bytes({k: v for k, v in envelope.items() if k != "sig"})).hex()


def _signed(envelope: dict[str, Any], key: SigningKey) -> bytes:
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    envelope["sig"] = key.sign(event_hash_of(canonical_bytes(unsigned)))
    return canonical_bytes(envelope)


def reprove(history: History, bundle: dict[str, Any], entries: list[bytes]) -> dict[str, Any]:
    """The bundle's events taken from `entries`, with inclusion proofs into a checkpoint over them that the log
    signs and the witnesses cosign."""
    hashes = [leaf_hash(entry) for entry in entries]
    text = Checkpoint(ORIGIN, len(entries), root_from_leaf_hashes(hashes)).text()
    changed = copy.deepcopy(bundle)
    changed["checkpoint"] = history.cosigned(sign_note(text, signer_of(history.checkpoints)))
    for item in changed["events"]:
        index = item["index"]
        item["entry"] = entries[index].decode()
        item["proof"] = _b64(inclusion_proof(index, hashes))
    return changed


def _b64(values: list[bytes]) -> list[str]:
    return [base64.b64encode(value).decode() for value in values]


def _entry_index(bundle: dict[str, Any], kind: str, stream: str | None = None, nth: int = 0) -> int:
    found: list[int] = [item["index"] for item in bundle["events"] if json.loads(item["entry"])["type"] == kind
             and (stream is None or json.loads(item["entry"])["stream"] == stream)]
    return found[nth]


def _subject(bundle: dict[str, Any], index: int) -> dict[str, Any]:
    envelope = json.loads(next(item["entry"] for item in bundle["events"] if item["index"] == index))
    return {"index": index, "stream": envelope["stream"], "seq": envelope["seq"], "type": envelope["type"]}


# -- the vectors ----------------------------------------------------------------------------------------------


Vector = tuple[str, str, dict[str, Any], dict[str, Any]]
"""(name, description, bundle, expected)."""


def _failing(step: str, subject: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ok": False, "step": step, "subject": subject or {}}


def _flip_base64(value: str, position: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[position] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _flip_signature_line(note: str, line_number: int, position: int) -> str:
    text, lines = split_note(note)
    dash, name, blob = lines[line_number].rstrip("\n").split(" ")
    lines[line_number] = f"{dash} {name} {_flip_base64(blob, position)}\n"
    return text + "\n" + "".join(lines)


def tampered_vectors(history: History, good: dict[str, Any]) -> list[Vector]:
    """Bundles changed by whoever handed them over: the checks that catch them use nothing but the bundle."""
    member = history.member
    deposit = _entry_index(good, "member.deposit_received", member)
    registration = _entry_index(good, "key.registered", nth=1)
    vectors: list[Vector] = []

    def add(name: str, description: str, change: Callable[[dict[str, Any]], None], expected: dict[str, Any]) -> None:
        bundle = copy.deepcopy(good)
        change(bundle)
        vectors.append((name, description, bundle, expected))

    def entry_byte(b: dict[str, Any]) -> None:
        item = next(i for i in b["events"] if i["index"] == deposit)
        item["entry"] = item["entry"].replace('"amount_fen":10000', '"amount_fen":90000', 1)
        assert item["entry"] != next(i for i in good["events"] if i["index"] == deposit)["entry"]

    add("entry-byte-changed", "one byte of the member's deposit changed (10000 fen became 90000)", entry_byte,
        _failing("event.inclusion", _subject(good, deposit)))
    add("inclusion-proof-hash-changed", "one bit of one hash of the deposit's inclusion proof flipped",
        lambda b: next(i for i in b["events"] if i["index"] == deposit)["proof"].__setitem__(
            0, _flip_base64(next(i for i in b["events"] if i["index"] == deposit)["proof"][0], 3)),
        _failing("event.inclusion", _subject(good, deposit)))
    add("inclusion-proof-wrong-index", "the deposit's entry is claimed at the next log index",
        lambda b: _move(b, deposit), _failing("event.inclusion", {**_subject(good, deposit), "index": deposit + 1}))
    add("checkpoint-signature-changed", "one bit of the log's signature on the checkpoint flipped",
        lambda b: b.__setitem__("checkpoint", _flip_signature_line(b["checkpoint"], 0, 10)),
        _failing("checkpoint.signature"))
    add("checkpoint-size-changed", "the checkpoint's tree size changed (its signature no longer covers it)",
        lambda b: b.__setitem__("checkpoint", _resize(b["checkpoint"])), _failing("checkpoint.signature"))
    regulator = history.witness("regulator").name
    add("cosignature-missing", "the regulator's cosignature line removed",
        lambda b: b.__setitem__("checkpoint", _drop_line(b["checkpoint"], regulator)),
        _failing("checkpoint.cosignature", {"witness": regulator}))
    add("cosignature-forged", "the regulator's cosignature replaced by one made with another key under its name",
        lambda b: b.__setitem__("checkpoint", _forge_cosignature(history, b["checkpoint"], regulator)),
        _failing("checkpoint.cosignature", {"witness": regulator}))
    add("member-event-missing", "the member's join left out of the bundle",
        lambda b: b["events"].remove(next(i for i in b["events"] if i["index"] == _entry_index(
            good, "member.joined", member))),
        _failing("chain.link", _subject(good, _next_in_stream(good, member, 1))))
    add("root-key-missing", "entry 0, the root key registering itself, left out",
        lambda b: b["events"].remove(next(i for i in b["events"] if i["index"] == 0)),
        _failing("keyring.root", {"index": 0, "stream": None, "seq": None, "type": None}))
    custodian_registration = _registration_of(good, history, "custodian")
    add("key-not-registered", "the custodian key's registration left out: the deposits it signed have no key",
        lambda b: b["events"].remove(next(i for i in b["events"] if i["index"] == custodian_registration)),
        _failing("event.key", _subject(good, _first_signed_by(good, history, "custodian"))))
    add("roll-proof-hash-changed", "one bit of one hash of the first roll proof flipped",
        lambda b: b["rolls"][0]["proof"].__setitem__(0, _flip_base64(b["rolls"][0]["proof"][0], 0)),
        _failing("roll.inclusion", {"roll": 0, "period": good["rolls"][0]["period"]}))
    add("roll-wrong-leaf-index", "the member's place in the first roll moved by one",
        lambda b: b["rolls"][0].__setitem__("leaf_index", (b["rolls"][0]["leaf_index"] + 1) % b["rolls"][0][
            "roll_size"]), _failing("roll.inclusion", {"roll": 0, "period": good["rolls"][0]["period"]}))
    add("roll-amount-changed", "the first roll claims one fen less than the period signed",
        lambda b: b["rolls"][0].__setitem__("amount", b["rolls"][0]["amount"] - 1),
        _failing("roll.period", {"roll": 0, "period": good["rolls"][0]["period"]}))
    add("roll-period-missing", "the first roll's period.assessed event left out",
        lambda b: b["events"].remove(next(i for i in b["events"] if i["index"] == b["rolls"][0]["period_index"])),
        _failing("roll.period", {"roll": 0, "period": good["rolls"][0]["period"]}))
    add("other-member", "the bundle claims to be another member's (one locked in the same rolls): the claimant "
        "record of its sealed claim names the member it was made for",
        lambda b: b.__setitem__("member", _other_member(history)), _failing("claim.claimant", _subject(
            good, _entry_index(good, "claim.filed"))))
    claim_stream = json.loads(next(i["entry"] for i in good["events"] if i["index"] == _entry_index(
        good, "claim.filed")))["stream"]

    def other_without_claim(b: dict[str, Any]) -> None:
        b["member"] = _other_member(history)
        b["events"] = [i for i in b["events"] if json.loads(i["entry"])["stream"] != claim_stream]
        b["revealed"] = []

    add("other-member-without-claim", "the bundle, its sealed claim and claimant record left out, claims to be "
        "another member's (one locked in the same rolls)", other_without_claim,
        _failing("chain.join", {"stream": _other_member(history)}))
    add("wrong-format", "an unknown format tag", lambda b: b.__setitem__("format", "mutual-ledger/proof-bundle/v0"),
        _failing("bundle.format"))
    filed = _entry_index(good, "claim.filed")

    def claimant_value(b: dict[str, Any]) -> None:
        b["revealed"][0]["value"] = _other_member(history)

    def claimant_salt(b: dict[str, Any]) -> None:
        salt = bytearray(bytes.fromhex(b["revealed"][0]["salt"]))
        salt[0] ^= 0x01
        b["revealed"][0]["salt"] = salt.hex()

    add("revealed-claimant-changed", "the revealed claimant of the member's sealed claim changed to another member",
        claimant_value, _failing("claim.claimant", _subject(good, filed)))
    add("revealed-salt-changed", "one bit of the salt of the member's claimant record flipped: it no longer opens "
        "the claim's member_sealed", claimant_salt, _failing("claim.claimant", _subject(good, filed)))
    add("revealed-claimant-missing", "the claimant record left out: the sealed claim is not shown to be the "
        "member's", lambda b: b.__setitem__("revealed", []), _failing("claim.claimant", _subject(good, filed)))
    add("registration-entry-changed", "one byte of a key registration changed",
        lambda b: _change_entry(b, registration, '"role":"operator"', '"role":"custodian"'),
        _failing("event.inclusion", _subject(good, registration)))
    return vectors


def _move(bundle: dict[str, Any], index: int) -> None:
    item = next(i for i in bundle["events"] if i["index"] == index)
    bundle["events"] = [i for i in bundle["events"] if i["index"] != index + 1]
    item["index"] = index + 1


def _change_entry(bundle: dict[str, Any], index: int, old: str, new: str) -> None:
    item = next(i for i in bundle["events"] if i["index"] == index)
    assert old in item["entry"]
    item["entry"] = item["entry"].replace(old, new, 1)


def _resize(note: str) -> str:
    text, lines = split_note(note)
    origin, size, rest = text.split("\n", 2)
    return f"{origin}\n{int(size) - 1}\n{rest}\n" + "".join(lines)


def _drop_line(note: str, name: str) -> str:
    text, lines = split_note(note)
    return text + "\n" + "".join(line for line in lines if f" {name} " not in line)


def _forge_cosignature(history: History, note: str, name: str) -> str:
    impostor = Signer(name, fixed_key("impostor", "regulator").private_key)
    text, lines = split_note(note)
    kept = [line for line in lines if f" {name} " not in line]
    return text + "\n" + "".join(kept) + cosign_line(text, impostor, COSIGNED_AT)


def _next_in_stream(bundle: dict[str, Any], stream: str, seq: int) -> int:
    return int(next(item["index"] for item in bundle["events"] if json.loads(item["entry"])["stream"] == stream
                and json.loads(item["entry"])["seq"] == seq + 1))


def _registration_of(bundle: dict[str, Any], history: History, name: str) -> int:
    key_id = next(k for k, key in history.keys.items() if key.name == name)
    return int(next(item["index"] for item in bundle["events"] if json.loads(item["entry"])["type"] == "key.registered"
                    and json.loads(item["entry"])["body"]["key_id"] == key_id))


def _first_signed_by(bundle: dict[str, Any], history: History, name: str) -> int:
    key_id = next(k for k, key in history.keys.items() if key.name == name)
    return int(next(item["index"] for item in bundle["events"] if json.loads(item["entry"])["actor"]["key"] == key_id))


def _other_member(history: History) -> str:
    return str(next(json.loads(e)["stream"] for e in history.entries() if b'"member.joined"' in e
                    and json.loads(e)["stream"] != history.member))


def dishonest_vectors(history: History, good: dict[str, Any]) -> list[Vector]:
    """Bundles over a log the operator rewrote and signed again: every proof holds up to the check aimed at."""
    entries = history.entries()[:Checkpoint.parse(split_note(good["checkpoint"])[0]).size]
    member = history.member
    deposit = _entry_index(good, "member.deposit_received", member)
    first_period = good["rolls"][0]["period_index"]
    operator = next(key for key in history.keys.values() if key.name == "operator")
    vectors: list[Vector] = []

    def add(name: str, description: str, rewritten: list[bytes], expected: dict[str, Any],
            after: Callable[[dict[str, Any]], None] | None = None) -> None:
        bundle = reprove(history, good, rewritten)
        if after is not None:
            after(bundle)
        vectors.append((name, description, bundle, expected))

    add("event-signature-bad", "a deposit rewritten and logged with a signature that is not its signer's",
        _with_signature_flipped(entries, deposit), _failing("event.signature", _subject(good, deposit)))
    add("event-signed-by-wrong-role", "a deposit re-signed by the operator's key while it claims the custodian",
        rewrite(history, entries, deposit, lambda e: e["actor"].__setitem__("key", operator.key_id)),
        _failing("event.key", _subject(good, deposit)))
    add("chain-prev-broken", "a member event whose prev names no event of the stream, correctly signed",
        _relinked(history, entries, _next_in_stream(good, member, 2)),
        _failing("chain.link", _subject(good, _next_in_stream(good, member, 2))))

    def share_up(envelope: dict[str, Any]) -> None:
        envelope["body"]["share_fen"] += 1

    add("share-not-the-formula", "a period.assessed signed with a share one fen above what its terms give",
        rewrite(history, entries, first_period, share_up), _failing("period.share", {
            "roll": 0, "period": good["rolls"][0]["period"]}),
        after=lambda b: b["rolls"][0].__setitem__("amount", b["rolls"][0]["amount"] + 1))
    add("entry-not-canonical", "a deposit logged with a space in its JSON (not RFC 8785 canonical form)",
        _replaced(entries, deposit, entries[deposit].replace(b'"amount_fen":', b'"amount_fen": ', 1)),
        _failing("event.envelope", _subject(good, deposit)))
    registration = _registration_of(good, history, "custodian")
    add("registration-not-by-root", "the custodian key registered under the operator's key instead of the root's",
        rewrite(history, entries, registration, lambda e: e["actor"].__setitem__("key", operator.key_id)),
        _failing("keyring.registration", _subject(good, registration)))
    return vectors


def _replaced(entries: list[bytes], index: int, entry: bytes) -> list[bytes]:
    changed = list(entries)
    changed[index] = entry
    return changed


def _with_signature_flipped(entries: list[bytes], index: int) -> list[bytes]:
    envelope = json.loads(entries[index])
    envelope["sig"] = _flip_base64(envelope["sig"], 5)
    return _replaced(entries, index, canonical_bytes(envelope))


def _relinked(history: History, entries: list[bytes], index: int) -> list[bytes]:
    return rewrite(history, entries, index, lambda e: e.__setitem__("prev", hashlib.sha256(b"elsewhere").hexdigest()))


def upgrade_vectors(history: History, good: dict[str, Any]) -> list[Vector]:
    """The good bundle with a later checkpoint: consistent, and from a log that rewrote its past."""
    old_size = Checkpoint.parse(split_note(good["checkpoint"])[0]).size
    history.app.execute(Join(command_id="join-later", plan=json.loads(history.entries()[
        _entry_index(good, "member.joined", history.member)])["body"]["plan"], age_years=40, sex="m", province="gd",
        consent_commitment=commitment("consent later"), health_declaration_commitment=commitment("health later")))
    latest = history.checkpoints.publish(history.now())
    upgraded = upgrade_bundle(good, history.checkpoints)
    upgraded["upgrade"]["checkpoint"] = history.cosigned(latest.note)
    forked = rewrite(history, history.entries(), _entry_index(good, "member.deposit_received", history.member),
                     lambda e: e["body"].__setitem__("amount_fen", e["body"]["amount_fen"] + 1))
    hashes = [leaf_hash(entry) for entry in forked]
    text = Checkpoint(ORIGIN, len(forked), root_from_leaf_hashes(hashes)).text()
    fork = copy.deepcopy(good)
    fork["upgrade"] = {"checkpoint": history.cosigned(sign_note(text, signer_of(history.checkpoints))),
                       "consistency": _b64(consistency_proof(old_size, hashes))}
    return [("upgrade-consistent", "the bundle with a later cosigned checkpoint and the consistency proof to it",
             upgraded, {"ok": True}),
            ("upgrade-forked", "a later checkpoint, signed and cosigned, of a log that rewrote an entry the bundle's "
             "checkpoint covers", fork, _failing("upgrade.consistency")),
            ("upgrade-proof-shortened", "the consistency proof to the later checkpoint lost its first hash",
             {**upgraded, "upgrade": {**upgraded["upgrade"], "consistency": upgraded["upgrade"]["consistency"][1:]}},
             _failing("upgrade.consistency")),
            ("upgrade-signature-changed", "one bit of the log's signature on the later checkpoint flipped",
             {**upgraded, "upgrade": {**upgraded["upgrade"], "checkpoint": _flip_signature_line(
                 upgraded["upgrade"]["checkpoint"], 0, 20)}}, _failing("upgrade.signature")),
            ("upgrade-cosignature-missing", "the custodian's cosignature on the later checkpoint removed",
             {**upgraded, "upgrade": {**upgraded["upgrade"], "checkpoint": _drop_line(
                 upgraded["upgrade"]["checkpoint"], history.witness("custodian").name)}},
             _failing("upgrade.cosignature", {"witness": history.witness("custodian").name}))]


def generate(directory: Path) -> tuple[list[Vector], dict[str, Any]]:
    """Every vector, built from a fresh history in `directory`, and the verifier keys they are checked with."""
    history = build_history(directory)
    published = history.checkpoints.publish(history.now())
    good = build_bundle(history.checkpoints, history.member,
                        claimants=claimant_records(history.app.app, history.member))
    good["checkpoint"] = history.cosigned(published.note)
    vectors: list[Vector] = [("good", "the member's bundle as the ledger makes it, cosigned by both witnesses", good,
                              {"ok": True})]
    vectors += tampered_vectors(history, good)
    vectors += dishonest_vectors(history, good)
    vectors += upgrade_vectors(history, good)
    keys = history.verifier_keys()
    history.app.close()
    return vectors, keys


def write(vectors: list[Vector], keys: dict[str, Any], out: Path) -> None:
    """Check each vector's expectation with the Python verifier, then write it (replacing the old files)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        if not old.name.startswith("legacy-"):
            old.unlink()
    log_key = Verifier.parse(keys["log_key"])
    witness_keys = [Verifier.parse(k) for k in keys["witness_keys"]]
    for name, description, bundle, expected in vectors:
        first = check_bundle(bundle, log_key, witness_keys).first_failure
        found = {"ok": True} if first is None else {"ok": False, "step": first.step, "subject": first.subject}
        assert found == expected, f"{name}: expected {expected}, the verifier found {found} ({first})"
        document = {"description": description, **keys, "expected": expected, "bundle": bundle}
        (out / f"{name}.json").write_text(json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def main() -> None:
    """Build the history in a temporary directory and write the vectors."""
    with tempfile.TemporaryDirectory() as directory:
        vectors, keys = generate(Path(directory))
    write(vectors, keys, VECTORS)
    print(f"wrote {len(vectors)} vectors to {VECTORS}", file=sys.stderr)


if __name__ == "__main__":
    main()
