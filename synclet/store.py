"""Writes into the database: one page of orders at a time, in bulk, inside the caller's transaction.

A page costs a fixed number of statements whatever its size: one read of the stored hashes, one
upsert of the orders that are new or changed, one id look-up, three deletes of their old children
and three bulk inserts of the new ones. Orders whose content hash is unchanged are not written.

The bulk statements are built with SQLAlchemy, compiled once per database and handed to the
driver's ``executemany`` with the rows as the driver takes them (PyMySQL turns them into multi-row
INSERTs): SQLAlchemy's per-row parameter processing would cost more than the driver's own work.
"""
from __future__ import annotations

import dataclasses
import hashlib
import logging
import operator
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import DateTime, Numeric, String, Table, bindparam, delete, func, literal_column, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import Insert

from synclet import tables
from synclet.history import HISTORY
from synclet.logs import loggable
from synclet.records import Credit, Item, Order, Rejected

log = logging.getLogger(__name__)

ORDERS = tables.orders
ITEMS = tables.order_items
ADDRESSES = tables.order_addresses
CREDITS = tables.order_credits
REJECTS = tables.rejected_orders

IN_CHUNK = 500  # well under every driver's parameter limit
ID_LENGTH = ORDERS.c.external_id.type.length


@dataclass
class PageOutcome:
    """What one page did to the database; ``added`` and ``updated`` hold order numbers for the log."""

    added: list[Order] = field(default_factory=list)
    updated: list[Order] = field(default_factory=list)
    unchanged: int = 0


def _columns(table: Table, *, skip: Iterable[str] = ("id",)) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name not in set(skip))


def _string_limits(table: Table) -> dict[str, int]:
    return {c.name: c.type.length for c in table.columns if isinstance(c.type, String) and c.type.length}


def _number_limits(table: Table) -> dict[str, Decimal]:
    return {
        c.name: Decimal(10) ** (c.type.precision - (c.type.scale or 0))
        for c in table.columns
        if isinstance(c.type, Numeric) and c.type.precision
    }


def _datetime_columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if isinstance(c.type, DateTime))


_LIMITS = {t.name: _string_limits(t) for t in (ORDERS, ITEMS, ADDRESSES, CREDITS, REJECTS)}
_NUMBER_LIMITS = {t.name: _number_limits(t) for t in (ORDERS, ITEMS, CREDITS)}
_SCALES = {
    t.name: {c.name: Decimal(1).scaleb(-(c.type.scale or 0)) for c in t.columns if isinstance(c.type, Numeric)}
    for t in (ORDERS, ITEMS, ADDRESSES, CREDITS)
}
_DATETIMES = {t.name: _datetime_columns(t) for t in (ORDERS, CREDITS)}
OLDEST_YEAR, NEWEST_YEAR = 1000, 9999  # what a MariaDB DATETIME holds
_ORDER_FIELDS = _columns(ORDERS, skip=("id", "first_synced_at", "last_synced_at"))
_ITEM_FIELDS = _columns(ITEMS, skip=("id", "order_id"))
_ADDRESS_FIELDS = _columns(ADDRESSES, skip=("id", "order_id"))
_CREDIT_FIELDS = _columns(CREDITS, skip=("id", "order_id"))


def _fit(table: Table, row: dict[str, Any], label: str) -> dict[str, Any]:
    """Cut strings longer than their column, with a warning, so one long value cannot fail a page."""
    for name, limit in _LIMITS[table.name].items():
        value = row.get(name)
        if isinstance(value, str) and len(value) > limit:
            log.warning("%s: %s.%s is %d characters; stored the first %d", loggable(label), table.name, name, len(value), limit)
            row[name] = value[:limit]
    return row


def unstorable(order: Order) -> str | None:
    """Why ``order`` cannot be stored faithfully (an amount or date beyond what its column holds),
    or None. Such an order is rejected whole rather than stored altered or failing its page."""
    if len(order.external_id) > ID_LENGTH:
        return f"external_id: {len(order.external_id)} characters, more than the {ID_LENGTH} an identity may have"
    problem = _ORDER_BOUNDS.beyond(order)
    if problem is not None:
        return problem
    for item in order.items:
        problem = _ITEM_BOUNDS.beyond(item)
        if problem is not None:
            return f"line {item.line_no} {problem}"
    for credit in order.credits:
        problem = _CREDIT_BOUNDS.beyond(credit)
        if problem is not None:
            return f"credit {credit.external_id} {problem}"
    return None


