"""The floor: what the database itself can take, as the reference a backfill is measured against.

The rows a backfill stored are read back and inserted into fresh tables made from synclet's own
models (same types, keys, indexes and foreign keys) through the raw DBAPI cursor's ``executemany``,
``BATCH`` rows a call and a commit after each: no HTTP, no mapping, no SQLAlchemy in the timed part.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Engine

from synclet import db
from synclet.bench.databases import ORDER_TABLES
from synclet.tables import metadata

BATCH = 2000
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


@dataclass(frozen=True)
class TableRows:
    table: Table
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]


def read_rows(url: str) -> list[TableRows]:
    """Every row of the order tables at ``url``, as the driver returns them (ids included, so the
    children keep pointing at their orders)."""
    engine = db.connect(url)
    try:
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            found = []
            for table in ORDER_TABLES:
                columns = tuple(column.name for column in table.columns)
                cursor.execute(f"SELECT {_names(engine, columns)} FROM {_quote(engine, table.name)}")
                found.append(TableRows(table, columns, list(cursor.fetchall())))
            return found
        finally:
            raw.close()
    finally:
        engine.dispose()


def insert_seconds(url: str, tables: Sequence[TableRows], batch: int = BATCH) -> float:
    """Seconds to insert ``tables`` into fresh tables at the empty database ``url``."""
    engine = db.connect(url)
    try:
        metadata.create_all(engine)
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            marker = _MARKERS[engine.dialect.paramstyle]
            statements = [
                (f"INSERT INTO {_quote(engine, part.table.name)} ({_names(engine, part.columns)}) "
                 f"VALUES ({', '.join(marker for _ in part.columns)})", part.rows)
                for part in tables
            ]
            started = time.perf_counter()
            for statement, rows in statements:
                for start in range(0, len(rows), batch):
                    cursor.executemany(statement, rows[start : start + batch])
                    raw.commit()
            return time.perf_counter() - started
        finally:
            raw.close()
    finally:
        engine.dispose()


def _quote(engine: Engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


def _names(engine: Engine, columns: Sequence[str]) -> str:
    return ", ".join(_quote(engine, name) for name in columns)
