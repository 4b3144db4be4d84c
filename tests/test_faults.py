"""Faults over real HTTP and a real database: every one either heals within the retries or fails
the run cleanly, and the next run leaves the database equal to the store."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.exc import OperationalError

from synclet import db
from synclet.history import HISTORY
from synclet.sandbox import Sandbox

from conftest import MARIADB_SERVER, run_cli
from truth import differences

UNKNOWN_THREAD = 1094  # MariaDB's error for KILL of a connection that has ended

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1)


def env_for(shop: Sandbox, database_url: str, **extra: str) -> dict[str, str]:
    return {**shop.env(), "DATABASE_URL": database_url, "MAGENTO_PAGE_SIZE": "20", "HTTP_BACKOFF_SECONDS": "0.01",
            "HTTP_TIMEOUT": "1", **extra}


def history(database_url: str) -> list[dict]:
    with db.connect(database_url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(HISTORY).order_by(HISTORY.c.id))]


FAULTS = [
    pytest.param({"status": 500}, id="500"),
    pytest.param({"status": 503, "retry_after": "0"}, id="503-retry-after-0"),
    pytest.param({"status": 429, "retry_after": "1"}, id="429-retry-after"),
    pytest.param({"kind": "disconnect"}, id="disconnect"),
    pytest.param({"kind": "delay", "delay_ms": 1500}, id="slower-than-timeout"),
]


@pytest.mark.parametrize("fault", FAULTS)
def test_transient_faults_heal_within_the_retries(fault: dict, tmp_path: Path) -> None:
    with Sandbox(orders=200, seed=31, now=NOW) as shop:
        shop.arm_fault(times=2, after=3, **fault)
        url = f"sqlite:///{tmp_path / 'synclet.db'}"
        result = run_cli("sync", env=env_for(shop, url, HTTP_MAX_RETRIES="2"))
        assert result.exit_code == 0, result.output
        assert shop.stats()["faults_served"] == 2
        assert differences(db.connect(url), shop.truth()) == []


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param({"status": 500}, "HTTP 500", id="500"),
        pytest.param({"status": 401, "body": '{"detail": "nope"}'}, "HTTP 401", id="401"),
        pytest.param({"status": 400}, "HTTP 400", id="400"),
        pytest.param({"kind": "html"}, "not JSON (text/html)", id="html"),
        pytest.param({"kind": "truncate"}, "not JSON", id="truncated-body"),
        pytest.param({"kind": "disconnect"}, "cannot connect", id="disconnect"),
    ],
)
def test_lasting_faults_fail_cleanly_and_the_next_run_recovers(database_url: str, fault: dict, reason: str) -> None:
    with Sandbox(orders=200, seed=32, now=NOW) as shop:
        env = env_for(shop, database_url, HTTP_MAX_RETRIES="1")
        shop.arm_fault(times=None, after=4, **fault)
        failed = run_cli("sync", env=env)
        assert failed.exit_code == 1
        run = history(database_url)[-1]
        assert run["status"] == "failed" and reason in run["error_message"]
        assert "\n" not in run["error_message"] and shop.access_key not in run["error_message"] + failed.output
        shop.clear_faults()
        shop.update(count=10, updated_at=NOW + timedelta(seconds=1))
        assert run_cli("sync", env=env).exit_code == 0
        assert differences(db.connect(database_url), shop.truth()) == []


def start_slow_sync(shop: Sandbox, database_url: str, cwd: Path) -> subprocess.Popen[bytes]:
    shop.arm_fault(kind="delay", delay_ms=150, times=None)
    env = {**os.environ, **env_for(shop, database_url, MAGENTO_PAGE_SIZE="10", HTTP_TIMEOUT="30")}
    return subprocess.Popen([sys.executable, str(ROOT / "synclet.py"), "sync"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until_paging(database_url: str, process: subprocess.Popen[bytes], pages: int = 2) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            runs = history(database_url)
        except Exception:  # noqa: BLE001 - the schema is still being created
            runs = []
        if runs and runs[-1]["pages"] >= pages:
            return
        time.sleep(0.05)
    raise AssertionError("the slow sync never got going")


def test_an_overlapping_run_exits_75_naming_the_holder(database_url: str, tmp_path: Path) -> None:
    with Sandbox(orders=300, seed=33, now=NOW) as shop:
        first = start_slow_sync(shop, database_url, tmp_path)
        try:
            wait_until_paging(database_url, first)
            second = run_cli("sync", env=env_for(shop, database_url))
            assert second.exit_code == 75
            assert f"another sync of magento is running (pid {first.pid} on " in second.output and "since" in second.output
            assert len(history(database_url)) == 1  # the second run wrote nothing
            cleared = run_cli("clear", "--yes", env=env_for(shop, database_url))
            assert cleared.exit_code == 1 and "refusing to clear: another sync of magento is running" in cleared.output
        finally:
            first.kill()
            first.wait()
        shop.clear_faults()
        assert run_cli("sync", env=env_for(shop, database_url)).exit_code == 0
        assert differences(db.connect(database_url), shop.truth()) == []


def test_a_killed_database_connection_fails_the_run_without_damage(mariadb_url: str, tmp_path: Path) -> None:
    database = mariadb_url.rsplit("/", 1)[1].split("?")[0]
    with Sandbox(orders=300, seed=34, now=NOW) as shop:
        process = start_slow_sync(shop, mariadb_url, tmp_path)
        wait_until_paging(mariadb_url, process)
        admin = create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            ids = conn.execute(text("SELECT id FROM information_schema.PROCESSLIST WHERE db = :db AND id <> CONNECTION_ID()"), {"db": database}).scalars().all()
            killed = 0
            for connection_id in ids:
                try:
                    conn.execute(text(f"KILL CONNECTION {int(connection_id)}"))
                    killed += 1
                except OperationalError as error:  # closed by the sync between the list and the kill
                    assert error.orig.args[0] == UNKNOWN_THREAD, error
            assert killed
        admin.dispose()
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 1, stderr
        run = history(mariadb_url)[-1]
        assert run["status"] in ("failed", "running")  # 'running' when even the fresh connection failed
        shop.clear_faults()
        rerun = run_cli("sync", env=env_for(shop, mariadb_url))
        assert rerun.exit_code == 0, rerun.output
        assert differences(db.connect(mariadb_url), shop.truth()) == []


def test_a_database_user_that_may_only_read_fails_sync_and_clear_in_one_line(mariadb_url: str) -> None:
    """A report user (SELECT only) put in DATABASE_URL by mistake reads the schema but cannot write
    the run's history row, nor delete: one line and exit 1 each, not a traceback."""
    database = make_url(mariadb_url).database
    user = f"ro_{database[-12:]}"
    admin = create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
    with Sandbox(orders=20, seed=35, now=NOW) as shop:
        assert run_cli("sync", env=env_for(shop, mariadb_url)).exit_code == 0
        with admin.connect() as conn:
            conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'reader-secret'"))
            conn.execute(text(f"GRANT SELECT ON `{database}`.* TO '{user}'@'%'"))
        try:
            reader = make_url(mariadb_url).set(username=user, password="reader-secret")
            env = env_for(shop, reader.render_as_string(hide_password=False))
            result = run_cli("sync", env=env)
            cleared = run_cli("clear", "--yes", env=env)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP USER '{user}'@'%'"))
            admin.dispose()
    assert result.exit_code == 1
    assert result.output.startswith("magento: database error: (1142) UPDATE command denied"), result.output
    assert "reader-secret" not in result.output and len(result.output.splitlines()) == 1
    assert cleared.exit_code == 1
    assert cleared.output.startswith("Error: nothing cleared: (1142) DELETE command denied"), cleared.output
