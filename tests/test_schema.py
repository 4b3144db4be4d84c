"""Creating and upgrading the schema on both real databases: an interrupted first run, two first
runs at once, and a database made by another synclet."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, Table, func, inspect, select, text
from sqlalchemy.engine import Engine

from synclet import db
from synclet.errors import DatabaseError, LockHeld
from synclet.locks import SchemaLock
from synclet.tables import metadata
from synclet.sandbox import Sandbox

from conftest import run_cli
from truth import differences

ROOT = Path(__file__).resolve().parent.parent
SYNCLET_TABLES = set(metadata.tables)


def make_partial_schema(engine: Engine, tables: tuple[str, ...], *, version_table: bool = True) -> None:
    """What a first run killed part-way leaves: an empty alembic_version and the first tables."""
    with engine.begin() as conn:
        if version_table:
            Table(db.VERSION_TABLE, MetaData(), Column("version_num", String(32), primary_key=True)).create(conn)
        for name in tables:
            metadata.tables[name].create(conn)


def table_names(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def add_order_row(engine: Engine, external_id: str = "1") -> None:
    now = datetime(2026, 1, 1)
    orders = metadata.tables["orders"]
    with engine.begin() as conn:
        conn.execute(orders.insert().values(source="magento", external_id=external_id, source_updated_at=now, raw_json="{}",
                                            content_hash="x", first_synced_at=now, last_synced_at=now))


@pytest.mark.parametrize("tables", [("orders",), ("orders", "sync_history", "order_addresses", "order_items")])
def test_init_recovers_from_an_interrupted_first_run(database_url: str, tables: tuple[str, ...]) -> None:
    engine = db.connect(database_url)
    make_partial_schema(engine, tables)
    assert db.schema_state(engine) == ("empty", None)

    result = run_cli("init", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert result.exit_code == 0, result.output
    assert f"upgraded from empty to schema {db.head_revision()}" in result.output
    assert db.schema_state(engine) == ("current", db.head_revision())
    assert SYNCLET_TABLES <= table_names(engine)
    with engine.connect() as conn:  # the recreated table has the migration's indexes, not the leftover's
        indexes = {index["name"] for index in inspect(conn).get_indexes("orders")}
    assert "ix_orders_source_source_updated_at" in indexes


def test_sync_recovers_from_an_interrupted_first_run(database_url: str) -> None:
    engine = db.connect(database_url)
    make_partial_schema(engine, ("orders", "sync_history"))
    with Sandbox(orders=5, seed=4) as shop:
        result = run_cli("sync", env={**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": ""})
        assert result.exit_code == 0, result.output
        assert differences(engine, shop.truth()) == []


def test_leftover_tables_holding_rows_are_never_dropped(database_url: str) -> None:
    engine = db.connect(database_url)
    make_partial_schema(engine, ("orders", "order_items"))
    add_order_row(engine)

    result = run_cli("init", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: the database has synclet tables with rows (orders) but no schema revision recorded: "
        "move that data away and drop the tables, then run `python synclet.py init`"
    ]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(metadata.tables["orders"])).scalar() == 1
    assert table_names(engine) == {db.VERSION_TABLE, "orders", "order_items"}


def test_tables_named_like_ours_without_a_version_table_are_left_alone(database_url: str) -> None:
    engine = db.connect(database_url)
    make_partial_schema(engine, ("orders",), version_table=False)

    result = run_cli("init", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert result.exit_code == 1
    assert result.output.startswith("Error: the database already has tables named like synclet's (orders)")
    assert len(result.output.strip().splitlines()) == 1
    assert table_names(engine) == {"orders"}


def test_a_schema_from_another_synclet_is_refused_in_one_line(database_url: str) -> None:
    engine = db.connect(database_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {db.VERSION_TABLE} SET version_num = 'zzz'"))

    result = run_cli("init", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: the database schema (zzz) is newer than this synclet or not synclet's: upgrade synclet"
    ]
    assert db.schema_state(engine) == ("unknown", "zzz")
    checked = run_cli("test", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert checked.exit_code == 1 and "✗ database: " in checked.output and "schema zzz is newer" in checked.output
    shown = run_cli("status", env={"DATABASE_URL": database_url, "LOG_FILE": ""})  # it said nothing of it
    assert shown.exit_code == 0 and "Warning: the database schema (zzz) is newer than this synclet" in shown.output


def test_overlapping_first_runs_wait_and_migrate_once(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first migration waits until the second run has asked for the schema lock, so the
    second asks while the first is under way."""
    real_upgrade = db.command.upgrade
    asked: list[str] = []
    migrations: list[str] = []

    class RecordedLock(SchemaLock):
        def acquire(self) -> None:
            asked.append(threading.current_thread().name)
            super().acquire()

    def upgrade_once_both_asked(*args: Any, **kwargs: Any) -> None:
        migrations.append(threading.current_thread().name)
        deadline = time.monotonic() + 30
        while len(asked) < 2:
            assert time.monotonic() < deadline, "the second run never asked for the schema lock"
            time.sleep(0.01)
        real_upgrade(*args, **kwargs)

    monkeypatch.setattr(db, "SchemaLock", RecordedLock)
    monkeypatch.setattr(db.command, "upgrade", upgrade_once_both_asked)
    start = threading.Barrier(2)
    results: dict[str, tuple[str | None, str | None]] = {}
    errors: list[BaseException] = []

    def first_run() -> None:
        engine = db.connect(database_url)  # an engine each, as two processes would have
        start.wait()
        try:
            results[threading.current_thread().name] = db.upgrade(engine)
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=first_run, name=f"run-{n}") for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    head = db.head_revision()
    assert sorted(results.values(), key=lambda run: run[0] or "") == [(None, head), (head, head)]
    assert len(migrations) == 1


