"""The "done when" scan of docs/privacy.md over a served demo store: every exported entry, every served tile of
entries (`/log/tile/entries/...`), every public page and every public API response holds no exact diagnosis date,
no exact age, no condition tied to a member beyond what the 公示 shows, and no claim id that maps to its claimant.

What is secret comes from the operator's vault (`ledger.reveal`): each member's age at joining and each sealed
claim's claimant, diagnosis date, age at diagnosis and joining instant. Each public document is checked as a
whole (a page, one list item, one log entry) and as JSON wherever it is JSON: no field that would carry an exact
value, no sealed claim beside its claimant's id, and no diagnosis date that falls on a day nothing public happens
(a date on which some event happens may appear as that event's date).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from ledger.anchors import TRUST_ANCHORS_FILE
from ledger.api.app import create_app, service_state
from ledger.api.log import PublicLog, log_router
from ledger.bootstrap import Ledger
from ledger.demo import run_demo
from ledger.envelope import parse_at
from ledger.log.tiles import TileAddress, TiledLog
from ledger.log.tree import WIDTH
from ledger.reveal import reveal_member
from ledger.store import decode_entry
from sim.services import serving
from tests.support import demo_ledger

EXACT_FIELDS = frozenset({"diagnosed_on", "age_at_diagnosis", "age_years", "joined_at",
                          "days_in_plan_at_diagnosis"})
"""Fields that would carry an exact personal value (sealed from the events' v2 bodies on)."""
PUBLIC_LISTS = ("/plans", "/cases", "/log/checkpoints", "/log/entries")
PAGES = ("/", "/member", "/custodian", "/regulator")


class Secrets:
    """What only the vault knows, from the demo's every member."""

    def __init__(self, app: Ledger) -> None:
        self.members: set[str] = set()
        self.claimants: dict[str, str] = {}
        """Sealed claim → the member who filed it."""
        self.diagnosed: dict[str, str] = {}
        """Sealed claim → its exact diagnosis date."""
        self.ages = 0
        for envelope in map(decode_entry, (entry for _, entry in app.entries())):
            if envelope.type == "member.joined":
                self.members.add(envelope.stream)
        for member in self.members:
            for record in reveal_member(app.app, member):
                if record.field == "member":
                    self.claimants[record.stream] = str(record.value)
                elif record.field == "diagnosed_on":
                    self.diagnosed[record.stream] = str(record.value)
                elif record.field in ("age_years", "age_at_diagnosis"):
                    self.ages += 1


def public_days(app: Ledger) -> set[str]:
    """Every day on which something public happens, in UTC and in plan time (an event's instant, a period's days):
    a diagnosis date on any of these may appear as that day."""
    days: set[str] = set()
    for envelope in map(decode_entry, (entry for _, entry in app.entries())):
        at = parse_at(envelope.at)
        days |= {at.date().isoformat(), (at + timedelta(hours=8)).date().isoformat()}
        days |= {str(value)[:10] for value in envelope.body.values()
                 if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and value[7:8] == "-"}
    return days


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair of a JSON document, at any depth."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key, inner
            yield from walk(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from walk(inner)


def entry_bundle(data: bytes) -> list[bytes]:
    """The entries of a served entry bundle, each prefixed by its big-endian uint16 length (C2SP tlog-tiles)."""
    entries, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack(">H", data[offset:offset + 2])
        entries.append(data[offset + 2:offset + 2 + size])
        offset += 2 + size
    return entries


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ledger, str]]:
    app = demo_ledger(tmp_path_factory.mktemp("scan") / "data")
    run_demo(app, members=120, periods=3, seed=5)
    app.read_models()
    app.checkpoints.publish(app.clock.now())
    public_log = PublicLog(TiledLog(app.log, app.checkpoints), app.checkpoints.verifier,
                           app.settings.data_dir / TRUST_ANCHORS_FILE)
    with serving(create_app(service_state(app), routers=[log_router(public_log)])) as base:
        yield app, base
    app.close()


