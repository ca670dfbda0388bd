"""The HTTP API of the ledger: what members, custodians and regulators reach over the network."""
