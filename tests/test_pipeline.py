"""Reading ahead while writing, over real HTTP against the sandbox.

The writer still commits one page per transaction in the source's order: a failure, a stop request
or a broken write leaves exactly the pages committed before it, the cursor they justify, and no
thread or request of the run behind.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from synclet import db
from synclet.config import load_settings
from synclet.history import RunCounts
from synclet.http import HttpClient
from synclet.records import Order, Page
from synclet.sandbox import Sandbox
from synclet.sources import Window, build_source
from synclet.store import ORDERS
from synclet.sync import RunResult, SyncOptions, sync_source

from conftest import run_cli
from truth import differences, runs_of

NOW = datetime(2026, 3, 1, 12, 0, 0)
READER = "synclet-read-ahead"


def env_for(shop: Sandbox, database_url: str, rest: bool = False, **extra: str) -> dict[str, str]:
    apis = {"rest": True, "onesaas": False} if rest else {}
    return {**shop.env(**apis), "DATABASE_URL": database_url, "HTTP_MAX_RETRIES": "1", "HTTP_BACKOFF_SECONDS": "0.01",
            "LOG_FILE": "", **extra}


def readers_alive() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == READER]


def stored_ids(database_url: str, source: str = "magento") -> set[str]:
    with db.connect(database_url).connect() as conn:
        return set(conn.execute(select(ORDERS.c.external_id).where(ORDERS.c.source == source)).scalars())


def newest_stored(database_url: str, source: str = "magento") -> datetime | None:
    with db.connect(database_url).connect() as conn:
        return conn.execute(select(func.max(ORDERS.c.source_updated_at)).where(ORDERS.c.source == source)).scalar()


class Counting:
    """A source whose pages are counted as they leave it, so a test sees how far ahead the reader is."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.ordered_by_update = inner.ordered_by_update
        self.produced = 0
        self.changed = threading.Condition()

    def check(self) -> str:
        return str(self.inner.check())

    def parse(self, payload: Mapping[str, Any]) -> Order:
        return self.inner.parse(payload)  # type: ignore[no-any-return]

    def pages(self, window: Window) -> Iterator[Page]:
        for page in self.inner.pages(window):
            with self.changed:
                self.produced += 1
                self.changed.notify_all()
            yield page

    def wait_for(self, produced: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.produced >= produced, timeout=60)


class Calls:
    """A progress callback running ``each`` after every committed page, in the writer's thread."""

    def __init__(self, each: Any) -> None:
        self.each = each
        self.committed = 0

    def page(self, source: str, page: Page, counts: RunCounts) -> None:
        self.committed += 1
        self.each(self.committed, page)


def run_in_process(database_url: str, env: dict[str, str], wrap: Any = lambda source: source, progress: Any = None,
                   stop: threading.Event | None = None, source_name: str = "magento") -> tuple[RunResult, Any]:
    settings = load_settings(environ=env)
    http = HttpClient.from_settings(settings)
    try:
        source = wrap(build_source(source_name, settings, http))
        engine = db.connect(database_url)
        try:
            return sync_source(engine, source, settings, SyncOptions(), progress, lambda line: None, stop), source
        finally:
            engine.dispose()
    finally:
        http.close()


@pytest.fixture
def shop() -> Iterator[Sandbox]:
    with Sandbox(orders=600, seed=71, now=NOW) as sandbox:
        yield sandbox


def first_pages(shop: Sandbox, count: int, page_size: int) -> list[Page]:
    """The first ``count`` pages the OneSaas source reads of a first sync, read directly."""
    settings = load_settings(environ=env_for(shop, "sqlite:///unused.db", MAGENTO_PAGE_SIZE=str(page_size)))
    http = HttpClient.from_settings(settings)
    try:
        source = build_source("magento", settings, http)
        return list(itertools.islice(source.pages(Window(created_after=settings.initial_sync_date)), count))
    finally:
        http.close()


