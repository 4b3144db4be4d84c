"""The measurements: backfill, floor and incremental runs per database and source; memory growth;
parallel against sequential requests under latency. Each returns plain dataclasses for the JSON."""
from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from synclet.bench.child import SEQUENTIAL, BenchError, SyncRun, run_fetch_alone, run_start_floor, run_sync
from synclet.bench.databases import DatabaseMaker, orders_updated, row_counts
from synclet.bench.floor import BATCH, TableRows, insert_seconds, read_rows
from synclet.sandbox.server import Sandbox

SEED = 1
#: Sandbox.env arguments that configure exactly one source.
SOURCE_APIS: dict[str, dict[str, bool]] = {
    "magento": {"onesaas": True},
    "magento-rest": {"onesaas": False, "rest": True},
    "valerdat": {"onesaas": False, "valerdat": True},
}
#: Sources that fetch every order with a request of its own: one request at a time, 50 ms of
#: latency costs them a minute per thousand orders, so their latency runs are smaller.
PER_ORDER_SOURCES = frozenset({"valerdat"})
_TRUTH_VIEWS = {"magento": "onesaas", "magento-rest": "rest", "valerdat": "valerdat"}
CHANGED_SHARE = 0.01
#: No-change runs (and start floors) per run of the other figures: each takes half a second, and
#: a median of three of them moved by a tenth of a second with the machine's busy spells.
NO_CHANGE_RUNS_PER_RUN = 3
CHANGE_INTERVAL = timedelta(hours=1)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Throughput:
    orders: int
    rows: int
    seconds: float
    orders_per_s: float
    rows_per_s: float

    @classmethod
    def of(cls, counts: Mapping[str, int], seconds: float) -> Throughput:
        orders, rows = counts["orders"], sum(counts.values())
        return cls(orders, rows, round(seconds, 3), round(orders / seconds, 1), round(rows / seconds, 1))


@dataclass(frozen=True)
class Runs:
    """Wall seconds of repeated runs and their median; ``updated`` is what each run rewrote."""

    seconds: list[float]
    median_s: float
    updated: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, runs: list[SyncRun], updated: list[int] | None = None) -> Runs:
        seconds = [round(run.seconds, 3) for run in runs]
        return cls(seconds, round(statistics.median(seconds), 3), updated or [])


@dataclass(frozen=True)
class SourceResult:
    """One source on one database: a backfill, its floor, and incremental runs after it."""

    database: str
    source: str
    expected_orders: int
    backfill: Throughput  # median of the backfill runs
    backfill_runs_s: list[float]
    peak_rss_mib: float  # the highest of the backfill runs
    floor: Throughput  # median of the floor runs
    floor_runs_s: list[float]
    backfill_over_floor: float
    no_change: Runs
    start_floor: Runs  # Python started and the libraries imported, nothing else: the no-change run's floor
    no_change_over_start_s: float  # the medians' difference: what synclet itself costs
    changed_orders: int
    changed: Runs
    # Sources that ask for each order on their own: every order fetched with plain requests alone,
    # after each backfill, and that time over the backfill's (1.0: the backfill is as fast).
    fetch_alone: Runs | None = None
    fetch_alone_over_backfill: float | None = None


@dataclass(frozen=True)
class MemoryPoint:
    orders: int
    stored_orders: int
    seconds: float
    peak_rss_mib: float


@dataclass(frozen=True)
class MemoryResult:
    database: str
    source: str
    small: MemoryPoint
    big: MemoryPoint
    big_over_small: float


@dataclass(frozen=True)
class LatencyResult:
    database: str
    source: str
    latency_ms: int
    orders: int
    stored_orders: int
    parallel_s: float
    sequential_s: float
    sequential_over_parallel: float


