"""What one bench run does, in order, and the options that size it."""
from __future__ import annotations

import compileall
import dataclasses
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import synclet
from synclet.bench.databases import DEFAULT_MARIADB_SERVER, DatabaseMaker
from synclet.bench.measure import PER_ORDER_SOURCES, Bench, Progress
from synclet.bench.report import at_end, machine, targets
from synclet.config import SOURCE_NAMES


@dataclass(frozen=True)
class BenchOptions:
    """Sizes and scope. The first of ``sources`` is the headline source (memory growth); the first
    of ``databases`` is where memory and latency are measured."""

    orders: int = 20_000
    big_orders: int = 100_000
    latency_ms: int = 50
    latency_orders: int = 2_000
    runs: int = 3
    databases: tuple[str, ...] = ("sqlite", "mariadb")
    sources: tuple[str, ...] = SOURCE_NAMES
    mariadb_url: str = DEFAULT_MARIADB_SERVER

    @property
    def small_orders(self) -> int:
        return max(1, self.big_orders // 10)

    def latency_sizes(self) -> dict[str, int]:
        """Orders of each source's latency runs: the backfill's own size for the paged sources, so
        that process start (the same half second or more in both runs) does not dilute the ratio;
        ``latency_orders`` for those that ask for each order on its own."""
        return {source: self.latency_orders if source in PER_ORDER_SOURCES else self.orders for source in self.sources}


#: ``--quick``: sizes for a smoke run of every measurement in seconds, not a figure to quote.
QUICK = {"orders": 100, "big_orders": 1_000, "latency_ms": 20, "latency_orders": 10, "runs": 1}


def run_bench(options: BenchOptions, progress: Progress | None = None) -> dict[str, Any]:
    """Every measurement of ``options``; the JSON-ready result, targets included."""
    started = time.monotonic()
    say = progress or _stderr_progress(started)
    # Cron runs synclet with its bytecode cached (pip compiles it, and the first run writes it),
    # unless PYTHONDONTWRITEBYTECODE is set, as on some machines: compile it here, or every child
    # would compile synclet's modules again.
    compileall.compile_dir(Path(synclet.__file__).parent, quiet=1)
    with tempfile.TemporaryDirectory(prefix="synclet-bench-") as scratch:
        makers = [DatabaseMaker(kind, Path(scratch), options.mariadb_url) for kind in options.databases]
        result: dict[str, Any] = {"machine": machine(makers), "options": dataclasses.asdict(options)}
        bench = Bench(Path(scratch), options.runs, say)
        result["sources"] = [dataclasses.asdict(bench.source_on(options.orders, maker, source))
                             for maker in makers for source in options.sources]
        primary, headline = makers[0], options.sources[0]
        memory = bench.memory(primary, headline, options.small_orders, options.big_orders)
        result["memory"] = dataclasses.asdict(memory)
        latency = bench.latency(primary, list(options.sources), options.latency_sizes(), options.latency_ms)
        result["latency"] = [dataclasses.asdict(entry) for entry in latency]
    result["machine"].update(at_end())
    result["seconds"] = round(time.monotonic() - started, 1)
    result["targets"] = [dataclasses.asdict(target) for target in targets(result)]
    return result


def _stderr_progress(started: float) -> Progress:
    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    return say
