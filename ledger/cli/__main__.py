"""`python -m ledger.cli …`: the same as `mutual-ledger …`."""

from ledger.cli import main

main()
