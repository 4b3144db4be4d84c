"""The one loop where sources meet the database: lock, window, pages -> store, history.

Each page is one transaction holding the order upserts, their children, the rejects and the run's
progress (counts and cursor); pages read ahead and ready together may share one. A crash
therefore loses at most the pages in flight, and the cursor never claims more than the committed
data. The cursor is the newest ``updated_at`` the source reported, never the local clock. While
pages are written, the next ones (``FETCH_AHEAD_PAGES``) are read by a thread of their own or, for
a run reaching back more than a day on Linux, by a process (``synclet.readahead``); they are
written in the source's order.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Protocol

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from synclet import db, history, store
from synclet.config import Settings, today_utc
from synclet.errors import EXIT_FAILED, EXIT_OK, DatabaseError, MappingError, SyncletError
from synclet.history import RunCounts
from synclet.locks import SourceLock
from synclet.logs import loggable
from synclet.readahead import FORK_AVAILABLE, Carried, read_ahead
from synclet.records import Order, Page, Rejected
from synclet.sources import Source, Window

log = logging.getLogger(__name__)
FUTURE_TOLERANCE = timedelta(days=1)
#: A run whose window reaches back further reads its pages in a process of its own (on Linux): a
#: backfill or a catch-up has the pages to keep the second core busy. An hourly run has a few, and
#: starting the process would cost it more (30 ms of a 0.5 s run) than it saves.
READ_IN_PROCESS_BEYOND = timedelta(days=1)


@dataclass(frozen=True)
class SyncOptions:
    force_initial: bool = False
    since: datetime | None = None
    dry_run: bool = False
    #: Sources whose run, if it turns out idle, stays out of the log file (``--watch`` between its
    #: hourly mentions of a quiet stretch); a run that has something to say is logged whole.
    quiet_if_idle: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Plan:
    """What a run reads and where its cursor starts."""

    sync_type: str
    window: Window
    window_start: datetime
    cursor: datetime | None


@dataclass
class RunResult:
    source: str
    sync_type: str
    window_start: datetime
    status: str  # running | success | failed | stopped | dry-run
    counts: RunCounts = field(default_factory=RunCounts)
    cursor: datetime | None = None
    seconds: float = 0.0
    error: str | None = None
    rejects_pending: int = 0  # rejected payloads of this source still waiting to map
    new_rejects: int = 0  # rejected payloads that were not already waiting when the run started

    @property
    def idle(self) -> bool:
        """A successful run that stored nothing and rejected nothing new. A reject still waiting for
        a fix at the source is news once (the exit code says it waits on every run)."""
        c = self.counts
        return self.status == "success" and not (c.orders_added or c.orders_updated or self.new_rejects)

    @property
    def exit_code(self) -> int:
        """1 until every order is stored: a failed or stopped run, or rejects still pending."""
        ok = self.status in ("success", "dry-run") and not self.rejects_pending and not self.counts.orders_rejected
        return EXIT_OK if ok else EXIT_FAILED


class RunLog:
    """The run's start line, held back on a quiet run until the run has something to say."""

    def __init__(self, start_line: str, quiet: bool) -> None:
        self._start_line: str | None = start_line
        #: Reject keys earlier runs logged and that still wait: met again, they are no news.
        self.told_rejects: frozenset[str] = frozenset()
        if not quiet:
            self.announce()

    def announce(self) -> None:
        if self._start_line is not None:
            log.info("%s", self._start_line)
            self._start_line = None

    @property
    def held(self) -> bool:
        """Whether the start line is still held back: then the end line is too."""
        return self._start_line is not None


class Progress(Protocol):
    def page(self, source: str, page: Page, counts: RunCounts) -> None: ...


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)


