"""A seeded simulation of the whole distributed ledger under faults (TigerBeetle's VOPR is the model).

`python -m sim --seed S` runs the real components — the writer (through the composition root, in a process of its
own), the Kafka relay, the broker, the four consumers, the HTTP service with its integrator and checkpoint jobs, and
two witnesses — drives them with a seeded mix of valid and invalid commands, injects faults at seeded points and
checks the ledger's invariants after each recovery. docs/simulation.md describes it.
"""
