"""Handlers of the plan commands."""

from __future__ import annotations

from uuid import UUID

from ledger.aggregates.plan import Plan
from ledger.bounds import check_plan_rules
from ledger.envelope import parse_at
from ledger.unit_of_work import Outcome, UnitOfWork, handles
from schemas.commands.plan import AmendRules, AnnounceClosing, CreatePlan, TerminatePlan
from schemas.events import PlanCreatedV1


@handles(CreatePlan)
def create_plan(uow: UnitOfWork, command: CreatePlan) -> Outcome:
    """Open a plan."""
    check_plan_rules(command.rules)
    plan_id = uow.new_id("plan", command.command_id)
    body = PlanCreatedV1(name=command.name, kind=command.kind, rules=command.rules)
    uow.add(Plan.create(plan_id, uow.at, uow.actor("operator"), body), "plan", derived=True)
    return Outcome({"plan": str(plan_id)})


@handles(AmendRules)
def amend_rules(uow: UnitOfWork, command: AmendRules) -> Outcome:
    """Add a rules version."""
    plan = uow.get(UUID(command.plan), Plan, "plan")
    check_plan_rules(command.rules)
    version = plan.amend_rules(uow.at, uow.actor("operator"), parse_at(command.effective_from), command.rules)
    return Outcome({"plan": command.plan, "rules_version": version})


@handles(AnnounceClosing)
def announce_closing(uow: UnitOfWork, command: AnnounceClosing) -> Outcome:
    """Announce the wind-down."""
    plan = uow.get(UUID(command.plan), Plan, "plan")
    plan.announce_closing(
        uow.at, uow.actor("operator"), parse_at(command.ends_at), parse_at(command.refund_deadline),
        command.claim_tail_days, command.operator_pays_final_periods, command.conversion_offer,
    )
    return Outcome({"plan": command.plan})


@handles(TerminatePlan)
def terminate_plan(uow: UnitOfWork, command: TerminatePlan) -> Outcome:
    """End the plan."""
    uow.get(UUID(command.plan), Plan, "plan").terminate(uow.at, uow.actor("operator"))
    return Outcome({"plan": command.plan})
