"""The Magento 2 REST API (``/rest/default/V1/``) over the sandbox's truth orders.

Routes: ``GET orders``, ``orders/{id}``, ``creditmemos``, ``creditmemos/{id}`` under
``/rest/V1/``, ``/rest/default/V1/`` or ``/rest/all/V1/``. Bearer-token auth; errors are HTTP
statuses with ``{"message", "parameters"}`` bodies, as the reference describes. ``searchCriteria``
rules are in ``synclet.sandbox.criteria``; shapes in ``rest_render`` and ``rest_items``.

Orders whose ids are in ``Store.rest_broken`` cannot be loaded: a list page that would contain one,
and ``GET orders/{id}`` of one, fail with HTTP 500 "Requested product doesn't exist" (what a shop
answers when an order references a product it has deleted).
"""
from __future__ import annotations

import bisect
import json
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from synclet.sandbox import criteria
from synclet.sandbox.criteria import Column, Criteria, Filter, RestError
from synclet.sandbox.data import Store
from synclet.sandbox.model import CreditMemo, Order
from synclet.sandbox.rest_render import STORE_IDS, customer_id, render_credit_memo, render_order, state_of

BASE_PATH = "/rest/default/V1/"
DEFAULT_MAX_PAGE_SIZE = 300
STORE_CODES = ("default", "all")
_PATH = re.compile(r"^/rest(?:/(?P<store>[^/]+))?/V1/(?P<route>.*?)/?$")
UNAUTHORIZED = RestError(401, "The consumer isn't authorized to access %resources.",
                         {"resources": "Magento_Sales::actions_view"})
NOT_FOUND = RestError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
NO_ROUTE = RestError(404, "Request does not match any route.")
BROKEN = RestError(500, "Requested product doesn't exist")

MemoRow = tuple[CreditMemo, Order]

ORDER_COLUMNS: dict[str, Column] = {
    "entity_id": Column("number", lambda o: o.entity_id),
    "increment_id": Column("text", lambda o: o.increment_id),
    "created_at": Column("time", lambda o: o.created_at),
    "updated_at": Column("time", lambda o: o.updated_at),
    "status": Column("text", lambda o: o.status),
    "state": Column("text", state_of),
    "customer_email": Column("text", lambda o: o.customer.email),
    "customer_firstname": Column("text", lambda o: o.customer.first_name),
    "customer_lastname": Column("text", lambda o: o.customer.last_name),
    "customer_id": Column("number", customer_id),
    "customer_is_guest": Column("number", lambda o: int(customer_id(o) is None)),
    "store_id": Column("number", lambda o: STORE_IDS.get(o.currency, 1)),
    "order_currency_code": Column("text", lambda o: o.currency),
    "grand_total": Column("number", lambda o: o.grand_total),
}
#: Order columns whose lower bounds are answered from a sorted index, as the table's indexes would.
RANGE_INDEXED = ("updated_at", "created_at", "entity_id")
_LOWER_BOUNDS = {"gt": bisect.bisect_right, "gteq": bisect.bisect_left, "moreq": bisect.bisect_left,
                 "from": bisect.bisect_left}
MEMO_COLUMNS: dict[str, Column] = {
    "entity_id": Column("number", lambda r: r[0].entity_id),
    "increment_id": Column("text", lambda r: r[0].increment_id),
    "order_id": Column("number", lambda r: r[1].entity_id),
    "created_at": Column("time", lambda r: r[0].created_at),
    "updated_at": Column("time", lambda r: r[0].updated_at),
    "state": Column("number", lambda r: r[0].state),
    "store_id": Column("number", lambda r: STORE_IDS.get(r[1].currency, 1)),
    "grand_total": Column("number", lambda r: r[0].grand_total),
}


