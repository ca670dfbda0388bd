"""The HTTP API's request and response bodies (`/api/v1/`), one model per resource, grouped by audience.

These models are the API's contract with its clients: the service's OpenAPI 3.1 description (`/openapi.json`) is
generated from them, and the service answers only with values they validate. Money is integer fen; dates are
`YYYY-MM-DD` plan days, instants RFC 3339 UTC; hashes are lowercase hex unless a field says base64 (Merkle proofs,
as RFC 9162 tools print them). Errors are RFC 9457 problem details (`Problem`), naming the field and the rule.
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class ApiModel(BaseModel):
    """Base of every API body: built from read-model rows, whose extra columns are left out."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# -- common --------------------------------------------------------------------------------------------------


class Problem(ApiModel):
    """RFC 9457 problem details: `type` is `about:blank`, so `title` is the HTTP status phrase (§4.2.1); `field` and
    `rule` (extension members, §3.2) name what was wrong and the ledger rule it broke."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = None
    rule: str | None = None


class Page(ApiModel, Generic[T]):
    """One page of a list. `next_cursor` is given back as `cursor` for the next page; null on the last one."""

    items: list[T]
    next_cursor: str | None = Field(description="Opaque; pass it as `cursor` to get the next page (null: no more).")


# -- public: plans, periods, disclosures, cases, metrics -------------------------------------------------------


class Plan(ApiModel):
    """A plan as the read models hold it."""

    id: str
    name: str
    kind: str
    status: str
    created_at: str
    rules_version: int
    payment_model: str
    ends_at: str | None


class PeriodSummary(ApiModel):
    """A period in a list: when, its state, and its share once assessed."""

    id: str
    plan: str
    number: int
    notice_on: str
    collection_on: str
    status: str
    locked_members: int | None
    share_fen: int | None


class FundedCase(ApiModel):
    """A case a period funds: the approved amount and what the period funded of it."""

    claim: str
    approved_fen: int
    funded_fen: int


class Period(ApiModel):
    """Every term of a period's assessment (the sharing formula), its collection and settlement, and its
    disclosure's published hash. Terms are null until the step that fixes them."""

    id: str
    plan: str
    number: int
    notice_on: str
    collection_on: str
    cutoff_at: str
    status: str
    assessed_at: str | None
    rules_version: int | None
    locked_members: int | None
    aid_fen: int | None
    fee_bps: int | None
    fee_fen: int | None
    surplus_in_fen: int | None
    need_fen: int | None
    uncapped_share_fen: int | None
    per_case_cap_fen: int | None
    annual_cap_remaining_fen: int | None
    cap_applied: Literal["none", "per_case", "annual"] | None
    share_fen: int | None
    excess_policy: str | None
    subsidy_fen: int | None
    funded_aid_fen: int | None
    funded_fee_fen: int | None
    surplus_out_fen: int | None
    roll_root: str | None
    roll_size: int | None
    subsidy_received_fen: int
    failed_debits: int
    failed_fen: int
    recovered_debits: int
    recovered_fen: int
    settled_at: str | None
    collected_fen: int | None
    uncollected_fen: int | None
    surplus_carried_fen: int | None
    disclosure_hash: str | None
    disclosed_at: str | None
    cases: list[FundedCase]


class SharePoint(ApiModel):
    """One assessed period of a plan's share history (for charts)."""

    period: str
    number: int
    notice_on: str
    locked_members: int
    cases: int
    share_fen: int
    uncapped_share_fen: int
    cap_applied: Literal["none", "per_case", "annual"]
    subsidy_fen: int


