"""The vendored Ed25519 library is the pinned release, byte for byte, and the browser code reaches nothing else:
every module import is relative, to a file served from the ledger's own origin."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

JS = Path(__file__).parents[2] / "ledger" / "web" / "static" / "js"
NOBLE_SHA256 = "a4f631d1876b5d9e43a86cd71194ca27b5e1451edf4ba4db9a418f40a475569a"
"""SHA-256 of `index.js` of @noble/ed25519 3.2.0, whose npm tarball has integrity
sha512-criDgRlnUA09hchYrTy/JUWPIEap5rZxQe6wDWzRx51oWWpDRcUpuNzlgPxDJaOK6AsW9c0wKcj3rKRv6t+bPQ==."""


def test_the_vendored_ed25519_library_is_the_pinned_release() -> None:
    vendored = JS / "vendor" / "noble-ed25519-3.2.0.js"
    assert hashlib.sha256(vendored.read_bytes()).hexdigest() == NOBLE_SHA256
    assert "MIT" in (JS / "vendor" / "LICENSE.noble-ed25519").read_text()
    assert NOBLE_SHA256 in (JS / "vendor" / "README.md").read_text()


def test_every_module_imports_only_files_of_its_own_directory() -> None:
    imports = []
    for module in JS.glob("*.js"):
        imports += re.findall(r'^import .* from "([^"]+)";$', module.read_text(), re.MULTILINE)
    assert imports and all(path.startswith("./") and (JS / path).is_file() for path in imports), imports
