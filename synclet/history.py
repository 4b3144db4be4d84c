"""The ``sync_history`` table: one row per run, moved forward in the same transaction as its pages.

It is also where the next run learns where to start: the cursor of the last successful run (or of
any run, for a source whose pages are sorted by update time) and the scope of the initial sync.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from synclet import tables

HISTORY = tables.sync_history
INTERRUPTED = "interrupted: the process ended before the run finished"


@dataclass
class RunCounts:
    pages: int = 0
    orders_added: int = 0
    orders_updated: int = 0
    orders_unchanged: int = 0
    orders_rejected: int = 0
    orders_skipped: int = 0

    def as_row(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass(frozen=True)
class LastRun:
    cursor: datetime | None
    started_at: datetime
    finished_at: datetime | None


def start_run(conn: Connection, source: str, sync_type: str, window_start: datetime | None, cursor: datetime | None, now: datetime) -> int:
    result = conn.execute(
        insert(HISTORY).values(
            source=source,
            sync_type=sync_type,
            started_at=now,
            status="running",
            window_start=window_start,
            cursor=cursor,
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            **RunCounts().as_row(),
        )
    )
    return int(result.inserted_primary_key[0])


def record_progress(conn: Connection, history_id: int, counts: RunCounts, cursor: datetime | None) -> None:
    """Called inside a page's transaction, so the counts and cursor never run ahead of the data."""
    conn.execute(update(HISTORY).where(HISTORY.c.id == history_id).values(cursor=cursor, **counts.as_row()))


def finish_run(conn: Connection, history_id: int, status: str, now: datetime, error: str | None = None) -> None:
    conn.execute(
        update(HISTORY).where(HISTORY.c.id == history_id).values(status=status, finished_at=now, error_message=error)
    )


def close_interrupted(conn: Connection, source: str, now: datetime) -> int:
    """Mark ``running`` rows of ``source`` failed; call only while holding the source's lock."""
    result = conn.execute(
        update(HISTORY)
        .where(HISTORY.c.source == source, HISTORY.c.status == "running")
        .values(status="failed", finished_at=now, error_message=INTERRUPTED)
    )
    return result.rowcount or 0


def _latest(conn: Connection, source: str, status: str, *columns: Any) -> Any:
    """The newest row of ``source`` in ``status``, with ``columns``, or None."""
    return conn.execute(
        select(*columns).where(HISTORY.c.source == source, HISTORY.c.status == status).order_by(HISTORY.c.id.desc()).limit(1)
    ).first()


def last_success(conn: Connection, source: str) -> LastRun | None:
    row = _latest(conn, source, "success", HISTORY.c.cursor, HISTORY.c.started_at, HISTORY.c.finished_at)
    return LastRun(row.cursor, row.started_at, row.finished_at) if row else None


def newest_cursor(conn: Connection, source: str) -> datetime | None:
    """The newest cursor any run committed: a resume point for sources with sorted pages."""
    return conn.execute(select(func.max(HISTORY.c.cursor)).where(HISTORY.c.source == source)).scalar()


def initial_scope(conn: Connection, source: str) -> datetime | None:
    """The earliest creation date any successful initial sync covered: the floor of later runs."""
    return conn.execute(
        select(func.min(HISTORY.c.window_start)).where(
            HISTORY.c.source == source, HISTORY.c.sync_type == "initial", HISTORY.c.status == "success"
        )
    ).scalar()


def first_initial_start(conn: Connection, source: str) -> datetime | None:
    """When the first initial run of ``source`` started, whatever became of it."""
    return conn.execute(  # ordered and limited, not min(): both databases then stop at the first such row
        select(HISTORY.c.started_at).where(HISTORY.c.source == source, HISTORY.c.sync_type == "initial")
        .order_by(HISTORY.c.started_at).limit(1)
    ).scalar()


def last_initial_floor(conn: Connection, source: str) -> datetime | None:
    """The creation floor of the newest initial run, whatever became of it."""
    return conn.execute(
        select(HISTORY.c.window_start)
        .where(HISTORY.c.source == source, HISTORY.c.sync_type == "initial")
        .order_by(HISTORY.c.id.desc())
        .limit(1)
    ).scalar()


def running_row(conn: Connection, source: str) -> dict[str, Any] | None:
    row = _latest(conn, source, "running", HISTORY.c.host, HISTORY.c.pid, HISTORY.c.started_at)
    return dict(row._mapping) if row else None