class Bench:
    """Runs synclet against sandboxes: ``workdir`` is the children's working directory."""

    def __init__(self, workdir: Path, runs: int, progress: Progress) -> None:
        self.workdir = workdir
        self.runs = runs
        self.progress = progress

    def sync(self, sandbox: Sandbox, source: str, url: str, extra: Mapping[str, str] | None = None) -> SyncRun:
        settings = sandbox.env(**SOURCE_APIS[source]) | {"DATABASE_URL": url} | dict(extra or {})
        return run_sync(source, settings, self.workdir)

    def source_on(self, orders: int, maker: DatabaseMaker, source: str) -> SourceResult:
        """Backfill ``source`` from a sandbox of its own into fresh databases, each backfill followed
        by a floor run of the rows the first one stored (``runs`` pairs: on a busy machine one
        backfill varies by a fifth, and a slow spell must slow both sides of the ratio) and, for a
        source that asks for each order on its own, by its orders fetched with requests alone; then
        time no-change runs (each after a start floor) and runs after 1 % of the orders changed."""
        label = f"{maker.kind} {source}"
        with Sandbox(orders, SEED) as sandbox, maker.fresh() as url:
            expected = expected_orders(sandbox, source)
            sandbox.prerender()
            backfills = [self.sync(sandbox, source, url)]
            counts, rows = row_counts(url), read_rows(url)
            floor_runs = [self._floor(maker, rows)]
            per_order = source in PER_ORDER_SOURCES
            fetches = [self._fetch_alone(sandbox, source, expected)] if per_order else []
            for _ in range(self.runs - 1):
                backfills.append(self._backfill_again(sandbox, maker, source, counts))
                floor_runs.append(self._floor(maker, rows))
                if per_order:
                    fetches.append(self._fetch_alone(sandbox, source, expected))
            backfill = Throughput.of(counts, statistics.median(run.seconds for run in backfills))
            peak_rss_mib = max(_mib(run) for run in backfills)
            self.progress(f"{label}: backfill {backfill.orders:,} orders, {backfill.rows:,} rows in "
                          f"{backfill.seconds:.1f} s ({backfill.orders_per_s:,.0f} orders/s, median of {len(backfills)}), "
                          f"peak RSS {peak_rss_mib:.0f} MiB")
            floor = Throughput.of(counts, statistics.median(floor_runs))
            self.progress(f"{label}: floor {floor.orders_per_s:,.0f} orders/s (median of {len(floor_runs)})")
            fetch_alone = Runs.of(fetches) if fetches else None
            if fetch_alone is not None:
                self.progress(f"{label}: every order fetched with requests alone in {fetch_alone.median_s:.1f} s "
                              f"(median of {len(fetches)})")
            no_change, start_floor = self._no_change(sandbox, maker.kind, source, url)
            self.progress(f"{label}: no-change incremental {no_change.median_s:.2f} s, start floor "
                          f"{start_floor.median_s:.2f} s (medians of {len(no_change.seconds)})")
            changed_orders = max(1, round(orders * CHANGED_SHARE))
            changed = self._changed(sandbox, source, url, changed_orders)
            self.progress(f"{label}: {changed_orders:,} changed, incremental {changed.median_s:.2f} s (median of {self.runs})")
        return SourceResult(maker.kind, source, expected, backfill, [round(run.seconds, 3) for run in backfills],
                            peak_rss_mib, floor, floor_runs, round(backfill.orders_per_s / floor.orders_per_s, 3),
                            no_change, start_floor, round(no_change.median_s - start_floor.median_s, 3),
                            changed_orders, changed, fetch_alone,
                            None if fetch_alone is None else round(fetch_alone.median_s / backfill.seconds, 3))

    def _fetch_alone(self, sandbox: Sandbox, source: str, expected: int) -> SyncRun:
        """The orders of a source that asks for each on its own, fetched with plain requests and
        nothing else (``synclet.bench.fetch_alone``)."""
        run = run_fetch_alone(sandbox.env(**SOURCE_APIS[source]), self.workdir)
        if run.stdout.strip() != str(expected):
            raise BenchError(f"{source}: fetching alone read {run.stdout.strip() or 'nothing'}, not {expected} orders")
        return run

    def _backfill_again(self, sandbox: Sandbox, maker: DatabaseMaker, source: str, counts: Mapping[str, int]) -> SyncRun:
        """One more backfill into a fresh database; it must store what the first one stored."""
        with maker.fresh() as url:
            run = self.sync(sandbox, source, url)
            stored = row_counts(url)
        if stored != counts:
            raise BenchError(f"{maker.kind} {source}: a repeated backfill stored {stored}, the first {dict(counts)}")
        return run

    def _no_change(self, sandbox: Sandbox, database: str, source: str, url: str) -> tuple[Runs, Runs]:
        """No-change runs, each right after a start floor, so that a machine getting busier (or
        quieter) between the two moves both."""
        runs, floors = [], []
        for _ in range(self.runs * NO_CHANGE_RUNS_PER_RUN):
            floors.append(run_start_floor(database, self.workdir))
            runs.append(self.sync(sandbox, source, url))
        return Runs.of(runs), Runs.of(floors)

    def _changed(self, sandbox: Sandbox, source: str, url: str, count: int) -> Runs:
        """Runs that each follow ``count`` fresh changes at the source, made an hour after the
        previous ones as an hourly cron run meets them (the overlap re-reads only the last batch)."""
        runs, updated = [], []
        for _ in range(self.runs):
            sandbox.update(count=count, updated_at=sandbox.store.clock + CHANGE_INTERVAL)
            runs.append(self.sync(sandbox, source, url))
            updated.append(orders_updated(url))
        return Runs.of(runs, updated)

    @staticmethod
    def _floor(maker: DatabaseMaker, rows: list[TableRows]) -> float:
        with maker.fresh() as url:
            return round(insert_seconds(url, rows, BATCH), 3)

    def memory(self, maker: DatabaseMaker, source: str, small: int, big: int) -> MemoryResult:
        """Peak RSS of a backfill of ``small`` and of ``big`` orders, each from its own sandbox."""
        points = []
        for orders in (small, big):
            with Sandbox(orders, SEED) as sandbox, maker.fresh() as url:
                sandbox.prerender()
                run = self.sync(sandbox, source, url)
                point = MemoryPoint(orders, row_counts(url)["orders"], round(run.seconds, 3), _mib(run))
            self.progress(f"{maker.kind} {source}: backfill of {orders:,} orders, peak RSS {point.peak_rss_mib:.0f} MiB "
                          f"in {point.seconds:.1f} s")
            points.append(point)
        return MemoryResult(maker.kind, source, points[0], points[1],
                            round(points[1].peak_rss_mib / points[0].peak_rss_mib, 3))

    def latency(self, maker: DatabaseMaker, sources: list[str], orders: Mapping[str, int], latency_ms: int) -> list[LatencyResult]:
        """Backfill time with every API request delayed, with the default parallel settings and
        one request at a time; ``orders[source]`` sizes each source's sandbox (one per size)."""
        results: dict[str, LatencyResult] = {}
        for size in sorted({orders[source] for source in sources}):
            with Sandbox(size, SEED) as sandbox:
                sandbox.arm_fault(kind="delay", delay_ms=latency_ms, times=None)
                for source in (source for source in sources if orders[source] == size):
                    results[source] = self._latency(sandbox, maker, source, size, latency_ms)
        return [results[source] for source in sources]

    def _latency(self, sandbox: Sandbox, maker: DatabaseMaker, source: str, orders: int, latency_ms: int) -> LatencyResult:
        with maker.fresh() as url:
            parallel = self.sync(sandbox, source, url)
            stored = row_counts(url)["orders"]
        with maker.fresh() as url:
            sequential = self.sync(sandbox, source, url, SEQUENTIAL)
        result = LatencyResult(maker.kind, source, latency_ms, orders, stored, round(parallel.seconds, 3),
                               round(sequential.seconds, 3), round(sequential.seconds / parallel.seconds, 3))
        self.progress(f"{maker.kind} {source}, {orders:,} orders at {latency_ms} ms: parallel {result.parallel_s:.1f} s, "
                      f"one request at a time {result.sequential_s:.1f} s ({result.sequential_over_parallel:.2f}x)")
        return result


def expected_orders(sandbox: Sandbox, source: str) -> int:
    """How many orders a correct sync of ``source`` stores: those with an identity (OneSaas sends
    none for an order without addresses), minus what the API cannot serve."""
    return sum(1 for order in sandbox.truth(_TRUTH_VIEWS[source]) if order.get("has_identity", True))


def _mib(run: SyncRun) -> float:
    return round(run.peak_rss_kib / 1024, 1)
