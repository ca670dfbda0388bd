"""A member's own records: their 爱心账单, their proof bundle and their sealed values, only for requests signed with a
key the keyring holds for that member (`ledger.api.dependencies`) — the sealed values also for a custodian's or a
regulator's key. Any other signer gets the same 403, whether or not the member exists. Revealed values are in the
response only: nothing of them is stored or logged (a GET writes no receipt)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from ledger.api.dependencies import DENIED, Caller, caller, require_member, service
from ledger.api.problem import AccessDeniedError, problem_responses
from ledger.api.state import ServiceState
from ledger.cli.base import date_range, parse_date
from ledger.errors import InputError
from ledger.log.bundle import build_bundle
from ledger.projections.statements import statement
from ledger.reveal import REVEAL_ROLES, claimant_records, may_see, records_json, reveal_member, signed_entries
from ledger.rules import Rule
from schemas.api import Identity, ProofBundle, RevealedMember, Statement

router = APIRouter(prefix="/members/{member}", tags=["member"], responses=problem_responses(400, 401, 403, 404))
identity = APIRouter(tags=["member"], responses=problem_responses(401))
"""Who a key is, for any signer: how a page learns whose records to ask for once its key signs."""
State = Annotated[ServiceState, Depends(service)]
Signed = Annotated[Caller, Depends(caller)]
Since = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")]
Until = Annotated[str | None, Query(alias="to", description="YYYY-MM-DD")]


def revealed_for(state: ServiceState, who: Caller, member: str) -> dict[str, Any]:
    """Sealed personal fields of `member` opened for `who` (the member themself, by their own key), each checked
    against its commitment before it leaves the vault (`ledger.reveal`)."""
    may_see(state.ledger.app, who.key_id, member)
    return {"records": records_json(reveal_member(state.ledger.app, member))}


@router.get("/statement", response_model=Statement)
def member_statement(state: State, who: Signed, member: str,
                     year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
                     since: Since = None, until: Annotated[str | None, Query(alias="to",
                                                                         description="YYYY-MM-DD, exclusive")] = None
                     ) -> dict[str, Any]:
    """The member's 爱心账单: days in the plan, periods paid into, shared, people helped, top-ups, refunds, balance,
    claims — for a year, a date range of notice days, or the whole membership."""
    require_member(who, member)
    if year is not None and (since or until):
        raise InputError("year", Rule.YEAR_OR_DATE_RANGE_NOT_BOTH, "give year or from/to")
    start, end = (date(year, 1, 1), date(year + 1, 1, 1)) if year else date_range(since, until)
    result = statement(state.models, member, start, end, state.now(), state.ledger.app.vault.streams_of(member))
    return {**result, "revealed": revealed_for(state, who, member)}


@router.get("/bundle", response_model=ProofBundle)
def member_bundle(state: State, who: Signed, member: str, since: Since = None,
                  until: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive")] = None
                  ) -> dict[str, Any]:
    """The member's proof bundle against the latest published checkpoint: the same file `mutual-ledger log proof
    member` writes and `audit verify-bundle` checks offline."""
    require_member(who, member)
    start, end = parse_date("from", since), parse_date("to", until)
    if start and end and end < start:
        raise InputError("to", Rule.DATE_RANGE_MUST_NOT_BE_EMPTY, f"{until} is before {since}")
    return build_bundle(state.checkpoints, member, start, end, claimant_records(state.ledger.app, member))


@router.get("/revealed", response_model=RevealedMember)
def member_revealed(state: State, who: Signed, member: str) -> dict[str, Any]:
    """Every sealed value the member owns — the exact ages, dates and claimant of their events and claims — with
    its salt, for the member's own key, a custodian's or a regulator's (docs/privacy.md); each record is checked
    against the commitment on its signed event before it leaves the vault, and the events come with it. Empty
    once the member was erased (or for an id that names no member)."""
    if not (who.role in REVEAL_ROLES or (who.role == "member" and who.member == member)):
        raise AccessDeniedError(
            "keyid", Rule.SEALED_VALUES_ARE_REVEALED_ONLY_TO_THE_MEMBER_THE_CUSTODIAN_OR_THE_REGULATOR, DENIED)
    app = state.ledger.app
    may_see(app, who.key_id, member)
    records = reveal_member(app, member)
    entries = signed_entries(app, records)
    return {"records": records_json(records), "entries": [entries[key].decode() for key in sorted(entries)]}


@identity.get("/me", response_model=Identity)
def me(who: Signed) -> dict[str, Any]:
    """The keyring's facts about the key that signed this request: its id, its role and, for a member's key, the
    member."""
    return {"key_id": who.key_id, "role": who.role, "member": who.member}
