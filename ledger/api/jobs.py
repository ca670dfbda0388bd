"""The operator's periodic jobs, run by the service between requests: catch the read models up with the store,
integrate new entries into the log, publish a checkpoint once the last one is `LEDGER_CHECKPOINT_INTERVAL` seconds
old and the tree grew, and ask the configured witnesses to cosign each new checkpoint.

Adding (the store's sequencing), integrating and publishing stay separate steps; this only runs them on a bounded
interval. A pass that fails is reported and the next pass runs as usual: a failing publication (a tree that no
longer matches a signed checkpoint) is never papered over, it fails again, loudly, on every pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.bootstrap import Ledger
from ledger.log.checkpoints import StoredCheckpoint
from ledger.projections import ReadModels

WitnessPush = Callable[[StoredCheckpoint], object]
"""Asks the configured witnesses to cosign a checkpoint and stores their cosignatures (C2SP tlog-witness)."""

log = logging.getLogger("ledger.jobs")


def configured_witnesses(ledger: Ledger) -> WitnessPush | None:
    """The push to the witnesses of `LEDGER_WITNESSES` (C2SP tlog-witness, `ledger.api.witness_client`), or None
    when it names none."""
    if not ledger.settings.witnesses:
        return None
    from ledger.api.witness_client import WitnessClient

    return WitnessClient(ledger.checkpoints, ledger.settings.witnesses).push


@dataclass
class PassResult:
    """What one pass did."""

    applied: int = 0
    integrated: int = 0
    published: StoredCheckpoint | None = None


@dataclass
class OperatorJobs:
    """The periodic jobs over one ledger (see the module docstring).

    `models` are the read models to catch up (None when consumers fill them: the views database of the
    distributed deployment); `publish` is False for a service that does not hold the log key."""

    ledger: Ledger
    models: ReadModels | None
    interval_seconds: float
    push: WitnessPush | None = None
    publish: bool = True
    failures: int = field(default=0)

    @property
    def poll_seconds(self) -> float:
        """How often a pass runs: often enough that a checkpoint is never much later than the interval."""
        return min(5.0, max(0.05, self.interval_seconds / 4))

    def run_once(self) -> PassResult:
        """One pass: catch up, integrate, publish if due, push a new checkpoint to the witnesses."""
        result = PassResult()
        if self.models is not None:
            result.applied = self.models.catch_up()
        result.integrated = self.ledger.log.integrate()
        if self.publish:
            checkpoints = self.ledger.checkpoints
            result.published = checkpoints.publish_if_due(self.ledger.clock.now(), self.interval_seconds,
                                                          max_entries=2**62)
        if result.published is not None and self.push is not None:
            self.push(result.published)
        return result

    async def run(self, stopping: asyncio.Event) -> None:
        """Pass after pass until `stopping` is set; each pass in a worker thread, its failure logged."""
        while not stopping.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception as error:  # reported, and the next pass runs: the service keeps answering
                self.failures += 1
                log.error("operator job failed: %s: %s", type(error).__name__, error)
            try:
                await asyncio.wait_for(stopping.wait(), self.poll_seconds)
            except TimeoutError:
                continue