def plan(conn: Connection | None, source: Source, settings: Settings, options: SyncOptions) -> Plan:
    """Initial or incremental, and the window, from the history of ``source``."""
    last = history.last_success(conn, source.name) if conn is not None else None
    if last is None or options.force_initial:
        start = options.since or settings.initial_sync_date or _first_day(conn, source.name)
        resume = _resume_point(conn, source, settings, options) if last is None else None
        if resume is not None:
            start, cursor = resume
            return Plan("initial", Window(start, cursor - timedelta(seconds=settings.sync_overlap_seconds)), start, cursor)
        return Plan("initial", Window(created_after=start), start, None)
    floor = history.initial_scope(conn, source.name) or settings.initial_sync_date or _first_day(conn, source.name)  # type: ignore[arg-type]
    cursor = history.newest_cursor(conn, source.name) if source.ordered_by_update else last.cursor  # type: ignore[arg-type]
    if options.since is not None:
        updated_after: datetime | None = options.since
    elif cursor is None:
        updated_after = None
    else:
        behind = timedelta(seconds=settings.sync_overlap_seconds)
        if not source.ordered_by_update and last.finished_at is not None:
            # Unsorted pages: an order changed while the last run paged may carry an updated_at
            # older than that run's cursor. Reaching back by the run's duration covers it.
            behind += last.finished_at - last.started_at
        updated_after = cursor - behind
    window = Window(created_after=floor, updated_after=updated_after)
    return Plan("incremental", window, updated_after or floor, cursor)


def _first_day(conn: Connection | None, source: str) -> datetime:
    """Without INITIAL_SYNC_DATE: 00:00 UTC of the day the source's first sync was first tried. A
    first run that failed at 23:00 must not leave that day's orders out when a retry succeeds after
    midnight, as "today" of the retry would."""
    first = history.first_initial_start(conn, source) if conn is not None else None
    return first.replace(hour=0, minute=0, second=0, microsecond=0) if first is not None else today_utc()


def _resume_point(conn: Connection | None, source: Source, settings: Settings, options: SyncOptions) -> tuple[datetime, datetime] | None:
    """Where an interrupted initial sync of a sorted source goes on: (its creation floor, its
    cursor). Unsorted sources, ``--since`` and a first-ever run start from the beginning."""
    if conn is None or not source.ordered_by_update or options.since is not None:
        return None
    cursor = history.newest_cursor(conn, source.name)
    floor = history.last_initial_floor(conn, source.name)
    return (floor, cursor) if cursor is not None and floor is not None else None


