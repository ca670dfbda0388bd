"""The sharing formula (docs/design.md, "Sharing a period" — a contract) and the assessment roll.

    aid   = Σ approved amounts of the period's cases
    fee   = floor(aid × fee_bps / 10000)
    need  = aid + fee − surplus_in
    share = ceil(need / locked)                     (0 when need ≤ 0 or nobody is locked)
            then capped: per case (per_case_cap × cases) and by what the annual cap leaves
    raised = share × locked                         (schema 1-2: a plan-wide annual cap)
    raised = Σ min(share, cap left to the member)   (schema 3: the annual cap per member)

Under schema 3 the share is capped per case only; each locked member is charged the share or, when less, what
their own charges of the plan year leave of the annual cap (`member_charge`), and `raised` is the sum of the
charges. What a member is not charged is an excess like the plan-wide cap's was, handled by the excess policy.

What the caps cut off follows the plan's excess policy:

- `operator_pays`: subsidy = max(0, need − raised) from the operator; every case and the fee are funded in full.
- an operator-funded period (docs/plans.md, "The end of a plan"): share 0, subsidy = max(0, need), every case and
  the fee funded in full, whatever the policy.
- `pro_rata`: no subsidy; the money available (raised + surplus_in) is split in proportion to the approved amounts
  and the fee, each part rounded down (floor); the remainder fen of that rounding stays in the surplus.

    surplus_out = raised + subsidy + surplus_in − funded_aid − funded_fee

Money is conserved exactly: raised + subsidy + surplus_in = funded_aid + funded_fee + surplus_out. The funded
amounts are what the period would pay if every debit succeeded; what it pays is fixed at settlement, from the money
actually held (`settle`, docs/plans.md "Money held"):

    available = collected + subsidy + surplus_in + advance        (collected = raised − uncollected)
    aid first: each case gets its funded amount when available covers the funded aid, else floor(available ×
    funded / funded_aid); the fee gets what is left, up to the funded fee; the rest is carried on, never negative.

surplus_in (period.assessed schema 2) is the sum of the surpluses carried by the plan's settlements recorded since
the previous period's assessment, so it is money held, never a promise.

The roll: one leaf per locked member, `JCS({"period": P, "member": M, "amount": share})`, sorted
by member id (equal to sorting the leaf bytes, since only the member differs), hashed as an RFC 9162 tree.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.canonical import canonical_bytes
from ledger.log.merkle import MerkleFold

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Case:
    """An approved claim in the period and what the assessment funds of it."""

    claim: str
    approved_fen: int
    funded_fen: int = 0


@dataclass(frozen=True)
class Assessment:
    """Every term of the formula for one period."""

    locked_members: int
    cases: tuple[Case, ...]
    aid_fen: int
    fee_bps: int
    fee_fen: int
    surplus_in_fen: int
    need_fen: int
    uncapped_share_fen: int
    per_case_cap_fen: int
    annual_cap_remaining_fen: int
    cap_applied: str
    share_fen: int
    excess_policy: str
    subsidy_fen: int
    funded_aid_fen: int
    funded_fee_fen: int
    surplus_out_fen: int
    charged_fen: int
    """The sum of the members' charges: what the shares raise if every debit succeeds."""
    members_capped: int
    """Members charged less than the share by their own annual cap (schema 3)."""

    @property
    def raised_fen(self) -> int:
        """What the shares raise if every debit succeeds."""
        return self.charged_fen


def member_charge(share_fen: int, annual_cap_fen: int, charged_this_year_fen: int) -> int:
    """What one locked member is charged (schema 3): the share, or what their own charges of the plan year leave of
    the annual cap when that is less."""
    return min(share_fen, max(0, annual_cap_fen - charged_this_year_fen))


def raised_of(assessment: Mapping[str, Any]) -> int:
    """What an assessment's shares raise if every debit succeeds, from its body (as JSON): the sum of the charges
    (schema 3), else share × locked."""
    charged = assessment.get("charged_fen")
    return int(charged) if charged is not None else int(assessment["share_fen"]) * int(assessment["locked_members"])