class DisclosureCard(ApiModel):
    """One case of a period's 公示, masked: coarse attributes only. A sealed case (`claim.filed` v2) names no member
    and shows the age band and the months of diagnosis and joining instead of the exact age and days in the plan.
    A card is served exactly as the document holds it (no field added or dropped), since its hash is pinned."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    case: str
    member: str | None
    category: str
    condition: str
    age_at_diagnosis: int | None = None
    age_band: str | None = None
    diagnosis_month: str | None = None
    joined_month: str | None = None
    sex: str
    province: str | dict[str, str] = Field(description="v1: the two-letter code; v2: its names, zh-CN and en")
    diagnosed_on: str | None = None
    investigation_firm: dict[str, str | None] | None = Field(
        default=None, description="v2: the public name and key id of the party whose key signed the investigation")
    approved_fen: int
    aid_fen: int
    days_in_plan_at_diagnosis: int | None = None
    helped_people: int
    shared_fen: int
    decision_basis: str | None
    objections: int
    jury_verdict: str | None


class DisclosureDocument(ApiModel):
    """A settled period's public disclosure (公示), exactly as its hash was pinned on the log."""

    format: str
    plan: str
    period: str
    number: int
    notice_on: str
    collection_on: str
    patients_helped: int
    sharing_members_wan: str
    locked_members: int
    per_person_share_fen: int
    total_collected_fen: int | None
    aid_fen: int
    fee_fen: int
    funded_aid_fen: int
    funded_fee_fen: int
    subsidy_fen: int
    surplus_in_fen: int
    surplus_carried_fen: int | None
    cap_applied: str
    roll_root: str
    cases: list[DisclosureCard]


class Checkpoint(ApiModel):
    """A signed checkpoint (C2SP tlog-checkpoint as a signed note, with the witnesses' cosignature lines)."""

    size: int
    note: str
    published_at: str


class InclusionProof(ApiModel):
    """An entry's inclusion proof (RFC 9162 §2.1.3) into the tree of `size`, base64 hashes in the RFC's order."""

    index: int
    size: int
    leaf_hash: str
    root: str
    proof: list[str]


class ConsistencyProof(ApiModel):
    """The consistency proof (RFC 9162 §2.1.4) between two tree sizes, base64 hashes in the RFC's order."""

    old: int
    size: int
    old_root: str
    root: str
    proof: list[str]


class LogEntry(ApiModel):
    """Entry `index` of the log: the JCS bytes of the signed envelope, as `mutual-ledger export` prints it."""

    index: int
    entry: str


class PublishedEvent(ApiModel):
    """A signed event on the log with its inclusion proof into a published checkpoint."""

    index: int
    entry: str
    proof: list[str]
    checkpoint: Checkpoint


class Disclosure(ApiModel):
    """A settled period's 公示 rebuilt from the events, the hash published on the log, and the
    `disclosure.published` event with its inclusion proof (null until a checkpoint covers it); `keys` are the
    root key's registration (entry 0) and the signer's, with their proofs, so that a browser checks the event's
    signature from the log alone."""

    period: str
    document: DisclosureDocument
    document_hash: str
    published_hash: str | None
    matches: bool
    event: PublishedEvent | None
    keys: list[PublishedEvent] = []


class CaseCard(ApiModel):
    """A case card as the public sees it once the case is on public notice: coarse attributes only; a sealed case
    names no member (`member` is null), one filed before sealing shows its member masked."""

    case: str
    plan: str
    member: str | None
    category: str
    condition: str
    diagnosed_month: str
    age_band: str
    sex: str
    province: str
    noticed_at: str
    notice_ends_at: str | None
    objections: int
    objections_upheld: int
    jury_requested: bool
    verdict: str | None
    decision: str
    decision_basis: str | None
    approved_fen: int | None
    period: str | None
    period_number: int | None
    paid_fen: int | None


class Distribution(ApiModel):
    """Count, median, 90th percentile and maximum of durations in days."""

    count: int
    p50: float | None
    p90: float | None
    max: float | None


class PeriodMetrics(ApiModel):
    """One period in a plan's metrics."""

    number: int
    notice_on: str
    status: str
    locked_members: int | None
    cases: int | None
    share_fen: int | None
    cap_applied: str | None
    subsidy_fen: int | None
    failed_debits: int
    uncollected_fen: int | None


class CaseMetrics(ApiModel):
    """Cases filed, decided and approved; rejections by reason; objections and juries."""

    filed: int
    decided: int
    approved: int
    rejected: int
    approval_rate: float | None
    rejections_by_reason: dict[str, int]
    objections: int
    objections_upheld: int
    jury_requests: int
    jury_verdicts: dict[str, int]