def sync_source(
    engine: Engine,
    source: Source,
    settings: Settings,
    options: SyncOptions,
    progress: Progress | None = None,
    report: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> RunResult:
    """Run one sync of ``source``; failures are recorded in the history and returned, not raised.

    ``stop``, when set (by a signal handler), ends the run after the page in flight is committed.
    """
    _settle_long_lived_objects()
    if options.dry_run:
        return _dry_run(engine, source, settings, options, report)
    db.ensure_schema(engine)
    try:
        with engine.connect() as conn, SourceLock(conn, source.name):
            return _locked_run(engine, conn, source, settings, options, progress, stop or threading.Event())
    except SQLAlchemyError as error:  # before the run had a history row to record it: a user who may only read
        raise DatabaseError(f"database error: {db.describe_error(error)}") from None


@functools.cache
def _settle_long_lived_objects() -> None:
    """Once per process, move what is alive before the first run (modules, tables, the engine: it
    lives as long as the process) out of the cyclic collector's sight, so neither the collections
    a run's pages cause nor the interpreter's exit walk it again. That exit walk is a fifth of a
    quiet run's wall time. (The command's imports were frozen as they were made: synclet.startup.)"""
    gc.freeze()


def _locked_run(
    engine: Engine,
    conn: Connection,
    source: Source,
    settings: Settings,
    options: SyncOptions,
    progress: Progress | None,
    stop: threading.Event,
) -> RunResult:
    """Every write goes through ``conn``, the connection holding the lock: if the server drops it,
    the lock goes with it and so does this run, which cannot write another row."""
    started = time.monotonic()
    with conn.begin():
        now = utc_now()
        if history.close_interrupted(conn, source.name, now):
            log.warning("Closed an interrupted earlier run of %s", source.name)
        run_plan = plan(conn, source, settings, options)
        history_id = history.start_run(conn, source.name, run_plan.sync_type, run_plan.window_start, run_plan.cursor, now)
    result = RunResult(source.name, run_plan.sync_type, run_plan.window_start, "running", cursor=run_plan.cursor)
    run_log = RunLog(f"Starting {run_plan.sync_type} sync of {source.name}: {_describe(run_plan.window)}",
                     quiet=source.name in options.quiet_if_idle)
    try:
        still_rejected = _retry_rejects(conn, source, history_id, result, run_log)
        run_log.told_rejects = still_rejected
        if still_rejected:
            _refetch_rejected(conn, source, still_rejected, history_id, result, run_log)
        rejects_kept = bool(still_rejected)
        window = dataclasses.replace(run_plan.window, stored_versions=_versions_reader(engine, source.name, still_rejected),
                                     stored_credits=_credits_reader(engine, source.name))
        with read_ahead(source.pages(window), settings.fetch_ahead_pages, screen, after_fork=_forget_pool(engine),
                        carried=_login_of(source), fork=FORK_AVAILABLE and _reaches_far(window, now)) as batches:
            for group in (group for batch in batches for group in _groups(batch)):
                _commit_pages(conn, source.name, group, history_id, result, run_log, rejects_kept)
                rejects_kept = rejects_kept or any(page.rejected for page in group)
                if progress is not None:
                    for page in group:
                        progress.page(source.name, page, result.counts)
                if stop.is_set():
                    result.status = "stopped"
                    written = result.counts.pages
                    # A plain run goes on from the history; --force-initial and --since say once what to re-read.
                    rest = ("run the same command again to read the rest" if options.force_initial or options.since
                            else "the next run reads the rest")
                    result.error = f"stopped on request after {written} page{'s' if written != 1 else ''}; {rest}"
                    break
            else:
                result.status = "success"
    except BaseException as error:  # recorded, then re-raised when it is not ours to handle
        result.status = "failed"
        result.error = settings.mask(_one_line(error))
        _close(engine, conn, history_id, result, started, run_log)
        if not isinstance(error, (SyncletError, SQLAlchemyError)):
            raise
        return result
    _close(engine, conn, history_id, result, started, run_log)
    return result


def _reaches_far(window: Window, now: datetime) -> bool:
    """Whether ``window`` may hold enough pages to be read in a process (``READ_IN_PROCESS_BEYOND``)."""
    return window.updated_after is None or now - window.updated_after > READ_IN_PROCESS_BEYOND


def _forget_pool(engine: Engine) -> Callable[[], None]:
    """What a forked reader runs first: its copies of the pool's connections belong to the writer,
    so it drops them unclosed and opens its own when a source asks the database something."""
    return lambda: engine.dispose(close=False)


def _login_of(source: Source) -> Carried | None:
    """A source that logs in (``session`` and ``resume``) gets back the login a forked reader made."""
    session, resume = getattr(source, "session", None), getattr(source, "resume", None)
    return Carried(session, resume) if session is not None and resume is not None else None


def _versions_reader(engine: Engine, source: str, rejected: frozenset[str]) -> Callable[[Sequence[str]], Mapping[str, datetime]]:
    """Reads through its own short connection: the run's connection is kept for page writes. An
    order with a reject waiting counts as not stored, so that it is read again and may clear it."""

    def stored_versions(external_ids: Sequence[str]) -> Mapping[str, datetime]:
        with engine.connect() as reader:
            stored = store.stored_updated_at(reader, source, external_ids)
        return {key: version for key, version in stored.items() if key not in rejected} if rejected else stored

    return stored_versions


def _credits_reader(engine: Engine, source: str) -> Callable[[Sequence[str]], Mapping[str, datetime | None]]:
    """Like ``_versions_reader``, for credit memos."""

    def stored_credits(external_ids: Sequence[str]) -> Mapping[str, datetime | None]:
        with engine.connect() as reader:
            return store.stored_credit_versions(reader, source, external_ids)

    return stored_credits


def _retry_rejects(conn: Connection, source: Source, history_id: int, result: RunResult, run_log: RunLog) -> frozenset[str]:
    """Map the payloads rejected by earlier runs again: a fixed mapping or a fixed source stores
    them now; a stored newer version of the same order supersedes them. Returns the keys of those
    still waiting (if none are, a page's orders supersede none until the run rejects one itself)."""
    recovered: list[Order] = []
    keys: list[str] = []
    with conn.begin():
        pending = store.pending_rejects(conn, source.name)
        for key, raw_json in pending:
            try:
                order = source.parse(json.loads(raw_json, parse_float=Decimal))
            except (MappingError, ValueError):
                continue
            if store.unstorable(order) is None:
                recovered.append(order)
                keys.append(key)
        if not recovered:
            return frozenset(key for key, _ in pending)
        newer = store.stored_updated_at(conn, source.name, [o.external_id for o in recovered])
        fresh = [o for o in recovered if o.external_id not in newer or newer[o.external_id] < o.source_updated_at]
        outcome = store.save_page(conn, source.name, fresh, utc_now())
        store.forget_rejects(conn, source.name, keys)
        result.counts.orders_added += len(outcome.added)
        result.counts.orders_updated += len(outcome.updated)
        history.record_progress(conn, history_id, result.counts, result.cursor)
    run_log.announce()
    log.info("Recovered %d order(s) of %s rejected by earlier runs (%d superseded)", len(keys), source.name, len(recovered) - len(fresh))
    _log_orders(source.name, outcome)
    return frozenset(key for key, _ in pending) - set(keys)


def _refetch_rejected(conn: Connection, source: Source, keys: frozenset[str], history_id: int, result: RunResult,
                      run_log: RunLog) -> None:
    """Load again, from a source that can (``refetch``), the orders whose rejects no mapping clears:
    stored now if they load and map, their rejects refreshed if not."""
    refetch: Callable[[Sequence[str]], Page] | None = getattr(source, "refetch", None)
    external_ids = sorted(key for key in keys if not key.startswith(store.HASHED_REJECT_PREFIX))
    if refetch is not None and external_ids:
        _commit_pages(conn, source.name, [screen(refetch(external_ids))], history_id, result, run_log)


def screen(page: Page) -> Page:
    """Move orders the database cannot hold faithfully into the page's rejects."""
    kept = []
    for order in page.orders:
        problem = store.unstorable(order)
        if problem is None:
            kept.append(order)
        else:
            page.rejected.append(Rejected(order.source, order.external_id, order.order_number, order.raw_json, problem))
    page.orders = kept
    return page


def _groups(pages: list[Page]) -> Iterator[list[Page]]:
    """Pages read ahead and ready together, in groups that one transaction may write as if they were
    one page: a write per table instead of per page, which is what a backfill waits on. A page
    with a reject stands alone, as does a page sharing an order with the group before it: the
    order of their writes decides what is stored and how the run counts it."""
    group: list[Page] = []
    ids: set[str] = set()
    for page in pages:
        page_ids = {order.external_id for order in page.orders}
        if group and (page.rejected or group[-1].rejected or not ids.isdisjoint(page_ids)):
            yield group
            group, ids = [], set()
        group.append(page)
        ids |= page_ids
    if group:
        yield group


def _commit_pages(conn: Connection, source: str, pages: list[Page], history_id: int, result: RunResult,
                  run_log: RunLog, rejects_kept: bool = True) -> None:
    """One transaction: the pages' orders, children, rejects and the run's progress together. An
    order read whole, stored or unchanged, supersedes its reject: the source serves it mapped now.
    ``rejects_kept`` False says no reject of ``source`` is stored, so the orders supersede none."""
    now = utc_now()
    orders = [order for page in pages for order in page.orders]
    rejected = [reject for page in pages for reject in page.rejected]
    with conn.begin():
        outcome = store.save_page(conn, source, orders, now)
        if orders and rejects_kept:
            store.forget_rejects(conn, source, [order.external_id for order in orders])
        if rejected:
            store.save_rejects(conn, rejected, history_id, now)
        newest = [_newest_plausible(page) for page in pages if page.advances_cursor]
        cursor = max(filter(None, (result.cursor, *newest)), default=None)
        pending = _advance(result.counts, pages, outcome)
        history.record_progress(conn, history_id, pending, cursor)
    result.counts, result.cursor = pending, cursor
    news = sum(1 for reject in rejected if store.reject_key(reject) not in run_log.told_rejects)
    result.new_rejects += news
    if outcome.added or outcome.updated or news:
        run_log.announce()
    _log_orders(source, outcome)
    if not run_log.held:  # a quiet run's skipped entries and known rejects are what every cycle meets again
        for page in pages:
            _log_page(source, page)


def _newest_plausible(page: Page) -> datetime | None:
    """The newest ``updated_at`` the page vouches for (its orders', or the time it covered),
    leaving out times more than a day ahead of this machine's clock: one order stamped 2099 must
    not make every later run read nothing."""
    horizon = utc_now() + FUTURE_TOLERANCE
    for order in page.orders:
        if order.source_updated_at > horizon:
            log.warning("%s %s: updated_at %s is in the future; it does not move the cursor",
                        order.source, _label(order.order_number, order.external_id), order.source_updated_at)
    times = [o.source_updated_at for o in page.orders] + ([page.covered_until] if page.covered_until else [])
    return max((moment for moment in times if moment <= horizon), default=None)


def _advance(counts: RunCounts, pages: list[Page], outcome: store.PageOutcome) -> RunCounts:
    return RunCounts(
        pages=counts.pages + len(pages),
        orders_added=counts.orders_added + len(outcome.added),
        orders_updated=counts.orders_updated + len(outcome.updated),
        orders_unchanged=counts.orders_unchanged + outcome.unchanged + sum(page.unchanged for page in pages),
        orders_rejected=counts.orders_rejected + sum(len(page.rejected) for page in pages),
        orders_skipped=counts.orders_skipped + sum(page.skipped for page in pages),
    )


def _label(order_number: str | None, external_id: str | None) -> str:
    return loggable(order_number or external_id or "(no id)")


def _log_orders(source: str, outcome: store.PageOutcome) -> None:
    for order in outcome.added:
        log.info("[+] Adding new order to local system: %s %s", source, _label(order.order_number, order.external_id))
    for order in outcome.updated:
        log.info("[*] Replacing order in local system: %s %s", source, _label(order.order_number, order.external_id))


def _log_page(source: str, page: Page) -> None:
    if page.skipped:
        log.warning(
            "Skipped %d entr%s with no identity on page %d of %s", page.skipped, "y" if page.skipped == 1 else "ies",
            page.number, source, extra={"console": False},  # counted in the summary line
        )
    for rejected in page.rejected:
        log.error("Rejected order %s %s: %s", source, _label(rejected.order_number, rejected.external_id), rejected.error)


def _close(engine: Engine, conn: Connection, history_id: int, result: RunResult, started: float, run_log: RunLog) -> None:
    """Finish the history row: through the run's connection, or a fresh one if that one is gone."""
    result.seconds = time.monotonic() - started
    try:
        with conn.begin():
            _finish(conn, history_id, result)
    except SQLAlchemyError:
        try:
            with engine.begin() as fresh:
                _finish(fresh, history_id, result)
        except SQLAlchemyError as error:
            # The page data is safe; the row stays 'running' and the next run closes it as interrupted.
            log.error("Could not record the end of the run of %s: %s", result.source, db.describe_error(error))
    if result.idle and run_log.held:  # a quiet stretch of --watch: the CLI says so once an hour
        return
    run_log.announce()
    counts = result.counts
    if result.status == "success" and counts.orders_added + counts.orders_updated == 0:
        log.info("[INFO] No new orders to add in local system: %s", result.source)
    level = logging.INFO if result.exit_code == EXIT_OK else logging.ERROR
    # The CLI prints the same summary itself; keep the console to one line per run.
    log.log(level, "Finished %s sync of %s: %s", result.sync_type, result.source, summary(result), extra={"console": False})


def _finish(conn: Connection, history_id: int, result: RunResult) -> None:
    if result.status == "success":
        result.rejects_pending = store.count_rejects(conn, result.source)
        if result.rejects_pending:
            result.error = f"{result.rejects_pending} order(s) rejected: see `python synclet.py status`"
    status = "success" if result.status == "success" else "failed"
    history.finish_run(conn, history_id, status, utc_now(), result.error)


def summary(result: RunResult) -> str:
    c = result.counts
    text = (
        f"{result.status}, {c.orders_added} added, {c.orders_updated} updated, {c.orders_unchanged} unchanged, "
        f"{c.orders_rejected} rejected, {c.orders_skipped} skipped, {c.pages} page{'s' if c.pages != 1 else ''} "
        f"in {result.seconds:.1f}s"
    )
    if result.cursor is not None:
        text += f"; cursor {result.cursor:%Y-%m-%d %H:%M:%S}"
    if result.error:
        text += f"; {result.error}"
    return text


def _dry_run(engine: Engine, source: Source, settings: Settings, options: SyncOptions, report: Callable[[str], None]) -> RunResult:
    """Fetch and map as a real run would, compare with what is stored, write nothing."""
    started = time.monotonic()
    with engine.connect() if db.readable_schema(engine) else contextlib.nullcontext() as stored_conn:
        run_plan = plan(stored_conn, source, settings, options)
        result = RunResult(source.name, run_plan.sync_type, run_plan.window_start, "dry-run", cursor=run_plan.cursor)
        report(f"[dry-run] {run_plan.sync_type} sync of {source.name}: {_describe(run_plan.window)}")
        window = run_plan.window
        if stored_conn is not None:  # what a real run leaves unread, a dry run leaves too
            rejected = frozenset(key for key, _ in store.pending_rejects(stored_conn, source.name))
            window = dataclasses.replace(window, stored_versions=_versions_reader(engine, source.name, rejected),
                                         stored_credits=_credits_reader(engine, source.name))
        written: dict[str, tuple[int, str]] = {}  # what the run would have stored so far
        with read_ahead(source.pages(window), settings.fetch_ahead_pages, screen, after_fork=_forget_pool(engine),
                        carried=_login_of(source)) as batches:
            for page in (page for batch in batches for page in batch):
                _report_dry_page(stored_conn, source, page, written, result, report)
    result.seconds = time.monotonic() - started
    return result


def _report_dry_page(stored_conn: Connection | None, source: Source, page: Page, written: dict[str, tuple[int, str]],
                     result: RunResult, report: Callable[[str], None]) -> None:
    """What a real run would do with ``page``, as report lines; the counts move as they would. An
    order read twice in a run (a memo pass meets it again) is compared with what the run would
    have ``written`` of it, which this page adds to."""
    ids = [o.external_id for o in page.orders]
    stored = store.stored_hashes(stored_conn, source.name, ids) if stored_conn is not None else {}
    stored.update((i, written[i]) for i in ids if i in written)
    outcome = store.classify(page.orders, stored)
    written.update((order.external_id, (0, order.content_hash)) for order in page.orders)
    for order in outcome.added:
        report(f"[dry-run] would add: {source.name} {_label(order.order_number, order.external_id)}")
    for order in outcome.updated:
        report(f"[dry-run] would replace: {source.name} {_label(order.order_number, order.external_id)}")
    for rejected in page.rejected:
        report(f"[dry-run] would reject: {source.name} {_label(rejected.order_number, rejected.external_id)}: "
               f"{loggable(rejected.error, limit=300)}")
    result.counts = _advance(result.counts, [page], outcome)


def _describe(window: Window) -> str:
    if window.updated_after is None:
        return f"orders created since {window.created_after:%Y-%m-%d %H:%M:%S} UTC"
    return f"orders updated since {window.updated_after:%Y-%m-%d %H:%M:%S} UTC (created since {window.created_after:%Y-%m-%d %H:%M:%S})"


def _one_line(error: BaseException) -> str:
    if isinstance(error, SQLAlchemyError):
        return f"database error: {db.describe_error(error)}"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted by the operator"
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, SyncletError) else f"{type(error).__name__}: {text}"