def documents(app: Ledger, base: str) -> list[tuple[str, bytes]]:
    """Every public document of the served store, each as (where, bytes): exported entries one by one, the entries
    of every served tile one by one, every item of every public list, every other public API response, every
    public page."""
    found = [(f"export #{i}", entry) for i, (_, entry) in enumerate(app.entries())]
    size = app.checkpoints.log.size()
    for tile in range(size // WIDTH + 1):
        width = None if (tile + 1) * WIDTH <= size else size - tile * WIDTH
        if width == 0:
            continue
        path = TileAddress(None, tile, width).path()
        answer = httpx.get(f"{base}/log/{path}")
        assert answer.status_code == 200, path
        found += [(f"{path} #{i}", entry) for i, entry in enumerate(entry_bundle(answer.content))]
    api = f"{base}/api/v1"
    for path in PUBLIC_LISTS:
        cursor: str | None = None
        while True:
            page = httpx.get(api + path, params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
            found += [(f"{path} item", json.dumps(item).encode()) for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
    plans = [p["id"] for p in httpx.get(f"{api}/plans").json()["items"]]
    periods = [p["id"] for plan in plans for p in httpx.get(f"{api}/plans/{plan}/periods",
                                                                   params={"limit": 500}).json()["items"]]
    paths = [*(f"/plans/{plan}" for plan in plans), *(f"/plans/{plan}/shares" for plan in plans),
             *(f"/periods/{period}" for period in periods), "/metrics", "/log/checkpoint"]
    found += [(path, httpx.get(api + path).content) for path in paths]
    for period in periods:
        disclosure = httpx.get(f"{api}/periods/{period}/disclosure")
        if disclosure.status_code == 200:
            found += [(f"disclosure {period} card", json.dumps(card).encode())
                      for card in disclosure.json()["document"]["cases"]]
    pages = [*PAGES, *(f"/plans/{plan}" for plan in plans), *(f"/periods/{period}" for period in periods)]
    found += [(f"page {path}", httpx.get(base + path).content) for path in pages]
    return found


def problems_in(found: list[tuple[str, bytes]], secrets: Secrets, hidden_days: dict[str, str]) -> list[str]:
    """What each public document shows that it must not (module docstring)."""
    problems = []
    for where, data in found:
        text = data.decode("utf-8")
        problems += [f"{where}: diagnosis date {day} of {claim}" for claim, day in hidden_days.items()
                     if day in text]
        problems += [f"{where}: sealed claim {claim} beside its claimant" for claim, member in
                     secrets.claimants.items() if claim in text and (member in text or member[:4] + "****" in text)]
        try:
            document = json.loads(data)
        except ValueError:
            continue  # a page: checked as text above
        problems += [f"{where}: field {key}" for key, value in walk(document)
                     if key in EXACT_FIELDS and value is not None]
        problems += [f"{where}: a condition beside member {value}" for key, value in walk(document)
                     if key == "member" and value is not None and "condition" in text]
    return problems


def test_a_served_demo_store_shows_no_exact_date_or_age_and_ties_no_sealed_claim_to_its_member(
        served: tuple[Ledger, str]) -> None:
    app, base = served
    secrets = Secrets(app)
    assert len(secrets.claimants) >= 5 and secrets.ages > 100  # the demo sealed claims and every member's age
    hidden_days = {claim: day for claim, day in secrets.diagnosed.items() if day not in public_days(app)}
    assert hidden_days, "some diagnosis falls on a day nothing public happens"
    found = documents(app, base)
    assert len(found) > 2 * len(list(app.entries())) + 20
    assert problems_in(found, secrets, hidden_days) == []


def test_the_scan_finds_each_thing_it_looks_for(served: tuple[Ledger, str]) -> None:
    app, _ = served
    secrets = Secrets(app)
    claim, member = next(iter(secrets.claimants.items()))
    day = secrets.diagnosed[claim]
    leaks = [("a card naming its claimant", json.dumps({"claim": claim, "member": member[:4] + "****"}).encode()),
             ("a page with the exact date", f"<p>{day}</p>".encode()),
             ("an exact age", json.dumps({"age_years": 41}).encode()),
             ("a condition beside a member", json.dumps({"member": "m", "condition": "x"}).encode())]
    found = problems_in(leaks, secrets, {claim: day})
    assert [problem.split(":")[0] for problem in found] == [where for where, _ in leaks]
    assert entry_bundle(struct.pack(">H", 3) + b"abc" + struct.pack(">H", 2) + b"de") == [b"abc", b"de"]
