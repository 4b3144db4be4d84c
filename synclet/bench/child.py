"""One ``python synclet.py sync --source NAME`` in a child process: its wall time and peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from synclet.config import Settings

ENTRY_POINT = Path(__file__).resolve().parents[2] / "synclet.py"
#: What "one request at a time" means: no fetch-ahead, one REST page and one Valerdat detail at once.
SEQUENTIAL = {"FETCH_AHEAD_PAGES": "0", "MAGENTO_REST_CONCURRENCY": "1", "VALERDAT_CONCURRENCY": "1"}
_SETTING_NAMES = {f.name.upper() for f in fields(Settings)}
#: The libraries chosen for the job that a sync into each database imports: SQLAlchemy with the
#: dialect and driver, requests, click and python-dotenv.
START_FLOOR_IMPORTS = {
    "sqlite": "sqlalchemy, sqlalchemy.dialects.sqlite, sqlite3, requests, click, dotenv",
    "mariadb": "sqlalchemy, sqlalchemy.dialects.mysql, pymysql, requests, click, dotenv",
}
#: Runs the command after the report path in a child of its own, waits for it with wait4, and
#: writes "wall-seconds peak-RSS-KiB exit-code" to the report. A child forked by the bench itself
#: would report the bench's peak RSS (Linux keeps the high-water mark across fork and exec), and the
#: bench holds the sandbox; this launcher holds a few MiB.
_LAUNCHER = """
import os, sys, time
report, command = sys.argv[1], sys.argv[2:]
started = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.execv(command[0], command)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
with open(report, "w") as out:
    out.write(f"{time.monotonic() - started} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


class BenchError(RuntimeError):
    """A measurement that could not be made (a sync that failed, a database out of reach)."""


@dataclass(frozen=True)
class SyncRun:
    seconds: float  # wall, from fork to exit: includes interpreter start and imports
    peak_rss_kib: int
    stdout: str = ""


def child_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any synclet setting of the shell, plus ``settings``: a
    DATABASE_URL or FETCH_AHEAD_PAGES exported by the developer must not leak into a measurement."""
    inherited = {k: v for k, v in os.environ.items() if k not in _SETTING_NAMES and not k.startswith("DB_")}
    return inherited | {"LOG_FILE": ""} | dict(settings)


def run_sync(source: str, settings: Mapping[str, str], workdir: Path) -> SyncRun:
    """Sync ``source`` once in a child started in ``workdir`` (where no ``.env`` is read); a run
    that does not exit 0 stops the bench, since its figures would mean nothing."""
    return _run([sys.executable, str(ENTRY_POINT), "sync", "--source", source], f"sync --source {source}",
                settings, workdir)


def run_start_floor(database: str, workdir: Path) -> SyncRun:
    """A Python process that only imports the libraries a sync of ``database`` cannot do without
    and exits: what any such tool pays on every run before it does anything, on this machine."""
    return _run([sys.executable, "-c", f"import {START_FLOOR_IMPORTS[database]}"], f"the start floor of {database}",
                {}, workdir)


def run_fetch_alone(settings: Mapping[str, str], workdir: Path) -> SyncRun:
    """``synclet.bench.fetch_alone`` in a child: every Valerdat order fetched with plain requests,
    nothing else; its stdout is how many."""
    return _run([sys.executable, "-m", "synclet.bench.fetch_alone"], "fetching every Valerdat order alone",
                {**settings, "PYTHONPATH": str(ENTRY_POINT.parent)}, workdir)


def _run(command: list[str], label: str, settings: Mapping[str, str], workdir: Path) -> SyncRun:
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        report, stdout, stderr = (Path(folder) / name for name in ("report", "stdout", "stderr"))
        with stdout.open("w") as out, stderr.open("w") as err:
            subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, str(report), *command], cwd=workdir,
                           env=child_environment(settings), stdout=out, stderr=err, check=False)
        output, errors = stdout.read_text(), stderr.read_text()
        if not report.exists():
            raise BenchError(f"the launcher of {label} failed: {errors.strip()[-2000:]}")
        seconds, peak_rss_kib, exit_code = report.read_text().split()
    if exit_code != "0":
        raise BenchError(f"{label} exited {exit_code}: {(errors or output).strip()[-2000:]}")
    return SyncRun(float(seconds), int(peak_rss_kib), output)
