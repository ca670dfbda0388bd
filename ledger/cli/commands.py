"""The domain commands on the command line, generated from the command registry (`schemas.commands.COMMANDS`):
each is `NOUN VERB` with one option per field of its model, validated by that model, run by the application.

Options take plain values; a field whose value is a JSON object or array (plan rules) takes JSON or `@FILE`.
`--plan` takes a plan's id or name and `--period` a period's id or `PLAN:NUMBER`. Repeating a command with the same
`--command-id` returns its first result and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ledger.aggregates.sharing_period import period_id
from ledger.cli.base import context, emit, json_option, read_text_file
from ledger.cli.refs import plan_ref
from ledger.errors import InputError
from ledger.rules import Rule
from schemas.commands import COMMANDS, Command

PLACES: dict[str, tuple[str, str]] = {
    "create_plan": ("plan", "create"),
    "amend_rules": ("plan", "amend-rules"),
    "announce_closing": ("plan", "announce-closing"),
    "terminate_plan": ("plan", "terminate"),
    "wind_down": ("plan", "wind-down"),
    "age_out": ("plan", "age-out"),
    "release_surplus": ("plan", "release-surplus"),
    "join": ("member", "join"),
    "deposit": ("member", "deposit"),
    "record_debit_failure": ("member", "record-debit-failure"),
    "recover_debit": ("member", "recover-debit"),
    "qualify_juror": ("member", "qualify-juror"),
    "record_fraud": ("member", "record-fraud"),
    "exit": ("member", "exit"),
    "accept_conversion": ("member", "accept-conversion"),
    "exclude_for_waiting_illness": ("member", "exclude"),
    "disburse_refund": ("member", "disburse-refund"),
    "erase_member": ("member", "erase"),
    "file_claim": ("claim", "file"),
    "investigate_claim": ("claim", "investigate"),
    "notice_claim": ("claim", "notice"),
    "file_objection": ("claim", "object"),
    "resolve_objection": ("claim", "resolve-objection"),
    "request_jury": ("claim", "request-jury"),
    "cast_vote": ("claim", "vote"),
    "decide_claim": ("claim", "decide"),
    "pay_claim": ("claim", "pay"),
    "open_period": ("period", "open"),
    "assess_period": ("period", "assess"),
    "collect_period": ("period", "collect"),
    "receive_subsidy": ("period", "receive-subsidy"),
    "receive_advance": ("period", "receive-advance"),
    "settle_period": ("period", "settle"),
    "publish_disclosure": ("disclosure", "publish"),
    "revoke_key": ("keys", "revoke"),
}
"""Where each domain command sits on the command line. `register_key` is `keys register FILE` and
`publish_report` is `audit report` (both wrap the command with what they read or write)."""

ELSEWHERE = {"register_key", "publish_report"}


def _is_string_field(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(option.get("type") == "string" or ("enum" in option and all(
        isinstance(v, str) for v in option["enum"])) for option in options)


def _option_value(name: str, value: str, is_string: bool) -> Any:
    """An option's value: `@FILE` reads the file; a non-string field takes JSON (numbers, objects, booleans)."""
    if value.startswith("@"):
        value = read_text_file(name, Path(value[1:]))
    if is_string:
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):
        return value  # the model names the field and what it expected


def resolve_references(options: dict[str, Any]) -> dict[str, Any]:
    """`--plan` by name and `--period` as `PLAN:NUMBER`, turned into ids."""
    resolved = dict(options)
    for name in ("plan", "successor_plan"):
        if isinstance(resolved.get(name), str):
            resolved[name] = _plan_id(resolved[name], name)
    period = resolved.get("period")
    if isinstance(period, str) and ":" in period:
        plan, _, number = period.rpartition(":")
        if not (number.isascii() and number.isdigit() and int(number) >= 1):
            raise InputError("period", Rule.PERIOD_REFERENCE_MUST_BE_AN_ID_OR_PLAN_NUMBER, period)
        resolved["period"] = str(period_id(_plan_id(plan.strip('"')), int(number)))
    return resolved


def _plan_id(reference: str, field: str = "plan") -> str:
    """A plan id from a reference; an id passes as it is (the command checks that its plan exists)."""
    if len(reference) == 36 and reference.count("-") == 4:
        return reference
    return plan_ref(context().ledger().read_models().periods, field, reference)


def command_from_options(model: type[Command], options: dict[str, str | None]) -> Command:
    """Build and validate a command (in JSON mode, so types stay strict) from its options."""
    properties = model.model_json_schema()["properties"]
    data: dict[str, Any] = {"command": model.NAME}
    for name, value in options.items():
        if value is not None:
            data[name] = _option_value(name, value, _is_string_field(properties[name]))
    return model.model_validate_json(json.dumps(resolve_references(data)))


def execute(command: Command) -> dict[str, Any]:
    """Run a command as the operator's ledger (signed with `--key` when given), then bring the read models up to
    date so that the reads that follow see it."""
    ctx = context()
    ledger = ctx.ledger()
    result = ledger.execute(command, sign_as=ctx.key)
    ledger.read_models()
    return result


def render_result(result: dict[str, Any]) -> str:
    """A command's result as text: its fields, then one line per event written."""
    lines = [f"{key}: {value}" for key, value in result.items() if key not in ("events", "document")]
    lines += [f"  wrote {event['type']}  {event['stream']}#{event['seq']}" for event in result.get("events", [])]
    return "\n".join(lines)


def domain_command(model: type[Command], verb: str) -> click.Command:
    """A click subcommand for one domain command, with one option per field."""
    schema = model.model_json_schema()
    properties, required = schema["properties"], set(schema.get("required", []))

    def run(**options: str | None) -> None:
        result = execute(command_from_options(model, options))
        emit(result, render_result(result))

    params: list[click.Parameter] = []
    for name, field_schema in properties.items():
        if name == "command":
            continue
        help_text = field_schema.get("description") or field_schema.get("title") or ""
        if name == "plan":
            help_text = "the plan's id or name"
        elif name == "successor_plan":
            help_text = "the successor plan's id or name (the members move to it); none: they leave"
        elif name == "period":
            help_text = "the period's id or PLAN:NUMBER"
        params.append(click.Option([f"--{name.replace('_', '-')}", name], required=name in required,
                                   help=help_text))
    doc = (model.__doc__ or "").strip().splitlines()[0]
    return json_option(click.Command(verb, callback=run, params=params,
                                     help=f"{doc} Object values take JSON or @FILE."))


def register(groups: dict[str, click.Group]) -> None:
    """Add every domain command to its noun's group."""
    import ledger.handlers  # noqa: F401  (imports every command module)

    for name, model in COMMANDS.items():
        if name in ELSEWHERE:
            continue
        noun, verb = PLACES[name]
        groups[noun].add_command(domain_command(model, verb))
