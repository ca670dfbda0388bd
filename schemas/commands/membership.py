"""Commands of a membership."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from schemas.commands import Command
from schemas.common import Code, Commitment, Fen, Id, IsoDate, Province, Reference
from schemas.events import ErasureReason


class Join(Command):
    """A person joins a plan (a member's own request)."""

    NAME: ClassVar[str] = "join"
    SCHEMA_VERSION: ClassVar[int] = 2
    """v2: the member id is keyed by the operator (`ledger.vault.keyed_id`), never chosen by the client."""
    SEALS: ClassVar[bool] = True
    ROLE: ClassVar[str] = "member"
    command: Literal["join"] = "join"
    plan: Id
    age_years: int = Field(ge=0, le=150)
    sex: Literal["f", "m"]
    province: Province
    payer: Id | None = None
    consent_commitment: Commitment
    health_declaration_commitment: Commitment


class Deposit(Command):
    """The custodian confirms a top-up it received."""

    NAME: ClassVar[str] = "deposit"
    ROLE: ClassVar[str] = "custodian"
    command: Literal["deposit"] = "deposit"
    member: Id
    amount_fen: Fen = Field(gt=0)
    reference: Reference


class RecordDebitFailure(Command):
    """The payment channel declined a postpaid member's share for a period."""

    NAME: ClassVar[str] = "record_debit_failure"
    ROLE: ClassVar[str] = "operator"
    command: Literal["record_debit_failure"] = "record_debit_failure"
    member: Id
    period: Id


class RecoverDebit(Command):
    """A failed debit was collected on retry within grace."""

    NAME: ClassVar[str] = "recover_debit"
    ROLE: ClassVar[str] = "operator"
    command: Literal["recover_debit"] = "recover_debit"
    member: Id
    period: Id


class QualifyJuror(Command):
    """The member passed the juror qualification exam."""

    NAME: ClassVar[str] = "qualify_juror"
    SEALS: ClassVar[bool] = True
    ROLE: ClassVar[str] = "operator"
    command: Literal["qualify_juror"] = "qualify_juror"
    member: Id
    age_years: int = Field(ge=0, le=150)
    exam_commitment: Commitment


class RecordFraud(Command):
    """Record a fraud finding against a member."""

    NAME: ClassVar[str] = "record_fraud"
    SEALS: ClassVar[bool] = True
    ROLE: ClassVar[str] = "operator"
    command: Literal["record_fraud"] = "record_fraud"
    member: Id
    claim: Id | None = None
    finding_commitment: Commitment


class AcceptConversion(Command):
    """The member takes the conversion offered at the plan's closing (a member's own request)."""

    NAME: ClassVar[str] = "accept_conversion"
    ROLE: ClassVar[str] = "member"
    command: Literal["accept_conversion"] = "accept_conversion"
    member: Id


class Exit(Command):
    """The member leaves the plan (a member's own request)."""

    NAME: ClassVar[str] = "exit"
    ROLE: ClassVar[str] = "member"
    command: Literal["exit"] = "exit"
    member: Id


class ExcludeForWaitingIllness(Command):
    """Illness diagnosed during the waiting period: refund shares paid, leave for good."""

    NAME: ClassVar[str] = "exclude_for_waiting_illness"
    SEALS: ClassVar[bool] = True
    ROLE: ClassVar[str] = "operator"
    command: Literal["exclude_for_waiting_illness"] = "exclude_for_waiting_illness"
    member: Id
    diagnosed_on: IsoDate
    condition: Code


class EraseMember(Command):
    """Destroy a member's sealed values (docs/privacy.md): after they left, on consent withdrawal, or when the
    retention period after leaving ended. Signed events stay and keep verifying."""

    NAME: ClassVar[str] = "erase_member"
    ROLE: ClassVar[str] = "operator"
    command: Literal["erase_member"] = "erase_member"
    member: Id
    reason: ErasureReason


class DisburseRefund(Command):
    """The custodian confirms it paid a refund due to a member."""

    NAME: ClassVar[str] = "disburse_refund"
    ROLE: ClassVar[str] = "custodian"
    command: Literal["disburse_refund"] = "disburse_refund"
    member: Id
    amount_fen: Fen = Field(gt=0)
    reference: Reference
