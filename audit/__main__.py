"""`python -m audit …`: the outsiders' tools, the same as `mutual-ledger audit …`."""

import sys

from ledger.cli import main

main(["audit", *sys.argv[1:]])
