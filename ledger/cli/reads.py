"""The read commands: plans, periods, disclosures, a member's statement, the fund journal, the regulator's metrics.

They only read: the read models as the writes left them (every write command brings them up to date, and so do the
service and the consumers); when they are behind the store, the output says so — nothing is caught up here.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, date
from pathlib import Path
from typing import Any

import click

from ledger.aggregates.disclosure import Disclosure, disclosure_id
from ledger.canonical import canonical_bytes, document_digest
from ledger.cli.base import context, date_range, emit, json_option, parse_id, write_file
from ledger.cli.refs import period_ref, plan_ref
from ledger.errors import InputError, VerificationError
from ledger.projections import ReadModels
from ledger.projections.cases import disclosure_document, render_disclosure, yuan
from ledger.projections.metrics import metrics
from ledger.projections.statements import render, statement
from ledger.reveal import may_see, records_json, reveal_member
from ledger.rules import Rule


def models() -> ReadModels:
    """The operator's read models as they are (a read never writes), with a warning on stderr when behind."""
    ledger = context().ledger()
    read = ledger.read_models(catch_up=False)
    last = ledger.app.recorder.max_notification_id() or 0
    behind = last - min(read.status().values())
    if behind > 0:
        click.echo(f"warning: the read models are {behind} events behind the store; run `mutual-ledger "
                   "projections catch-up`", err=True)
    return read


# -- plans ---------------------------------------------------------------------------------------------------


@click.command("list")
@json_option
def plan_list() -> None:
    """Every plan: id, name, kind, status, current rules version, payment model."""
    plans = models().periods.plans_list()
    emit(plans, "\n".join(f"{p['id']}  {p['name']}  ({p['kind']}, {p['payment_model']}, rules v{p['rules_version']}, "
                          f"{p['status']})" for p in plans) or "no plans")


@click.command("show")
@click.argument("plan")
@json_option
def plan_show(plan: str) -> None:
    """A plan (by id or name) with its periods."""
    read = models()
    plan_id = plan_ref(read.periods, "plan", plan)
    record = next(p for p in read.periods.plans_list() if p["id"] == plan_id)
    periods = read.periods.all(plan_id)
    data = {**record, "periods": [_period_line(p) for p in periods]}
    emit(data)


def _period_line(p: dict[str, Any]) -> dict[str, Any]:
    return {"id": p["id"], "number": p["number"], "notice_on": p["notice_on"], "status": p["status"],
            "locked_members": p["locked_members"], "share_fen": p["share_fen"]}


# -- periods -------------------------------------------------------------------------------------------------


@click.command("list")
@click.option("--plan", default=None, help="A plan's id or name (default: every plan).")
@json_option
def period_list(plan: str | None) -> None:
    """Every period: id, plan, number, notice day, status, members locked, per-person share."""
    read = models()
    plan_id = plan_ref(read.periods, "plan", plan) if plan else None
    rows = [_period_line({**p}) | {"plan": p["plan"]} for p in read.periods.all(plan_id)]
    emit(rows, "\n".join(f"{r['id']}  plan {r['plan'][:8]} #{r['number']}  notice day {r['notice_on']}  "
                         f"{r['status']}" + (f"  {r['locked_members']:,} members, share {yuan(r['share_fen'])} yuan"
                                             if r["share_fen"] is not None else "") for r in rows) or "no periods")


@click.command("show")
@click.argument("period")
@json_option
def period_show(period: str) -> None:
    """Every term of a period's assessment, its collection and settlement (PERIOD: id or PLAN:NUMBER)."""
    read = models()
    record = read.periods.record(period_ref(read.periods, "period", period))
    assert record is not None
    text = "\n".join(f"{key}: {'' if value is None else value}" for key, value in record.items() if key != "cases")
    text += "".join(f"\ncase {c['claim']}: approved {yuan(c['approved_fen'])} yuan, funded {yuan(c['funded_fen'])} "
                    "yuan" for c in record["cases"])
    emit(record, text)


# -- disclosures ---------------------------------------------------------------------------------------------


@click.command("list")
@click.option("--plan", default=None, help="A plan's id or name (default: every plan).")
@json_option
def disclosure_list(plan: str | None) -> None:
    """Every settled period and whether its disclosure (公示) is published, with the published hash."""
    read = models()
    plan_id = plan_ref(read.periods, "plan", plan) if plan else None
    rows = [{"period": p["id"], "plan": p["plan"], "number": p["number"], "notice_on": p["notice_on"],
             "published": p["disclosure_hash"] is not None, "document_hash": p["disclosure_hash"],
             "published_at": p["disclosed_at"]}
            for p in read.periods.all(plan_id) if p["status"] == "settled"]
    emit(rows, "\n".join(f"{r['period']}  plan {r['plan'][:8]} #{r['number']}  notice day {r['notice_on']}  "
                         + (f"published sha256 {r['document_hash']}" if r["published"] else "not published")
                         for r in rows) or "no settled periods")


