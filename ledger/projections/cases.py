"""Case cards and period disclosures (公示), masked: only what the events hold, never personal data.

The cases read model follows every claim step (filing, investigation, notice, objections, jury, decision, period,
payout); the filing carries the claimant's coarse attributes (age, sex, province, join time — the events hold no
names). A sealed filing (`claim.filed` v2) names no member and holds only the month of diagnosis and of joining and
a 5-year age band: its card has those and no member, exact date or exact age (docs/privacy.md). A
period's disclosure document is built from it and the periods read model, from facts fixed once the period is
settled, as canonical JSON (RFC 8785): the same events always give the same bytes, so the hash a
`disclosure.published` event carries pins the document for good.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from ledger.errors import InputError
from ledger.projections.base import Applier, Projection
from ledger.projections.periods import Periods
from ledger.projections.sql import SqlCursor
from ledger.provinces import province_names
from ledger.rules import Rule
from ledger.sealing import age_band

DOCUMENT_FORMAT_V1 = "mutual-ledger/disclosure/v1"
DOCUMENT_FORMAT = "mutual-ledger/disclosure/v2"
"""The format new disclosures are published in (`disclosure.published` schema 2 names it). v2 cards add the
investigation firm (the public name of the party whose key signed `claim.investigated`), the province by its names
(zh-CN and English, `ledger.provinces`) and, for a claim filed in the clear, its diagnosis date; a sealed claim's
card keeps the coarse values only (age band, diagnosis month). A document published in v1 is rebuilt in v1."""
DOCUMENT_FORMATS = (DOCUMENT_FORMAT_V1, DOCUMENT_FORMAT)
CASE_COLUMNS = ("claim", "plan", "member", "category", "condition", "diagnosed_on", "age_at_diagnosis", "sex",
                "province", "joined_at", "filed_at", "opinion", "opinion_reason", "noticed_at", "notice_ends_at",
                "objections", "objections_upheld", "jury_requested", "votes", "support", "verdict", "decision",
                "decision_reason", "decision_basis", "decided_at", "approved_fen", "period", "period_number",
                "paid_fen", "arrears_deducted_fen", "paid_at", "diagnosed_month", "age_band", "joined_month",
                "investigator_key")


def mask(member: str) -> str:
    """A member pseudonym as a card shows it."""
    return member[:4] + "****"


class Cases(Projection):
    """The cases read model (see module docstring)."""

    NAME = "cases"
    TABLES = ("case_cards",)
    STREAM_LOCAL = True

    def schema(self) -> list[str]:
        """One card per claim."""
        self.card_table = self.t("case_cards")
        integer = {"age_at_diagnosis", "objections", "objections_upheld", "jury_requested", "votes", "support",
                   "approved_fen", "period_number", "paid_fen", "arrears_deducted_fen"}
        columns = ", ".join(f"{c} {'BIGINT' if c in integer else 'TEXT'}" + (" PRIMARY KEY" if c == "claim" else "")
                            for c in CASE_COLUMNS)
        return [
            f"CREATE TABLE IF NOT EXISTS {self.card_table} ({columns})",
            f"CREATE INDEX IF NOT EXISTS case_cards_member ON {self.card_table} (member)",
            f"CREATE INDEX IF NOT EXISTS case_cards_period ON {self.card_table} (period)",
        ]

    def appliers(self) -> dict[str, Applier]:
        """Every claim step."""
        return {
            "claim.filed": self._filed,
            "claim.investigated": self._investigated,
            "claim.noticed": self._noticed,
            "claim.objection_filed": self._objection,
            "claim.objection_resolved": self._resolved,
            "claim.jury_requested": self._jury,
            "claim.vote_cast": self._vote,
            "claim.jury_decided": self._verdict,
            "claim.approved": self._approved,
            "claim.rejected": self._rejected,
            "claim.included": self._included,
            "claim.paid": self._paid,
        }

    def _set(self, cursor: SqlCursor, claim: str, **values: Any) -> None:
        assignments = ", ".join(f"{k} = ?" for k in values)
        cursor.execute(f"UPDATE {self.card_table} SET {assignments} WHERE claim = ?", (*values.values(), claim))

    def _filed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        if e["schema"] == 1:
            coarse = (b["diagnosed_on"][:7], age_band(b["age_at_diagnosis"]), b["joined_at"][:7])
        else:  # sealed: the coarse values only
            coarse = (b["diagnosed_month"], b["age_band"], b["joined_month"])
        cursor.execute(f"INSERT INTO {self.card_table} (claim, plan, member, category, condition, diagnosed_on, "
                       "age_at_diagnosis, sex, province, joined_at, filed_at, objections, objections_upheld, "
                       "jury_requested, votes, support, decision, diagnosed_month, age_band, joined_month) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 'pending', ?, ?, ?)",
                       (e["stream"], b["plan"], b.get("member"), b["category"], b["condition"], b.get("diagnosed_on"),
                        b.get("age_at_diagnosis"), b["sex"], b["province"], b.get("joined_at"), e["at"], *coarse))

    def _investigated(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        self._set(cursor, e["stream"], opinion=e["body"]["opinion"], opinion_reason=e["body"]["reason"],
                  investigator_key=e["actor"]["key"])

    def _noticed(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        self._set(cursor, e["stream"], noticed_at=e["body"]["starts_at"], notice_ends_at=e["body"]["ends_at"])

    def _objection(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.card_table} SET objections = objections + 1 WHERE claim = ?", (e["stream"],))

    def _resolved(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        if e["body"]["upheld"]:
            cursor.execute(f"UPDATE {self.card_table} SET objections_upheld = objections_upheld + 1 WHERE claim = ?",
                           (e["stream"],))

    def _jury(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        self._set(cursor, e["stream"], jury_requested=1)

    def _vote(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        cursor.execute(f"UPDATE {self.card_table} SET votes = votes + 1, support = support + ? WHERE claim = ?",
                       (1 if e["body"]["support"] else 0, e["stream"]))

    def _verdict(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        self._set(cursor, e["stream"], verdict=e["body"]["verdict"])

    def _approved(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        self._set(cursor, e["stream"], decision="approved", decision_basis=b["basis"], decided_at=e["at"],
                  approved_fen=b["amount_fen"])

    def _rejected(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        self._set(cursor, e["stream"], decision="rejected", decision_reason=b["reason"], decision_basis=b["basis"],
                  decided_at=e["at"])

    def _included(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        self._set(cursor, e["stream"], period=e["body"]["period"], period_number=e["body"]["period_number"])

    def _paid(self, cursor: SqlCursor, e: dict[str, Any]) -> None:
        b = e["body"]
        self._set(cursor, e["stream"], paid_fen=b["amount_fen"], arrears_deducted_fen=b["arrears_deducted_fen"],
                  paid_at=e["at"])

    # -- reading -----------------------------------------------------------------------------------------

    def cards(self, where: str = "", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Case rows matching a condition."""
        with self.sql.transaction(commit=False) as cursor:
            rows = cursor.execute(f"SELECT {', '.join(CASE_COLUMNS)} FROM {self.card_table} "
                                  f"{'WHERE ' + where if where else ''} ORDER BY claim", params).fetchall()
        return [dict(zip(CASE_COLUMNS, row, strict=True)) for row in rows]


