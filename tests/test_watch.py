"""Stopping and repeating: SIGINT/SIGTERM finish the page in flight; --watch survives failed cycles."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from synclet import db
from synclet.history import HISTORY
from synclet.sandbox import Sandbox

from conftest import run_cli
from truth import differences

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1)


def runs(database_url: str) -> list[dict]:
    try:
        with db.connect(database_url).connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(HISTORY).order_by(HISTORY.c.id))]
    except SQLAlchemyError:
        return []  # the schema is still being created


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, "synclet ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, str(ROOT / "synclet.py"), *args], cwd=cwd, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigint_finishes_the_page_in_flight(database_url: str, tmp_path: Path) -> None:
    with Sandbox(orders=300, seed=8, now=NOW) as shop:
        env = {**shop.env(), "DATABASE_URL": database_url, "MAGENTO_PAGE_SIZE": "10"}
        shop.arm_fault(kind="delay", delay_ms=200, times=None)
        process = start(["sync"], env, tmp_path)
        wait_for(lambda: bool(runs(database_url)) and runs(database_url)[-1]["pages"] >= 2, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 1
        last = runs(database_url)[-1]
        assert last["status"] == "failed" and "stopped on request after " in last["error_message"]
        assert b"Traceback" not in stderr and b"(Ctrl-C again to abort)" in stderr
        shop.clear_faults()
        assert run_cli("sync", env={**env, "LOG_FILE": ""}).exit_code == 0
        assert differences(db.connect(database_url), shop.truth()) == []


def test_watch_repeats_survives_a_failed_cycle_and_stops_on_sigterm(database_url: str, tmp_path: Path) -> None:
    with Sandbox(orders=50, seed=9, now=NOW) as shop:
        env = {**shop.env(), "DATABASE_URL": database_url, "HTTP_MAX_RETRIES": "0"}
        process = start(["sync", "--watch", "--interval", "1"], env, tmp_path)
        wait_for(lambda: len(runs(database_url)) >= 1 and runs(database_url)[0]["status"] == "success", process)
        shop.arm_fault(status=503, times=1)
        wait_for(lambda: any(r["status"] == "failed" for r in runs(database_url)), process)
        shop.add(count=3)
        wait_for(lambda: runs(database_url)[-1]["status"] == "success" and runs(database_url)[-1]["orders_added"] > 0, process)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert b"Stopped watching." in stderr and b"Traceback" not in stderr
        assert (stdout + stderr).count(b"magento: ") >= 3  # one line per cycle, failures on stderr
        assert differences(db.connect(database_url), shop.truth()) == []


def test_watch_survives_a_database_that_is_not_there_yet(tmp_path: Path) -> None:
    folder = tmp_path / "not-yet"
    database_url = f"sqlite:///{folder / 'synclet.db'}"
    log_file = tmp_path / "activity.log"
    with Sandbox(orders=30, seed=10, now=NOW) as shop:
        env = {**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": str(log_file)}
        process = start(["sync", "--watch", "--interval", "1"], env, tmp_path)
        wait_for(lambda: log_file.exists() and "A sync cycle failed" in log_file.read_text(), process)
        folder.mkdir()
        wait_for(lambda: bool(runs(database_url)) and runs(database_url)[-1]["status"] == "success", process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0 and b"cannot reach the database" in stderr
        assert differences(db.connect(database_url), shop.truth()) == []


def test_watch_keeps_its_pace_while_a_rejected_order_waits(tmp_path: Path) -> None:
    """A reject makes every cycle exit 1, but it is not a failed cycle: no backing off for it."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    log_file = tmp_path / "activity.log"
    with Sandbox(orders=30, seed=11, now=NOW) as shop:
        shop.store.override(7, {"Total": "twelve"})
        env = {**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": str(log_file)}
        process = start(["sync", "--watch", "--interval", "1"], env, tmp_path)
        wait_for(lambda: len(runs(database_url)) >= 4, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert runs(database_url)[0]["orders_rejected"] == 1
    assert "A sync cycle failed" not in log_file.read_text()


def test_a_quiet_stretch_that_skips_entries_is_logged_whole_once(tmp_path: Path) -> None:
    """OneSaas's entries without identity come back in every cycle's overlap; they change nothing,
    so they neither write a start line every cycle nor leave one without its end line."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    log_file = tmp_path / "activity.log"
    with Sandbox(orders=40, seed=12, now=NOW) as shop:
        assert not all(order["has_identity"] for order in shop.truth())
        env = {**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": str(log_file),
               "SYNC_OVERLAP_SECONDS": str(90 * 86400)}  # every cycle reads every order again
        process = start(["sync", "--watch", "--interval", "1"], env, tmp_path)
        wait_for(lambda: len(runs(database_url)) >= 5 and runs(database_url)[4]["status"] == "success", process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert all(run["orders_skipped"] for run in runs(database_url)[:5])
    log_text = log_file.read_text()
    # The initial run and the quiet stretch's first cycle; a cycle the SIGTERM stopped is a third.
    assert log_text.count("Starting ") == log_text.count("Finished ") in (2, 3), log_text
    assert log_text.count("with no identity") <= 2 * log_text.count("Starting ")


def test_watch_follows_a_rotated_log_and_survives_its_folder_going(tmp_path: Path) -> None:
    """logrotate moves the file away under a long --watch: the next lines go to a new file of the
    same name, not on into the moved one. With the folder gone, one warning, no traceback."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    folder = tmp_path / "logs"
    folder.mkdir()
    log_file = folder / "activity.log"

    def updated_after(count: int) -> bool:
        return any(run["orders_updated"] for run in runs(database_url)[count:])

    with Sandbox(orders=30, seed=13, now=NOW) as shop:
        env = {**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": str(log_file)}
        process = start(["sync", "--watch", "--interval", "1"], env, tmp_path)
        wait_for(lambda: bool(runs(database_url)) and runs(database_url)[0]["status"] == "success", process)
        log_file.rename(folder / "activity.log.1")
        settled = len(runs(database_url))
        shop.update(ids=[1])
        wait_for(lambda: updated_after(settled) and log_file.exists() and "Replacing order" in log_file.read_text(), process)
        for file in folder.iterdir():
            file.unlink()
        folder.rmdir()
        settled = len(runs(database_url))
        shop.update(ids=[2])
        wait_for(lambda: updated_after(settled), process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert b"Traceback" not in stderr and b"Logging error" not in stderr
    assert stderr.count(b"cannot write the activity log") == 1, stderr
    assert differences(db.connect(database_url), shop.truth()) == []


def test_a_stopped_force_initial_says_to_run_it_again(tmp_path: Path) -> None:
    """After a success, the next plain run is incremental: the rest of a stopped --force-initial
    is read only by running it again, not by cron's next run as a plain stop promises."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    with Sandbox(orders=300, seed=14, now=NOW) as shop:
        env = {**shop.env(), "DATABASE_URL": database_url, "MAGENTO_PAGE_SIZE": "10"}
        assert run_cli("sync", env=env).exit_code == 0
        shop.arm_fault(kind="delay", delay_ms=200, times=None)
        process = start(["sync", "--force-initial"], env, tmp_path)
        wait_for(lambda: runs(database_url)[-1]["sync_type"] == "initial" and runs(database_url)[-1]["pages"] >= 2
                 and len(runs(database_url)) == 2, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        shop.clear_faults()
    assert process.returncode == 1
    assert runs(database_url)[-1]["error_message"].endswith("; run the same command again to read the rest")
    assert b"run the same command again to read the rest" in stderr


def test_a_reject_waiting_for_a_fix_is_logged_when_a_quiet_stretch_starts_not_every_cycle(tmp_path: Path) -> None:
    """A reject waits until someone fixes the order in the shop, maybe for days: every cycle still
    exits 1 and prints its line, but the log tells it once per quiet stretch, not every 10 s."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    log_file = tmp_path / "activity.log"
    with Sandbox(orders=30, seed=15, now=NOW) as shop:
        shop.store.override(7, {"Total": "twelve"})
        env = {**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": str(log_file)}
        process = start(["sync", "--watch", "--interval", "1"], env, tmp_path)
        wait_for(lambda: len(runs(database_url)) >= 5 and runs(database_url)[4]["status"] == "success", process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert stderr.count(b"1 order(s) rejected") >= 4  # each cycle's line says it waits
    log_text = log_file.read_text()
    # The initial run, which rejected it, and the quiet stretch's first cycle; a stopped cycle a third.
    assert log_text.count("Starting ") == log_text.count("Finished ") in (2, 3), log_text
    assert log_text.count("Rejected order magento 000000007") == 1


def test_watch_keeps_force_initial_until_a_cycle_finishes(tmp_path: Path) -> None:
    """--watch --force-initial whose first cycle fails (the shop down): the next cycle re-reads
    everything, not the incremental window the forced re-read was to replace."""
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    with Sandbox(orders=30, seed=16, now=NOW) as shop:
        env = {**shop.env(), "DATABASE_URL": database_url, "HTTP_MAX_RETRIES": "0"}
        assert run_cli("sync", env=env).exit_code == 0
        shop.arm_fault(status=503, times=1)
        process = start(["sync", "--watch", "--interval", "1", "--force-initial"], env, tmp_path)
        wait_for(lambda: len(runs(database_url)) >= 3 and runs(database_url)[2]["status"] != "running", process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    failed, retried = runs(database_url)[1:3]
    assert (failed["sync_type"], failed["status"]) == ("initial", "failed")
    assert (retried["sync_type"], retried["status"]) == ("initial", "success")
