"""Setting up a ledger and its parties: the operator's keys and the log's first events, each other party's own key,
and the operator's registration of the public keys it is given.

Each party keeps its private keys in its own directory (`keys generate --role R` there); the operator never holds
them. The operator registers a party's public key file (`keys register FILE`); a custodian's or regulator's key
must first be in the operator's trust anchors (`keys anchor FILE`), as it must be in every verifier's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.aggregates.keyring import Keyring
from ledger.anchors import LOG, ROOT, TRUST_ANCHORS_FILE, TrustAnchors
from ledger.application import LOG_KEY, OPERATOR_ROOT_KEY, ROLE_KEY_NAMES, Clock, member_key_name
from ledger.bootstrap import Ledger, bootstrap
from ledger.config import Settings
from ledger.errors import AlreadyInitializedError, InputError
from ledger.keys import KeyDirectory, SigningKey, check_key_name
from ledger.log.note import Signer
from ledger.rules import Rule
from ledger.vault import VAULT_KEY_FILE, create_vault_key
from schemas.commands.keys import RegisterKey

OPERATOR_KEYS = {OPERATOR_ROOT_KEY: "operator", ROLE_KEY_NAMES["operator"]: "operator", LOG_KEY: "log"}
"""The operator's own keys: the root key (keyring changes only), the operator key (its events), the log key
(checkpoints only; it is not in the event keyring)."""


def initialize(ledger: Ledger) -> dict[str, Any]:
    """Create the operator's keys and the log: the root key registers itself, then registers the operator key.

    Writes `trust-anchors.json` with the root key and the log's verifier key — what a verifier must be given out of
    band, since the log cannot vouch for itself — keeping any party keys already anchored there.
    """
    settings = ledger.settings
    if ledger.app.recorder.max_notification_id():
        raise AlreadyInitializedError("data_dir", Rule.DATA_DIR_MUST_NOT_HOLD_A_LEDGER_ALREADY,
                                      f"{settings.data_dir} already holds a log")
    own = ledger.signers.own
    for name, role in OPERATOR_KEYS.items():
        if not own.exists(name):
            own.save(SigningKey.generate(name, role))
    if not (settings.key_dir / VAULT_KEY_FILE).exists():
        create_vault_key(settings.key_dir, settings.key_passphrase)
    root = ledger.signers.load(OPERATOR_ROOT_KEY)
    ledger.app.save(Keyring.begin(ledger.clock.now(), root.public_raw))
    operator = ledger.signers.load(ROLE_KEY_NAMES["operator"])
    ledger.execute(RegisterKey(command_id="init-register-operator", role="operator",
                               public_key=operator.public_base64))
    log_verifier = Signer(settings.log_origin, ledger.signers.load(LOG_KEY).private_key).verifier()
    path = settings.data_dir / TRUST_ANCHORS_FILE
    kept = {name: facts for name, facts in (TrustAnchors.load(path).entries if path.exists() else {}).items()
            if name not in (ROOT, LOG)}
    anchors = TrustAnchors.parse({
        ROOT: {"key_id": root.key_id, "role": "operator", "public_key": root.public_base64},
        LOG: {"origin": settings.log_origin, "verifier_key": log_verifier.encode()},
        **kept,
    })
    anchors.save(path)
    ledger.app.anchors = anchors
    return {"root_key_id": root.key_id, "operator_key_id": operator.key_id, "log_verifier_key": log_verifier.encode(),
            "trust_anchors": str(path)}


def generate_key(directory: KeyDirectory, role: str, member: str | None = None, name: str | None = None
                 ) -> SigningKey:
    """A party's new key in its own directory: named after its role (`member-<id>` for a member's or juror's)."""
    if (role in ("member", "juror")) != (member is not None):
        raise InputError("member", Rule.MEMBER_AND_JUROR_KEYS_NAME_THEIR_MEMBER_AND_OTHERS_DO_NOT, role)
    key_name = check_key_name(name or (member_key_name(role, member) if member else ROLE_KEY_NAMES.get(role, role)))
    key = SigningKey.generate(key_name, role, member)
    directory.save(key)
    return key


def member_key(ledger: Ledger, member: str, role: str = "member") -> SigningKey:
    """Give a member (or juror) a key of their own, as a simulated party: saved in the members' key directory and
    registered in the keyring (what the benchmarks and the tests do for a member who signs)."""
    key = generate_key(ledger.signers.party("members"), role, member)
    register(ledger, dict(key.public_facts()))
    return key


