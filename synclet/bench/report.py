"""The bench's verdict: the machine it ran on, each figure against its target, and the table."""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy

from synclet.bench.measure import NO_CHANGE_RUNS_PER_RUN, PER_ORDER_SOURCES

if TYPE_CHECKING:
    from synclet.bench.databases import DatabaseMaker

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BACKFILL_OVER_FLOOR = 0.6  # backfill into MariaDB: at least 60 % of the floor's orders/s
NO_CHANGE_SECONDS = 0.5  # an incremental run that finds nothing: at most 0.5 s wall
MEMORY_GROWTH = 1.2  # peak RSS at 100k orders: at most 1.2 x that at 10k
PER_ORDER_SPEED_UP = 6.0  # parallel against one request at a time, under latency: a request per order
PAGED_SPEED_UP = 1.8  # the same for the sources that read pages of orders


@dataclass(frozen=True)
class Target:
    figure: str
    value: float
    goal: str
    met: bool


def machine(makers: Iterable[DatabaseMaker]) -> dict[str, Any]:
    """Where and with what the figures were made, so two runs can be compared honestly."""
    versions = {f"{maker.kind}_version": maker.version() for maker in makers}
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "pymysql": importlib.metadata.version("PyMySQL"),  # not __version__: the MySQLdb one it stands in for
        **versions,
        "commit": _commit(),
        "load_average_at_start": _load_average(),
    }


def at_end() -> dict[str, Any]:
    """What may have changed while the bench ran: other work on the machine, the code in the tree."""
    return {"commit_at_end": _commit(), "load_average_at_end": _load_average()}


def _load_average() -> list[float]:
    return [round(load, 2) for load in os.getloadavg()]


def _cpu_model() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)


def _commit() -> str | None:
    """HEAD, with ``+changes`` when tracked files differ from it: the children run the working tree."""
    head, changes = _git("rev-parse", "--short", "HEAD"), _git("status", "--porcelain", "--untracked-files=no")
    return f"{head}+changes" if head and changes else head


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def targets(result: dict[str, Any]) -> list[Target]:
    """Each figure the issue sets a target for, with whether this run met it."""
    found = []
    for entry in result["sources"]:
        where = f"{entry['source']}, {entry['database']}"
        if entry["database"] == "mariadb":
            ratio = entry["backfill_over_floor"]
            found.append(Target(f"backfill / floor orders/s ({where})", ratio, f">= {BACKFILL_OVER_FLOOR}",
                                ratio >= BACKFILL_OVER_FLOOR))
        seconds = entry["no_change"]["median_s"]
        found.append(Target(f"no-change incremental wall s ({where})", seconds, f"<= {NO_CHANGE_SECONDS}",
                            seconds <= NO_CHANGE_SECONDS))
    memory = result["memory"]
    found.append(Target(f"peak RSS {memory['big']['orders']:,} / {memory['small']['orders']:,} orders "
                        f"({memory['source']}, {memory['database']})", memory["big_over_small"], f"<= {MEMORY_GROWTH}",
                        memory["big_over_small"] <= MEMORY_GROWTH))
    for entry in result["latency"]:
        goal = PER_ORDER_SPEED_UP if entry["source"] in PER_ORDER_SOURCES else PAGED_SPEED_UP
        found.append(Target(f"{entry['latency_ms']} ms latency: one at a time / parallel ({entry['source']})",
                            entry["sequential_over_parallel"], f">= {goal}", entry["sequential_over_parallel"] >= goal))
    return found


def render(result: dict[str, Any]) -> str:
    """The plain-text report: machine, one table per measurement, then the targets."""
    m, options = result["machine"], result["options"]
    runs = options["runs"]
    commit = m["commit"] if m["commit"] == m["commit_at_end"] else f"{m['commit']} (at end {m['commit_at_end']})"
    parts = [
        f"synclet bench, {m['date']}, commit {commit}: {m['platform']}, {m['cpus']} CPU ({m['cpu_model']}), "
        f"Python {m['python']}; load average {m['load_average_at_start'][0]} at start, "
        f"{m['load_average_at_end'][0]} at end; {result['seconds']:.0f} s in all",
        f"\nBackfill of {options['orders']:,} generated orders (wall time includes process start) and the floor "
        f"(executemany), each the median of {runs}:",
        table(("database", "source", "orders", "rows", "seconds", "orders/s", "rows/s", "peak RSS MiB",
               "floor orders/s", "floor rows/s", "backfill/floor"),
              [(e["database"], e["source"], e["backfill"]["orders"], e["backfill"]["rows"], e["backfill"]["seconds"],
                e["backfill"]["orders_per_s"], e["backfill"]["rows_per_s"], e["peak_rss_mib"], e["floor"]["orders_per_s"],
                e["floor"]["rows_per_s"], e["backfill_over_floor"]) for e in result["sources"]]),
        f"\nIncremental runs after the backfill, wall seconds including process start (no change: median of "
        f"{runs * NO_CHANGE_RUNS_PER_RUN}, each after a start floor; 1 % changed: median of {runs}); "
        f"the start floor is a process that only imports SQLAlchemy with the driver, requests, click and "
        f"python-dotenv:",
        table(("database", "source", "no change", "start floor", "above floor", "1 % changed", "orders changed"),
              [(e["database"], e["source"], e["no_change"]["median_s"], e["start_floor"]["median_s"],
                e["no_change_over_start_s"], e["changed"]["median_s"], e["changed_orders"]) for e in result["sources"]]),
    ]
    fetched = [e for e in result["sources"] if e.get("fetch_alone")]
    if fetched:
        parts += [
            "\nSources that ask for each order on their own: every order fetched with plain requests and "
            "nothing else (the same threads, no parsing, no database), the bound of such a backfill on these cores; "
            f"median of {runs}:",
            table(("database", "source", "backfill s", "fetch alone s", "fetch alone / backfill"),
                  [(e["database"], e["source"], e["backfill"]["seconds"], e["fetch_alone"]["median_s"],
                    e["fetch_alone_over_backfill"]) for e in fetched]),
        ]
    memory = result["memory"]
    parts += [
        f"\nMemory: backfill of {memory['source']} into {memory['database']}:",
        table(("orders", "seconds", "peak RSS MiB"),
              [(p["orders"], p["seconds"], p["peak_rss_mib"]) for p in (memory["small"], memory["big"])]),
    ]
    if result["latency"]:
        first = result["latency"][0]
        parts += [
            f"\nBackfill with {first['latency_ms']} ms per request ({first['database']}):",
            table(("source", "orders", "parallel s", "one at a time s", "ratio"),
                  [(e["source"], e["orders"], e["parallel_s"], e["sequential_s"], e["sequential_over_parallel"])
                   for e in result["latency"]]),
        ]
    parts += ["\nTargets:", table(("figure", "value", "target", "met"),
                                  [(t["figure"], t["value"], t["goal"], "yes" if t["met"] else "NO") for t in result["targets"]])]
    return "\n".join(parts)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned with thousands separators."""
    cells = [list(headers)] + [[_cell(value) for value in row] for row in rows]
    numeric = [all(_is_number(row[i]) for row in cells[1:]) for i in range(len(headers))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):  # three significant places for small figures, whole numbers for rates
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _is_number(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit()


def write_json(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
