"""A mutual-aid plan: its versioned rules and its life (open → closing → terminated).

Rules are never constants: every join, claim and period records the rules version in force when it happened, and
amendments take effect from a stated instant. Closing announces the wind-down terms that a ledger must make
checkable (docs/domain.md, "Termination"): when the plan ends, when refunds are due, how long tail claims run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar
from uuid import UUID

from ledger.aggregates.base import LedgerAggregate
from ledger.envelope import Actor, format_at, parse_at
from ledger.errors import check
from ledger.rules import Rule
from schemas.events import (
    PlanClosingAnnouncedV1,
    PlanClosingAnnouncedV2,
    PlanCreatedV1,
    PlanRules,
    PlanRulesAmendedV1,
    PlanTerminatedV1,
    SurplusReleasedV1,
)


@dataclass(frozen=True)
class RulesVersion:
    """A version of the rules and the instant from which it applies."""

    version: int
    effective_from: datetime
    rules: PlanRules


class Plan(LedgerAggregate):
    """A plan's name, kind, rules versions, status and wind-down terms."""

    MUST_EXIST: ClassVar[Rule] = Rule.PLAN_MUST_EXIST

    def __init__(self) -> None:
        self.name = ""
        self.kind = ""
        self.versions: list[RulesVersion] = []
        self.status = "open"
        self.closing: PlanClosingAnnouncedV1 | None = None
        self.closing_announced_at: datetime | None = None
        self.terminated_at: datetime | None = None
        self.surplus_released = False

    class Created(LedgerAggregate.Created):
        """The plan opens with rules version 1."""

        TYPE = "plan.created"
        body: PlanCreatedV1

        def apply(self, aggregate: Plan) -> None:
            aggregate.name = self.body.name
            aggregate.kind = self.body.kind
            aggregate.versions = [RulesVersion(1, self.timestamp, self.body.rules)]

    class RulesAmended(LedgerAggregate.Event):
        """A new rules version."""

        TYPE = "plan.rules_amended"
        body: PlanRulesAmendedV1

        def apply(self, aggregate: Plan) -> None:
            aggregate.versions.append(
                RulesVersion(self.body.version, parse_at(self.body.effective_from), self.body.rules)
            )

    class ClosingAnnounced(LedgerAggregate.Event):
        """The plan will end; wind-down terms are fixed."""

        TYPE = "plan.closing_announced"
        body: PlanClosingAnnouncedV1

        def apply(self, aggregate: Plan) -> None:
            aggregate.status = "closing"
            aggregate.closing = self.body
            aggregate.closing_announced_at = self.timestamp

    class ClosingAnnouncedV2(ClosingAnnounced):
        """Schema 2: with the conversion offered at the closing."""

        SCHEMA = 2
        body: PlanClosingAnnouncedV2

    class Terminated(LedgerAggregate.Event):
        """The plan has ended."""

        TYPE = "plan.terminated"
        body: PlanTerminatedV1

        def apply(self, aggregate: Plan) -> None:
            aggregate.status = "terminated"
            aggregate.terminated_at = parse_at(self.body.terminated_at)

    @classmethod
    def create(cls, plan_id: UUID, at: datetime, actor: Actor, body: PlanCreatedV1) -> Plan:
        """Open a plan."""
        return cls.start(cls.Created, plan_id, at, actor, body)

    def rules_at(self, moment: datetime) -> RulesVersion:
        """The rules version in force at `moment`."""
        current = self.versions[0]
        for version in self.versions[1:]:
            if version.effective_from <= moment:
                current = version
        return current

    def rules_version(self, number: int) -> RulesVersion:
        """A rules version by number."""
        assert 1 <= number <= len(self.versions), f"rules version {number} is one the plan recorded"
        return self.versions[number - 1]

    def amend_rules(self, at: datetime, actor: Actor, effective_from: datetime, rules: PlanRules) -> int:
        """Add a rules version effective from a future (or present) instant; return its number."""
        check(self.status == "open", "plan", Rule.PLAN_MUST_BE_OPEN_TO_AMEND_RULES, self.status)
        check(effective_from >= at, "effective_from", Rule.RULES_CANNOT_TAKE_EFFECT_IN_THE_PAST)
        check(effective_from >= self.versions[-1].effective_from, "effective_from",
              Rule.RULES_VERSIONS_MUST_TAKE_EFFECT_IN_ORDER)
        number = len(self.versions) + 1
        body = PlanRulesAmendedV1(version=number, effective_from=format_at(effective_from), rules=rules)
        self.record(self.RulesAmended, at, actor, body)
        return number

    def announce_closing(
        self,
        at: datetime,
        actor: Actor,
        ends_at: datetime,
        refund_deadline: datetime,
        claim_tail_days: int,
        operator_pays_final_periods: int,
        conversion_offer: str | None = None,
    ) -> None:
        """Announce the wind-down: the end, the refund deadline, the claim tail, the final periods the operator pays
        and the conversion offered."""
        check(self.status == "open", "plan", Rule.PLAN_MUST_BE_OPEN_TO_ANNOUNCE_CLOSING, self.status)
        check(ends_at > at, "ends_at", Rule.PLAN_END_MUST_BE_IN_THE_FUTURE)
        check(refund_deadline >= ends_at, "refund_deadline", Rule.REFUND_DEADLINE_MUST_NOT_PRECEDE_END)
        body = PlanClosingAnnouncedV2(
            ends_at=format_at(ends_at), refund_deadline=format_at(refund_deadline),
            claim_tail_days=claim_tail_days, operator_pays_final_periods=operator_pays_final_periods,
            conversion_offer=conversion_offer,
        )
        self.record(self.ClosingAnnouncedV2, at, actor, body)

    class SurplusReleased(LedgerAggregate.Event):
        """The pool's last surplus left the plan."""

        TYPE = "plan.surplus_released"
        body: SurplusReleasedV1

        def apply(self, aggregate: Plan) -> None:
            aggregate.surplus_released = True

    def release_surplus(self, at: datetime, actor: Actor, held: Callable[[], int], reference: str) -> int:
        """Pay out what a terminated plan's pool holds (`held()`, asked once the plan's own rules hold), once, after
        its claim tail (no tail claim can still need it); returns the amount."""
        check(self.status == "terminated", "plan", Rule.SURPLUS_IS_RELEASED_AFTER_TERMINATION, self.status)
        assert self.closing is not None
        tail_ends = parse_at(self.closing.ends_at) + timedelta(days=self.closing.claim_tail_days)
        check(at >= tail_ends, "plan", Rule.SURPLUS_IS_RELEASED_AFTER_THE_CLAIM_TAIL, format_at(tail_ends))
        check(not self.surplus_released, "plan", Rule.SURPLUS_IS_RELEASED_ONCE)
        held_fen = held()
        check(held_fen > 0, "plan", Rule.SURPLUS_MUST_BE_HELD_TO_BE_RELEASED, "the pool holds nothing")
        self.record(self.SurplusReleased, at, actor, SurplusReleasedV1(amount_fen=held_fen, reference=reference,
                                                                       to="operator"))
        return held_fen

    def terminate(self, at: datetime, actor: Actor) -> None:
        """End the plan at its announced end."""
        check(self.status == "closing", "plan", Rule.PLAN_MUST_ANNOUNCE_CLOSING_BEFORE_TERMINATION, self.status)
        assert self.closing is not None
        check(at >= parse_at(self.closing.ends_at), "at", Rule.PLAN_CANNOT_TERMINATE_BEFORE_ANNOUNCED_END,
              self.closing.ends_at)
        self.record(self.Terminated, at, actor, PlanTerminatedV1(terminated_at=format_at(at)))

    def check_accepts_joins(self, at: datetime) -> None:
        """Joins are accepted only while the plan is open."""
        check(self.status == "open", "plan", Rule.PLAN_MUST_BE_OPEN_TO_JOIN, self.status)

    def ends_at(self) -> datetime | None:
        """When the plan ends (or ended), if closing was announced."""
        return parse_at(self.closing.ends_at) if self.closing else None

    def conversion_offer(self) -> str | None:
        """The conversion offered at the closing, if any."""
        return self.closing.conversion_offer if isinstance(self.closing, PlanClosingAnnouncedV2) else None

    def final_periods(self) -> int:
        """How many of the last periods before the end the operator announced it pays (0 before an announcement)."""
        return self.closing.operator_pays_final_periods if self.closing else 0

    def claim_tail_ends(self, diagnosed_on: datetime) -> datetime | None:
        """After termination: the last instant a claim for this diagnosis may be filed."""
        if self.closing is None:
            return None
        return diagnosed_on + timedelta(days=self.closing.claim_tail_days)
