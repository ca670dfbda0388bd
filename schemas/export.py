"""Export the JSON Schema of every event body, the envelope and every command into `schemas/json/`.

Outsiders validate events with these files and no code of ours; a test holds the committed files equal to a fresh
export. Run `python -m schemas.export` after changing a model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from schemas.commands import COMMANDS
from schemas.events import EVENT_BODIES

JSON_DIR = Path(__file__).parent / "json"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Signed event envelope (v1)",
    "description": "Canonical bytes: RFC 8785 of the envelope without sig; event_hash = SHA-256 of them; "
                   "sig = Ed25519(key, 'mutual-ledger/event/v1\\n' + event_hash), base64.",
    "type": "object",
    "additionalProperties": False,
    "required": ["v", "stream", "seq", "type", "schema", "at", "actor", "prev", "body", "sig"],
    "properties": {
        "v": {"const": 1},
        "stream": {"type": "string", "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"},
        "seq": {"type": "integer", "minimum": 1},
        "type": {"type": "string", "pattern": "^[a-z_]+\\.[a-z_]+$"},
        "schema": {"type": "integer", "minimum": 1},
        "at": {"type": "string", "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}\\.\\d{6}Z$"},
        "actor": {
            "type": "object", "additionalProperties": False, "required": ["role", "key"],
            "properties": {
                "role": {"enum": ["operator", "custodian", "investigator", "juror", "member", "regulator"]},
                "key": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
                "on_behalf_of": {"type": "string"},
            },
        },
        "prev": {"anyOf": [{"type": "null"}, {"type": "string", "pattern": "^[0-9a-f]{64}$"}]},
        "body": {"type": "object", "description": "validated by events/<type>.v<schema>.json"},
        "sig": {"type": "string"},
    },
}


def documents() -> dict[str, dict[str, Any]]:
    """Every schema document by its path under schemas/json/."""
    import ledger.handlers  # noqa: F401  (imports every command module)

    docs: dict[str, dict[str, Any]] = {"envelope.v1.json": ENVELOPE_SCHEMA}
    for (event_type, version), model in sorted(EVENT_BODIES.items()):
        docs[f"events/{event_type}.v{version}.json"] = model.model_json_schema(mode="validation")
    for name, command in sorted(COMMANDS.items()):
        docs[f"commands/{name}.v{command.SCHEMA_VERSION}.json"] = command.model_json_schema(mode="validation")
    return docs


def render(document: dict[str, Any]) -> str:
    """The committed text of a schema document."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    """Write every document, removing stale ones."""
    wanted = documents()
    for stale in JSON_DIR.rglob("*.json"):
        if str(stale.relative_to(JSON_DIR)) not in wanted:
            stale.unlink()
    for relative, document in wanted.items():
        path = JSON_DIR / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(document))
    print(f"wrote {len(wanted)} schema files to {JSON_DIR}", file=sys.stderr)


if __name__ == "__main__":
    main()
