"""Command handlers, one module per aggregate; importing this package registers them all."""

from __future__ import annotations

from ledger.handlers import claim, disclosure, keys, membership, period, plan, report

__all__ = ["claim", "disclosure", "keys", "membership", "period", "plan", "report"]
