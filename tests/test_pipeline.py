"""Reading ahead while writing, and Magento REST pages in parallel, over real HTTP against the sandbox.

The writer still commits one page per transaction in the source's order: a failure, a stop request
or a broken write leaves exactly the pages committed before it, the cursor they justify, and no
thread or request of the run behind.
"""
from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from synclet import db, store
from synclet.config import Settings, load_settings
from synclet.history import RunCounts
from synclet.errors import RemoteError
from synclet.http import HttpClient
from synclet.readahead import FORK_AVAILABLE, READER_THREAD
from synclet.records import Order, Page, Rejected
from synclet.sandbox import Sandbox
from synclet.sources import Window, build_source
from synclet.sources import magento_rest
from synclet.sources.magento_rest import MagentoRestSource
from synclet.store import ORDERS
from synclet.sync import RunResult, SyncOptions, sync_source, utc_now

from conftest import run_cli
from truth import differences, runs_of

NOW = datetime(2026, 3, 1, 12, 0, 0)
READER = READER_THREAD
ROOT = Path(__file__).resolve().parent.parent


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
    """A source whose pages are counted as they leave it, so a test sees how far ahead the reader
    is, and which notes the process reading them. Both are in shared memory: a forked reader takes
    the pages in a child process."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.ordered_by_update = inner.ordered_by_update
        context = multiprocessing.get_context("fork" if FORK_AVAILABLE else "spawn")
        self.count = context.Value("i", 0)
        self.reader_pid = context.Value("i", 0)

    @property
    def produced(self) -> int:
        return int(self.count.value)

    def check(self) -> str:
        return str(self.inner.check())

    def parse(self, payload: Mapping[str, Any]) -> Order:
        return self.inner.parse(payload)  # type: ignore[no-any-return]

    def pages(self, window: Window) -> Iterator[Page]:
        self.reader_pid.value = os.getpid()
        for page in self.inner.pages(window):
            with self.count.get_lock():
                self.count.value += 1
            yield page

    def wait_for(self, produced: int) -> bool:
        deadline = time.monotonic() + 60
        while self.produced < produced:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


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
        # The reader is at most 3 pages ahead of the pages the writer took, and the writer takes at
        # most 3 at once (those ready), reporting each after their commit.
        assert seen[0][1] >= 4
        assert all(produced <= committed + 2 * 3 - 1 for committed, produced in seen)
        assert differences(db.connect(database_url), shop.truth()) == []


def test_a_stop_request_ends_the_run_after_its_page_and_the_reader_with_it(database_url: str, shop: Sandbox) -> None:
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="20", FETCH_AHEAD_PAGES="2")
    stop = threading.Event()

    def each(committed: int, page: Page) -> None:
        if committed == 2:
            stop.set()

    result, _ = run_in_process(database_url, env, progress=Calls(each), stop=stop)
    requests_at_return = shop.stats()["requests"]
    run = runs_of(database_url, "magento")[-1]
    written = run["pages"]  # 2, or 3 when the second page was written together with the third
    assert result.status == "stopped" and f"stopped on request after {written} pages;" in (result.error or "")
    assert 2 <= written <= 3
    assert readers_alive() == []
    assert requests_at_return <= written + 2 + 1  # those written, two read ahead, one in flight at the stop
    assert run["status"] == "failed" and run["cursor"] == newest_stored(database_url)
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
    # the third page's group: pages ready together, up to the 4 read ahead, so pages 3 to 6
    assert run["status"] == "failed" and 3 <= run["pages"] <= 6 and "the writer broke" in run["error_message"]


def test_no_read_ahead_reads_in_the_writers_thread(database_url: str, shop: Sandbox) -> None:
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="50", FETCH_AHEAD_PAGES="0")
    threads: list[list[str]] = []

    def each(committed: int, page: Page) -> None:
        threads.append([thread.name for thread in threading.enumerate()])

    result, _ = run_in_process(database_url, env, progress=Calls(each))
    assert result.status == "success" and threads
    assert not any(READER in names for names in threads)


@pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork here")
def test_a_backfill_reads_in_a_process_and_an_hourly_run_in_a_thread(database_url: str) -> None:
    """A process of its own pays off on many pages; on the few of an hourly run it costs more than
    it saves. The shop's clock is this machine's, as a live shop's is."""
    with Sandbox(orders=300, seed=73) as live:
        live.update(count=5)  # the newest change is minutes old, as it is in a busy shop
        env = env_for(live, database_url, MAGENTO_PAGE_SIZE="50")
        backfill, source = run_in_process(database_url, env, Counting)
        assert backfill.status == "success" and backfill.sync_type == "initial"
        assert source.reader_pid.value not in (0, os.getpid())
        live.update(count=4)
        hourly, source = run_in_process(database_url, env, Counting)
        assert hourly.status == "success" and hourly.sync_type == "incremental"
        assert hourly.counts.orders_updated + hourly.counts.orders_skipped == 4  # skipped: no identity
        assert source.reader_pid.value == os.getpid()
        assert readers_alive() == []
        assert differences(db.connect(database_url), live.truth()) == []


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