def ceil_div(numerator: int, denominator: int) -> int:
    """⌈numerator / denominator⌉ in integers (denominator > 0)."""
    return -(-numerator // denominator)


def assess(
    locked_members: int,
    cases: Sequence[tuple[str, int]],
    fee_bps: int,
    surplus_in_fen: int,
    per_case_cap_fen: int,
    annual_cap_remaining_fen: int,
    excess_policy: str,
    operator_funded: bool = False,
    charged_this_year: Sequence[int] | None = None,
    charged: tuple[int, int] | None = None,
) -> Assessment:
    """Apply the formula (module docstring) to a period's locked count and approved cases (claim, amount). When the
    operator funds the period (its announced final periods, a tail period after the end) members are charged 0 and
    the subsidy is everything the period needs: `uncapped_share` still shows what members would have paid.

    With `charged_this_year` (schema 3: one entry per locked member, what they were charged earlier in the plan
    year) the annual cap `annual_cap_remaining_fen` is each member's, not the plan's. A verifier who cannot see the
    other members' charges (a member's bundle) passes `charged` instead: (charged_fen, members_capped) as signed,
    checked against the bounds by `charges_problem`."""
    per_member = charged_this_year is not None or charged is not None
    assert charged_this_year is None or len(charged_this_year) == locked_members
    assert locked_members >= 0 and fee_bps >= 0 and per_case_cap_fen >= 0 and annual_cap_remaining_fen >= 0
    assert excess_policy in ("operator_pays", "pro_rata"), excess_policy
    aid = sum(amount for _, amount in cases)
    fee = aid * fee_bps // 10_000
    need = aid + fee - surplus_in_fen
    uncapped = ceil_div(need, locked_members) if need > 0 and locked_members > 0 else 0
    case_limit = per_case_cap_fen * len(cases)
    share, cap_applied = uncapped, "none"
    if operator_funded:
        share = 0
    if share > case_limit:
        share, cap_applied = case_limit, "per_case"
    capped = 0
    if per_member:
        if charged_this_year is not None:
            charges = [member_charge(share, annual_cap_remaining_fen, before) for before in charged_this_year]
            raised, capped = sum(charges), sum(charge < share for charge in charges)
        else:
            assert charged is not None
            raised, capped = charged
        if capped and cap_applied == "none":
            cap_applied = "annual"
    else:
        if share > annual_cap_remaining_fen:
            share, cap_applied = annual_cap_remaining_fen, "annual"
        raised = share * locked_members
    subsidy = 0
    if operator_funded or excess_policy == "operator_pays" or raised + surplus_in_fen >= aid + fee or aid + fee == 0:
        subsidy = max(0, need - raised) if operator_funded or excess_policy == "operator_pays" else 0
        funded = [Case(claim, amount, amount) for claim, amount in cases]
        funded_fee = fee
    else:
        available = max(0, raised + surplus_in_fen)
        total = aid + fee
        funded = [Case(claim, amount, available * amount // total) for claim, amount in cases]
        funded_fee = available * fee // total
    funded_aid = sum(case.funded_fen for case in funded)
    surplus_out = raised + subsidy + surplus_in_fen - funded_aid - funded_fee
    return Assessment(
        locked_members=locked_members, cases=tuple(funded), aid_fen=aid, fee_bps=fee_bps, fee_fen=fee,
        surplus_in_fen=surplus_in_fen, need_fen=need, uncapped_share_fen=uncapped, per_case_cap_fen=per_case_cap_fen,
        annual_cap_remaining_fen=annual_cap_remaining_fen, cap_applied=cap_applied, share_fen=share,
        excess_policy=excess_policy, subsidy_fen=subsidy, funded_aid_fen=funded_aid, funded_fee_fen=funded_fee,
        surplus_out_fen=surplus_out, charged_fen=raised, members_capped=capped,
    )


def charges_problem(share_fen: int, locked_members: int, charged_fen: int, members_capped: int) -> str | None:
    """What makes a signed sum of charges impossible (schema 3), or None: each member is charged the share but the
    capped ones, who are charged less (0 up to share − 1)."""
    if not 0 <= members_capped <= locked_members or (share_fen == 0 and members_capped):
        return f"members_capped {members_capped} is not between 0 and the {locked_members} locked (0 at a 0 share)"
    low, high = share_fen * (locked_members - members_capped), share_fen * locked_members - members_capped
    if not low <= charged_fen <= high:
        return f"charged_fen {charged_fen} is not between {low} and {high}"
    return None


def year_charges(periods: Iterable[tuple[int, int, int]]) -> list[int]:
    """A member's own charge in each of their periods, in cutoff order, from (plan year, share, annual cap or -1)
    of each: the share, or under schema 3 (a cap ≥ 0) what the member's earlier charges of that plan year leave of
    the annual cap when that is less. What a member's bundle verifier recomputes (`audit.bundle`, bundle.js)."""
    totals: dict[int, int] = {}
    found = []
    for year, share, cap in periods:
        charge = share if cap < 0 else member_charge(share, cap, totals.get(year, 0))
        totals[year] = totals.get(year, 0) + charge
        found.append(charge)
    return found


@dataclass(frozen=True)
class Settlement:
    """What a period pays once collection is known (module docstring)."""

    collected_fen: int
    uncollected_fen: int
    advance_fen: int
    available_fen: int
    owed_fen: int
    shortfall_fen: int
    payable: tuple[tuple[str, int], ...]
    """(claim, payable fen) in the assessment's case order."""
    fee_payable_fen: int
    surplus_carried_fen: int


def settle(cases: Sequence[tuple[str, int]], funded_fee_fen: int, raised_fen: int, subsidy_fen: int,
           surplus_in_fen: int, uncollected_fen: int, advance_fen: int) -> Settlement:
    """Size the payouts of a period from what it holds: `cases` are (claim, funded fen); aid before the fee."""
    assert 0 <= uncollected_fen <= raised_fen and subsidy_fen >= 0 and surplus_in_fen >= 0 and advance_fen >= 0
    collected = raised_fen - uncollected_fen
    available = collected + subsidy_fen + surplus_in_fen + advance_fen
    funded_aid = sum(amount for _, amount in cases)
    owed = funded_aid + funded_fee_fen
    if available >= funded_aid:
        payable = tuple((claim, amount) for claim, amount in cases)
        fee = min(funded_fee_fen, available - funded_aid)
    else:
        payable = tuple((claim, available * amount // funded_aid) for claim, amount in cases)
        fee = 0
    carried = available - sum(amount for _, amount in payable) - fee
    assert carried >= 0
    return Settlement(collected_fen=collected, uncollected_fen=uncollected_fen, advance_fen=advance_fen,
                      available_fen=available, owed_fen=owed, shortfall_fen=max(0, owed - available),
                      payable=payable, fee_payable_fen=fee, surplus_carried_fen=carried)


def roll_leaf(period: str, member: str, amount_fen: int) -> bytes:
    """One assessment-roll entry: the JCS bytes of {"period", "member", "amount"}."""
    return canonical_bytes({"period": period, "member": member, "amount": amount_fen})


def roll_leaf_hashes(period: str, members: Iterable[str], amount_fen: int) -> list[bytes]:
    """Leaf hashes of the roll, for members already sorted by id.

    Ids are lowercase UUIDs (schema-checked), which JCS leaves unescaped, so the leaf is assembled from fixed
    parts; `roll_leaf` is the reference and a test holds them equal.
    """
    assert _UUID.fullmatch(period), period
    head = b'\x00{"amount":' + str(amount_fen).encode() + b',"member":"'
    tail = b'","period":"' + period.encode() + b'"}'
    sha256 = hashlib.sha256
    batch = members if isinstance(members, list) else list(members)
    assert set(map(len, batch)) <= {36}, batch
    return [sha256(head + member.encode() + tail).digest() for member in batch]


def roll_root(period: str, sorted_members: Sequence[str], amount_fen: int) -> bytes:
    """The RFC 9162 root over the period's sorted roll."""
    return streamed_roll(period, [sorted_members], amount_fen)[0]


def streamed_roll(period: str, sorted_batches: Iterable[Sequence[str]], amount_fen: int) -> tuple[bytes, int]:
    """The roll's root and size over members given in batches, sorted by id across them: hashed and folded as they
    come, so that a roll of millions is never held (one batch and O(log n) subtree hashes are)."""
    fold = MerkleFold()
    last = ""
    for batch in sorted_batches:
        if batch:
            assert last < batch[0] and all(map(operator.lt, batch, itertools.islice(batch, 1, None))), (
                "members must be sorted")
            last = batch[-1]
            fold.extend(roll_leaf_hashes(period, batch, amount_fen))
    return fold.root(), fold.size