class RefundMetrics(ApiModel):
    """Refunds owed during a wind-down, and those past their deadline."""

    owed: int
    due_fen: int
    paid_fen: int
    past_deadline: int
    past_deadline_fen: int


class PlanMetrics(ApiModel):
    """A plan's regulator metrics."""

    plan: str
    periods: list[PeriodMetrics]
    cases: CaseMetrics
    days_filing_to_decision: Distribution
    days_filing_to_payment: Distribution
    refunds: RefundMetrics


class Metrics(ApiModel):
    """Regulator metrics per plan, and the custody figures of the whole fund."""

    plans: list[PlanMetrics]
    custody_gap_fen: int
    trial_balance_fen: int


# -- members -------------------------------------------------------------------------------------------------


class StatementPeriod(ApiModel):
    """A period the member paid into."""

    period: str
    number: int
    notice_on: str
    share_fen: int
    charged_fen: int = Field(description="what the period charged the member: the share, or what their own annual "
                                         "cap left of it")
    cases: int


class StatementClaim(ApiModel):
    """One of the member's own claims."""

    claim: str
    condition: str
    diagnosed_month: str
    decision: str
    approved_fen: int | None
    paid_fen: int | None


class RevealedRecord(ApiModel):
    """A sealed value with its salt (docs/privacy.md): it opens the commitment `<field>_sealed` of event
    `stream#seq`, which the caller checks (`ledger.sealing.check_revealed`)."""

    stream: str
    seq: int
    field: str
    value: str | int | None = Field(description="null only for a fraud finding that concerns no claim")
    salt: str = Field(pattern=r"^[0-9a-f]{64}$")


class Revealed(ApiModel):
    """Sealed personal fields opened for the caller alone (the member by their own key, a regulator by theirs);
    empty once the member was erased."""

    records: list[RevealedRecord]


class RevealedMember(Revealed):
    """Every sealed value a member owns, opened for the member (by their own key), a custodian or a regulator (by
    theirs), with the signed events whose commitments they open: the caller checks each record against its event
    (`ledger.reveal.check_records`) and each event against the public log (the same bytes, at its log index)."""

    entries: list[str] = Field(description="the signed entries (RFC 8785 envelopes) the records open, in "
                                           "(stream, seq) order")


class Identity(ApiModel):
    """The key that signed a request, as the keyring holds it."""

    key_id: str
    role: str
    member: str | None


class Statement(ApiModel):
    """A member's 爱心账单: what they paid and whom it helped."""

    member: str
    plan: str
    status: str
    payer: str | None
    since: str | None = Field(alias="from", serialization_alias="from")
    until: str | None = Field(alias="to", serialization_alias="to")
    days_in_plan: int
    periods_paid_into: int
    shared_fen: int
    people_helped: int
    periods: list[StatementPeriod]
    top_ups_fen: int
    refunds_paid_fen: int
    account: str
    balance_fen: int = Field(ge=0, description="the account's balance, never negative")
    due_fen: int = Field(ge=0, description="what the account owes: the part of assessed shares its balance could not "
                                           "cover, paid first by its next deposit, until the collection")
    arrears_fen: int
    low_balance_warning: bool
    claims: list[StatementClaim]
    revealed: Revealed | None = None


class BundleEvent(ApiModel):
    """An event of a proof bundle: its log index, canonical entry and inclusion proof (base64)."""

    index: int
    entry: str
    proof: list[str]


class BundleRoll(ApiModel):
    """The member's leaf in a period's assessment roll and its inclusion proof into the signed `roll_root`."""

    period: str
    period_index: int
    amount: int
    leaf_index: int
    roll_size: int
    proof: list[str]


class BundleRange(ApiModel):
    """The notice days a bundle covers (null: open)."""

    since: str | None = Field(alias="from", serialization_alias="from")
    until: str | None = Field(alias="to", serialization_alias="to")


class BundleUpgrade(ApiModel):
    """A later checkpoint and the consistency proof to it."""

    checkpoint: str
    consistency: list[str]