class _Bounds:
    """What a record's columns of ``table`` hold: amounts below their precision, years MariaDB stores."""

    def __init__(self, table: Table, record: type) -> None:
        present = {f.name for f in dataclasses.fields(record)}
        self.amounts = tuple(_NUMBER_LIMITS[table.name].items())
        self._amounts = _reader([name for name, _ in self.amounts])
        self.times = tuple(name for name in _DATETIMES.get(table.name, ()) if name in present)
        self._times = _reader(self.times)

    def beyond(self, record: object) -> str | None:
        for (name, limit), value in zip(self.amounts, self._amounts(record)):
            if value is not None and not (value.is_finite() and -limit < value < limit):
                return f"{name}: {value} is beyond what the database stores (|x| < {limit:,})"
        for name, value in zip(self.times, self._times(record)):
            if value is not None and not OLDEST_YEAR <= value.year <= NEWEST_YEAR:
                return f"{name}: {value.date().isoformat()} is outside the years {OLDEST_YEAR}-{NEWEST_YEAR}"
        return None


def _reader(names: Sequence[str]) -> Callable[[object], tuple[Any, ...]]:
    """The attributes ``names`` of a record, as a tuple whatever their number."""
    if len(names) > 1:
        return operator.attrgetter(*names)
    return lambda record: tuple(getattr(record, name) for name in names)


_ORDER_BOUNDS = _Bounds(ORDERS, Order)
_ITEM_BOUNDS = _Bounds(ITEMS, Item)
_CREDIT_BOUNDS = _Bounds(CREDITS, Credit)


def chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _stored(conn: Connection, source: str, external_ids: Sequence[str], *columns: Any) -> dict[str, Any]:
    """external_id -> the row of ``columns`` of each stored order of ``source`` among ``external_ids``."""
    found: dict[str, Any] = {}
    for chunk in chunks(list(external_ids)):
        rows = conn.execute(
            select(ORDERS.c.external_id, *columns).where(ORDERS.c.source == source, ORDERS.c.external_id.in_(chunk))
        )
        found.update((row[0], row[1:]) for row in rows)
    return found


