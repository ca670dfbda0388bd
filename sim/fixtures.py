"""What the benchmarks and the test suite build ledgers with: the simulated clock's starting instant, 相互宝-like plan
rules, and salted commitments to off-log documents (installed with the package, so that a benchmark runs without
the test suite)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from schemas.events import AidBand, PlanRules

START = datetime(2026, 1, 1, tzinfo=UTC)
"""The simulated clock's starting instant in every test and benchmark."""


def commitment(text: str = "document") -> str:
    """A salted commitment to an off-log document."""
    return hashlib.sha256(b"salt:" + text.encode()).hexdigest()


def rules(**overrides: Any) -> PlanRules:
    """相互宝-like rules: postpaid, 0-59, 90 waiting days, 300,000 yuan up to 39 and 100,000 to 59, 8% fee."""
    base: dict[str, Any] = {
        "min_age_years": 0,
        "max_age_years": 59,
        "waiting_days": 90,
        "aid_bands": (
            AidBand(up_to_age_years=39, max_aid_fen=30_000_000),
            AidBand(up_to_age_years=59, max_aid_fen=10_000_000),
        ),
        "fee_bps": 800,
        "per_case_cap_fen": 10,
        "annual_cap_fen": 18_800,
        "excess_policy": "operator_pays",
        "payment_model": "postpaid",
        "min_balance_fen": 0,
        "grace_days": 2,
        "claim_window_days": 180,
        "notice_days": 7,
        "jury_quorum": 5,
        "jury_threshold_bps": 5000,
        "juror_min_age_years": 18,
        "juror_min_member_days": 30,
        "notice_days_of_month": (7, 21),
        "collection_days_of_month": (14, 28),
        "utc_offset_minutes": 480,
    }
    base.update(overrides)
    return PlanRules(**base)
