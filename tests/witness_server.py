"""`python -m tests.witness_server DIRECTORY KEY NAME LOG_KEY... --port P`: a witness process for the tests, run
through the same `ledger.api.witness.run_witness` that `mutual-ledger witness serve` calls."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ledger.api.witness import run_witness
from ledger.errors import KeyDirectoryError
from ledger.log.note import Verifier
from ledger.log.witness import WitnessKeyError


def main() -> None:
    """Parse the arguments and serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("key")
    parser.add_argument("name")
    parser.add_argument("log_keys", nargs="+")
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    try:
        run_witness(arguments.directory, arguments.key, arguments.name,
                    [Verifier.parse(key) for key in arguments.log_keys], port=arguments.port)
    except (KeyDirectoryError, WitnessKeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
