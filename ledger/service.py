"""Setting up a ledger: keys and the log's first events."""

from __future__ import annotations

import json
from typing import Any

from ledger.aggregates.keyring import Keyring
from ledger.application import OPERATOR_ROOT_KEY, ROLE_KEY_NAMES, LedgerApplication
from ledger.keys import SigningKey
from schemas.commands.keys import RegisterKey

LOG_KEY = "log"
"""The key that signs checkpoints (a signed-note key of the operator, registered as an operator key)."""
TRUST_ANCHORS_FILE = "trust-anchors.json"


class AlreadyInitializedError(Exception):
    """The data directory already holds a log."""


def initialize(app: LedgerApplication) -> dict[str, Any]:
    """Create the keys and the log: the root key registers itself, then the institutional keys.

    Writes `trust-anchors.json`: the public keys a verifier must be given out of band (operator root,
    custodian, regulator) — the log's own `key.registered` events cannot vouch for themselves.
    """
    if app.recorder.max_notification_id():
        raise AlreadyInitializedError(f"{app.settings.data_dir} already holds a log")
    names = [OPERATOR_ROOT_KEY, *ROLE_KEY_NAMES.values(), LOG_KEY]
    for name in names:
        if not app.keys.exists(name):
            role = "operator" if name in (OPERATOR_ROOT_KEY, LOG_KEY) else ROLE_KEY_NAMES_BY_NAME[name]
            app.keys.save(SigningKey.generate(name, role))
    root = app.signing_key(OPERATOR_ROOT_KEY)
    app.save(Keyring.begin(app.clock.now(), root.public_raw))
    registered = {}
    for name in [*ROLE_KEY_NAMES.values(), LOG_KEY]:
        key = app.keys.load(name)
        app.execute(
            RegisterKey(command_id=f"init-register-{name}", role=key.role, public_key=key.public_base64),  # type: ignore[arg-type]
            sign_as=OPERATOR_ROOT_KEY,
        )
        registered[name] = key.key_id
    anchors = {
        name: {"key_id": app.keys.load(name).key_id, "role": app.keys.load(name).role,
               "public_key": app.keys.load(name).public_base64}
        for name in (OPERATOR_ROOT_KEY, "custodian", "regulator")
    }
    (app.settings.data_dir / TRUST_ANCHORS_FILE).write_text(json.dumps(anchors, indent=2, sort_keys=True) + "\n")
    return {"root_key_id": root.key_id, "keys": registered, "trust_anchors": anchors}


ROLE_KEY_NAMES_BY_NAME = {name: role for role, name in ROLE_KEY_NAMES.items()}