class ProofBundle(ApiModel):
    """A member's offline proof bundle (`mutual-ledger/proof-bundle/v1`), the same `audit verify-bundle` checks."""

    format: Literal["mutual-ledger/proof-bundle/v1"]
    member: str
    range: BundleRange
    checkpoint: str
    events: list[BundleEvent]
    rolls: list[BundleRoll]
    revealed: list[RevealedRecord] = Field(default_factory=list, description="the member's claimant record of each "
                                           "sealed claim in `events`, which opens its member_sealed")
    upgrade: BundleUpgrade | None = None


# -- custodians ----------------------------------------------------------------------------------------------


class Journal(ApiModel):
    """The fund's double-entry accounts (debit balances positive), with the trial balance and the custody gap."""

    accounts: dict[str, int]
    trial_balance_fen: int
    custody_gap_fen: int


class TrialBalance(ApiModel):
    """The trial balance (zero when the books balance) and the custody check (zero when custody is complete)."""

    trial_balance_fen: int
    custody_gap_fen: int
    balanced: bool


class Finding(ApiModel):
    """A discrepancy between the custodian's statement and the ledger."""

    kind: Literal["missing_in_statement", "missing_in_ledger", "amount_mismatch", "direction_mismatch", "duplicate",
                  "outside_window"]
    reference: str
    detail: str


class Reconciliation(ApiModel):
    """The custodian's bank statement matched against the ledger's fund movements."""

    ok: bool
    matched: int
    findings: list[Finding]
    statement_cash_fen: int
    owed_fen: int
    custody_gap_fen: int


# -- regulators ----------------------------------------------------------------------------------------------


class RegulatorCase(ApiModel):
    """A case row for a regulator's query: coarse attributes only and no member; the exact values come in
    `revealed`, checked against the case's commitments."""

    claim: str
    plan: str
    category: str
    condition: str
    diagnosed_month: str
    age_band: str
    sex: str
    province: str
    filed_at: str
    decision: str
    decision_reason: str | None
    decision_basis: str | None
    verdict: str | None
    approved_fen: int | None
    period_number: int | None
    paid_fen: int | None
    paid_at: str | None
    revealed: Revealed | None = None


class Refund(ApiModel):
    """A refund owed (wind-down or waiting-period exclusion), the member masked."""

    member: str
    plan: str
    reason: str
    due_fen: int
    due_at: str
    deadline: str | None
    paid_fen: int
    paid_at: str | None
    status: Literal["outstanding", "paid", "overdue"]


class ReportRange(ApiModel):
    """The date range of a regulator's report: [from, to)."""

    since: str = Field(alias="from", serialization_alias="from", description="YYYY-MM-DD")
    until: str = Field(alias="to", serialization_alias="to", description="YYYY-MM-DD, exclusive")


class ReportDocument(Metrics):
    """The regulator's report document (`mutual-ledger/regulator-report/v1`); its hash goes on the log."""

    format: Literal["mutual-ledger/regulator-report/v1"]
    since: str
    until: str


class ReportDraft(ApiModel):
    """A report ready to sign: the document, the `report.published` envelope without its signature, and the
    event hash the regulator signs (Ed25519 over `mutual-ledger/event/v1\\n` + the hash)."""

    document: ReportDocument
    envelope: dict[str, Any]
    event_hash: str


class SignedReport(ApiModel):
    """A report the regulator signed: the drafted envelope with its `sig`."""

    envelope: dict[str, Any]


class PublishedReport(ApiModel):
    """A report on the log: its stream, range, the document's hash and size, who signed it, when, and where."""

    report: str
    since: str
    until: str
    document_hash: str
    document_bytes: int
    key: str
    published_at: str
    index: int | None


# -- the live feed -------------------------------------------------------------------------------------------


class FeedCheckpoint(ApiModel):
    """A `checkpoint` event of the live feed."""

    size: int
    note: str
    published_at: str


class FeedDisclosure(ApiModel):
    """A `disclosure` event of the live feed: a period's 公示 published on the log at `index`."""

    period: str
    plan: str
    number: int
    document_hash: str
    published_at: str
    index: int
