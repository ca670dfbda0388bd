"""The import layers of docs/design.md: the write side never imports the read side or an entry point; the read side
never imports an entry point; the repository stands on its own documents."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
WRITE_SIDE = ["ledger/application.py", "ledger/unit_of_work.py", "ledger/ports.py", "ledger/handlers",
              "ledger/aggregates", "ledger/sharing.py", "ledger/roles.py", "ledger/envelope.py", "ledger/keys.py",
              "ledger/sealing.py", "ledger/vault.py"]
ENTRY_POINTS = ("ledger.cli", "ledger.api", "consumers", "bench", "sim", "tests")


def imports(path: Path) -> set[str]:
    """Every module a source file imports (at any depth of its code)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def files(*places: str) -> list[Path]:
    return [p for place in places for p in ((ROOT / place).rglob("*.py") if (ROOT / place).is_dir()
                                            else [ROOT / place])]


def test_the_write_side_imports_neither_the_read_side_nor_an_entry_point() -> None:
    for path in files(*WRITE_SIDE):
        bad = {m for m in imports(path) if m.startswith(("ledger.projections", "audit", *ENTRY_POINTS))}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_read_side_and_the_log_import_no_entry_point() -> None:
    for path in files("ledger/projections", "ledger/log", "audit", "ledger/bootstrap.py"):
        if path.name == "__main__.py":  # `python -m audit` is itself an entry point
            continue
        bad = {m for m in imports(path) if m.startswith(ENTRY_POINTS)}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_repository_refers_to_its_own_documents_only() -> None:
    for path in [*ROOT.glob("*.md"), *(ROOT / "docs").glob("*.md"),
                 *files("ledger", "audit", "consumers", "schemas", "bench", "sim", "tests")]:
        text = path.read_text(encoding="utf-8")
        for outside in ("DESIGN.md", "DOMAIN.md", "STYLE.md", "../shared", "/work/shared"):
            if path.name != "test_layers.py":
                assert outside not in text, f"{path.relative_to(ROOT)} refers to {outside}"
