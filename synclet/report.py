"""What ``status`` shows: per source the last run, the cursor, what is stored, and the newest orders."""
from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.engine import Connection, Engine

from synclet.errors import LockHeld, LockUnusable
from synclet import history
from synclet.history import HISTORY
from synclet.locks import SourceLock
from synclet.store import ORDERS, REJECTS

NEWEST_ORDERS = 5


def known_sources(conn: Connection) -> list[str]:
    rows = conn.execute(union(select(ORDERS.c.source).distinct(), select(HISTORY.c.source).distinct()))
    return sorted(row[0] for row in rows)


def source_status(engine: Engine, sources: list[str], now: datetime,
                  resumable: Collection[str] = ()) -> list[dict[str, Any]]:
    """The status of each of ``sources``; those in ``resumable`` go on with a stopped initial sync."""
    with engine.connect() as conn:
        return [_one(engine, conn, name, now, name in resumable) for name in sources]


def _one(engine: Engine, conn: Connection, source: str, now: datetime, resumable: bool) -> dict[str, Any]:
    last = conn.execute(
        # by start time first, as the (source, started_at) index runs: by id alone was a sort of every row
        select(HISTORY).where(HISTORY.c.source == source).order_by(HISTORY.c.started_at.desc(), HISTORY.c.id.desc()).limit(1)
    ).mappings().first()
    success = history.last_success(conn, source)
    cursor = success.cursor if success else None
    resumes_from = history.newest_cursor(conn, source) if success is None and resumable else None
    stored = conn.execute(select(func.count()).select_from(ORDERS).where(ORDERS.c.source == source)).scalar() or 0
    rejected = conn.execute(
        select(REJECTS.c.reject_key, REJECTS.c.order_number, REJECTS.c.error_message, REJECTS.c.last_seen_at)
        .where(REJECTS.c.source == source)
        .order_by(REJECTS.c.last_seen_at.desc())
    ).mappings().all()
    newest = conn.execute(
        select(ORDERS.c.order_number, ORDERS.c.status, ORDERS.c.order_date, ORDERS.c.grand_total, ORDERS.c.currency_code)
        .where(ORDERS.c.source == source)
        .order_by(ORDERS.c.order_date.desc(), ORDERS.c.id.desc())
        .limit(NEWEST_ORDERS)
    ).mappings().all()
    last_run = None
    if last is not None:
        last_run = {key: last[key] for key in (
            "sync_type", "started_at", "finished_at", "status", "window_start", "pages", "orders_added",
            "orders_updated", "orders_unchanged", "orders_rejected", "orders_skipped", "error_message",
        )}
        if last["status"] == "running" and not _is_alive(engine, source):
            last_run["status"] = "interrupted"
    return {
        "source": source,
        "last_run": last_run,
        "cursor": cursor,
        "lag_seconds": int((now - cursor).total_seconds()) if cursor else None,
        # An initial sync that stored nothing (INITIAL_SYNC_DATE today, no order yet) sets no cursor.
        "next_sync": "incremental" if success else "initial",
        "initial_resumes_from": resumes_from,
        "orders_stored": stored,
        "rejected": [dict(row) for row in rejected],
        "newest_orders": [dict(row) for row in newest],
    }


def _is_alive(engine: Engine, source: str) -> bool:
    """A ``running`` row is alive only while someone holds the source's lock. A lock file nobody can
    open (its path made a directory, say) is held by nobody: no sync can run with it either."""
    try:
        with engine.connect() as conn, SourceLock(conn, source):
            return False
    except LockHeld:
        return True
    except LockUnusable:
        return False