class RestApi:
    """Answers REST requests. ``max_page_size`` is the input-limiting cap (None: no cap, as before
    Magento 2.4.3). Matching rows are cached per criteria and store version, so paging through
    100,000 orders filters them once per query, not once per page."""

    def __init__(self, store: Store, token: str, max_page_size: int | None = DEFAULT_MAX_PAGE_SIZE) -> None:
        self.store = store
        self.token = token
        self.max_page_size = max_page_size
        self._cache: dict[tuple[Any, ...], tuple[int, list[Any]]] = {}
        self._cache_lock = threading.Lock()
        self._rendered: dict[int, str] = {}
        self._rendered_version = -1
        #: indexes of the store's rows by name, valid for the store version beside them
        self._indexes: dict[str, Any] = {}
        self._indexes_version = -1

    def prerender(self) -> None:
        """Make every order's JSON now: until the store changes, order pages are served from it, as
        a benchmark needs (a real store renders on its own server, not on the cores measured)."""
        with self.store.lock:
            self._rendered = {order.entity_id: json.dumps(render_order(order)) for order in self.store.orders}
            self._rendered_version = self.store.version

    def answer(self, method: str, path: str, params: Mapping[str, str],
               authorization: str | None) -> tuple[int, Any]:
        """(HTTP status, JSON body) for one request under ``/rest/``; a body made of prerendered
        orders comes as its JSON text, in bytes."""
        try:
            return 200, self._route(method, path, params, authorization)
        except RestError as error:
            return error.status, error.body()

    def _route(self, method: str, path: str, params: Mapping[str, str], authorization: str | None) -> Any:
        match = _PATH.match(path)
        if match is None or method != "GET":
            raise NO_ROUTE
        if match["store"] is not None and match["store"] not in STORE_CODES:
            raise RestError(400, "The store that was requested wasn't found. Verify the store and try again.")
        parts = match["route"].split("/")
        if parts[0] not in ("orders", "creditmemos") or len(parts) > 2:
            raise NO_ROUTE
        if not self._authorized(authorization):
            raise UNAUTHORIZED
        with self.store.lock:
            if len(parts) == 2:
                return self._one(parts[0], parts[1])
            if parts[0] == "orders":
                return self._orders(criteria.parse(params, self.max_page_size))
            return self._memos(criteria.parse(params, self.max_page_size))

    def _authorized(self, authorization: str | None) -> bool:
        scheme, _, token = (authorization or "").strip().partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.token

    def _one(self, resource: str, raw_id: str) -> dict[str, Any]:
        entity_id = int(raw_id) if raw_id.isdigit() else 0
        if resource == "orders":
            order = self.store.by_id.get(entity_id)
            if order is None:
                raise NOT_FOUND
            if entity_id in self.store.rest_broken:
                raise BROKEN
            return render_order(order)
        row = next((row for row in self._memo_rows() if row[0].entity_id == entity_id), None)
        if row is None:
            raise NOT_FOUND
        return render_credit_memo(*row)

    def _orders(self, query: Criteria) -> dict[str, Any] | bytes:
        matching = self._matching("orders", query, lambda: self._order_rows(query), ORDER_COLUMNS)
        page = criteria.page_of(matching, query)
        broken = self.store.rest_broken
        if broken and any(order.entity_id in broken for order in page):
            raise BROKEN
        if self._rendered_version == self.store.version:  # what json.dumps of the dict below makes
            items = ", ".join(self._rendered.get(order.entity_id) or json.dumps(render_order(order)) for order in page)
            return (f'{{"items": [{items}], "search_criteria": {json.dumps(query.echo)}, '
                    f'"total_count": {len(matching)}}}').encode("utf-8")
        return {"items": [render_order(order) for order in page], "search_criteria": query.echo,
                "total_count": len(matching)}

    def _order_rows(self, query: Criteria) -> list[Order]:
        """Every order, in entity order; when a group of ``query`` is a single lower bound (``gt``,
        ``gteq``) on an indexed column, only the orders past it, found by bisection (the filter
        still applies). An incremental run asks for the last hour of the store, each request with
        a new bound: a scan of every order per request was most of the sandbox's CPU in such a run."""
        bound = _lower_bound(query)
        if bound is None:
            return self.store.orders
        field, condition, operand = bound
        keys, positions = self._indexed(f"orders by {field}", lambda: self._order_index(field))
        cut = _LOWER_BOUNDS[condition](keys, operand)
        return [self.store.orders[position] for position in sorted(positions[cut:])]

    def _order_index(self, field: str) -> tuple[list[Any], list[int]]:
        """The orders' values of ``field`` in ascending order, and the position of each order."""
        value = ORDER_COLUMNS[field].value
        keyed = sorted((key, position) for position, order in enumerate(self.store.orders)
                       if (key := value(order)) is not None)
        return [key for key, _ in keyed], [position for _, position in keyed]

    def _memos(self, query: Criteria) -> dict[str, Any]:
        matching = self._matching("creditmemos", query, lambda: self._memo_rows(query), MEMO_COLUMNS)
        page = criteria.page_of(matching, query)
        return {"items": [render_credit_memo(memo, order) for memo, order in page],
                "search_criteria": query.echo, "total_count": len(matching)}

    def _memo_rows(self, query: Criteria | None = None) -> list[MemoRow]:
        """Every credit memo with its order, in memo id order (the table's natural order); when
        ``query`` filters by ``order_id in``, only the memos of those orders, found as the table's
        index finds them (the filter still applies). A client asks this for every page of orders:
        a scan of every order's memos per page cost 12 ms of the 2 cores a benchmark measures
        synclet on (4.7 s of CPU in a 20,000-order backfill; 1.8 s with the index)."""
        rows, by_order = self._indexed("memos", self._memo_index)
        order_ids = _order_ids_named(query) if query else None
        if order_ids is None:
            return rows
        return sorted((row for order_id in order_ids for row in by_order.get(order_id, ())),
                      key=lambda row: row[0].entity_id)

    def _memo_index(self) -> tuple[list[MemoRow], dict[int, list[MemoRow]]]:
        """Every memo with its order in memo id order, and the same rows by order id."""
        rows = sorted(((memo, order) for order in self.store.orders for memo in order.credit_memos),
                      key=lambda row: row[0].entity_id)
        by_order: dict[int, list[MemoRow]] = {}
        for row in rows:
            by_order.setdefault(row[1].entity_id, []).append(row)
        return rows, by_order

    def _indexed(self, name: str, build: Callable[[], Any]) -> Any:
        """The index ``name`` of the store as it is now: built on first use, dropped with every
        version of the store (each change bumps it)."""
        if self._indexes_version != self.store.version:
            self._indexes, self._indexes_version = {}, self.store.version
        if name not in self._indexes:
            self._indexes[name] = build()
        return self._indexes[name]

    def _matching(self, resource: str, query: Criteria, rows: Callable[[], list[Any]],
                  columns: Mapping[str, Column]) -> list[Any]:
        key, version = (resource, query.groups, query.sorts), self.store.version
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached and cached[0] == version:
                return cached[1]
        matching = criteria.select(rows(), columns, query)
        with self._cache_lock:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = (version, matching)
        return matching


