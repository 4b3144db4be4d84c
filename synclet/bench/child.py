"""One ``python synclet.py sync --source NAME`` in a child process: its wall time and peak RSS."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from synclet.config import Settings

ENTRY_POINT = Path(__file__).resolve().parents[2] / "synclet.py"
#: What "one request at a time" means: no fetch-ahead, one REST page and one Valerdat detail at once.
SEQUENTIAL = {"FETCH_AHEAD_PAGES": "0", "MAGENTO_REST_CONCURRENCY": "1", "VALERDAT_CONCURRENCY": "1"}
_SETTING_NAMES = {f.name.upper() for f in fields(Settings)}


class BenchError(RuntimeError):
    """A measurement that could not be made (a sync that failed, a database out of reach)."""


@dataclass(frozen=True)
class SyncRun:
    seconds: float  # wall, from fork to exit: includes interpreter start and imports
    peak_rss_kib: int
    stdout: str


def child_environment(settings: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any synclet setting of the shell, plus ``settings``: a
    DATABASE_URL or FETCH_AHEAD_PAGES exported by the developer must not leak into a measurement."""
    inherited = {k: v for k, v in os.environ.items() if k not in _SETTING_NAMES and not k.startswith("DB_")}
    return inherited | {"LOG_FILE": ""} | dict(settings)


def run_sync(source: str, settings: Mapping[str, str], workdir: Path) -> SyncRun:
    """Sync ``source`` once in a child started in ``workdir`` (where no ``.env`` is read); a run
    that does not exit 0 stops the bench, since its figures would mean nothing."""
    command = [sys.executable, str(ENTRY_POINT), "sync", "--source", source]
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.monotonic()
        child = subprocess.Popen(command, cwd=workdir, env=child_environment(settings), stdout=stdout, stderr=stderr)
        # wait4 rather than Popen.wait: it returns this child's own rusage, hence its peak RSS.
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.monotonic() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read(), stderr.read()
    if child.returncode != 0:
        raise BenchError(f"sync --source {source} exited {child.returncode}: {(errors or output).strip()[-2000:]}")
    return SyncRun(seconds, usage.ru_maxrss, output.strip())
