"""Where a run starts, from the history alone, for unsorted (OneSaas) and sorted (REST) sources."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from synclet import db, history
from synclet.config import Settings
from synclet.sync import SyncOptions, plan

START = datetime(2026, 1, 1)
SETTINGS = Settings(database_url="sqlite://", initial_sync_date=START, sync_overlap_seconds=300)


class Unsorted:
    name = "magento"
    ordered_by_update = False


class Sorted:
    name = "magento-rest"
    ordered_by_update = True


def record(conn, source: str, sync_type: str, status: str, window_start: datetime, cursor: datetime | None,  # type: ignore[no-untyped-def]
           started: datetime = datetime(2026, 2, 1, 10), minutes: int = 10) -> None:
    run = history.start_run(conn, source, sync_type, window_start, cursor, started)
    history.finish_run(conn, run, status, started + timedelta(minutes=minutes))


@pytest.fixture
def conn(tmp_path):  # type: ignore[no-untyped-def]
    engine = db.connect(f"sqlite:///{tmp_path / 'plan.db'}")
    db.ensure_schema(engine)
    with engine.begin() as connection:
        yield connection


def test_first_run_is_initial_from_the_setting_or_since(conn) -> None:  # type: ignore[no-untyped-def]
    assert plan(conn, Unsorted(), SETTINGS, SyncOptions()).window.created_after == START  # type: ignore[arg-type]
    since = datetime(2025, 6, 1)
    chosen = plan(conn, Unsorted(), SETTINGS, SyncOptions(since=since))  # type: ignore[arg-type]
    assert (chosen.sync_type, chosen.window.created_after, chosen.window.updated_after) == ("initial", since, None)


def test_incremental_reaches_back_by_overlap_and_by_the_unsorted_run_duration(conn) -> None:  # type: ignore[no-untyped-def]
    cursor = datetime(2026, 2, 1, 9, 59)
    record(conn, "magento", "initial", "success", START, cursor, minutes=10)
    chosen = plan(conn, Unsorted(), SETTINGS, SyncOptions())  # type: ignore[arg-type]
    assert chosen.sync_type == "incremental"
    assert chosen.window == type(chosen.window)(created_after=START, updated_after=cursor - timedelta(minutes=15))


def test_a_failed_unsorted_run_does_not_move_the_start(conn) -> None:  # type: ignore[no-untyped-def]
    record(conn, "magento", "initial", "success", START, datetime(2026, 2, 1, 9))
    record(conn, "magento", "incremental", "failed", START, datetime(2026, 2, 1, 12))
    assert plan(conn, Unsorted(), SETTINGS, SyncOptions()).cursor == datetime(2026, 2, 1, 9)  # type: ignore[arg-type]


def test_a_sorted_source_resumes_an_interrupted_initial_sync(conn) -> None:  # type: ignore[no-untyped-def]
    floor, cursor = datetime(2025, 1, 1), datetime(2025, 8, 1)
    record(conn, "magento-rest", "initial", "failed", floor, cursor)
    chosen = plan(conn, Sorted(), SETTINGS, SyncOptions())  # type: ignore[arg-type]
    assert (chosen.sync_type, chosen.window.created_after, chosen.window.updated_after) == ("initial", floor, cursor - timedelta(seconds=300))
    assert plan(conn, Unsorted(), SETTINGS, SyncOptions()).window.updated_after is None  # type: ignore[arg-type]


def test_a_sorted_source_continues_from_the_newest_committed_cursor(conn) -> None:  # type: ignore[no-untyped-def]
    record(conn, "magento-rest", "initial", "success", START, datetime(2026, 2, 1))
    record(conn, "magento-rest", "incremental", "failed", START, datetime(2026, 2, 5))
    chosen = plan(conn, Sorted(), SETTINGS, SyncOptions())  # type: ignore[arg-type]
    assert chosen.window.updated_after == datetime(2026, 2, 5) - timedelta(seconds=300)
