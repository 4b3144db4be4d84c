"""The Valerdat source end to end: login, ids walk, parallel details, token refresh, deletions and
rate limits over real HTTP, into SQLite and MariaDB, compared with the store's truth."""
from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from synclet import db
from synclet.sandbox import Sandbox

from conftest import run_cli
from test_watch import runs, start, wait_for
from truth import differences, runs_of

NOW = datetime(2026, 3, 1, 12, 0, 0)
SOURCE = "valerdat"


@pytest.fixture
def shop() -> Iterator[Sandbox]:
    with Sandbox(orders=400, seed=61, now=NOW) as sandbox:
        yield sandbox


def valerdat_env(shop: Sandbox, database_url: str, **extra: str) -> dict[str, str]:
    return {**shop.env(valerdat=True, onesaas=False), "DATABASE_URL": database_url, "HTTP_MAX_RETRIES": "3",
            "HTTP_BACKOFF_SECONDS": "0.01", **extra}


def mismatches(database_url: str, shop: Sandbox) -> list[str]:
    return differences(db.connect(database_url), shop.truth(view="valerdat"), SOURCE)


def detail_requests(shop: Sandbox) -> int:
    return sum(count for path, count in shop.stats()["paths"].items() if "/purchase-orders/" in path and "/ids/" not in path)


def test_backfill_then_only_changed_orders_are_fetched_again(database_url: str, shop: Sandbox) -> None:
    env = valerdat_env(shop, database_url)
    first = run_cli("sync", env=env)
    assert first.exit_code == 0, first.output
    assert mismatches(database_url, shop) == []
    assert runs_of(database_url, SOURCE)[-1]["orders_added"] == 400
    cursor = runs_of(database_url, SOURCE)[-1]["cursor"]
    fetched = detail_requests(shop)
    changed = shop.update(count=12, updated_at=cursor + timedelta(seconds=2))
    shop.add(count=5, created_at=cursor + timedelta(seconds=3))
    second = run_cli("sync", env=env)
    assert second.exit_code == 0, second.output
    assert mismatches(database_url, shop) == []
    run = runs_of(database_url, SOURCE)[-1]
    assert (run["sync_type"], run["orders_added"], run["orders_updated"]) == ("incremental", 5, len(changed))
    assert detail_requests(shop) - fetched == 5 + len(changed)  # the overlap's unchanged ids are not fetched
    assert "[INFO] No new orders to add in local system: valerdat" not in Path("synclet.log").read_text()
    shown = run_cli("status", env=env).output
    assert re.search(r"newest +PO-\d{4}-\d{6}  +[a-z_]+  +\d{4}-", shown), shown  # columns as wide as PO numbers
    assert run_cli("sync", env=env).exit_code == 0
    assert "[INFO] No new orders to add in local system: valerdat" in Path("synclet.log").read_text()


def test_a_reject_of_an_order_stored_at_the_same_version_is_read_again_and_cleared(database_url: str, shop: Sandbox) -> None:
    """Details of ids stored at their version are not fetched, except an id whose reject waits:
    fetched whole, it clears the reject instead of failing every later run."""
    from synclet.records import Rejected, canonical_json
    from synclet.store import REJECTS, save_rejects

    env = valerdat_env(shop, database_url, SYNC_OVERLAP_SECONDS=str(40 * 86400))
    assert run_cli("sync", env=env).exit_code == 0
    uuid = next(iter(shop.truth_by_id(view="valerdat")))
    with db.connect(database_url).begin() as conn:
        save_rejects(conn, [Rejected(SOURCE, uuid, None, canonical_json({"uuid": uuid, "total": "twelve"}), "served broken once")],
                     None, NOW)  # type: ignore[arg-type]
    fetched = detail_requests(shop)
    healed = run_cli("sync", env=env)
    assert healed.exit_code == 0, healed.output
    assert detail_requests(shop) - fetched == 1
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(REJECTS)).scalar() == 0
    assert mismatches(database_url, shop) == []