def read_public_key_file(path: Path) -> dict[str, Any]:
    """A party's public key file (`keys show NAME --out FILE`): its public facts, checked for shape."""
    try:
        facts = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("file", Rule.FILE_MUST_EXIST, str(path)) from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError("file", Rule.PUBLIC_KEY_FILE_MUST_BE_VALID, f"{path}: {error}") from None
    if not (isinstance(facts, dict) and all(isinstance(facts.get(k), str) for k in ("role", "key_id", "public_key"))
            and isinstance(facts.get("member"), str | None)):
        raise InputError("file", Rule.PUBLIC_KEY_FILE_MUST_BE_VALID, f"{path}: needs role, key_id, public_key")
    return facts


def anchor(ledger_dir: Path, name: str, facts: dict[str, Any]) -> TrustAnchors:
    """Add a custodian's or regulator's public key to a directory's trust anchors (given out of band by that
    party itself); the anchors file must exist (it is written by `init`, or copied from the operator)."""
    path = ledger_dir / TRUST_ANCHORS_FILE
    if not path.exists():
        raise InputError("trust_anchors", Rule.FILE_MUST_EXIST, f"{path} (run init first, or copy the operator's)")
    anchors = TrustAnchors.load(path).with_key(check_key_name(name, "name"), {
        "key_id": facts["key_id"], "role": facts["role"], "public_key": facts["public_key"]})
    anchors.save(path)
    return anchors


def anchor_witnesses(ledger_dir: Path, keys: list[str], threshold: int) -> TrustAnchors:
    """Set the witness policy in a directory's trust anchors: a checkpoint is trusted once at least `threshold` of
    these witnesses (their cosignature verifier keys, as `witness key` prints them, given by each witness) cosigned
    it. Replaces the policy the file had; the file must exist, as for `anchor`."""
    path = ledger_dir / TRUST_ANCHORS_FILE
    if not path.exists():
        raise InputError("trust_anchors", Rule.FILE_MUST_EXIST, f"{path} (run init first, or copy the operator's)")
    anchors = TrustAnchors.load(path).with_witness_policy(keys, threshold)
    anchors.save(path)
    return anchors


def register(ledger: Ledger, facts: dict[str, Any]) -> dict[str, Any]:
    """The operator registers a party's public key in the keyring (signed by the root key)."""
    return ledger.execute(RegisterKey(command_id=f"register-{facts['key_id']}", role=facts["role"],
                                      public_key=facts["public_key"], member=facts.get("member")))


PARTIES = ("custodian", "investigator", "regulator", "members")
"""The parties a demo or test plays beside the operator, one directory each; `members` holds the keys of the
members and jurors who sign for themselves."""


def party_key_directories(base: Path, passphrase: bytes | None = None) -> list[KeyDirectory]:
    """One key directory per simulated party under `base` (`base/<party>/keys`)."""
    return [KeyDirectory(base / party / "keys", passphrase, party) for party in PARTIES]


def set_up_parties(ledger: Ledger) -> dict[str, str]:
    """Play the other parties of an initialized ledger: each generates its key in its own directory (given to the
    ledger's signers by `bootstrap(key_directories=...)`); the custodian and the regulator give theirs to the
    operator, which anchors them; the operator registers all three. Returns each party's key id."""
    registered = {}
    for party in ("custodian", "investigator", "regulator"):
        key = generate_key(ledger.signers.party(party), party)
        facts = key.public_facts()
        if party in ("custodian", "regulator"):
            ledger.app.anchors = anchor(ledger.settings.data_dir, party, facts)
        register(ledger, facts)
        registered[party] = key.key_id
    return registered


def ledger_with_parties(base: Path, clock: Clock, database_url: str | None = None, **settings: Any) -> Ledger:
    """A ledger whose process plays every party, for the demo, the tests and the benchmarks: the operator in
    `base/operator`, each other party in `base/<party>`. A new one is initialized and the parties' keys registered;
    an existing one is opened."""
    ledger = bootstrap(Settings(data_dir=base / "operator", database_url=database_url, **settings), clock=clock,
                       key_directories=party_key_directories(base, settings.get("key_passphrase")), create=True)
    if not ledger.app.recorder.max_notification_id():
        initialize(ledger)
        set_up_parties(ledger)
    return ledger
