"""References people type for plans and periods: a plan by its id or its name; a period by its id or as
`PLAN:NUMBER` (`"cancer plan":3`, `6f1c…:3`)."""

from __future__ import annotations

from uuid import UUID

from ledger.aggregates.sharing_period import period_id
from ledger.errors import InputError
from ledger.projections.periods import Periods
from ledger.rules import Rule


def plan_ref(periods: Periods, field_name: str, reference: str) -> str:
    """A plan id from its id or its (unique, case-insensitive) name."""
    plans = periods.plans_list()
    try:
        wanted = str(UUID(reference))
    except ValueError:
        named = [p["id"] for p in plans if str(p["name"]).casefold() == reference.strip().casefold()]
        if len(named) > 1:
            raise InputError(field_name, Rule.PLAN_NAME_MUST_BE_UNIQUE, f"{reference!r}: give the plan's id") from None
        if not named:
            raise InputError(field_name, Rule.PLAN_MUST_EXIST, f"no plan named or with id {reference!r}") from None
        return str(named[0])
    if not any(p["id"] == wanted for p in plans):
        raise InputError(field_name, Rule.PLAN_MUST_EXIST, wanted)
    return wanted


def period_ref(periods: Periods, field_name: str, reference: str) -> str:
    """A period id from its id or `PLAN:NUMBER`."""
    plan, separator, number = reference.rpartition(":")
    if not separator:
        try:
            wanted = str(UUID(reference))
        except ValueError:
            raise InputError(field_name, Rule.PERIOD_REFERENCE_MUST_BE_AN_ID_OR_PLAN_NUMBER,
                             f"{reference!r}: give the period's id or PLAN:NUMBER") from None
        if periods.record(wanted) is None:
            raise InputError(field_name, Rule.PERIOD_MUST_EXIST, wanted)
        return wanted
    if not (number.isascii() and number.isdigit() and int(number) >= 1):
        raise InputError(field_name, Rule.PERIOD_REFERENCE_MUST_BE_AN_ID_OR_PLAN_NUMBER,
                         f"{reference!r}: the number after ':' must be 1 or more")
    plan_id = plan_ref(periods, field_name, plan.strip('"'))
    return str(period_id(plan_id, int(number)))
