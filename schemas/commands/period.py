"""Commands of a sharing period."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from schemas.commands import Command
from schemas.common import Fen, Id, IsoDate, Reference


class OpenPeriod(Command):
    """Announce period `number` of a plan (1, or the one after an assessed period)."""

    NAME: ClassVar[str] = "open_period"
    ROLE: ClassVar[str] = "operator"
    command: Literal["open_period"] = "open_period"
    plan: Id
    number: int = Field(ge=1)
    notice_on: IsoDate | None = Field(default=None, description="the notice day; the next one in the calendar "
                                      "when omitted")


class AssessPeriod(Command):
    """Assess a period at its cutoff: locked members, cases, the formula, the roll root."""

    NAME: ClassVar[str] = "assess_period"
    ROLE: ClassVar[str] = "operator"
    command: Literal["assess_period"] = "assess_period"
    period: Id


class CollectPeriod(Command):
    """Prepaid: debit the balances; every share a balance cannot cover is a failed debit."""

    NAME: ClassVar[str] = "collect_period"
    ROLE: ClassVar[str] = "operator"
    command: Literal["collect_period"] = "collect_period"
    period: Id


class ReceiveSubsidy(Command):
    """The custodian confirms the operator's subsidy for what the caps cut off."""

    NAME: ClassVar[str] = "receive_subsidy"
    ROLE: ClassVar[str] = "custodian"
    command: Literal["receive_subsidy"] = "receive_subsidy"
    period: Id
    amount_fen: Fen = Field(gt=0)
    reference: Reference


class ReceiveAdvance(Command):
    """The custodian confirms an operator advance toward a period's shortfall (shares left uncollected)."""

    NAME: ClassVar[str] = "receive_advance"
    ROLE: ClassVar[str] = "custodian"
    command: Literal["receive_advance"] = "receive_advance"
    period: Id
    amount_fen: Fen = Field(gt=0)
    reference: Reference


class SettlePeriod(Command):
    """Close a period's collection: lapse members whose debit failed for good, carry the surplus."""

    NAME: ClassVar[str] = "settle_period"
    ROLE: ClassVar[str] = "operator"
    command: Literal["settle_period"] = "settle_period"
    period: Id


class WindDown(Command):
    """After termination: every prepaid balance becomes a refund due by the announced deadline."""

    NAME: ClassVar[str] = "wind_down"
    ROLE: ClassVar[str] = "operator"
    command: Literal["wind_down"] = "wind_down"
    plan: Id
