"""A sync killed with SIGKILL in the middle: nothing half-written, the lock freed, the rerun complete."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from synclet import db
from synclet.history import HISTORY
from synclet.sandbox import Sandbox

from conftest import run_cli
from truth import differences

ROOT = Path(__file__).resolve().parent.parent


def committed_pages(database_url: str) -> int:
    try:
        with db.connect(database_url).connect() as conn:
            return conn.execute(select(HISTORY.c.pages).order_by(HISTORY.c.id.desc()).limit(1)).scalar() or 0
    except SQLAlchemyError:
        return 0  # the schema is still being created


def test_kill_9_mid_run_then_rerun(database_url: str, tmp_path: Path) -> None:
    with Sandbox(orders=400, seed=21, now=datetime(2026, 3, 1)) as shop:
        env = {**os.environ, **shop.env(), "DATABASE_URL": database_url, "MAGENTO_PAGE_SIZE": "10"}
        shop.arm_fault(kind="delay", delay_ms=150, times=None)
        process = subprocess.Popen([sys.executable, str(ROOT / "synclet.py"), "sync"], cwd=tmp_path, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while committed_pages(database_url) < 3 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the sync ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

        status = run_cli("status", env={"DATABASE_URL": database_url})
        assert "initial interrupted" in status.output
        assert differences(db.connect(database_url), shop.truth())  # incomplete, as expected

        shop.clear_faults()
        rerun = run_cli("sync", env={**shop.env(), "DATABASE_URL": database_url, "LOG_FILE": ""})
        assert rerun.exit_code == 0, rerun.output
        with db.connect(database_url).connect() as conn:
            runs = conn.execute(select(HISTORY.c.status, HISTORY.c.error_message).order_by(HISTORY.c.id)).all()
        assert [r.status for r in runs] == ["failed", "success"]
        assert "interrupted" in runs[0].error_message
        assert differences(db.connect(database_url), shop.truth()) == []
