"""The README's examples are run, so that the README cannot drift from the command line.

Every ```sh block of the README runs, in order, with bash (`set -euo pipefail`) in a fresh directory holding the
repository's `docs/`, with this environment's `mutual-ledger` on the PATH. Two lines are stood in for: `./dev test`
(it is this very suite) is left out, and `./dev demo` runs what the script runs, `mutual-ledger demo --replace` with
its default history; `source .venv/bin/activate` is what the PATH already is. The service's port 8000 becomes a
free port, so that a server already listening there cannot answer in its place.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def blocks() -> list[str]:
    """The README's ```sh blocks."""
    return re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runnable(block: str, port: int) -> str:
    block = block.replace(":8000", f":{port}").replace("--port 8000", f"--port {port}")
    lines = []
    for line in block.splitlines():
        command = line.split("#")[0].strip() if not line.startswith(" ") else line
        if command.startswith("./dev test"):
            continue
        if command.startswith("./dev demo"):
            line = "mutual-ledger demo --replace --members 2000 --periods 3 --seed 7 > demo.txt"
        elif command.startswith("source .venv/bin/activate"):
            line = ":"
        lines.append(line)
    return "\n".join(lines)


def test_every_readme_example_runs(tmp_path: Path) -> None:
    found = blocks()
    assert len(found) >= 3
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    environment = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("LEDGER_DATA_DIR", None)
    environment.pop("LEDGER_DATABASE_URL", None)
    for number, block in enumerate(found, start=1):
        script = "set -euo pipefail\n" + runnable(block, free_port())
        result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=environment, capture_output=True,
                                text=True, timeout=600, check=False)
        assert result.returncode == 0, f"README block {number} failed:\n{script}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr
    assert "every check holds" in result.stdout + (tmp_path / "demo.txt").read_text()