def disclosure_document(period_id: str, periods: Periods, cases: Cases, failed: dict[str, set[str]],
                        document_format: str | None = None) -> dict[str, Any]:
    """A settled period's public disclosure, from facts fixed at settlement; `failed` maps member → periods whose
    debit for them is still failed (their share was not paid). In `document_format`, else in the format the period's
    disclosure was published in, else the current one (`DOCUMENT_FORMAT`)."""
    record = periods.record(period_id)
    if record is None:
        raise InputError("period", Rule.PERIOD_MUST_EXIST, period_id)
    chosen = document_format or (record["disclosure_format"] or DOCUMENT_FORMAT_V1 if record["disclosure_hash"]
                                 else DOCUMENT_FORMAT)
    assert chosen in DOCUMENT_FORMATS, chosen
    if record["status"] != "settled":
        raise InputError("period", Rule.PERIOD_MUST_BE_SETTLED_TO_BE_DISCLOSED, f"{period_id} is {record['status']}")
    history = [p for p in periods.all(record["plan"]) if p["share_fen"] is not None]
    counts = periods.case_counts(record["plan"])  # once, not once per card and period paid into
    funded = {c["claim"]: c for c in record["cases"]}
    cards = []
    for card in cases.cards("period = ?", (period_id,)):
        if card["member"] is None:
            cards.append(_v2_card(_sealed_card(card, funded, history, counts), card, periods, None)
                         if chosen == DOCUMENT_FORMAT else _sealed_card(card, funded, history, counts))
            continue
        diagnosed = card["diagnosed_on"]
        paid_into = [p for p in history if card["joined_at"] <= p["cutoff_at"] < diagnosed
                     and p["id"] not in failed.get(card["member"], set())]
        plain = {
            "case": card["claim"], "member": mask(card["member"]), "category": card["category"],
            "condition": card["condition"], "age_at_diagnosis": card["age_at_diagnosis"], "sex": card["sex"],
            "province": card["province"], "approved_fen": funded[card["claim"]]["approved_fen"],
            "aid_fen": funded[card["claim"]]["funded_fen"],
            "days_in_plan_at_diagnosis": (date.fromisoformat(diagnosed) - date.fromisoformat(card["joined_at"][:10])
                                          ).days,
            "helped_people": sum(counts.get(str(p["id"]), 0) for p in paid_into),
            "shared_fen": sum(int(p["share_fen"]) for p in paid_into),
            "decision_basis": card["decision_basis"], "objections": card["objections"],
            "jury_verdict": card["verdict"],
        }
        cards.append(_v2_card(plain, card, periods, diagnosed) if chosen == DOCUMENT_FORMAT else plain)
    return {
        "format": chosen, "plan": record["plan"], "period": period_id, "number": record["number"],
        "notice_on": record["notice_on"], "collection_on": record["collection_on"],
        "patients_helped": len(record["cases"]),
        "sharing_members_wan": f"{record['locked_members'] / 10_000:.2f}", "locked_members": record["locked_members"],
        "per_person_share_fen": record["share_fen"], "total_collected_fen": record["collected_fen"],
        "aid_fen": record["aid_fen"], "fee_fen": record["fee_fen"], "funded_aid_fen": record["funded_aid_fen"],
        "funded_fee_fen": record["funded_fee_fen"], "subsidy_fen": record["subsidy_fen"],
        "surplus_in_fen": record["surplus_in_fen"], "surplus_carried_fen": record["surplus_carried_fen"],
        "cap_applied": record["cap_applied"], "roll_root": record["roll_root"], "cases": cards,
    }


