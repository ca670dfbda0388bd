"""The application service on both backends: idempotent commands, batches, and concurrent writers."""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, RFC_4122, UUID, uuid5

import psycopg
import pytest
from eventsourcing.persistence import OperationalError as StoreOperationalError
from psycopg_pool import PoolTimeout

from ledger.bootstrap import Ledger
from ledger.errors import BatchError, CommandIdReusedError, ConcurrencyConflictError
from ledger.store import connection_lost, connection_unavailable, decode_entry
from ledger.vault import VAULT_KEY_FILE, keyed_id
from schemas.commands.membership import Deposit, Join
from sim.fixtures import commitment
from sim.services import new_database
from tests.support import cid, create_plan, deposit, join, new_ledger, prepaid_rules, reopen


def joins(plan: str, ids: list[str], age: int = 30) -> list[Join]:
    return [Join(command_id=i, plan=plan, age_years=age, sex="m", province="gd", consent_commitment=commitment(),
                 health_declaration_commitment=commitment()) for i in ids]


def test_a_repeated_command_returns_the_first_result_and_writes_nothing(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    command = joins(plan, ["same-id"])[0]
    first = ledger_app.execute(command)
    before = ledger_app.app.recorder.max_notification_id()
    again = ledger_app.execute(command)
    assert again == {**first, "repeated": True}
    assert ledger_app.app.recorder.max_notification_id() == before
    with pytest.raises(CommandIdReusedError):
        ledger_app.execute(joins(plan, ["same-id"], age=31)[0])
    assert ledger_app.app.recorder.max_notification_id() == before


def test_a_created_stream_id_is_keyed_by_the_operators_secret_not_guessable_from_its_command_id(
        ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    member = ledger_app.execute(joins(plan, ["stable-id"])[0])["member"]
    id_key = ledger_app.app.vault.id_key
    assert member == str(keyed_id(id_key, "member", "stable-id"))
    assert member != str(uuid5(NAMESPACE_URL, "mutual-ledger:member:stable-id"))  # the unkeyed derivation of v1
    assert UUID(member).version == 8 and UUID(member).variant == RFC_4122
    expected = hmac.new(id_key, b"claim:\xe4\xb8\x80", hashlib.sha256).digest()[:16]
    assert keyed_id(id_key, "claim", "一").bytes[:6] == expected[:6]  # RFC 9562: version and variant bits set
    assert keyed_id(id_key, "member", "stable-id") != keyed_id(b"\x01" * 32, "member", "stable-id")


def test_a_batch_is_one_transaction_and_fails_like_commands_one_by_one(ledger_app: Ledger) -> None:
    plan = create_plan(ledger_app)
    results = ledger_app.execute_many([*joins(plan, ["b1", "b2"]), joins(plan, ["b1"])[0]])
    assert results[2] == {**results[0], "repeated": True}
    before = ledger_app.app.recorder.max_notification_id()
    with pytest.raises(BatchError) as caught:
        ledger_app.execute_many([*joins(plan, ["b3"]), *joins(plan, ["b4"], age=70), *joins(plan, ["b5"])])
    assert caught.value.position == 1
    assert ledger_app.app.recorder.max_notification_id() == (before or 0) + 1  # b3 was saved, b4 and b5 were not
    assert ledger_app.execute(joins(plan, ["b3"])[0])["repeated"] is True


def second_app(app: Ledger) -> Ledger:
    """Another application on the same store (another process, in production)."""
    return reopen(app)


def test_a_concurrent_writer_is_a_retryable_conflict_and_nothing_partial_is_written(
        ledger_app: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = create_plan(ledger_app, prepaid_rules())
    member = join(ledger_app, plan)
    other = second_app(ledger_app)
    original = ledger_app.app._save_aggregates

    def racing_save(*args: Any) -> None:
        monkeypatch.setattr(ledger_app.app, "_save_aggregates", original)
        deposit(other, member, 700)  # the other writer gets there between our read and our write
        original(*args)

    monkeypatch.setattr(ledger_app.app, "_save_aggregates", racing_save)
    newcomer_and_deposit = [*joins(plan, ["racer"]),
                            Deposit(command_id="dep-race", member=member, amount_fen=500, reference="bank-race")]
    before = ledger_app.app.recorder.max_notification_id()
    with pytest.raises(ConcurrencyConflictError) as caught:
        ledger_app.execute_many(newcomer_and_deposit)
    assert caught.value.exit_code == 75
    assert ledger_app.app.recorder.max_notification_id() == (before or 0) + 1  # only the other writer's deposit
    ledger_app.execute_many(newcomer_and_deposit)  # the retry succeeds
    deposits = [decode_entry(e) for _, e in ledger_app.entries() if b'"member.deposit_received"' in e]
    assert [d.body["amount_fen"] for d in deposits] == [700, 500]
    assert ledger_app.balances().balance_fen(member) == 1200
    other.close()


def test_the_same_history_on_both_backends(tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    import ledger.vault as vault_module
    from tests.bundle_vectors import fixed_salts

    def history(app: Ledger) -> list[tuple[str, int, str, Any]]:
        plan = create_plan(app, prepaid_rules())
        members = [join(app, plan, age=20 + i) for i in range(5)]
        for i, m in enumerate(members):
            app.execute(Deposit(command_id=cid(), member=m, amount_fen=100 * (i + 1), reference=f"r-{i}"))
        return [(e.type, e.seq, e.actor.role, e.body) for e in map(decode_entry, (x for _, x in app.entries()))
                if not e.type.startswith("key.")]

    from tests import support

    counter = support._ids
    support._ids = __import__("itertools").count(1000)
    monkeypatch.setattr(vault_module, "new_salt", fixed_salts())  # the same salts seal the same ages
    sqlite = new_ledger(tmp_path / "a", None)
    one = history(sqlite)
    support._ids = __import__("itertools").count(1000)
    monkeypatch.setattr(vault_module, "new_salt", fixed_salts())
    (tmp_path / "b" / "operator" / "keys").mkdir(parents=True)  # the same vault key derives the same ids
    shutil.copy(tmp_path / "a" / "operator" / "keys" / VAULT_KEY_FILE, tmp_path / "b" / "operator" / "keys")
    postgres = new_ledger(tmp_path / "b", postgres_dsn)
    two = history(postgres)
    support._ids = counter
    assert one == two and len(one) == 11
    sqlite.close()
    postgres.close()


def end_connections(server_url: str, database_url: str) -> None:
    """`pg_terminate_backend` of every connection to the database (as the fault simulation does)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> "
                     "pg_backend_pid()", (database_url.rsplit("/", 1)[1],))


@pytest.mark.postgres
def test_a_batch_whose_connection_the_database_ended_runs_again_on_a_new_one(postgres_url: str,
                                                                               tmp_path: Path) -> None:
    """The fault simulation's `postgres connections terminated` (seed 2 on): the writer's pooled connections were
    ended, and its next batch failed on its first read with `OperationalError: terminating connection due to
    administrator command`. Now the batch runs again on a new connection, and is done once."""
    with new_database(postgres_url, "t_writer") as url:
        ledger = new_ledger(tmp_path, url, signing_workers=0)
        plan = create_plan(ledger, prepaid_rules())
        before = ledger.app.recorder.max_notification_id() or 0
        end_connections(postgres_url, url)
        results = ledger.execute_many(joins(plan, [cid("j") for _ in range(20)]))
        assert [r["command"] for r in results] == ["join"] * 20 and not any(r.get("repeated") for r in results)
        stats = ledger.app.recorder.datastore.pool.get_stats()  # type: ignore[attr-defined]
        assert stats.get("returns_bad", 0) + stats.get("connections_lost", 0) >= 1  # it did meet an ended one
        stored = [decode_entry(entry) for index, entry in ledger.entries() if index > before]
        assert len(stored) == sum(len(r["events"]) for r in results)  # each event once
        end_connections(postgres_url, url)
        assert ledger.execute_many(joins(plan, [results[0]["command_id"]]))[0] == {**results[0], "repeated": True}
        ledger.close()


def test_only_a_connection_that_went_away_is_lost() -> None:
    """What `connection_lost` calls a lost connection (the writer, the relay and the consumers then carry on over a
    new one) and what it does not (a statement the database refused, an aborted pipeline, a pool with no free
    connection in time)."""
    wrapped = StoreOperationalError("terminating connection due to administrator command")
    wrapped.__cause__ = psycopg.errors.AdminShutdown("terminating connection due to administrator command")
    for lost in (psycopg.errors.AdminShutdown("ended"), psycopg.OperationalError("the connection is closed"),
                 psycopg.errors.ConnectionFailure("failed"), wrapped):
        assert connection_lost(lost), lost
    for kept in (psycopg.errors.SerializationFailure("serialize"), psycopg.errors.DeadlockDetected("deadlock"),
                 psycopg.errors.PipelineAborted("aborted"), PoolTimeout("no connection"), ValueError("other"),
                 StoreOperationalError("no psycopg cause")):
        assert not connection_lost(kept), kept
    timed_out = StoreOperationalError("couldn't get a connection after 5.00 sec")
    timed_out.__cause__ = PoolTimeout("couldn't get a connection after 5.00 sec")
    for again in (PoolTimeout("no connection"), timed_out, wrapped):  # the relay and a consumer carry on
        assert connection_unavailable(again), again
    for refused in (psycopg.errors.SerializationFailure("serialize"), psycopg.errors.PipelineAborted("aborted"),
                    ValueError("other"), StoreOperationalError("no psycopg cause")):
        assert not connection_unavailable(refused), refused


@pytest.mark.postgres
def test_every_postgresql_connection_has_jit_off(postgres_url: str, tmp_path: Path) -> None:
    """At 10,000,000 members a statement spent 0.9 s compiling a plan (PostgreSQL's JIT) that runs in 1 ms: the
    event store's connections (which the read models share) and the views' have JIT off, whichever pooled connection
    a checkout gets."""
    from consumers.views import views_store
    from ledger.config import Settings

    with new_database(postgres_url, "t_jit") as url:
        ledger = new_ledger(tmp_path, url, signing_workers=0)
        create_plan(ledger, prepaid_rules())
        models = ledger.read_models()
        for _ in range(3):  # several checkouts: whichever pooled connection comes
            with models.balances.sql.transaction(commit=False) as cursor:
                assert cursor.execute("SHOW jit").fetchall() == [("off",)]
        views = views_store(Settings(data_dir=tmp_path, views_url=url))
        with views.transaction(commit=False) as cursor:
            assert cursor.execute("SHOW jit").fetchall() == [("off",)]
        ledger.close()
