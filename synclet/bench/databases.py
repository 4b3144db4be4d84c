"""Fresh, empty databases for each measurement, and what a sync left in them.

SQLite: a new file in the bench's scratch folder. MariaDB: a ``synclet_bench_<hex>`` database made
on the server of ``--mariadb-url`` and dropped afterwards, so a run never meets an earlier one's rows.
"""
from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from synclet import db
from synclet.bench.child import BenchError
from synclet.history import HISTORY
from synclet.store import ADDRESSES, CREDITS, ITEMS, ORDERS

DATABASES = ("sqlite", "mariadb")
#: The tables a backfill fills, parents first (the order the floor inserts them in).
ORDER_TABLES = (ORDERS, ITEMS, ADDRESSES, CREDITS)
DEFAULT_MARIADB_SERVER = "mysql+pymysql://root@127.0.0.1:3306/"


class DatabaseMaker:
    """Makes throwaway databases of one kind: SQLite files under ``scratch`` or MariaDB databases."""

    def __init__(self, kind: str, scratch: Path, mariadb_server: str = DEFAULT_MARIADB_SERVER) -> None:
        if kind not in DATABASES:
            raise BenchError(f"unknown database {kind!r} (use {', '.join(DATABASES)})")
        self.kind = kind
        self.scratch = scratch
        self.mariadb_server = mariadb_server

    @contextmanager
    def fresh(self) -> Iterator[str]:
        """The URL of a new empty database, removed when the block ends."""
        name = f"synclet_bench_{uuid.uuid4().hex[:12]}"
        if self.kind == "sqlite":
            path = self.scratch / f"{name}.db"
            try:
                yield f"sqlite:///{path}"
            finally:
                for leftover in self.scratch.glob(f"{name}.db*"):
                    leftover.unlink()
            return
        self._server_execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        try:
            url = make_url(self.mariadb_server).set(database=name).update_query_dict({"charset": "utf8mb4"})
            yield url.render_as_string(hide_password=False)
        finally:
            self._server_execute(f"DROP DATABASE IF EXISTS `{name}`")

    def version(self) -> str:
        return sqlite3.sqlite_version if self.kind == "sqlite" else str(self._server_execute("SELECT VERSION()"))

    def _server_execute(self, statement: str) -> object:
        """Run one statement on the MariaDB server, outside any database; its first value if any."""
        engine = create_engine(self.mariadb_server, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(statement))
                return result.scalar() if result.returns_rows else None
        except SQLAlchemyError as error:
            raise BenchError(f"MariaDB at {make_url(self.mariadb_server).render_as_string()}: {db.describe_error(error)}") from None
        finally:
            engine.dispose()


@contextmanager
def _reading(url: str) -> Iterator[Connection]:
    engine = db.connect(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def row_counts(url: str) -> dict[str, int]:
    """Rows per order table, e.g. ``{"orders": 19455, "order_items": 44166, ...}``."""
    with _reading(url) as conn:
        return {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one() for table in ORDER_TABLES}


def orders_updated(url: str) -> int:
    """How many stored orders the newest run rewrote, as its sync_history row says."""
    with _reading(url) as conn:
        return conn.execute(select(HISTORY.c.orders_updated).order_by(HISTORY.c.id.desc()).limit(1)).scalar_one()