def jsonable(value: Any) -> Any:
    """Datetimes as ISO strings (UTC), Decimals as strings, recursively."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return str(value)
    return value


def empty_status(source: str) -> dict[str, Any]:
    """The status of a source in a database that has no schema yet."""
    return {"source": source, "last_run": None, "cursor": None, "lag_seconds": None, "next_sync": "initial",
            "initial_resumes_from": None, "orders_stored": 0, "rejected": [], "newest_orders": []}


def render(entry: dict[str, Any], configured: bool) -> str:
    """The human form of one source's status, a few aligned lines."""
    lines = [f"\n{entry['source']}{'' if configured else '  (not configured)'}"]
    run = entry["last_run"]
    if run is None:
        lines.append("  last run   never")
    else:
        took = f" ({_duration((run['finished_at'] - run['started_at']).total_seconds())})" if run["finished_at"] else ""
        end = f" → {run['finished_at']:%H:%M:%S}" if run["finished_at"] else ""
        lines.append(f"  last run   {run['sync_type']} {run['status']}, {run['started_at']:%Y-%m-%d %H:%M:%S}{end} UTC{took}")
        lines.append(
            f"             {run['orders_added']} added, {run['orders_updated']} updated, {run['orders_unchanged']} unchanged, "
            f"{run['orders_rejected']} rejected, {run['orders_skipped']} skipped, {run['pages']} page{'' if run['pages'] == 1 else 's'}"
        )
        if run["error_message"]:
            lines.append(f"  error      {run['error_message']}")
    if entry["cursor"] is not None:
        lines.append(f"  cursor     {entry['cursor']:%Y-%m-%d %H:%M:%S} UTC (lag {_duration(entry['lag_seconds'])})")
    elif entry["next_sync"] == "incremental":
        lines.append("  cursor     none yet (nothing stored so far; the next sync reads again from where the initial one started)")
    elif entry["initial_resumes_from"] is not None:
        lines.append(f"  cursor     none yet (the next sync goes on with the initial one from "
                     f"{entry['initial_resumes_from']:%Y-%m-%d %H:%M:%S} UTC, where it stopped)")
    else:
        lines.append("  cursor     none yet (the next sync is an initial one)")
    lines.append(f"  stored     {entry['orders_stored']:,} orders")
    rejected = entry["rejected"]
    lines.append(f"  rejected   {len(rejected) or 'none'}")
    lines.extend(f"             {r['order_number'] or r['reject_key']}: {r['error_message']}" for r in rejected[:10])
    newest = entry["newest_orders"]
    # Columns as wide as their longest value: numbers and statuses differ in length between sources.
    number_width = max((len(order["order_number"] or "-") for order in newest), default=0) + 2
    status_width = max((len(order["status"] or "-") for order in newest), default=0) + 2
    for index, order in enumerate(newest):
        label = "  newest" if index == 0 else ""
        when = f"{order['order_date']:%Y-%m-%d %H:%M:%S}" if order["order_date"] else "-"
        total = f"{order['grand_total']} {order['currency_code'] or ''}".strip() if order["grand_total"] is not None else "-"
        lines.append(f"{label:<13}{order['order_number'] or '-':<{number_width}}{order['status'] or '-':<{status_width}}{when}  {total}")
    return "\n".join(lines)


def render_destination(entry: dict[str, Any]) -> str:
    """The human form of a destination's status: what it holds, what waits, and why."""
    last = f"{entry['last_push']:%Y-%m-%d %H:%M:%S} UTC" if entry["last_push"] else "never"
    lines = [
        f"\n{entry['destination']}  (destination, {entry['url']})",
        f"  last push  {last}",
        f"  pushed     {entry['pushed']:,} orders in Big Block",
        f"  pending    {entry['pending']:,} (new or changed since the last push; the next push checks them against Big Block)",
    ]
    for state, label in (("held", "held back"), ("failed", "failed"), ("blocked", "attention")):
        waiting = [item for item in entry["attention"] if item["state"] == state]
        note = " (picking has started on an order changed or cancelled in the shop)" if state == "blocked" and waiting else ""
        lines.append(f"  {label:<10} {entry[state]:,}{note}")
        lines.extend(f"             {item['source']} {item['order_number']}: {item['message']}" for item in waiting[:10])
        if len(waiting) > 10:
            lines.append(f"             … and {len(waiting) - 10} more (`status --json` lists all)")
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d {hours}h"
    if hours:
        return f"{sign}{hours}h {minutes}m"
    if minutes:
        return f"{sign}{minutes}m {secs}s"
    return f"{sign}{secs}s"
