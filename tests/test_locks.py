"""Lock files that cannot be opened: a one-line error and exit 1 from every command that takes one.

A SQLite database's locks are files beside it. A directory that is gone, or a lock path that is not
a file (here a directory stands in for it; a read-only data directory fails the same way), must
never end a command in a traceback.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy.engine import make_url

from synclet import db
from synclet.errors import DatabaseError
from synclet.locks import SchemaLock, get_server_lock, lock_file, server_lock_name
from synclet.sandbox import Sandbox

from conftest import run_cli


def one_line_error(result: Result, *words: str) -> str:
    """The command's only stderr line, which must hold ``words``; no traceback anywhere."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, result.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


def test_a_lock_file_that_cannot_be_opened_is_a_database_error_naming_it(tmp_path: Path) -> None:
    blocked = tmp_path / "x.db.magento.lock"
    blocked.mkdir()
    with pytest.raises(DatabaseError, match=f"{blocked}.*Is a directory"):
        lock_file(blocked, 0)
    with pytest.raises(DatabaseError, match="No such file or directory"):
        lock_file(tmp_path / "gone" / "x.db.schema.lock", 0)


def test_the_schema_lock_of_an_unusable_lock_file_raises_a_database_error(tmp_path: Path) -> None:
    (tmp_path / "x.db.schema.lock").mkdir()
    with pytest.raises(DatabaseError, match="x.db.schema.lock"):
        SchemaLock(db.connect(f"sqlite:///{tmp_path / 'x.db'}")).acquire()


@pytest.mark.parametrize("database", ["/nonexistent/dir/x.db", "/proc/x.db"])
def test_init_in_a_directory_that_cannot_hold_the_database_exits_1_in_one_line(database: str) -> None:
    result = run_cli("init", env={"DATABASE_URL": f"sqlite:///{database}", "LOG_FILE": ""})
    one_line_error(result, "cannot reach the database", database)


def test_init_with_an_unusable_schema_lock_file_exits_1_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.db.schema.lock").mkdir()
    result = run_cli("init", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LOG_FILE": ""})
    one_line_error(result, str(tmp_path / "x.db.schema.lock"), "Is a directory")


def test_sync_with_an_unusable_source_lock_file_exits_1_in_one_line(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    (tmp_path / "x.db.magento.lock").mkdir()
    with Sandbox(orders=5, seed=3) as shop:
        result = run_cli("sync", env={**shop.env(), "DATABASE_URL": f"sqlite:///{database}", "LOG_FILE": ""})
    one_line_error(result, "magento", str(tmp_path / "x.db.magento.lock"), "Is a directory")


def test_clear_with_an_unusable_source_lock_file_exits_1_in_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LOG_FILE": ""}
    assert run_cli("init", env=env).exit_code == 0
    (tmp_path / "x.db.magento.lock").mkdir()
    result = run_cli("clear", "--source", "magento", "--yes", env=env)
    one_line_error(result, str(tmp_path / "x.db.magento.lock"), "Is a directory")


def test_push_with_an_unusable_lock_file_exits_1_in_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LOG_FILE": "", "BIGBLOCK_ALLOW_MISSING_LOCATION": "1"}
    assert run_cli("init", env=env).exit_code == 0
    (tmp_path / "x.db.bigblock-push.lock").mkdir()
    with Sandbox(orders=5, seed=3) as shop:
        result = run_cli("push", "bigblock", env={**shop.env(onesaas=False, bigblock=True), **env})
    one_line_error(result, str(tmp_path / "x.db.bigblock-push.lock"), "Is a directory")


def test_status_shows_a_running_row_whose_lock_file_cannot_be_opened_as_interrupted(tmp_path: Path) -> None:
    """No sync can hold a lock nobody can open: the row is left over, and status still answers 0."""
    from datetime import datetime

    from synclet.history import start_run

    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LOG_FILE": ""}
    assert run_cli("init", env=env).exit_code == 0
    with db.connect(env["DATABASE_URL"]).begin() as conn:
        start_run(conn, "magento", "initial", None, None, datetime(2026, 3, 1))
    (tmp_path / "x.db.magento.lock").mkdir()
    shown = run_cli("status", env=env)
    assert shown.exit_code == 0 and "interrupted" in shown.output and "Traceback" not in shown.output


def test_each_source_keeps_a_lock_of_its_own_in_a_database_with_a_long_name(mariadb_url: str) -> None:
    """MariaDB caps lock names at 64 characters: cut there, the names of magento and magento-rest in
    a database named with 50 characters or more were one lock, and one source's sync exited 75."""
    long_named = make_url(mariadb_url).set(database="shop_" + "x" * 50)
    names = {what: server_lock_name(long_named, what) for what in ("magento", "magento-rest", "bigblock-push")}
    assert len(set(names.values())) == 3 and all(len(name) <= 64 for name in names.values())
    engine = db.connect(mariadb_url)
    with engine.connect() as first, engine.connect() as second:
        assert get_server_lock(first, names["magento"], 0)
        assert get_server_lock(second, names["magento-rest"], 0)
        assert not get_server_lock(second, names["magento"], 0)
