"""What the write side needs to know beyond the aggregates it loads: narrow questions about the ledger's state.

Command handlers answer some rules from facts spread over many streams — the members locked at a cutoff, a payer's
family, a member's open claims, the documents a disclosure or a report pins. They ask these interfaces, never a
read model: the composition root (`ledger.bootstrap`) gives the application an implementation backed by the read
models, so the write side does not import the read side (cosmicpython's abstract repository is the model).
Every answer is as of the last stored event; what the current unit of work changed is the handlers' own business.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol


class LockedSet(Protocol):
    """The members locked in a period, read from one snapshot: how many, and their roll."""

    count: int

    def roll(self, period: str, amount_fen: int) -> tuple[bytes, int]:
        """The roll's root and size (`ledger.sharing.streamed_roll`) over the members in id order (code points)."""
        ...

    def short_of(self, share_fen: int) -> Sequence[tuple[str, int, Sequence[str]]]:
        """(account, position, its locked members holder first) of the prepaid accounts whose position (deposits
        less charges not failed, less balance refunded) is below the share times their locked members."""
        ...

    def near_cap(self, year_start: str, threshold_fen: int) -> Sequence[tuple[str, int]]:
        """(member, charged this plan year) of the locked members the plan's periods since `year_start` charged more
        than `threshold_fen` (those whose annual cap may leave less than the share)."""
        ...


class LedgerQueries(Protocol):
    """Questions about members, accounts, claims and periods, answered from every stored event."""

    def locked_set(self, plan: str, cutoff: str,
                   left_out: frozenset[str] = frozenset()) -> AbstractContextManager[LockedSet]:
        """The members of the plan whose membership is active at the cutoff instant, as one consistent set that is
        counted and rolled without being held (millions of members), without `left_out` (schema 3: those past the
        top age)."""
        ...

    def approved_claims(self, plan: str, decided_by: str) -> Sequence[str]:
        """Approved claims of the plan decided by the instant and not yet included in a period."""
        ...

    def year_shares_fen(self, plan: str, year_start: str, cutoff: str) -> int:
        """Per-person shares assessed in the plan from the year's start up to the cutoff."""
        ...

    def age_candidates(self, plan: str, at: str, top_age: int,
                       utc_offset_minutes: int) -> Iterator[Sequence[tuple[str, int, str, bool]]]:
        """(member, age bound, joined at, sealed) of the plan's members active at `at` whose public age bound makes
        them older than the top age on the plan day of `at` (`ledger.ages.TopAge`), in batches (never all of them at
        once: at millions of members they are millions), each member once: the bound is the exact age at joining
        unless `sealed` (then the top of its 5-year band)."""
        ...

    def charge_fen(self, member: str, period: str) -> int | None:
        """What an assessed period charged a member; None when they were not locked in it."""
        ...

    def active_members(self, plan: str) -> Sequence[str]:
        """Members of the plan who have not left, sorted by id."""
        ...

    def family_count(self, payer: str) -> int:
        """Family members ever joined under a payer."""
        ...

    def active_family(self, payer: str) -> Sequence[str]:
        """Family members of a payer still active."""
        ...

    def family_charges(self, account: str, period: str) -> Sequence[tuple[str, int]]:
        """The members an account pays for (holder first, then family in join order), locked in an assessed period,
        with what it charged each."""
        ...

    def balance_fen(self, account: str) -> int:
        """A prepaid account's balance (never negative)."""
        ...

    def shares_charged_fen(self, member: str) -> int:
        """Every share charged to a member so far."""
        ...

    def short_accounts(self, plan: str) -> Sequence[tuple[str, int]]:
        """Prepaid accounts of the plan whose balance is below zero (shares they could not cover), with it."""
        ...

    def accounts_with_balance(self, plan: str) -> Sequence[tuple[str, int]]:
        """Prepaid accounts of the plan holding money, with their balance."""
        ...

    def outstanding_debits(self, period: str) -> Sequence[tuple[str, int]]:
        """Members whose debit for the period is still failed, with the amount."""
        ...

    def open_claims(self, member: str) -> Sequence[str]:
        """A member's claims neither rejected nor paid."""
        ...


class LedgerDocuments(Protocol):
    """Documents whose hash a command pins on the log, built from every stored event."""

    def disclosure(self, period: str) -> dict[str, Any]:
        """A settled period's public disclosure (公示)."""
        ...

    def report(self, since: str, until: str, as_of: datetime) -> dict[str, Any]:
        """The regulator's report over a date range."""
        ...


class LedgerReadSide(LedgerDocuments, Protocol):
    """Both, as the composition root provides them; `refresh()` brings the answers up to the last stored event."""

    @property
    def queries(self) -> LedgerQueries:
        """The answers to `LedgerQueries`."""
        ...

    def refresh(self) -> None:
        """Catch up with every stored event (another process may have written since)."""
        ...