def test_a_stop_waits_for_a_page_of_details_not_for_the_whole_ids_page(database_url: str, shop: Sandbox,
                                                                          tmp_path: Path) -> None:
    """All 400 ids come on one ids page; SIGTERM is obeyed after the page of 50 details being
    written, and the details not yet sent are never sent."""
    shop.arm_fault(kind="delay", delay_ms=20, times=None)
    process = start(["sync"], valerdat_env(shop, database_url, VALERDAT_CONCURRENCY="2"), tmp_path)
    wait_for(lambda: bool(runs(database_url)) and runs(database_url)[-1]["pages"] >= 1, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    stopped = runs(database_url)[-1]
    assert process.returncode == 1 and b"Traceback" not in stderr and b"(asked by SIGTERM)" in stderr
    assert "stopped on request" in stopped["error_message"] and 50 <= stopped["orders_added"] < 300, stopped
    assert detail_requests(shop) < 350
    shop.clear_faults()
    assert run_cli("sync", env=valerdat_env(shop, database_url)).exit_code == 0
    assert mismatches(database_url, shop) == []


def test_a_token_that_expires_mid_run_is_refreshed(database_url: str) -> None:
    ticks = itertools.count()
    with Sandbox(orders=200, seed=62, now=NOW, valerdat_token_lifetime=40, valerdat_clock=lambda: float(next(ticks))) as shop:
        result = run_cli("sync", env=valerdat_env(shop, database_url))
        assert result.exit_code == 0, result.output
        logins = sum(count for path, count in shop.stats()["paths"].items() if path.endswith("/auth/token/"))
        assert logins >= 2
        assert mismatches(database_url, shop) == []


def test_an_order_deleted_between_the_two_calls_is_skipped(database_url: str, shop: Sandbox) -> None:
    gone = 17
    shop.store.deleted.add(gone)
    result = run_cli("sync", env=valerdat_env(shop, database_url))
    assert result.exit_code == 0, result.output
    assert runs_of(database_url, SOURCE)[-1]["orders_added"] == 399
    assert "was deleted before it could be read; skipped" in Path("synclet.log").read_text()


def test_wrong_credentials_are_a_clear_error(database_url: str, shop: Sandbox) -> None:
    env = valerdat_env(shop, database_url, VALERDAT_PASSWORD="not-the-password-9")
    result = run_cli("sync", env=env)
    assert result.exit_code == 1 and "VALERDAT_PASSWORD" in result.output and "not-the-password-9" not in result.output
    checked = run_cli("test", env=env)
    assert checked.exit_code == 1 and "✗ valerdat" in checked.output


def test_rate_limits_are_waited_out(tmp_path: Path) -> None:
    with Sandbox(orders=60, seed=63, now=NOW, valerdat_rate_limit=10) as shop:
        url = f"sqlite:///{tmp_path / 'synclet.db'}"
        result = run_cli("sync", env=valerdat_env(shop, url, HTTP_MAX_RETRIES="10"))
        assert result.exit_code == 0, result.output
        assert mismatches(url, shop) == []


def test_watch_keeps_its_token_and_logs_a_quiet_stretch_once(database_url: str, tmp_path: Path) -> None:
    """The original's 10-second poll: a line per cycle on the console, one login for the whole
    watch, and a stretch of idle cycles written to the log once, not once per cycle."""
    log_file = tmp_path / "activity.log"
    with Sandbox(orders=40, seed=64, now=NOW) as shop:
        env = {**valerdat_env(shop, database_url), "LOG_FILE": str(log_file)}
        process = start(["sync", "--watch", "--interval", "1"], env, tmp_path)
        wait_for(lambda: len(runs(database_url)) >= 4, process)
        shop.add(count=2)
        wait_for(lambda: any(r["orders_added"] == 2 for r in runs(database_url)), process)
        settled = len(runs(database_url))
        wait_for(lambda: len(runs(database_url)) >= settled + 3, process)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    history = runs(database_url)
    active = [r for r in history if r["orders_added"] or r["orders_updated"]]
    assert len(active) == 2 and all(r["status"] == "success" for r in history[:-1])  # SIGTERM may stop the last
    told = [r for r in history if r in active or r["status"] != "success"]
    log_text = log_file.read_text()
    assert log_text.count("Starting ") == log_text.count("Finished ") == len(told) + 2  # + each quiet stretch's first cycle
    assert log_text.count("[INFO] No new orders to add in local system: valerdat") == 2
    assert stdout.decode().count("valerdat: ") >= len(history) - 1  # a console line per finished cycle
    logins = sum(count for path, count in shop.stats()["paths"].items() if path.endswith("/auth/token/"))
    assert logins == 1


def test_an_order_stamped_in_the_future_does_not_move_the_cursor(database_url: str, shop: Sandbox) -> None:
    """The ids walk covers the 2099 entry too; that must not carry the cursor past every later change."""
    env = valerdat_env(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    cursor = runs_of(database_url, SOURCE)[-1]["cursor"]
    shop.update(ids=[9], updated_at=datetime(2099, 1, 1))
    assert run_cli("sync", env=env).exit_code == 0
    assert runs_of(database_url, SOURCE)[-1]["cursor"] == cursor
    shop.add(count=5, created_at=cursor + timedelta(seconds=5))
    shop.update(count=2, updated_at=cursor + timedelta(seconds=6))
    assert run_cli("sync", env=env).exit_code == 0
    assert mismatches(database_url, shop) == []