def stored_hashes(conn: Connection, source: str, external_ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """external_id -> (id, content_hash) of the orders of ``source`` already stored."""
    return _stored(conn, source, external_ids, ORDERS.c.id, ORDERS.c.content_hash)


def classify(orders: Sequence[Order], stored: dict[str, tuple[int, str]]) -> PageOutcome:
    """Split a page into new, changed and unchanged orders (the last occurrence of an id wins)."""
    latest = {order.external_id: order for order in orders}
    outcome = PageOutcome()
    for order in latest.values():
        known = stored.get(order.external_id)
        if known is None:
            outcome.added.append(order)
        elif known[1] != order.content_hash:
            outcome.updated.append(order)
        else:
            outcome.unchanged += 1
    return outcome


def upsert(
    conn: Connection,
    table: Table,
    rows: list[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
    bump: Sequence[str] = (),
) -> None:
    """INSERT … ON DUPLICATE KEY UPDATE (MariaDB) or ON CONFLICT DO UPDATE (SQLite), executemany.

    ``update`` columns take the new row's value, ``bump`` columns add one to the stored value; only
    SQL expressions appear in the update clause, which keeps PyMySQL's executemany batching.
    """
    if rows:
        conn.execute(_upsert_statement(conn.dialect, table, keys, update, bump), rows)


def _upsert_statement(dialect: Dialect, table: Table, keys: Sequence[str], update: Sequence[str],
                      bump: Sequence[str]) -> Insert:
    """The dialect's own upsert; each dialect's module is imported by the first statement for it,
    so a run pays only for the database it writes to."""
    if dialect.name in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        statement = mysql.insert(table)
        assignments = {name: statement.inserted[name] for name in update}
        assignments.update({name: table.c[name] + literal_column("1") for name in bump})
        return statement.on_duplicate_key_update(assignments)
    from sqlalchemy.dialects import sqlite

    lite = sqlite.insert(table)
    assignments = {name: lite.excluded[name] for name in update}
    assignments.update({name: table.c[name] + literal_column("1") for name in bump})
    return lite.on_conflict_do_update(index_elements=list(keys), set_=assignments)


def save_page(conn: Connection, source: str, orders: Sequence[Order], now: datetime) -> PageOutcome:
    """Upsert the new and changed orders of a page and replace their children."""
    stored = stored_hashes(conn, source, [order.external_id for order in orders])
    outcome = classify(orders, stored)
    changed = outcome.added + outcome.updated
    if not changed:
        return outcome
    rows = [_order_row(order, now) for order in changed]
    columns = (*_ORDER_FIELDS, "first_synced_at", "last_synced_at")
    _bulk(conn, ORDERS, columns, ("source", "external_id"), (*_ORDER_FIELDS, "last_synced_at")).execute(conn, rows)
    ids = {external_id: ident for external_id, (ident, _) in stored.items()}
    ids.update((k, v[0]) for k, v in stored_hashes(conn, source, [o.external_id for o in outcome.added]).items())
    replaced = [ids[order.external_id] for order in outcome.updated]
    for table in (ITEMS, ADDRESSES, CREDITS):
        for chunk in chunks(replaced):
            conn.execute(delete(table).where(table.c.order_id.in_(chunk)))
    _insert_children(conn, changed, ids)
    return outcome


class _Shape:
    """How a record becomes a row of ``table``: its ``fields`` read at once; amounts at their
    column's scale, rounded half up here rather than by the driver (MariaDB rounds half up,
    SQLite's float path half to even, and both must store the same amount); text longer than its
    column cut, with a warning, so one long value cannot fail a page."""

    def __init__(self, table: Table, fields: Sequence[str]) -> None:
        self.table = table
        self.fields = tuple(fields)
        self._read = operator.attrgetter(*self.fields)
        self._amounts = [(name, _SCALES[table.name][name]) for name in self.fields if name in _SCALES[table.name]]
        self._texts = [(name, _LIMITS[table.name][name]) for name in self.fields if name in _LIMITS[table.name]]

    def row(self, record: object, label: Callable[[], str]) -> dict[str, Any]:
        row = dict(zip(self.fields, self._read(record)))
        for name, places in self._amounts:
            value = row[name]
            if value is not None:
                row[name] = value.quantize(places, ROUND_HALF_UP)
        for name, limit in self._texts:
            value = row[name]
            if value.__class__ is str and len(value) > limit:
                log.warning("%s: %s.%s is %d characters; stored the first %d", loggable(label()), self.table.name, name,
                            len(value), limit)
                row[name] = value[:limit]
        return row


_ORDER_SHAPE = _Shape(ORDERS, _ORDER_FIELDS)
_CHILD_SHAPES = ((_Shape(ITEMS, _ITEM_FIELDS), "items"), (_Shape(ADDRESSES, _ADDRESS_FIELDS), "addresses"),
                 (_Shape(CREDITS, _CREDIT_FIELDS), "credits"))


def _label(order: Order) -> Callable[[], str]:
    return lambda: f"{order.source} {order.order_number or order.external_id}"


def _order_row(order: Order, now: datetime) -> dict[str, Any]:
    row = _ORDER_SHAPE.row(order, _label(order))
    row["first_synced_at"] = now
    row["last_synced_at"] = now
    return row


def _insert_children(conn: Connection, orders: Sequence[Order], ids: dict[str, int]) -> None:
    for shape, attribute in _CHILD_SHAPES:
        rows = []
        for order in orders:
            records = getattr(order, attribute)
            if records:
                order_id, label = ids[order.external_id], _label(order)
                for record in records:
                    row = shape.row(record, label)
                    row["order_id"] = order_id
                    rows.append(row)
        if rows:
            _bulk(conn, shape.table, (*shape.fields, "order_id")).execute(conn, rows)


@dataclass(frozen=True)
class _Bulk:
    """A bulk statement compiled for one database, and the bind processors its driver needs (only
    SQLite has any: times as text, amounts as floats), applied here as SQLAlchemy would."""

    sql: str
    order: tuple[str, ...] | None  # the parameters' order for a positional driver; None: by name
    processors: tuple[tuple[str, Callable[[Any], Any]], ...]

    def execute(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        for name, process in self.processors:
            for row in rows:
                row[name] = process(row[name])
        if self.order is None:
            conn.exec_driver_sql(self.sql, rows)  # type: ignore[arg-type]
        else:
            get = operator.itemgetter(*self.order)
            conn.exec_driver_sql(self.sql, [get(row) for row in rows])  # type: ignore[arg-type]


def _unbounded_text(column: Any) -> bool:
    return isinstance(column.type, String) and column.type.length is None


def _utf8(value: Any) -> Any:
    """Text as its UTF-8 bytes, which PyMySQL sends as a hex literal that MariaDB stores as the same
    text: PyMySQL escapes text in Python a character at a time, and a page's JSON payloads are
    most of its bytes. (Text a UTF-8 column cannot hold fails here as it would in PyMySQL.)"""
    return value.encode("utf-8") if value.__class__ is str else value


_COMPILED: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, tuple[str, ...], tuple[str, ...]], _Bulk]] = weakref.WeakKeyDictionary()