class Scripted:
    """A source whose pages are given: what an API answered, without the API."""

    name = "magento"
    ordered_by_update = False

    def __init__(self, pages: list[Page]) -> None:
        self.scripted = pages

    def check(self) -> str:
        return "scripted"

    def parse(self, payload: Mapping[str, Any]) -> Order:
        raise NotImplementedError

    def pages(self, window: Window) -> Iterator[Page]:
        yield from self.scripted


@pytest.mark.parametrize("ahead", [0, 2])
def test_an_order_rejected_on_one_page_and_stored_on_a_later_one_leaves_no_reject(tmp_path, ahead: int) -> None:  # type: ignore[no-untyped-def]
    from test_store import make_order

    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    engine = db.connect(database_url)
    bad = Rejected("magento", "7", "00007", '{"Id": "7", "Total": "twelve"}', "Total: 'twelve' is not a number")
    pages = [Page(0, orders=[make_order("1")], rejected=[bad]), Page(1, orders=[make_order("2")]),
             Page(2, orders=[make_order("7")])]
    result = sync_source(engine, Scripted(pages), Settings(fetch_ahead_pages=ahead), SyncOptions())
    assert result.status == "success" and result.counts.orders_rejected == 1 and result.rejects_pending == 0
    with engine.connect() as conn:
        assert store.count_rejects(conn, "magento") == 0
    assert stored_ids(database_url) == {"1", "2", "7"}


# --- OneSaas: pages asked for early ------------------------------------------------------------


def test_a_long_onesaas_walk_asks_ahead_and_stores_exactly_the_truth(database_url: str, shop: Sandbox) -> None:
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="10", FETCH_AHEAD_PAGES="2")
    assert run_cli("sync", env=env).exit_code == 0
    run = runs_of(database_url, "magento")[-1]
    needed = run["pages"] + (1 if len(shop.truth()) % 10 == 0 else 0)  # a last full page is followed by ""
    assert needed <= shop.stats()["requests"] <= needed + 3  # at most FETCH_AHEAD_PAGES + 1 past the end
    assert differences(db.connect(database_url), shop.truth()) == []


def test_an_early_request_that_fails_is_asked_again_in_its_turn(tmp_path, shop: Sandbox) -> None:  # type: ignore[no-untyped-def]
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    env = env_for(shop, database_url, MAGENTO_PAGE_SIZE="10", FETCH_AHEAD_PAGES="2")
    # Requests 1-5 are pages 0-4, one at a time; 6-8 the three asked for at once; the 8th fails, and
    # the 9th: an early one, or the 8th's page asked again, which then has its retry.
    shop.arm_fault(status=503, times=2, after=7)
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.output
    assert shop.stats()["faults_served"] == 2
    assert differences(db.connect(database_url), shop.truth()) == []


# --- Magento REST: parallel pages ---------------------------------------------------------------

REST = "magento-rest"


