"""Reading pages ahead in a thread or in a forked child: the same pages in the same order, the
source's failure after the pages before it, and nothing left behind when the writer stops, fails
or is killed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from synclet import db
from synclet.config import Settings
from synclet.errors import SourceError
from synclet.readahead import FORK_AVAILABLE, read_ahead
from synclet.records import Order, Page
from synclet.sandbox import Sandbox
from synclet.sources import Window
from synclet.sync import SyncOptions, sync_source

from test_pipeline import env_for, stored_ids
from test_store import make_order
from truth import differences, runs_of

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1, 12, 0, 0)
READERS = [pytest.param(False, id="thread"),
           pytest.param(True, id="process", marks=pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork here"))]
TESTS_PID = os.getpid()


class Broken(Exception):
    """An error holding something pickle cannot carry to another process."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.hook = lambda: None


def numbered(count: int, then: BaseException | None = None) -> Iterator[Page]:
    for number in range(count):
        yield Page(number, orders=[make_order(str(number + 1))])
    if then is not None:
        raise then


def marked(page: Page) -> Page:
    page.skipped = page.number * 10  # proof that ``prepare`` ran, wherever it ran
    return page


@pytest.mark.parametrize("fork", READERS)
def test_pages_come_out_prepared_and_in_order(fork: bool) -> None:
    with read_ahead(numbered(12), 3, marked, fork=fork) as batches:
        sizes = [len(batch) for batch in batches]
    with read_ahead(numbered(12), 3, marked, fork=fork) as batches:
        got = [(page.number, page.skipped, page.orders[0].external_id) for batch in batches for page in batch]
    assert got == [(n, n * 10, str(n + 1)) for n in range(12)]
    assert sum(sizes) == 12 and all(1 <= size <= 3 for size in sizes)


@pytest.mark.parametrize("fork", READERS)
def test_the_sources_error_comes_after_the_pages_before_it(fork: bool) -> None:
    got = []
    with pytest.raises(SourceError, match="page 3 is broken"):
        with read_ahead(numbered(3, SourceError("page 3 is broken")), 2, marked, fork=fork) as batches:
            got.extend(page.number for batch in batches for page in batch)
    assert got == [0, 1, 2]


@pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork here")
def test_an_error_that_cannot_cross_to_the_writer_arrives_as_its_text() -> None:
    with pytest.raises(SourceError, match="Broken: the hook is attached"):
        with read_ahead(numbered(2, Broken("the hook is attached")), 2, marked, fork=True) as batches:
            assert [page.number for batch in batches for page in batch] == [0, 1]


class Scripted:
    """Pages given in advance; ``die_at`` kills the process reading them at that page (only ever a
    forked reader: the test's own process is never the one killed)."""

    name = "magento"
    ordered_by_update = False

    def __init__(self, count: int, die_at: int) -> None:
        self.count, self.die_at = count, die_at

    def check(self) -> str:
        return "scripted"

    def parse(self, payload: Mapping[str, Any]) -> Order:
        raise NotImplementedError

    def pages(self, window: Window) -> Iterator[Page]:
        for page in numbered(self.count):
            if page.number == self.die_at and os.getpid() != TESTS_PID:
                os.kill(os.getpid(), signal.SIGKILL)
            yield page


@pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork here")
def test_a_reader_that_dies_fails_the_run_after_the_pages_it_handed_over(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'synclet.db'}"
    result = sync_source(db.connect(database_url), Scripted(6, die_at=2), Settings(fetch_ahead_pages=1), SyncOptions())
    assert result.status == "failed"
    assert "the process reading the pages ended unexpectedly (exit code -9)" in (result.error or "")
    assert stored_ids(database_url) == {"1", "2"}
    assert runs_of(database_url, "magento")[-1]["pages"] == 2


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if f"\nPPid:\t{pid}\n" in status:
                found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    """Exited (reaped, or a zombie waiting for a parent that no longer reads it)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def poll(condition: Any, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def paging(database_url: str) -> bool:
    try:
        runs = runs_of(database_url, "magento")
    except Exception:  # noqa: BLE001 - the schema is still being created
        return False
    return bool(runs) and runs[-1]["pages"] >= 1


@pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork here")
def test_a_killed_sync_frees_its_lock_at_once_and_takes_its_reader_with_it(database_url: str, tmp_path: Path) -> None:
    """The reader is killed mid-request (every answer takes a second): its copy of the lock (the
    SQLite lock file, the MariaDB connection) must not outlive the sync, not even for that second."""
    with Sandbox(orders=300, seed=34, now=NOW) as shop:
        env = {**os.environ, **env_for(shop, database_url, MAGENTO_PAGE_SIZE="10", HTTP_TIMEOUT="30",
                                       FETCH_AHEAD_PAGES="1")}
        shop.arm_fault(kind="delay", delay_ms=1000, times=None, after=3)
        sync = subprocess.Popen([sys.executable, str(ROOT / "synclet.py"), "sync", "--source", "magento"],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert poll(lambda: bool(children_of(sync.pid)) and paging(database_url)), "the sync never started reading"
            readers = children_of(sync.pid)
            sync.kill()
            sync.wait()
        finally:
            if sync.poll() is None:
                sync.kill()
        shop.clear_faults()
        rerun = subprocess.run([sys.executable, str(ROOT / "synclet.py"), "sync", "--source", "magento"], cwd=tmp_path,
                               env=env, capture_output=True, text=True, timeout=120)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert poll(lambda: all(gone(pid) for pid in readers)), "the reader outlived the killed sync"
        assert differences(db.connect(database_url), shop.truth()) == []


@pytest.mark.skipif(not FORK_AVAILABLE, reason="no fork here")
def test_when_no_process_can_be_started_a_thread_reads_ahead(monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    import errno
    import multiprocessing.context

    def refused(self: Any) -> None:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", refused)
    with read_ahead(numbered(5), 2, marked, fork=True) as batches:
        assert [page.number for batch in batches for page in batch] == [0, 1, 2, 3, 4]
    assert "Reading ahead in a thread: could not start a process (" in caplog.text