def _lone_filters(query: Criteria) -> Iterator[Filter]:
    """The filter of each group that holds only one (with a value): every matching row passes it."""
    return (group[0] for group in query.groups if len(group) == 1 and group[0].value is not None)


def _lower_bound(query: Criteria) -> tuple[str, str, Any] | None:
    """(column, condition, operand) of a lone lower bound on an indexed order column; None when the
    query has none, or when its literal is no value of the column (an unreadable time is compared
    as text)."""
    for spec in _lone_filters(query):
        if spec.field in RANGE_INDEXED and spec.condition in _LOWER_BOUNDS:
            column = ORDER_COLUMNS[spec.field]
            read, operand = column.operand(str(spec.value))
            if read == column.value:
                return spec.field, spec.condition, operand
    return None


def _order_ids_named(query: Criteria) -> set[Decimal] | None:
    """The order ids of a lone ``order_id in`` filter; None when the query has none. Ids read as
    MySQL reads them (``7abc`` is 7); a Decimal finds the int key it equals, and a fraction finds
    none."""
    order_id = MEMO_COLUMNS["order_id"]
    for spec in _lone_filters(query):
        if spec.field == "order_id" and spec.condition == "in":
            return {order_id.operand(item.strip())[1] for item in str(spec.value).split(",")}
    return None