def _bulk(conn: Connection, table: Table, columns: tuple[str, ...], keys: Sequence[str] = (),
          update: Sequence[str] = ()) -> _Bulk:
    """INSERT of ``columns`` into ``table`` (an upsert on ``keys`` setting ``update`` when given),
    compiled once per dialect."""
    dialect = conn.dialect
    compiled = _COMPILED.setdefault(dialect, {})
    key = (table.name, columns, tuple(update))
    if key not in compiled:
        statement = _upsert_statement(dialect, table, keys, update, {}) if update else table.insert()
        statement = statement.values({name: bindparam(name) for name in columns})
        done = statement.compile(dialect=dialect)
        if set(done.binds) != set(columns):
            raise AssertionError(f"bulk {table.name}: the statement binds {sorted(done.binds)}, not its columns")
        processors = tuple((column.name, process) for column in table.columns if column.name in columns
                           if (process := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None)
        if dialect.name in ("mysql", "mariadb") and dialect.driver == "pymysql":
            processors += tuple((column.name, _utf8) for column in table.columns
                                if column.name in columns and _unbounded_text(column))
        order = tuple(done.positiontup) if done.positional and done.positiontup is not None else None
        compiled[key] = _Bulk(str(done), order, processors)
    return compiled[key]


#: Starts the key of a rejected payload without an external id: a hash of it, no id to load again.
HASHED_REJECT_PREFIX = "sha256:"


def reject_key(rejected: Rejected) -> str:
    """The identity of a rejected payload as stored (80 characters at most): its external id, or a
    hash of it when it has none."""
    if rejected.external_id:
        return rejected.external_id[:80]
    return HASHED_REJECT_PREFIX + hashlib.sha256(rejected.raw_json.encode("utf-8")).hexdigest()


def save_rejects(conn: Connection, rejected: Sequence[Rejected], history_id: int, now: datetime) -> None:
    """Keep each rejected payload (one row per identity, refreshed when seen again)."""
    rows = [
        _fit(
            REJECTS,
            {
                "source": item.source,
                "reject_key": reject_key(item),
                "external_id": item.external_id,
                "order_number": item.order_number,
                "raw_json": item.raw_json,
                "error_message": item.error,
                "first_seen_at": now,
                "last_seen_at": now,
                "times_seen": 1,
                "sync_history_id": history_id,
            },
            f"{item.source} {item.order_number or item.external_id}",
        )
        for item in rejected
    ]
    refresh = ("raw_json", "error_message", "last_seen_at", "sync_history_id")
    upsert(conn, REJECTS, rows, ("source", "reject_key"), refresh, bump=("times_seen",))


def pending_rejects(conn: Connection, source: str) -> list[tuple[str, str]]:
    """(reject_key, raw_json) of every payload of ``source`` still waiting to map."""
    rows = conn.execute(select(REJECTS.c.reject_key, REJECTS.c.raw_json).where(REJECTS.c.source == source))
    return [(key, raw) for key, raw in rows]


def count_rejects(conn: Connection, source: str) -> int:
    return conn.execute(select(func.count()).select_from(REJECTS).where(REJECTS.c.source == source)).scalar() or 0


def stored_credit_versions(conn: Connection, source: str, external_ids: Sequence[str]) -> dict[str, datetime | None]:
    """credit external_id -> source_updated_at of the stored credits of ``source``'s orders among ``external_ids``."""
    found: dict[str, datetime | None] = {}
    for chunk in chunks(list(external_ids)):
        rows = conn.execute(
            select(CREDITS.c.external_id, CREDITS.c.source_updated_at)
            .join(ORDERS, CREDITS.c.order_id == ORDERS.c.id)
            .where(ORDERS.c.source == source, CREDITS.c.external_id.in_(chunk))
        )
        found.update((key, updated) for key, updated in rows)
    return found


def stored_updated_at(conn: Connection, source: str, external_ids: Sequence[str]) -> dict[str, datetime]:
    """external_id -> source_updated_at of the stored orders among ``external_ids``."""
    return {key: row[0] for key, row in _stored(conn, source, external_ids, ORDERS.c.source_updated_at).items()}


def forget_rejects(conn: Connection, source: str, external_ids: Sequence[str]) -> None:
    """Drop rejects superseded by an order of the same id that has now been stored."""
    for chunk in chunks(list(external_ids)):
        conn.execute(delete(REJECTS).where(REJECTS.c.source == source, REJECTS.c.reject_key.in_(chunk)))


def clear(conn: Connection, source: str | None) -> dict[str, int]:
    """Delete synced orders (children by cascade), rejects and history: all, or one source's.
    Push records stay, their ``order_id`` set NULL by the foreign key: they say what Big Block still
    holds, and the next push attaches each to its order when a sync brings it back."""
    counts = {}
    for name, table in (("orders", ORDERS), ("rejected_orders", REJECTS), ("sync_history", HISTORY)):
        statement = delete(table) if source is None else delete(table).where(table.c.source == source)
        counts[name] = conn.execute(statement).rowcount or 0
    return counts
