"""The sharing formula (docs/design.md contract) on hand-computed cases, asserted to the fen, and its money laws."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import canonical_bytes
from ledger.log.merkle import leaf_hash, mth
from ledger.sharing import assess, roll_leaf, roll_leaf_hashes, roll_root

UNCAPPED = 10**12


def test_plain_period_rounds_the_share_up_and_carries_the_surplus() -> None:
    # aid 300,000 yuan, fee 8% = 24,000 yuan; 1,000,003 members: 32,400,000 / 1,000,003 = 32.39990... -> 33 fen
    a = assess(1_000_003, [("c1", 30_000_000)], 800, 0, UNCAPPED, UNCAPPED, "operator_pays")
    assert (a.aid_fen, a.fee_fen, a.need_fen, a.uncapped_share_fen, a.share_fen) == (
        30_000_000, 2_400_000, 32_400_000, 33, 33)
    assert a.cap_applied == "none" and a.subsidy_fen == 0
    assert a.surplus_out_fen == 33 * 1_000_003 - 32_400_000 == 600_099
    assert a.funded_aid_fen == 30_000_000 and a.funded_fee_fen == 2_400_000


def test_fee_rounds_down() -> None:
    a = assess(10, [("c1", 12_345)], 800, 0, UNCAPPED, UNCAPPED, "operator_pays")
    assert a.fee_fen == 987  # 12,345 x 0.08 = 987.6
    assert a.share_fen == 1334  # ceil(13,332 / 10)


def test_surplus_in_reduces_the_need() -> None:
    a = assess(100, [("c1", 10_000)], 800, 600, UNCAPPED, UNCAPPED, "operator_pays")
    assert a.need_fen == 10_800 - 600 == 10_200
    assert a.share_fen == 102 and a.surplus_out_fen == 0


def test_a_surplus_larger_than_the_need_charges_nothing() -> None:
    a = assess(100, [("c1", 1_000)], 800, 5_000, UNCAPPED, UNCAPPED, "pro_rata")
    assert (a.need_fen, a.share_fen, a.surplus_out_fen) == (-3_920, 0, 3_920)
    assert a.cases[0].funded_fen == 1_000


def test_per_case_cap_with_operator_pays() -> None:
    # 2 cases, 10 fen per case per member: at most 20 fen; 1,000 members raise 20,000 fen
    a = assess(1_000, [("c1", 30_000_000), ("c2", 10_000_000)], 800, 0, 10, UNCAPPED, "operator_pays")
    assert a.uncapped_share_fen == 43_200 and a.share_fen == 20 and a.cap_applied == "per_case"
    assert a.subsidy_fen == 43_200_000 - 20_000
    assert a.surplus_out_fen == 0
    assert [c.funded_fen for c in a.cases] == [30_000_000, 10_000_000]


def test_annual_cap_binds_before_the_per_case_cap() -> None:
    a = assess(1_000, [("c1", 30_000_000)], 800, 0, 10, 7, "operator_pays")
    assert a.share_fen == 7 and a.cap_applied == "annual"
    assert a.subsidy_fen == 32_400_000 - 7_000


def test_pro_rata_shrinks_every_payout_and_keeps_the_rounding_fen() -> None:
    # 3 members x 100 fen = 300 available for aid 1,000 + 333 + fee 8% (106): total 1,439
    a = assess(3, [("c1", 1_000), ("c2", 333)], 800, 0, 50, UNCAPPED, "pro_rata")
    assert a.share_fen == 100 and a.cap_applied == "per_case" and a.subsidy_fen == 0
    assert [c.funded_fen for c in a.cases] == [300 * 1_000 // 1_439, 300 * 333 // 1_439] == [208, 69]
    assert a.funded_fee_fen == 300 * 106 // 1_439 == 22
    assert a.surplus_out_fen == 300 - 208 - 69 - 22 == 1


def test_pro_rata_with_a_deficit_carried_in() -> None:
    a = assess(10, [("c1", 10_000)], 0, -5_000, 100, UNCAPPED, "pro_rata")
    # raised 1,000, deficit 5,000: nothing to fund, the deficit carries on less what was raised
    assert a.share_fen == 100 and a.funded_aid_fen == 0 and a.surplus_out_fen == -4_000


def test_no_members_and_no_cases() -> None:
    a = assess(0, [], 800, 0, 10, 100, "operator_pays")
    assert a.share_fen == 0 and a.surplus_out_fen == 0 and a.subsidy_fen == 0


cases = st.lists(st.integers(1, 30_000_000), max_size=6).map(lambda amounts: [(f"c{i}", a) for i, a in
                                                                               enumerate(amounts)])


@given(st.integers(0, 2_000_000), cases, st.integers(0, 10_000), st.integers(-10**7, 10**7),
       st.integers(0, 1000), st.integers(0, 20_000), st.sampled_from(["operator_pays", "pro_rata"]))
def test_money_is_conserved_and_caps_hold(locked: int, approved: list[tuple[str, int]], fee_bps: int,
                                          surplus_in: int, per_case: int, annual: int, policy: str) -> None:
    a = assess(locked, approved, fee_bps, surplus_in, per_case, annual, policy)
    raised = a.share_fen * locked
    assert raised + a.subsidy_fen + surplus_in == a.funded_aid_fen + a.funded_fee_fen + a.surplus_out_fen
    assert a.share_fen <= max(0, a.uncapped_share_fen)
    assert a.share_fen <= per_case * len(approved) and a.share_fen <= annual
    assert all(0 <= c.funded_fen <= c.approved_fen for c in a.cases)
    assert a.funded_fee_fen <= a.fee_fen
    if policy == "operator_pays":
        assert a.funded_aid_fen == a.aid_fen and a.surplus_out_fen >= 0
    else:
        assert a.subsidy_fen == 0
        if a.funded_aid_fen + a.funded_fee_fen < a.aid_fen + a.fee_fen and raised + surplus_in > 0:
            # shrunk pro rata: only the floor remainders stay, under one fen per case and one for the fee
            assert 0 <= a.surplus_out_fen <= len(approved)
    if surplus_in >= 0:
        assert a.surplus_out_fen >= 0
    else:
        assert a.surplus_out_fen >= min(0, raised + surplus_in)  # a deficit only shrinks
    if a.cap_applied == "none" and locked > 0:
        assert a.surplus_out_fen >= 0 and a.surplus_out_fen < max(locked, 1) + max(0, -a.need_fen) + 1


def test_roll_leaves_are_the_jcs_bytes_and_the_root_is_rfc9162() -> None:
    period = str(uuid.uuid4())
    members = sorted(str(uuid.uuid4()) for _ in range(37))
    leaves = [roll_leaf(period, m, 42) for m in members]
    assert leaves[0] == canonical_bytes({"period": period, "member": members[0], "amount": 42})
    assert leaves[0].startswith(b'{"amount":42,"member":"')
    assert roll_leaf_hashes(period, members, 42) == [leaf_hash(leaf) for leaf in leaves]
    assert roll_root(period, members, 42) == mth(leaves)
