"""What a reading process keeps for members' bundles — the rolls' tiles, right edges and last chunks' roots
(`ledger.log.index.RollCache`), the log's composed range hashes (`TransparencyLog.inclusion_proofs`) — changes no
bundle: a bundle built from them is the bundle built from storage alone, before and after the log grows and a new
roll is written; and a wrong value kept there makes a bundle the offline checker rejects."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from audit.bundle import BundleError, verify_bundle
from ledger.application import SimulatedClock
from ledger.bootstrap import Ledger
from ledger.demo import DEMO_START, run_demo
from ledger.envelope import parse_at
from ledger.log.bundle import build_bundle
from ledger.log.index import LogIndex, RollCache
from ledger.service import ledger_with_parties
from schemas.commands.period import AssessPeriod, OpenPeriod


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, str, list[str]]:
    """A demo ledger whose rolls span two chunks (the last partial), its postpaid plan open, a checkpoint published;
    two postpaid members locked in both periods: one in the first chunk of both rolls (their proofs compose the
    last chunk's root, kept), one in the last (their proofs take the first chunk's root from a tile, kept)."""
    ledger = ledger_with_parties(tmp_path_factory.mktemp("caches"), SimulatedClock(DEMO_START))
    summary = run_demo(ledger, members=700, periods=2, seed=2, endings=False)
    ledger.checkpoints.publish(ledger.clock.now())
    plan = summary.plans["postpaid"]
    assert all(a.roll_size > 256 for a in index_of(ledger).plan_assessments(plan, ledger.log.size()))
    chosen: dict[bool, str] = {}
    for _, entry in ledger.entries():
        envelope = json.loads(entry)
        if envelope["type"] == "member.joined" and envelope["body"]["plan"] == plan:
            leaves = [roll["leaf_index"] for roll in build_bundle(ledger.checkpoints, envelope["stream"])["rolls"]]
            if len(leaves) == 2 and (leaves[0] < 256) == (leaves[1] < 256):
                chosen.setdefault(leaves[0] < 256, envelope["stream"])
        if len(chosen) == 2:
            return ledger, plan, [chosen[True], chosen[False]]
    raise AssertionError("no such members")


def index_of(ledger: Ledger) -> LogIndex:
    index = ledger.log.index
    assert index is not None
    return index


def cold(ledger: Ledger, member: str) -> dict[str, Any]:
    """The bundle from storage alone: nothing kept before, nothing kept after."""
    index_of(ledger).rolls.clear()
    ledger.log._proved.clear()
    ledger.log.clear_cache()
    bundle = build_bundle(ledger.checkpoints, member)
    index_of(ledger).rolls.clear()
    ledger.log._proved.clear()
    return bundle


def check(ledger: Ledger, bundle: dict[str, Any]) -> None:
    verify_bundle(bundle, ledger.checkpoints.verifier, [])


def test_kept_values_make_the_bundle_storage_makes(history: tuple[Ledger, str, list[str]]) -> None:
    ledger, _, members = history
    fresh = {member: cold(ledger, member) for member in members}
    for bundle in fresh.values():
        check(ledger, bundle)
    for member in members:
        build_bundle(ledger.checkpoints, member)
    rolls = index_of(ledger).rolls
    assert rolls.tiles and all(roll.edge for roll in rolls.rolls.values()) and ledger.log._proved  # kept
    assert {member: build_bundle(ledger.checkpoints, member) for member in members} == fresh


def test_threads_sharing_a_small_cache_make_the_bundles_storage_makes(history: tuple[Ledger, str, list[str]]) -> None:
    """The service builds bundles in several threads over one log: with a cache too small for one roll's tiles,
    each thread's proofs hold what they read while the others drop it."""
    ledger, _, members = history
    fresh = {member: cold(ledger, member) for member in members}
    index = index_of(ledger)
    index.rolls = RollCache(limit=1)
    try:
        with ThreadPoolExecutor(8) as pool:
            built = list(pool.map(lambda member: (member, build_bundle(ledger.checkpoints, member)), members * 16))
    finally:
        index.rolls = RollCache()
    assert all(bundle == fresh[member] for member, bundle in built)


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def poison_tiles(ledger: Ledger) -> None:
    tiles = index_of(ledger).rolls.tiles
    for key in list(tiles):
        tiles[key] = flip(tiles[key])  # the node a proof slices from it is the tile's first hash, or another


def poison_edges(ledger: Ledger) -> None:
    for roll in index_of(ledger).rolls.rolls.values():
        roll.edge.update({key: flip(value) for key, value in roll.edge.items()})


def poison_log(ledger: Ledger) -> None:
    proved = ledger.log._proved
    proved.update({key: flip(value) for key, value in proved.items()})


@pytest.mark.parametrize(("poison", "first_chunk", "step"), [
    (poison_tiles, False, "roll.inclusion"), (poison_edges, True, "roll.inclusion"),
    (poison_log, True, "event.inclusion")])
def test_a_wrong_kept_value_makes_a_bundle_the_checker_rejects(history: tuple[Ledger, str, list[str]],
                                                               poison: Callable[[Ledger], None], first_chunk: bool,
                                                               step: str) -> None:
    ledger, _, members = history
    member = members[0 if first_chunk else 1]
    fresh = cold(ledger, member)
    build_bundle(ledger.checkpoints, member)  # kept
    poison(ledger)
    with pytest.raises(BundleError) as rejected:
        check(ledger, build_bundle(ledger.checkpoints, member))
    assert rejected.value.step == step
    assert cold(ledger, member) == fresh  # storage was never touched


def test_what_is_kept_stays_right_as_the_log_grows(history: tuple[Ledger, str, list[str]]) -> None:
    """A range's hash is kept only once its leaves are integrated and a roll only once it is written: after new
    entries, a new period's roll and a new checkpoint, the bundle built with what was kept is the one from
    storage, and it proves the new period too."""
    ledger, plan, members = history
    for member in members:
        build_bundle(ledger.checkpoints, member)  # kept at the first checkpoint
    opened = ledger.execute(OpenPeriod(command_id="open-grown", plan=plan, number=3))
    clock = ledger.clock
    assert isinstance(clock, SimulatedClock)
    clock.set(max(clock.now(), parse_at(str(opened["cutoff_at"])) + timedelta(hours=1)))
    ledger.read_models()
    ledger.execute(AssessPeriod(command_id="assess-grown", period=str(opened["period"])))
    ledger.checkpoints.publish(clock.now())
    for member in members:
        grown = build_bundle(ledger.checkpoints, member)
        assert len(grown["rolls"]) == 3
        check(ledger, grown)
        assert grown == cold(ledger, member)
