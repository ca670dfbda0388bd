"""Trust anchors: the public keys a verifier is given out of band, because the log cannot vouch for them itself.

`trust-anchors.json` maps a name to public facts:

    {"operator-root": {"key_id": "…", "role": "operator", "public_key": "<base64 raw Ed25519>"},
     "log":           {"origin": "mutual-ledger.local/log", "verifier_key": "<C2SP verifier key>"},
     "custodian":     {"key_id": "…", "role": "custodian", "public_key": "…"},
     "regulator":     {"key_id": "…", "role": "regulator", "public_key": "…"},
     "witnesses":     {"keys": ["<C2SP cosignature verifier key>", …], "threshold": 1}}

- `operator-root` is the key that registers itself in the log's first entry and alone changes the keyring;
- `log` is the checkpoint signer: the log's origin and its signed-note verifier key (it signs no event);
- `witnesses` (optional) is the witness policy: a checkpoint is trusted once it carries valid cosignatures of at
  least `threshold` of these witnesses' keys (`ledger.log.witness.WitnessPolicy`); the browser's "Verify my
  history" applies it (docs/pages.md). Without it no cosignature is required;
- every other entry is an institutional key the operator must not be able to forge — a custodian's (fund
  movements) or a regulator's (reports) — given by that party itself. A `key.registered` event for a custodian or
  regulator key that the anchors do not hold is refused by the writer and failed by the verifier (`ledger.roles`).

The operator's `init` writes the file with its own two entries; each custodian or regulator adds its key with
`mutual-ledger keys anchor` from the public key file it published, and `mutual-ledger keys anchor-witnesses KEY…
--threshold N` sets the witness policy. Verifiers use their own copy.

The **fingerprint** (`TrustAnchors.fingerprint`, `mutual-ledger keys fingerprint`) names what a browser trusts —
the `log` entry and the `witnesses` policy — as the first 32 hex digits of the SHA-256 of their RFC 8785 text. A
plan publishes it out of band (printed, as a QR code of the pages' link `…/member#anchors=<fingerprint>`), and a
member's browser pins it on a first visit (`ledger/web/static/js/pinning.js` computes the same; docs/pages.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.errors import InputError
from ledger.keys import key_id
from ledger.rules import Rule

TRUST_ANCHORS_FILE = "trust-anchors.json"
FINGERPRINT_DIGITS = 32
"""Hex digits of a fingerprint: 128 bits, which a forger would have to match (a second preimage), not collide."""
ROOT = "operator-root"
LOG = "log"
WITNESSES = "witnesses"
ANCHORED_ROLES = ("custodian", "regulator")
"""Roles whose keys verifiers take only from the anchors, never from the log alone."""


def _invalid(path: Path | str, detail: str) -> InputError:
    return InputError("trust_anchors", Rule.TRUST_ANCHORS_MUST_BE_VALID, f"{path}: {detail}")


def _public_facts(name: str, value: object, path: Path | str) -> dict[str, str]:
    """One key entry, checked: its key id must be the hash of its public key and its role one that is anchored."""
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("key_id", "role", "public_key")):
        raise _invalid(path, f"{name} must have key_id, role and public_key")
    try:
        raw = base64.b64decode(value["public_key"], validate=True)
    except binascii.Error:
        raise _invalid(path, f"{name}.public_key is not base64") from None
    if len(raw) != 32 or key_id(raw) != value["key_id"]:
        raise _invalid(path, f"{name}.key_id must be SHA-256 of its 32-byte public key")
    if name != ROOT and value["role"] not in ANCHORED_ROLES:
        raise _invalid(path, f"{name}.role must be one of {', '.join(ANCHORED_ROLES)}")
    return {"key_id": value["key_id"], "role": value["role"], "public_key": value["public_key"]}


def _witness_policy(value: object, path: Path | str) -> tuple[tuple[str, ...], int]:
    """The witness policy entry, checked: distinct cosignature verifier keys and a threshold they can meet."""
    from ledger.log.note import COSIGNATURE_V1, NoteError, Verifier

    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not isinstance(
            value.get("threshold"), int) or isinstance(value.get("threshold"), bool):
        raise _invalid(path, f"{WITNESSES} must have a list of keys and an integer threshold")
    keys = value["keys"]
    for key in keys:
        try:
            verifier = Verifier.parse(key) if isinstance(key, str) else None
        except NoteError as error:
            raise _invalid(path, f"{WITNESSES}.keys: {error}") from None
        if verifier is None or verifier.kind != COSIGNATURE_V1:
            raise _invalid(path, f"{WITNESSES}.keys must be cosignature verifier keys (type 0x04)")
    if len(set(keys)) != len(keys) or not 0 <= value["threshold"] <= len(keys):
        raise _invalid(path, f"{WITNESSES}: distinct keys and a threshold from 0 to their number")
    return tuple(keys), value["threshold"]


@dataclass
class TrustAnchors:
    """The anchors of one verifier (see the module docstring)."""

    root_key_id: str
    root_public_key: str
    witness_keys: dict[str, str] = field(default_factory=dict)
    """Key id → role of every anchored custodian and regulator key."""
    log_origin: str | None = None
    log_verifier_key: str | None = None
    """The log's checkpoint verifier key (`name+hash+base64`), when the anchors carry it."""
    witness_policy: tuple[tuple[str, ...], int] | None = None
    """The witnesses' cosignature verifier keys and how many of them must cosign a checkpoint, when given."""
    entries: dict[str, Any] = field(default_factory=dict)
    """The file's content, name by name."""

    @classmethod
    def parse(cls, data: object, path: Path | str = "trust anchors") -> TrustAnchors:
        """Anchors from the decoded file; a malformed file is an input error naming it."""
        if not isinstance(data, dict) or ROOT not in data:
            raise _invalid(path, f"must be a JSON object with an {ROOT!r} entry")
        root = _public_facts(ROOT, data[ROOT], path)
        anchors = cls(root["key_id"], root["public_key"], entries={ROOT: root})
        for name, value in data.items():
            if name == ROOT:
                continue
            if name == LOG:
                if not isinstance(value, dict) or not all(isinstance(value.get(k), str)
                                                          for k in ("origin", "verifier_key")):
                    raise _invalid(path, "log must have origin and verifier_key")
                anchors.log_origin, anchors.log_verifier_key = value["origin"], value["verifier_key"]
                anchors.entries[LOG] = {"origin": value["origin"], "verifier_key": value["verifier_key"]}
                continue
            if name == WITNESSES:
                anchors.witness_policy = _witness_policy(value, path)
                anchors.entries[WITNESSES] = {"keys": list(anchors.witness_policy[0]),
                                              "threshold": anchors.witness_policy[1]}
                continue
            facts = _public_facts(name, value, path)
            anchors.witness_keys[facts["key_id"]] = facts["role"]
            anchors.entries[name] = facts
        return anchors

    @classmethod
    def load(cls, path: Path) -> TrustAnchors:
        """Read a trust-anchors file."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError("trust_anchors", Rule.FILE_MUST_EXIST, str(path)) from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise _invalid(path, f"not readable JSON ({error})") from None
        return cls.parse(data, path)

    def anchored(self, key: str, role: str) -> bool:
        """Whether the anchors hold `key` for `role`."""
        return self.witness_keys.get(key) == role

    def with_key(self, name: str, facts: dict[str, Any]) -> TrustAnchors:
        """These anchors with one more party's key (`keys anchor`), checked like any entry."""
        if name in (ROOT, LOG, WITNESSES):
            raise InputError("name", Rule.ANCHOR_NAME_MUST_NOT_REPLACE_THE_OPERATORS, name)
        return TrustAnchors.parse({**self.entries, name: facts})

    def with_witness_policy(self, keys: list[str], threshold: int) -> TrustAnchors:
        """These anchors with the witness policy: at least `threshold` of the witnesses' `keys` must cosign."""
        return TrustAnchors.parse({**self.entries, WITNESSES: {"keys": keys, "threshold": threshold}})

    def fingerprint(self) -> str:
        """The fingerprint of what a browser trusts: the log's origin and verifier key and the witness policy (see
        the module docstring); anchors without the log's key have none."""
        if LOG not in self.entries:
            raise InputError("trust_anchors", Rule.LOG_VERIFIER_KEY_MUST_BE_KNOWN, "the anchors name no log key")
        trusted = {name: self.entries[name] for name in (LOG, WITNESSES) if name in self.entries}
        return hashlib.sha256(canonical_bytes(trusted)).hexdigest()[:FINGERPRINT_DIGITS]

    def save(self, path: Path) -> None:
        """Write the file (sorted, indented), replacing it atomically."""
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(self.entries, indent=2, sort_keys=True) + "\n")
        temporary.replace(path)