def _v2_card(shown: dict[str, Any], card: dict[str, Any], periods: Periods, diagnosed_on: str | None
             ) -> dict[str, Any]:
    """A card in format v2: the v1 card with the province by its names, the investigation firm, and the diagnosis
    date of a claim filed in the clear (`diagnosed_on`; None for a sealed claim, whose card shows the month)."""
    firm = None
    if card["investigator_key"] is not None:
        party = periods.party(str(card["investigator_key"]))
        firm = {"key_id": card["investigator_key"], "name": None if party is None else party[1]}
    extra: dict[str, Any] = {"province": province_names(str(card["province"])), "investigation_firm": firm}
    if diagnosed_on is not None:
        extra["diagnosed_on"] = diagnosed_on
    return {**shown, **extra}


def _sealed_card(card: dict[str, Any], funded: dict[str, Any], history: list[dict[str, Any]],
                 counts: dict[str, int]) -> dict[str, Any]:
    """The card of a sealed claim: coarse values only (no member, no exact date or age); the periods it counts as
    paid into are those whose cutoff month lies from the joining month up to before the diagnosis month."""
    paid_into = [p for p in history if card["joined_month"] <= p["cutoff_at"][:7] < card["diagnosed_month"]]
    return {
        "case": card["claim"], "member": None, "category": card["category"], "condition": card["condition"],
        "age_band": card["age_band"], "sex": card["sex"], "province": card["province"],
        "diagnosis_month": card["diagnosed_month"], "joined_month": card["joined_month"],
        "approved_fen": funded[card["claim"]]["approved_fen"], "aid_fen": funded[card["claim"]]["funded_fen"],
        "helped_people": sum(counts.get(str(p["id"]), 0) for p in paid_into),
        "shared_fen": sum(int(p["share_fen"]) for p in paid_into),
        "decision_basis": card["decision_basis"], "objections": card["objections"], "jury_verdict": card["verdict"],
    }


def yuan(fen: int | None) -> str:
    """Fen as yuan with two decimals and thousands separators."""
    if fen is None:
        return "-"
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _who(card: dict[str, Any]) -> str:
    """A card's masked member, or the case id of a sealed card (which names no member)."""
    return str(card["member"]) if card["member"] is not None else f"case {str(card['case'])[:8]}"


def _province(province: str | dict[str, str]) -> str:
    """A card's province: its names (v2), or the code of a v1 card."""
    return province if isinstance(province, str) else f"{province['zh-CN']} {province['en']}"


def _firm(firm: dict[str, Any]) -> str:
    """An investigation firm by its public name, or its key id when it registered none."""
    return str(firm["name"]) if firm["name"] else f"key {firm['key_id']}"


def render_disclosure(d: dict[str, Any]) -> str:
    """A disclosure document as people read the 公示: the period's terms, then one card per case."""
    lines = [f"公示 — period {d['number']} of plan {d['plan']} (notice day {d['notice_on']}, collection "
             f"{d['collection_on']}): {d['patients_helped']} patients helped, {d['sharing_members_wan']}万 sharing "
             f"members, {yuan(d['per_person_share_fen'])} yuan each, {yuan(d['total_collected_fen'])} yuan collected",
             f"  aid {yuan(d['aid_fen'])}, fee {yuan(d['fee_fen'])}, surplus in {yuan(d['surplus_in_fen'])}, "
             f"cap applied: {d['cap_applied']}, subsidy {yuan(d['subsidy_fen'])}, surplus carried "
             f"{yuan(d['surplus_carried_fen'])} yuan"]
    lines += [f"  {_who(c)}, {c['condition']}, {c.get('age_at_diagnosis', c.get('age_band'))} {c['sex']} "
              f"{_province(c['province'])}: aid {yuan(c['aid_fen'])} of {yuan(c['approved_fen'])} yuan approved "
              f"({c['decision_basis']}" + (f", jury {c['jury_verdict']}" if c["jury_verdict"] else "") + "); "
              + (f"{c['days_in_plan_at_diagnosis']} days in the plan" if "days_in_plan_at_diagnosis" in c
                 else f"joined {c['joined_month']}, diagnosed {c['diagnosis_month']}")
              + f", helped {c['helped_people']} people, shared {yuan(c['shared_fen'])} yuan"
              + (f"; investigated by {_firm(c['investigation_firm'])}" if c.get("investigation_firm") else "")
              for c in d["cases"]]
    return "\n".join(lines)