@click.command("show")
@click.argument("period")
@json_option
def disclosure_show(period: str) -> None:
    """The 公示 of a settled period, rebuilt from the events and checked against its published hash (exit 3 when it
    differs); `--json` prints the canonical document itself."""
    ledger = context().ledger()
    read = models()
    period_id = period_ref(read.periods, "period", period)
    document = disclosure_document(period_id, read.periods, read.cases, read.balances.failed_periods())
    digest, _ = document_digest(document)
    published = ledger.read(disclosure_id(period_id), Disclosure)
    if context().as_json:
        sys.stdout.buffer.write(canonical_bytes(document) + b"\n")
        sys.stdout.flush()
    else:
        click.echo(render_disclosure(document))
    if published is None or published.published is None:
        click.echo("not published yet: the operator publishes it with `mutual-ledger disclosure publish "
                   f"{period}`", err=True)
    elif published.published.document_hash != digest:
        raise VerificationError(f"document_hash: published {published.published.document_hash}, rebuilt {digest}")
    else:
        click.echo(f"matches the published hash {digest}", err=True)


# -- a member's statement ------------------------------------------------------------------------------------


@click.command("statement")
@click.argument("member")
@click.option("--year", type=click.IntRange(2000, 2100), default=None, help="The yearly statement.")
@click.option("--from", "since", default=None, help="YYYY-MM-DD: periods whose notice day is on or after it.")
@click.option("--to", "until", default=None, help="YYYY-MM-DD, exclusive.")
@json_option
def member_statement(member: str, year: int | None, since: str | None, until: str | None) -> None:
    """A member's 爱心账单: days in the plan, periods paid into, shared, people helped, top-ups, balance, claims."""
    member_id = parse_id("member", member)
    if year is not None and (since or until):
        raise InputError("year", Rule.YEAR_OR_DATE_RANGE_NOT_BOTH, "give --year or --from/--to")
    start, end = (date(year, 1, 1), date(year + 1, 1, 1)) if year else date_range(since, until)
    ledger = context().ledger()
    result = statement(models(), member_id, start, end, ledger.clock.now().astimezone(UTC),
                       ledger.app.vault.streams_of(member_id))
    emit(result, render(result))


@click.command("reveal")
@click.argument("member")
@click.option("--for", "key_id", required=True,
              help="The key id of who receives the values: the member's own key, a custodian's or a regulator's.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Write the records to this file (JSON) instead of printing them.")
@json_option
def member_reveal(member: str, key_id: str, out: Path | None) -> None:
    """The member's sealed values with their salts (docs/privacy.md), for a party allowed to see them; each is
    checked against its commitment on the log first. Nothing is stored about the reveal: keep the file safe."""
    member_id = parse_id("member", member)
    app = context().ledger().app
    may_see(app, key_id, member_id)
    records = records_json(reveal_member(app, member_id))
    data = {"member": member_id, "for": key_id, "records": records}
    if out is not None:
        write_file("out", out, json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1).encode() + b"\n")
        emit({"member": member_id, "records": len(records), "out": str(out)},
             f"{len(records)} sealed values of member {member_id} written to {out}")
    else:
        emit(data, "\n".join(f"{r['stream']}#{r['seq']} {r['field']} = {r['value']} (salt {r['salt']})"
                             for r in records) or f"no sealed values for member {member_id} (none, or erased)")


# -- the fund's books and the regulator's metrics ------------------------------------------------------------


@click.command("show")
@click.option("--trial-balance", is_flag=True, help="Only the trial balance and the custody check.")
@json_option
def journal_show(trial_balance: bool) -> None:
    """The fund's accounts (debit balances positive), the trial balance and the custody gap (exit 3 when either
    is not zero)."""
    journal = models().journal
    data: dict[str, Any] = {"trial_balance_fen": journal.trial_balance(), "custody_gap_fen": journal.custody_gap()}
    if not trial_balance:
        data["accounts"] = journal.balances()
    text = "\n".join([*(f"{name:<18} {yuan(value):>16}" for name, value in data.get("accounts", {}).items()),
                      f"trial balance {data['trial_balance_fen']} fen; custody gap {data['custody_gap_fen']} fen"])
    emit(data, text)
    if data["trial_balance_fen"] or data["custody_gap_fen"]:
        raise VerificationError(f"the books do not balance: trial balance {data['trial_balance_fen']} fen, custody "
                                f"gap {data['custody_gap_fen']} fen")


@click.command("show")
@click.option("--plan", "plans", multiple=True, help="A plan's id or name; repeatable (default: every plan).")
@click.option("--from", "since", default=None, help="YYYY-MM-DD")
@click.option("--to", "until", default=None, help="YYYY-MM-DD, exclusive")
@json_option
def metrics_show(plans: tuple[str, ...], since: str | None, until: str | None) -> None:
    """Regulator metrics per plan: shares, cases, approval rates, juries, times to decision and payment, refunds."""
    read = models()
    start, end = date_range(since, until)
    chosen = [plan_ref(read.periods, "plan", p) for p in plans] or [p["id"] for p in read.periods.plans_list()]
    data = metrics(read, chosen, start.isoformat() if start else "", end.isoformat() if end else "9999",
                   context().ledger().clock.now().astimezone(UTC))
    emit(data)


def register(groups: dict[str, click.Group]) -> None:
    """Add the read commands to their nouns."""
    for noun, command in (("plan", plan_list), ("plan", plan_show), ("period", period_list),
                          ("period", period_show), ("disclosure", disclosure_list), ("disclosure", disclosure_show),
                          ("member", member_statement), ("member", member_reveal), ("journal", journal_show),
                          ("metrics", metrics_show)):
        groups[noun].add_command(command)

