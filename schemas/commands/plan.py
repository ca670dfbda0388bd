"""Commands of a plan."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from schemas.commands import Command
from schemas.common import Id, Instant, Name, Reference
from schemas.events import PlanRules


class CreatePlan(Command):
    """Open a plan with its first rules."""

    NAME: ClassVar[str] = "create_plan"
    SCHEMA_VERSION: ClassVar[int] = 2
    """v2: the plan id is keyed by the operator (`ledger.vault.keyed_id`), never chosen by the client."""
    ROLE: ClassVar[str] = "operator"
    command: Literal["create_plan"] = "create_plan"
    name: Name
    kind: Literal["cancer", "children", "accident", "elderly_cancer", "chronic"]
    rules: PlanRules


class AmendRules(Command):
    """Add a rules version effective from an instant."""

    NAME: ClassVar[str] = "amend_rules"
    ROLE: ClassVar[str] = "operator"
    command: Literal["amend_rules"] = "amend_rules"
    plan: Id
    effective_from: Instant
    rules: PlanRules


class AnnounceClosing(Command):
    """Announce a plan's wind-down terms."""

    NAME: ClassVar[str] = "announce_closing"
    ROLE: ClassVar[str] = "operator"
    command: Literal["announce_closing"] = "announce_closing"
    plan: Id
    ends_at: Instant
    refund_deadline: Instant
    claim_tail_days: int = Field(ge=0, le=3650)
    operator_pays_final_periods: int = Field(default=0, ge=0, le=24)
    conversion_offer: Name | None = Field(default=None, description="what members are offered at the closing "
                                          "(e.g. a free one-year policy), if anything")


class TerminatePlan(Command):
    """End a plan at its announced end."""

    NAME: ClassVar[str] = "terminate_plan"
    ROLE: ClassVar[str] = "operator"
    command: Literal["terminate_plan"] = "terminate_plan"
    plan: Id


class AgeOut(Command):
    """End (or move to a successor plan) the membership of every active member past the plan's top age band."""

    NAME: ClassVar[str] = "age_out"
    ROLE: ClassVar[str] = "operator"
    command: Literal["age_out"] = "age_out"
    plan: Id
    successor_plan: Id | None = Field(default=None, description="the plan (id or name) the members move to, e.g. "
                                                                "the elderly plan; none: they leave")


class ReleaseSurplus(Command):
    """The custodian pays out what a terminated plan's pool still holds, after its claim tail."""

    NAME: ClassVar[str] = "release_surplus"
    ROLE: ClassVar[str] = "custodian"
    command: Literal["release_surplus"] = "release_surplus"
    plan: Id
    reference: Reference