def test_overlapping_init_processes_both_succeed(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_FILE": ""}
    command = [sys.executable, str(ROOT / "synclet.py"), "init"]
    runs = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("upgraded from empty" in output for output in outputs) == 1, outputs
    assert db.schema_state(db.connect(database_url)) == ("current", db.head_revision())


def test_schema_lock_gives_up_after_its_wait(database_url: str) -> None:
    holder, waiter = db.connect(database_url), db.connect(database_url)
    with SchemaLock(holder):
        began = time.monotonic()
        with pytest.raises(LockHeld, match="creating or upgrading the database schema"):
            SchemaLock(waiter, wait=0.5).acquire()
        assert 0.4 < time.monotonic() - began < 5
    with SchemaLock(waiter, wait=0.5):  # released with the block, so the next one gets it at once
        pass


def upgrade_to(engine: Engine, revision: str) -> None:
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(db._alembic_config(connection), revision)


def test_sync_upgrades_an_older_schema_and_keeps_its_rows(database_url: str) -> None:
    engine = db.connect(database_url)
    upgrade_to(engine, "0001")
    add_order_row(engine)
    assert db.schema_state(engine)[0] == "outdated"
    checked = run_cli("test", env={"DATABASE_URL": database_url})
    assert f"schema 0001: the next `sync` or `init` upgrades it to {db.head_revision()}" in checked.output
    with Sandbox(orders=5, seed=3) as shop:
        env = {**shop.env(bigblock=True), "DATABASE_URL": database_url, "BIGBLOCK_ALLOW_MISSING_LOCATION": "1"}
        for dry_run in (["sync", "--dry-run"], ["push", "bigblock", "--dry-run"]):  # they change nothing, not even that
            refused = run_cli(*dry_run, env=env)
            assert refused.exit_code == 1 and "schema (0001) is older than this synclet's" in refused.output, refused.output
            assert "run `python synclet.py init` first" in refused.output
        assert db.schema_state(engine)[0] == "outdated"
        shown = run_cli("status", env=env)
        assert shown.exit_code == 0 and f"Schema 0001 is older than this synclet's ({db.head_revision()})" in shown.output
        result = run_cli("sync", env={**shop.env(), "DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert f"Upgraded the database schema from 0001 to {db.head_revision()}" in result.output
    assert db.schema_state(engine) == ("current", db.head_revision())
    assert "bigblock_pushes" in table_names(engine)
    orders = metadata.tables["orders"]
    with engine.connect() as conn:  # the row stored before the upgrade is the same row, updated in place
        kept = conn.execute(select(orders.c.first_synced_at).where(orders.c.external_id == "1")).scalar()
        assert kept == datetime(2026, 1, 1)
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == 5


def test_a_migration_killed_after_its_index_was_made_is_finished(database_url: str) -> None:
    engine = db.connect(database_url)
    upgrade_to(engine, "0002")
    with engine.begin() as conn:  # MariaDB commits the CREATE INDEX; the revision was never recorded
        conn.execute(text("CREATE INDEX ix_order_credits_external_id ON order_credits (external_id)"))
    result = run_cli("init", env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert db.schema_state(engine) == ("current", db.head_revision())
    indexes = [index["name"] for index in inspect(engine).get_indexes("order_credits")]
    assert indexes.count("ix_order_credits_external_id") == 1


def test_a_migration_killed_after_its_table_was_made_is_redone(database_url: str) -> None:
    engine = db.connect(database_url)
    upgrade_to(engine, "0001")
    with engine.begin() as conn:  # MariaDB commits the CREATE TABLE; the revision was never recorded
        metadata.tables["bigblock_pushes"].create(conn)
    result = run_cli("init", env={"DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    assert db.schema_state(engine) == ("current", db.head_revision())


def test_test_and_status_leave_a_database_not_made_yet_unmade(tmp_path: Path) -> None:
    """`test` and `status` only look: the default SQLite file appears with the first `sync` or `init`."""
    checked = run_cli("test")  # the default DATABASE_URL, sqlite:///synclet.db in the working directory
    assert "✓ database: sqlite:///synclet.db" in checked.output
    assert "✗ database" not in checked.output
    shown = run_cli("status")
    assert shown.exit_code == 0, shown.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["synclet.log"]
    assert db.schema_state(db.connect("sqlite:///synclet.db")) == ("empty", None)
    assert not (tmp_path / "synclet.db").exists()
    assert run_cli("init").exit_code == 0
    assert db.schema_state(db.connect("sqlite:///synclet.db")) == ("current", db.head_revision())


@pytest.mark.parametrize("database", ["/nonexistent/dir/x.db", "/proc/x.db"])
def test_test_says_a_database_that_cannot_be_made_is_unreachable(database: str) -> None:
    checked = run_cli("test", env={"DATABASE_URL": f"sqlite:///{database}", "LOG_FILE": ""})
    assert checked.exit_code == 1
    line = next(line for line in checked.output.splitlines() if line.startswith(("✓ database", "✗ database")))
    assert line.startswith("✗ database") and f"cannot reach the database: cannot create {database} (" in line
    with pytest.raises(DatabaseError, match="cannot reach the database"):
        db.schema_state(db.connect(f"sqlite:///{database}"))


def add_push_record(engine: Engine, external_id: str) -> None:
    """A stored order and its push record, as a push at any schema since 0002 writes them."""
    add_order_row(engine, external_id)
    orders, pushes = metadata.tables["orders"], metadata.tables["bigblock_pushes"]
    with engine.begin() as conn:
        order_id = conn.execute(select(orders.c.id).where(orders.c.external_id == external_id)).scalar()
        conn.execute(pushes.insert().values(order_id=order_id, source="magento", bigblock_url="http://bb/api/orders/",
                                            order_number=external_id, bigblock_id=f"9{external_id}", state="pushed",
                                            checked_at=datetime(2026, 1, 1)))


def push_records(engine: Engine) -> dict[str, int | None]:
    """order_number -> order_id of every push record."""
    pushes = metadata.tables["bigblock_pushes"]
    with engine.connect() as conn:
        return {number: order_id for number, order_id in conn.execute(select(pushes.c.order_number, pushes.c.order_id))}


def same_as_tables(engine: Engine) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def test_push_records_survive_the_upgrade_to_0004_and_then_a_clear(database_url: str) -> None:
    engine = db.connect(database_url)
    upgrade_to(engine, "0003")
    add_push_record(engine, "1")
    add_push_record(engine, "2")
    before = push_records(engine)

    result = run_cli("init", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert result.exit_code == 0, result.output
    assert db.schema_state(engine) == ("current", db.head_revision()) and same_as_tables(engine) == []
    assert push_records(engine) == before
    cleared = run_cli("clear", "--source", "magento", "--yes", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert cleared.exit_code == 0, cleared.output
    assert push_records(engine) == {"1": None, "2": None}  # detached, not deleted


def test_the_downgrade_from_0004_drops_only_the_detached_records(database_url: str) -> None:
    engine = db.connect(database_url)
    db.upgrade(engine)
    add_push_record(engine, "1")
    add_push_record(engine, "2")
    orders = metadata.tables["orders"]
    with engine.begin() as conn:
        conn.execute(orders.delete().where(orders.c.external_id == "1"))
    before_2 = push_records(engine)["2"]
    assert before_2 is not None and push_records(engine)["1"] is None

    with engine.begin() as connection:
        db.command.downgrade(db._alembic_config(connection), "0003")
    assert push_records(engine) == {"2": before_2}  # 0003 has no place for a record without its order
    with engine.begin() as conn:
        conn.execute(orders.delete())
    assert push_records(engine) == {}  # the cascade of 0003 again
    upgrade_to(engine, "head")
    assert db.schema_state(engine) == ("current", db.head_revision()) and same_as_tables(engine) == []


def finishes_0004(database_url: str) -> None:
    engine = db.connect(database_url)
    assert db.schema_state(engine)[1] == "0003"
    result = run_cli("init", env={"DATABASE_URL": database_url, "LOG_FILE": ""})
    assert result.exit_code == 0, result.output
    assert db.schema_state(engine) == ("current", db.head_revision()) and same_as_tables(engine) == []
    assert list(push_records(engine)) == ["1"]


@pytest.mark.parametrize("done", [1, 2, 3])
def test_the_0004_migration_killed_between_its_alters_on_mariadb_is_finished(mariadb_url: str, done: int) -> None:
    """MariaDB commits each of 0004's three ALTERs, and the revision is recorded after the last."""
    engine = db.connect(mariadb_url)
    upgrade_to(engine, "0003")
    add_push_record(engine, "1")
    key = "fk_bigblock_pushes_order_id_orders"
    steps = [f"ALTER TABLE bigblock_pushes DROP FOREIGN KEY {key}",
             "ALTER TABLE bigblock_pushes MODIFY order_id BIGINT NULL",
             f"ALTER TABLE bigblock_pushes ADD CONSTRAINT {key} FOREIGN KEY(order_id) REFERENCES orders (id) ON DELETE SET NULL"]
    with engine.begin() as conn:
        for step in steps[:done]:
            conn.execute(text(step))
    finishes_0004(mariadb_url)


def test_the_0004_migration_killed_on_sqlite_is_redone(tmp_path: Path) -> None:
    """SQLite recreates the table in one transaction, after making its empty copy outside it."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    engine = db.connect(database_url)
    upgrade_to(engine, "0003")
    add_push_record(engine, "1")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE _alembic_tmp_bigblock_pushes (id INTEGER NOT NULL PRIMARY KEY)"))
    finishes_0004(database_url)
    assert "_alembic_tmp_bigblock_pushes" not in table_names(engine)


def add_credit(engine: Engine, source: str, external_id: str, subtotal: str, raw: dict[str, Any]) -> None:
    """An order of ``source`` with one credit memo stored as synclet wrote it before 0006."""
    now = datetime(2026, 1, 1)
    orders, credits = metadata.tables["orders"], metadata.tables["order_credits"]
    with engine.begin() as conn:
        order_id = conn.execute(orders.insert().values(
            source=source, external_id=external_id, source_updated_at=now, raw_json="{}", content_hash="x",
            first_synced_at=now, last_synced_at=now)).inserted_primary_key[0]
        conn.execute(credits.insert().values(order_id=order_id, external_id=f"c{external_id}", subtotal=Decimal(subtotal),
                                             raw_json=json.dumps(raw)))


def credit_subtotals(engine: Engine) -> dict[str, Decimal]:
    credits = metadata.tables["order_credits"]
    with engine.connect() as conn:
        return dict(conn.execute(select(credits.c.external_id, credits.c.subtotal)).all())


def test_0006_nets_the_discount_out_of_magento_credit_subtotals_stored_before(database_url: str) -> None:
    """A stored order is rewritten only when its payload changes: the memos the old mapping stored
    are corrected from their raw_json, as the new mapping stores them; others are left alone."""
    engine = db.connect(database_url)
    upgrade_to(engine, "0005")
    add_credit(engine, "magento", "1", "30", {"subtotal": "30.0000", "discount_amount": "-10.5000", "tax_amount": "3.9"})
    add_credit(engine, "magento", "2", "30", {"subtotal": "30.0000", "discount_amount": "0.0000"})
    add_credit(engine, "magento", "3", "30", {"subtotal": "30.0000"})  # a memo row without the field
    add_credit(engine, "magento-rest", "4", "19.5", {"subtotal": 30, "discount_amount": -10.5})  # netted already

    upgrade_to(engine, "head")
    after = {"c1": Decimal("19.5"), "c2": Decimal("30"), "c3": Decimal("30"), "c4": Decimal("19.5")}
    assert credit_subtotals(engine) == after
    assert same_as_tables(engine) == []
    with engine.begin() as connection:
        db.command.downgrade(db._alembic_config(connection), "0005")
    assert credit_subtotals(engine) == {**after, "c1": Decimal("30")}