@pytest.mark.parametrize("ahead", ["0", "2", "5"])
def test_a_failure_mid_paging_leaves_the_pages_before_it_whatever_the_read_ahead(database_url: str, shop: Sandbox,
                                                                                 ahead: str) -> None:
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="50", FETCH_AHEAD_PAGES=ahead)
    expected = first_pages(shop, 5, 50)
    shop.arm_fault(status=500, times=None, after=5)  # pages 0-4 answer, every later request fails
    failed = run_cli("sync", env=env)
    assert failed.exit_code == 1
    run = runs_of(database_url, "magento")[-1]
    assert run["status"] == "failed" and run["pages"] == 5 and "HTTP 500" in run["error_message"]
    assert stored_ids(database_url) == {o.external_id for page in expected for o in page.orders}
    assert run["cursor"] == newest_stored(database_url)  # the cursor claims no more than the rows
    assert readers_alive() == []
    shop.clear_faults()
    assert run_cli("sync", env=env).exit_code == 0
    assert differences(db.connect(database_url), shop.truth()) == []


def test_the_reader_runs_ahead_of_the_writer_but_never_further_than_its_bound(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    with Sandbox(orders=400, seed=72, now=NOW) as shop:
        env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="20", FETCH_AHEAD_PAGES="3")
        counting: list[Counting] = []
        seen: list[tuple[int, int]] = []

        def wrap(source: Any) -> Counting:
            counting.append(Counting(source))
            return counting[0]

        def each(committed: int, page: Page) -> None:
            source = counting[0]
            if committed == 1:  # the writer holds page 0 back until the reader has filled its buffer
                assert source.wait_for(1 + 3), "the reader did not read ahead while the writer was busy"
            seen.append((committed, source.produced))

        result, _ = run_in_process(database_url, env, wrap, Calls(each))
        assert result.status == "success", result.error
        assert seen[0] == (1, 4)
        assert all(produced <= committed + 3 for committed, produced in seen)
        assert differences(db.connect(database_url), shop.truth()) == []


def test_a_stop_request_ends_the_run_after_its_page_and_the_reader_with_it(database_url: str, shop: Sandbox) -> None:
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="20", FETCH_AHEAD_PAGES="2")
    stop = threading.Event()

    def each(committed: int, page: Page) -> None:
        if committed == 2:
            stop.set()

    result, _ = run_in_process(database_url, env, progress=Calls(each), stop=stop)
    requests_at_return = shop.stats()["requests"]
    assert result.status == "stopped" and "stopped on request after page 1" in (result.error or "")
    assert readers_alive() == []
    assert requests_at_return <= 2 + 2 + 1  # two written, two read ahead, one in flight at the stop
    run = runs_of(database_url, "magento")[-1]
    assert run["status"] == "failed" and run["pages"] == 2 and run["cursor"] == newest_stored(database_url)
    assert run_cli("sync", env=env).exit_code == 0
    assert shop.stats()["requests"] > requests_at_return
    assert differences(db.connect(database_url), shop.truth()) == []


def test_a_failing_writer_stops_the_reader(database_url: str, shop: Sandbox) -> None:
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="20", FETCH_AHEAD_PAGES="4")

    def each(committed: int, page: Page) -> None:
        if committed == 3:
            raise RuntimeError("the writer broke")

    with pytest.raises(RuntimeError, match="the writer broke"):
        run_in_process(database_url, env, progress=Calls(each))
    assert readers_alive() == []
    run = runs_of(database_url, "magento")[-1]
    assert run["status"] == "failed" and run["pages"] == 3 and "the writer broke" in run["error_message"]


def test_no_read_ahead_reads_in_the_writers_thread(database_url: str, shop: Sandbox) -> None:
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="50", FETCH_AHEAD_PAGES="0")
    threads: list[list[str]] = []

    def each(committed: int, page: Page) -> None:
        threads.append([thread.name for thread in threading.enumerate()])

    result, _ = run_in_process(database_url, env, progress=Calls(each))
    assert result.status == "success" and threads
    assert not any(READER in names for names in threads)


def test_a_dry_run_reports_the_same_with_and_without_read_ahead(tmp_path, shop: Sandbox) -> None:  # type: ignore[no-untyped-def]
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="40")
    assert run_cli("sync", env=env).exit_code == 0
    shop.update(count=25, updated_at=NOW + timedelta(minutes=1))
    shop.add(count=10, created_at=NOW + timedelta(minutes=2))
    reports = []
    for ahead in ("0", "3"):
        output = run_cli("sync", "--dry-run", env={**env, "FETCH_AHEAD_PAGES": ahead}).output
        reports.append([line.split(" in ")[0] for line in output.splitlines()])  # the summary without its time
    assert reports[0] == reports[1]
    assert any("[dry-run] would add" in line for line in reports[0])
    assert any("[dry-run] would replace" in line for line in reports[0])
