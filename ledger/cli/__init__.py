"""`mutual-ledger`: the command line of the ledger, one `NOUN VERB` path per operation.

    init | demo | apply | export                    set up, play the demo, feed commands, export the log
    serve                                           the HTTP service and the operator's periodic jobs
    keys      generate | list | show | anchor | register | revoke
    vault     rotate-key
    plan      create | amend-rules | announce-closing | terminate | wind-down | list | show
    member    join | deposit | exit | accept-conversion | … | statement
    claim     file | investigate | notice | object | resolve-objection | request-jury | vote | decide | pay
    period    open | assess | collect | receive-subsidy | receive-advance | settle | list | show
    disclosure publish | list | show
    journal   show            metrics   show
    log       integrate | checkpoint publish|add-cosignature|show|list | entry | proof … | key
    witness   cosign | show | key
    audit     verify | verify-bundle | reconcile | query | report | monitor
    projections catch-up | rebuild | digest | status
    kafka     relay | consume

Global options (before or, for `--json`, after the subcommand): `--data-dir`, `--ledger`, `--key`, `--json`
(`ledger.cli.base`). Exit status: 0 done; 2 bad input or a broken rule (one line naming the field and the rule;
nothing was written); 3 verification failed; 75 a concurrent writer won — nothing was written, retry.
"""

from __future__ import annotations

import click

from ledger.cli import audit, commands, log, operations, reads, serve, setup, witness
from ledger.cli.base import LedgerGroup, add_global_options, global_options


@click.group(cls=LedgerGroup, params=global_options())
@click.pass_context
def main(ctx: click.Context) -> None:
    """An event-sourced, verifiable transparency ledger for mutual-aid health plans."""


NOUNS = {
    "plan": "Plans: their rules, closing and wind-down.",
    "member": "Members: joining, money, leaving, and their statement (爱心账单).",
    "claim": "Claims: filing, investigation, public notice, objections, jury, decision, payout.",
    "period": "Sharing periods: open, assess, collect, settle; list and show.",
    "disclosure": "Period disclosures (公示): publish, list, show.",
    "journal": "The fund's double-entry journal and the custody check.",
    "metrics": "Regulator metrics per plan.",
}


def _build() -> None:
    groups: dict[str, click.Group] = {}
    for noun, help_text in NOUNS.items():
        groups[noun] = click.Group(noun, help=help_text)
        main.add_command(groups[noun])
    groups["keys"] = setup.keys_group
    setup.register_commands(main)
    commands.register(groups)
    reads.register(groups)
    for group in (log.log_group, witness.witness_group, audit.audit_group, operations.projections_group,
                  operations.kafka_group):
        main.add_command(group)
    main.add_command(serve.serve)
    add_global_options(main)


_build()


def run() -> None:
    """The console script's entry point."""
    main()