@pytest.fixture
def rest_shop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A REST shop whose backfill is long enough for parallel pages (the threshold lowered to fit)."""
    monkeypatch.setattr(magento_rest, "PARALLEL_MIN_ORDERS", 100)
    with Sandbox(orders=700, seed=73, now=NOW) as sandbox:
        yield sandbox


def pages_asked(shop: Sandbox) -> list[int]:
    return [int(r["params"].get("searchCriteria[currentPage]", "1")) for r in shop.stats()["recent"]
            if r["path"].endswith("/V1/orders")]


def test_rest_pages_in_parallel_store_exactly_the_truth(database_url: str, rest_shop: Sandbox) -> None:
    env = env_for(rest_shop, database_url, rest=True, MAGENTO_REST_PAGE_SIZE="40", MAGENTO_REST_CONCURRENCY="4")
    first = run_cli("sync", env=env)
    assert first.exit_code == 0, first.output
    assert max(pages_asked(rest_shop)) > 1  # the backfill did page by offset
    assert differences(db.connect(database_url), rest_shop.truth(view="rest"), REST) == []
    run = runs_of(database_url, REST)[-1]
    assert run["orders_added"] == 700 and run["cursor"] == newest_stored(database_url, REST)
    rest_shop.update(count=40, updated_at=run["cursor"])
    rest_shop.add(count=10, created_at=run["cursor"] + timedelta(seconds=5))
    assert run_cli("sync", env=env).exit_code == 0
    assert differences(db.connect(database_url), rest_shop.truth(view="rest"), REST) == []


def test_one_request_at_a_time_never_pages_by_offset(database_url: str, rest_shop: Sandbox) -> None:
    env = env_for(rest_shop, database_url, rest=True, MAGENTO_REST_PAGE_SIZE="40", MAGENTO_REST_CONCURRENCY="1",
                  FETCH_AHEAD_PAGES="0")
    assert run_cli("sync", env=env).exit_code == 0
    recent = rest_shop.stats()["recent"]
    assert set(pages_asked(rest_shop)) == {1}
    assert not any(value == "DESC" for r in recent for value in r["params"].values())
    assert differences(db.connect(database_url), rest_shop.truth(view="rest"), REST) == []


def test_a_lasting_fault_among_parallel_pages_keeps_the_committed_prefix_and_the_rerun_completes(
        database_url: str, rest_shop: Sandbox) -> None:
    env = env_for(rest_shop, database_url, rest=True, MAGENTO_REST_PAGE_SIZE="40", MAGENTO_REST_CONCURRENCY="4")
    rest_shop.arm_fault(status=503, times=None, after=14)
    failed = run_cli("sync", env=env)
    assert failed.exit_code == 1
    run = runs_of(database_url, REST)[-1]
    assert run["status"] == "failed" and "HTTP 503" in run["error_message"] and run["pages"] >= 1
    by_update = sorted(rest_shop.truth(view="rest"), key=lambda o: (o["source_updated_at"], int(o["external_id"])))
    committed = [o["external_id"] for o in by_update[: run["orders_added"]]]
    assert stored_ids(database_url, REST) == set(committed)  # a prefix of the walk, nothing beyond it
    assert run["cursor"] == newest_stored(database_url, REST)
    rest_shop.clear_faults()
    assert run_cli("sync", env=env).exit_code == 0
    assert differences(db.connect(database_url), rest_shop.truth(view="rest"), REST) == []


@pytest.mark.parametrize("seed", range(6))
def test_parallel_pages_read_every_order_once_at_its_last_version_while_the_shop_changes(
        rest_shop: Sandbox, seed: int) -> None:
    """Odd seeds have orders no list can load (the keyset walk narrows to them); seeds not divisible
    by 3 have a shop that updates orders between pages, while the next ones are in flight."""
    rng = random_for(seed)
    broken = rng.sample(sorted(o.entity_id for o in rest_shop.store.orders), 2) if seed % 2 else []
    rest_shop.set_rest_broken(broken)
    busy = seed % 3 != 0
    http = HttpClient(timeout=10, max_retries=0)
    size = rng.choice([15, 25, 40])
    source = MagentoRestSource(http, rest_shop.rest_url, rest_shop.rest_token, page_size=size,
                               concurrency=rng.choice([2, 4, 8]))
    changing = 700 // size // 2  # pages during which the shop changes: the walk goes on well after
    ticks = itertools.count(1)
    versions: list[tuple[str, datetime]] = []  # the walk by update time
    last: dict[str, datetime] = {}  # every order read, memo passes included
    rejected: list[str] = []
    try:
        for page in source.pages(Window(created_after=datetime(2000, 1, 1))):
            if page.advances_cursor:
                versions += [(o.external_id, o.source_updated_at) for o in page.orders]
            last.update((o.external_id, o.source_updated_at) for o in page.orders)
            rejected += [r.external_id or "" for r in page.rejected]
            if busy and page.number < changing and rng.random() < 0.5:  # while the next pages are in flight
                rest_shop.update(count=rng.randint(1, 3), updated_at=NOW + timedelta(minutes=next(ticks)))
    finally:
        http.close()
    assert len(versions) == len(set(versions)), "a version was read twice"
    truth = {o["external_id"]: datetime.fromisoformat(o["source_updated_at"]) for o in rest_shop.truth(view="rest")}
    assert {key: last.get(key) for key in truth} == truth  # every order, at its newest version
    assert set(map(int, rejected)) == set(broken)  # a broken order the shop moved is met (and rejected) again


def random_for(seed: int) -> random.Random:
    return random.Random(seed)


# --- A quiet run starts cheaply -----------------------------------------------------------------


def test_the_newest_migration_read_from_its_file_is_alembics_head() -> None:
    assert db._plain_head() == db.head_revision()


def test_a_sync_into_a_current_schema_does_not_load_alembic(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    assert run_cli("init", env={"DATABASE_URL": database_url, "LOG_FILE": ""}).exit_code == 0
    script = (f"import sys; from synclet import cli, db; engine = db.connect({database_url!r}); db.ensure_schema(engine); "
              "print(db.schema_state(engine)[0], 'alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["current", "False"], done.stderr


def test_a_failure_while_bounding_the_snapshot_comes_after_the_first_page(rest_shop: Sandbox) -> None:
    http = HttpClient(timeout=10, max_retries=0)
    source = MagentoRestSource(http, rest_shop.rest_url, rest_shop.rest_token, page_size=40, concurrency=4)

    def unreachable(path: str, filters: Any) -> int | None:
        raise RemoteError("GET orders: HTTP 503 (gave up after 1 attempt)")

    source._newest_second = unreachable  # type: ignore[method-assign]
    pages = source.pages(Window(created_after=datetime(2000, 1, 1)))
    try:
        first = next(pages)
        assert len(first.orders) == 40 and first.advances_cursor
        with pytest.raises(RemoteError, match="HTTP 503"):
            next(pages)
    finally:
        pages.close()
        http.close()


def page_of(number: int, ids: str, rejected: str = "") -> Page:
    from test_store import make_order

    return Page(number, orders=[make_order(i) for i in ids.split()],
                rejected=[Rejected("magento", i, i, "{}", "bad") for i in rejected.split()])


@pytest.mark.parametrize(("pages", "groups"), [
    pytest.param([page_of(0, "1 2"), page_of(1, "3"), page_of(2, "4 5")], [[0, 1, 2]], id="disjoint: one write"),
    pytest.param([page_of(0, "1 2"), page_of(1, "2 3"), page_of(2, "4")], [[0], [1, 2]], id="shared order: apart"),
    pytest.param([page_of(0, "1"), page_of(1, "2", rejected="9"), page_of(2, "3"), page_of(3, "4")],
                 [[0], [1], [2, 3]], id="a reject stands alone"),
    pytest.param([page_of(0, "1")], [[0]], id="one page"),
])
def test_pages_ready_together_are_written_together_unless_their_order_matters(pages: list[Page], groups: list[list[int]]) -> None:
    from synclet.sync import _groups

    assert [[page.number for page in group] for group in _groups(pages)] == groups


def test_a_failing_writer_ends_the_workers_of_the_source_it_read(database_url: str) -> None:
    """Valerdat fetches details in a pool of its own, inside its pages generator: the reader closes
    that generator when the writer fails, in its thread. Left to the garbage collector (a database
    error's traceback holds it in a cycle), the pool lived on and was shut down in whatever thread
    the collector ran, one of its own included: 'Exception ignored … cannot join current thread'
    in a --watch's output."""
    now = utc_now()  # an hourly run's window, read in a thread: a window reaching back a day is read in a process
    with Sandbox(orders=300, seed=72, now=now) as shop:
        env = {**shop.env(valerdat=True, onesaas=False), "DATABASE_URL": database_url, "LOG_FILE": "",
               "FETCH_AHEAD_PAGES": "2", "HTTP_MAX_RETRIES": "1", "HTTP_BACKOFF_SECONDS": "0.01"}
        assert run_cli("sync", env=env).exit_code == 0
        shop.update(count=200, updated_at=now + timedelta(seconds=1))

        def each(committed: int, page: Page) -> None:
            if committed == 1:  # the next page's write fails, as when the server drops the connection
                engine = db.connect(database_url)
                with engine.begin() as conn:
                    conn.execute(text("ALTER TABLE order_items RENAME TO order_items_away"))
                engine.dispose()

        result, _ = run_in_process(database_url, env, progress=Calls(each), source_name="valerdat")
        assert result.status == "failed" and "database error" in (result.error or "")
        assert [thread.name for thread in threading.enumerate() if thread.name.startswith("valerdat")] == []
