"""synclet end to end over real HTTP: the CLI syncs the sandbox store into SQLite and MariaDB,
and every stored row is compared with the store's own truth."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from synclet import db
from synclet.config import today_utc
from synclet.history import HISTORY
from synclet.locks import SourceLock
from synclet.sandbox import Sandbox
from synclet.store import ORDERS, REJECTS

from conftest import run_cli
from truth import differences

NOW = datetime(2026, 3, 1, 12, 0, 0)
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - (INFO|WARNING|ERROR|DEBUG) - .+$")


@pytest.fixture
def shop() -> Iterator[Sandbox]:
    with Sandbox(orders=600, seed=3, now=NOW) as sandbox:
        yield sandbox


def settings_for(sandbox: Sandbox, database_url: str, **extra: str) -> dict[str, str]:
    return {**sandbox.env(), "DATABASE_URL": database_url, "HTTP_MAX_RETRIES": "1", "HTTP_BACKOFF_SECONDS": "0.01", **extra}


def last_history(database_url: str) -> dict:
    with db.connect(database_url).connect() as conn:
        return dict(conn.execute(select(HISTORY).order_by(HISTORY.c.id.desc()).limit(1)).mappings().one())


def identity_count(sandbox: Sandbox) -> int:
    return sum(1 for order in sandbox.truth() if order["has_identity"])


def test_initial_changes_and_incremental_match_the_store(database_url: str) -> None:
    with Sandbox(orders=3000, seed=11, now=NOW) as shop:
        env = settings_for(shop, database_url)
        first = run_cli("sync", env=env)
        assert first.exit_code == 0, first.output
        engine = db.connect(database_url)
        assert differences(engine, shop.truth()) == []
        run = last_history(database_url)
        skipped = sum(1 for order in shop.truth() if not order["has_identity"])
        assert (run["sync_type"], run["status"], run["orders_added"], run["orders_skipped"]) == ("initial", "success", 3000 - skipped, skipped)
        cursor = run["cursor"]
        assert cursor == max(datetime.fromisoformat(o["source_updated_at"]) for o in shop.truth() if o["has_identity"])

        # What a live shop does between two cron runs: changes at and just behind the cursor (the
        # same second, a slow transaction committed late), later changes, and new orders.
        ids = [o["external_id"] for o in shop.truth() if o["has_identity"]]
        same_second = shop.update(ids=[int(ids[10]), int(ids[20])], updated_at=cursor)
        late = shop.update(ids=[int(ids[30])], updated_at=cursor - timedelta(seconds=40))
        later = shop.update(ids=[int(i) for i in ids[100:150]], updated_at=cursor + timedelta(seconds=5))
        added = shop.add(count=25, created_at=cursor + timedelta(seconds=6))
        second = run_cli("sync", env=env)
        assert second.exit_code == 0, second.output
        assert differences(engine, shop.truth()) == []
        run = last_history(database_url)
        truth = shop.truth_by_id()
        new_identities = sum(1 for i in added if truth[str(i)]["has_identity"])
        assert run["sync_type"] == "incremental"
        assert (run["orders_added"], run["orders_updated"]) == (new_identities, len(same_second + late + later))
        window = run["window_start"]
        reread = sum(1 for o in shop.truth() if o["has_identity"] and datetime.fromisoformat(o["source_updated_at"]) >= window)
        assert run["orders_added"] + run["orders_updated"] + run["orders_unchanged"] == reread
        assert run["cursor"] == cursor + timedelta(seconds=6)

        third = run_cli("sync", env=env)
        assert third.exit_code == 0
        run = last_history(database_url)
        assert (run["orders_added"], run["orders_updated"], run["status"]) == (0, 0, "success")
        assert run["orders_unchanged"] > 0
        assert "[INFO] No new orders to add in local system: magento" in Path("synclet.log").read_text()


def test_a_500_mid_paging_fails_the_run_and_the_rerun_loses_nothing(database_url: str, shop: Sandbox) -> None:
    env = settings_for(shop, database_url, MAGENTO_PAGE_SIZE="50")
    shop.arm_fault(status=500, times=5, after=4, body='{"message": "Internal error"}')
    failed = run_cli("sync", env=env)
    assert failed.exit_code == 1
    run = last_history(database_url)
    assert run["status"] == "failed" and run["pages"] == 4
    assert "HTTP 500" in run["error_message"] and shop.access_key not in run["error_message"]
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(ORDERS)).scalar() == run["orders_added"] > 0
    assert "cursor     none yet (the next sync is an initial one)" in run_cli("status", env=env).output
    # Meanwhile the shop changes orders on pages already read and on pages not yet read.
    shop.update(ids=[3, 450], updated_at=NOW + timedelta(seconds=30))
    shop.clear_faults()
    rerun = run_cli("sync", env=env)
    assert rerun.exit_code == 0, rerun.output
    assert last_history(database_url)["sync_type"] == "initial"  # no successful run yet: start over
    assert differences(db.connect(database_url), shop.truth()) == []


def test_a_failed_incremental_run_is_recovered_by_the_next(database_url: str, shop: Sandbox) -> None:
    env = settings_for(shop, database_url, MAGENTO_PAGE_SIZE="10", SYNC_OVERLAP_SECONDS="0")
    assert run_cli("sync", env=env).exit_code == 0
    shop.add(count=40, created_at=NOW + timedelta(minutes=1))
    shop.update(count=15, updated_at=NOW + timedelta(minutes=2))
    shop.arm_fault(kind="truncate", times=None, after=2)
    assert run_cli("sync", env=env).exit_code == 1
    assert "not JSON" in last_history(database_url)["error_message"]
    shop.clear_faults()
    assert run_cli("sync", env=env).exit_code == 0
    assert differences(db.connect(database_url), shop.truth()) == []


def test_wrong_key_is_a_clear_error_and_stores_nothing(database_url: str, shop: Sandbox) -> None:
    env = settings_for(shop, database_url, MAGENTO_ACCESS_KEY="wrong-key-123")
    result = run_cli("sync", env=env)
    assert result.exit_code == 1
    assert "MAGENTO_ACCESS_KEY" in result.output and "wrong-key-123" not in result.output
    assert last_history(database_url)["status"] == "failed"
    checked = run_cli("test", env=env)
    assert checked.exit_code == 1
    assert "✓ database" in checked.output and "✗ magento" in checked.output
    assert "wrong-key-123" not in checked.output + Path("synclet.log").read_text()


def test_test_command_passes_against_a_good_store(database_url: str, shop: Sandbox) -> None:
    result = run_cli("test", env=settings_for(shop, database_url))
    assert result.exit_code == 0, result.output
    assert result.output.count("✓") == 2 and "OneSaas 4.2" in result.output


def test_dry_run_writes_nothing(database_url: str, shop: Sandbox) -> None:
    result = run_cli("sync", "--dry-run", env=settings_for(shop, database_url))
    assert result.exit_code == 0
    assert result.output.count("[dry-run] would add: magento ") == identity_count(shop)
    if database_url.startswith("sqlite:///"):
        assert not Path(database_url.removeprefix("sqlite:///")).exists()  # not even an empty file
    assert db.schema_state(db.connect(database_url))[0] == "empty"


def test_force_initial_and_since_reread_without_deleting(database_url: str, shop: Sandbox) -> None:
    env = settings_for(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    since = (NOW - timedelta(days=3)).strftime("%Y-%m-%d")
    result = run_cli("sync", "--force-initial", "--since", since, env=env)
    assert result.exit_code == 0
    run = last_history(database_url)
    assert run["sync_type"] == "initial" and run["window_start"] == NOW.replace(hour=0) - timedelta(days=3)
    assert run["orders_added"] == 0 and run["orders_unchanged"] > 0
    assert differences(db.connect(database_url), shop.truth()) == []


def test_a_source_named_twice_syncs_once(database_url: str, shop: Sandbox) -> None:
    result = run_cli("sync", "--source", "magento", "--source", "magento", env=settings_for(shop, database_url))
    assert result.exit_code == 0 and result.output.count("magento: initial sync success") == 1
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(HISTORY)).scalar() == 1


def test_a_second_sync_of_the_same_source_exits_75(database_url: str, shop: Sandbox) -> None:
    env = settings_for(shop, database_url)
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    with engine.connect() as conn, SourceLock(conn, "magento"):
        result = run_cli("sync", env=env)
    assert result.exit_code == 75
    assert "another sync of magento is running" in result.output
    assert " - WARNING - magento: another sync of magento is running" in Path("synclet.log").read_text()
    assert run_cli("sync", env=env).exit_code == 0


def test_a_sync_that_cannot_reach_the_database_says_so_in_the_activity_log(shop: Sandbox, tmp_path: Path) -> None:
    """The log held no line at all for such a run, as if cron had stopped running it."""
    result = run_cli("sync", env=settings_for(shop, f"sqlite:///{tmp_path / 'gone' / 'x.db'}"))
    assert result.exit_code == 1
    logged = Path("synclet.log").read_text().splitlines()
    assert len(logged) == 1 and " - ERROR - magento: cannot reach the database: " in logged[0]
    assert result.output == logged[0].split(" - ERROR - ")[1] + "\n"  # shown once on the console, not twice


def test_status_shows_runs_counts_and_newest_orders(database_url: str, shop: Sandbox) -> None:
    env = settings_for(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    report = json.loads(run_cli("status", "--json", env=env).output)
    (magento,) = report["sources"]
    assert magento["orders_stored"] == identity_count(shop)
    assert magento["last_run"]["status"] == "success" and magento["last_run"]["orders_added"] == identity_count(shop)
    assert magento["cursor"] and magento["lag_seconds"] is not None and len(magento["newest_orders"]) == 5
    human = run_cli("status", env=env)
    assert human.exit_code == 0
    assert f"{identity_count(shop):,} orders" in human.output and "initial success" in human.output
    assert shop.access_key not in human.output + json.dumps(report)


def test_status_before_anything_is_synced(database_url: str) -> None:
    result = run_cli("status", env={"DATABASE_URL": database_url})
    assert result.exit_code == 0 and "Database:" in result.output


def test_clear_asks_refuses_without_a_terminal_and_deletes_with_yes(database_url: str, shop: Sandbox) -> None:
    env = settings_for(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    refused = run_cli("clear", env=env)
    assert refused.exit_code == 1 and "--yes" in refused.output
    unknown = run_cli("clear", "--source", "magneto", env=env)  # told before anything is asked
    assert unknown.exit_code == 1 and "unknown source 'magneto'" in unknown.output and "--yes" not in unknown.output
    cleared = run_cli("clear", "--source", "magento", "--yes", env=env)
    assert cleared.exit_code == 0 and f"Deleted {identity_count(shop)} orders" in cleared.output
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(ORDERS)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(HISTORY)).scalar() == 0
    again = run_cli("sync", env=env)
    assert again.exit_code == 0 and "initial sync" in again.output


def test_init_is_repeatable_and_sync_initialises_an_empty_database(database_url: str) -> None:
    first = run_cli("init", env={"DATABASE_URL": database_url})
    second = run_cli("init", env={"DATABASE_URL": database_url})
    assert first.exit_code == second.exit_code == 0
    assert "upgraded from empty" in first.output and "up to date" in second.output


def test_a_foreign_schema_revision_is_refused(database_url: str, shop: Sandbox) -> None:
    engine = db.connect(database_url)
    db.ensure_schema(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff'")
    result = run_cli("sync", env=settings_for(shop, database_url))
    assert result.exit_code == 1 and "schema" in result.output


def test_unreachable_database_is_exit_1_without_the_password(shop: Sandbox) -> None:
    env = settings_for(shop, "mysql+pymysql://synclet:hunter2-pw@127.0.0.1:1/nowhere")
    for command in ("init", "sync"):
        result = run_cli(command, env=env)
        assert result.exit_code == 1
        assert "cannot reach the database" in result.output and "hunter2-pw" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_activity_log_lines_follow_the_contract(shop: Sandbox) -> None:
    env = settings_for(shop, "sqlite:///synclet.db")
    assert run_cli("sync", env=env).exit_code == 0
    shop.update(ids=[5], updated_at=NOW + timedelta(seconds=1))
    assert run_cli("sync", env=env).exit_code == 0
    lines = Path("synclet.log").read_text(encoding="utf-8").splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines)
    number = shop.truth_by_id()["5"]["order_number"]
    assert any(line.endswith(f"- INFO - [+] Adding new order to local system: magento {number}") for line in lines)
    assert any(line.endswith(f"- INFO - [*] Replacing order in local system: magento {number}") for line in lines)
    assert sum("Starting " in line for line in lines) == 2 and sum("Finished " in line for line in lines) == 2
    assert any(" - WARNING - Skipped " in line for line in lines)
    assert shop.access_key not in "\n".join(lines)


def test_rejected_orders_are_kept_counted_and_exit_1(database_url: str, shop: Sandbox) -> None:
    shop.store.override(7, {"Total": "twelve"})
    result = run_cli("sync", env=settings_for(shop, database_url))
    assert result.exit_code == 1
    run = last_history(database_url)
    assert run["status"] == "success" and run["orders_rejected"] == 1
    with db.connect(database_url).connect() as conn:
        kept = conn.execute(select(REJECTS)).mappings().one()
        stored = conn.execute(select(func.count()).select_from(ORDERS)).scalar()
    assert kept["external_id"] == "7" and "Total" in kept["error_message"] and '"twelve"' in kept["raw_json"]
    assert stored == identity_count(shop) - 1
    status = run_cli("status", env=settings_for(shop, database_url)).output
    assert "rejected   1" in status and "Total" in status
    again = run_cli("sync", env=settings_for(shop, database_url))  # nothing new, but the reject waits
    assert again.exit_code == 1 and "1 order(s) rejected" in again.output
    # The store fixes the order: the next run maps it and forgets the reject.
    shop.store.override(7, {"Total": None})
    shop.update(ids=[7], updated_at=NOW + timedelta(seconds=1))
    assert run_cli("sync", env=settings_for(shop, database_url)).exit_code == 0
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(REJECTS)).scalar() == 0
    assert differences(db.connect(database_url), shop.truth()) == []


def test_a_reject_clears_when_the_order_is_read_again_unchanged(database_url: str, shop: Sandbox) -> None:
    """A bad payload served once for an order stored at that very version: once the shop serves it
    whole again, the reject goes, though the order itself is unchanged."""
    env = settings_for(shop, database_url, SYNC_OVERLAP_SECONDS=str(40 * 86400))  # every run re-reads every order
    assert run_cli("sync", env=env).exit_code == 0
    shop.store.override(7, {"Total": "twelve"})
    assert run_cli("sync", env=env).exit_code == 1
    shop.store.override(7, {"Total": None})
    healed = run_cli("sync", env=env)
    assert healed.exit_code == 0, healed.output
    assert (last_history(database_url)["orders_updated"], last_history(database_url)["orders_rejected"]) == (0, 0)
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(REJECTS)).scalar() == 0
    assert differences(db.connect(database_url), shop.truth()) == []


def test_an_absurd_amount_is_rejected_not_a_failed_page(database_url: str, shop: Sandbox) -> None:
    shop.store.override(9, {"Total": "123456789012345678901234.50", "Date": "0999-12-31 23:59:59"})
    result = run_cli("sync", env=settings_for(shop, database_url))
    assert result.exit_code == 1
    run = last_history(database_url)
    assert (run["status"], run["orders_rejected"], run["orders_added"]) == ("success", 1, identity_count(shop) - 1)


def test_clear_everything_on_a_terminal_after_confirming(database_url: str, shop: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    env = settings_for(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    monkeypatch.setattr("synclet.cli.stdin_is_terminal", lambda: True)
    declined = run_cli("clear", env=env, input="n\n")
    assert declined.exit_code == 1 and "Nothing deleted" in declined.output
    accepted = run_cli("clear", env=env, input="y\n")
    assert accepted.exit_code == 0 and f"Deleted {identity_count(shop)} orders" in accepted.output


def plant_reject(database_url: str, shop: Sandbox, entity_id: int, payload: dict) -> None:
    """A reject as an earlier synclet with a mapping bug would have left it."""
    from synclet.records import Rejected, canonical_json
    from synclet.store import save_rejects

    with db.connect(database_url).begin() as conn:
        save_rejects(conn, [Rejected("magento", str(entity_id), None, canonical_json(payload), "an old bug")], None, NOW)  # type: ignore[arg-type]


def test_rejects_are_retried_until_they_map_or_are_superseded(database_url: str, shop: Sandbox) -> None:
    from synclet.sandbox.onesaas import render_order

    env = settings_for(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    with db.connect(database_url).begin() as conn:
        conn.execute(ORDERS.delete().where(ORDERS.c.external_id == "12"))
    plant_reject(database_url, shop, 12, render_order(shop.store.get(12)))  # maps today: recovered
    older = render_order(shop.store.get(13)) | {"LastUpdatedDate": "2000-01-01 00:00:00", "Status": "stale"}
    plant_reject(database_url, shop, 13, older)  # the stored order 13 is newer: superseded
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.output
    run = last_history(database_url)
    assert (run["orders_added"], run["orders_updated"]) == (1, 0)
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(REJECTS)).scalar() == 0
    assert differences(db.connect(database_url), shop.truth()) == []


def test_a_future_update_time_does_not_move_the_cursor(database_url: str, shop: Sandbox) -> None:
    shop.store.override(4, {"LastUpdatedDate": "2099-12-31 23:59:59"})
    env = settings_for(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    assert last_history(database_url)["cursor"] < datetime(2030, 1, 1)
    shop.update(ids=[9], updated_at=NOW + timedelta(minutes=5))
    assert run_cli("sync", env=env).exit_code == 0
    assert last_history(database_url)["orders_updated"] == 1
    assert "is in the future; it does not move the cursor" in Path("synclet.log").read_text()


def test_log_lines_stay_one_line_whatever_the_order_number(shop: Sandbox) -> None:
    shop.store.override(6, {"OrderNumber": "0006\n2026-01-01 00:00:00,000 - INFO - forged" + "x" * 500})
    assert run_cli("sync", env=settings_for(shop, "sqlite:///synclet.db")).exit_code == 0
    lines = Path("synclet.log").read_text(encoding="utf-8").splitlines()
    assert all(LOG_LINE.match(line) and len(line) < 400 for line in lines)
    assert not any(line.startswith("2026-01-01 00:00:00,000") for line in lines)


def test_status_after_an_initial_sync_that_found_nothing_says_the_next_is_incremental(database_url: str, shop: Sandbox) -> None:
    """INITIAL_SYNC_DATE today and no order yet: the run succeeds with no cursor, and the next
    sync is an incremental one, not the initial one status promised."""
    env = settings_for(shop, database_url, INITIAL_SYNC_DATE="2026-03-02")
    assert run_cli("sync", env=env).exit_code == 0
    shown = run_cli("status", env=env).output
    assert "cursor     none yet (nothing stored so far; the next sync reads again from where the initial one" in shown
    assert json.loads(run_cli("status", "--json", env=env).output)["sources"][0]["next_sync"] == "incremental"
    assert run_cli("sync", env=env).exit_code == 0
    assert last_history(database_url)["sync_type"] == "incremental"


def test_without_initial_sync_date_a_first_sync_retried_after_midnight_keeps_its_first_day(database_url: str) -> None:
    """INITIAL_SYNC_DATE unset means the day of the first attempt: a first run that failed at 23:00
    and a retry after midnight read that day's orders too, which "today" of the retry left out."""
    today = today_utc()
    with Sandbox(orders=300, seed=12, now=today + timedelta(hours=1)) as shop:
        env = {key: value for key, value in settings_for(shop, database_url).items() if key != "INITIAL_SYNC_DATE"}
        shop.arm_fault(status=503, times=None)
        assert run_cli("sync", env={**env, "HTTP_MAX_RETRIES": "0"}).exit_code == 1
        shop.clear_faults()
        with db.connect(database_url).begin() as conn:  # that attempt was yesterday, at 23:00
            conn.execute(update(HISTORY).values(started_at=today - timedelta(hours=1), finished_at=today - timedelta(hours=1)))
        assert run_cli("sync", env=env).exit_code == 0
        run = last_history(database_url)
        yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
        wanted = [o for o in shop.truth() if o["has_identity"] and o["order_date"][:10] >= yesterday]
    assert run["sync_type"] == "initial" and run["window_start"] == today - timedelta(days=1)
    assert any(o["order_date"][:10] == yesterday for o in wanted)
    assert run["orders_added"] == len(wanted)
