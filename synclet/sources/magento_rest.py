"""Magento 2's native REST API: orders with all their credit memos, keyset-paged by update time.

Offsets are unsafe here (past the end Magento repeats the last page, and orders updated during the
run shift everything behind them), so every request is page 1 after a keyset position, sorted by
``updated_at, entity_id``, dropping the orders already read at that second; more orders in one
second than a page holds are swept by ``entity_id``. A list that fails because one order's product
was deleted ("Requested product doesn't exist") is narrowed until that order fails alone; it is then
fetched by id or rejected, and the walk goes on after it.

A long walk (a backfill) is read faster with up to ``MAGENTO_REST_CONCURRENCY`` pages in flight,
by offset, over a snapshot that no order can enter: orders updated up to one second before the
newest one the store holds. An order updated during the run leaves that range (its new time is
later), so the range only ever shrinks, and ``total_count`` tells when it did: each page must
report the count the range had before any page was asked for. A page that does not is dropped and
the walk goes on from the last page that did; the keyset walk reads the rest (the last second, and
the orders changed meanwhile). Pages come out in order, each with its memos.

An order's credit memos ride in its payload under ``synclet_creditmemos`` (by entity_id), so its
``raw_json`` and hash change when a memo does, and ``parse`` maps that stored payload again
(``synclet.sources.magento_rest_parse``).
"""
from __future__ import annotations

import itertools
import logging
import re
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar, NamedTuple

import requests

from synclet.config import Settings
from synclet.errors import AuthError, ConfigError, MappingError, ProtocolError, RemoteError
from synclet.http import HttpClient
from synclet.records import Order, Page, Rejected, canonical_json
from synclet.sources import Window
from synclet.sources.fields import Fields, type_name
from synclet.sources.magento_rest_parse import SOURCE, parse_page, parse_stored

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 300  # Magento 2.4.3+ input limiting refuses more
MAX_KEY = 2**32 - 1  # above every entity_id (unsigned INT) and updated_at second (TIMESTAMP)
PRODUCT_MISSING = "Requested product doesn't exist"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
EPOCH = datetime(1970, 1, 1)
#: A walk with fewer orders than this is read one page at a time: parallel pages cost three extra
#: requests (the newest order, the snapshot's count) and pay off only over a long walk.
PARALLEL_MIN_ORDERS = 1000
_PAGE_SIZE_CAP = re.compile(r"Maximum SearchCriteria pageSize is (\d+)?")

#: (field, condition_type, value); each goes into a filter group of its own, so all are ANDed.
Filter = tuple[str, str, str]


class _ProductMissing(RemoteError):
    """A list (or an order) cannot be loaded because an ordered product was deleted; ``answer`` is
    the store's status and words, for a message that needs no URL."""

    def __init__(self, where: str, answer: str) -> None:
        super().__init__(f"{where}: {answer}")
        self.answer = answer


class MagentoRestSource:
    """Reads orders created (and, incrementally, updated or credited) in a window, oldest update first."""

    name: ClassVar[str] = SOURCE
    ordered_by_update: ClassVar[bool] = True

    def __init__(self, http: HttpClient, base_url: str, token: str, page_size: int = 100, concurrency: int = 1) -> None:
        self.http = http
        self.url = f"{rest_root(base_url)}/V1/"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.page_size = min(page_size, MAX_PAGE_SIZE)
        self.page_size_capped = False
        self.concurrency = max(1, concurrency)

    @classmethod
    def from_settings(cls, settings: Settings, http: HttpClient) -> MagentoRestSource:
        if not settings.magento_rest_url or not settings.magento_token:
            raise ConfigError("MAGENTO_REST_URL, MAGENTO_TOKEN: both are required for source magento-rest")
        return cls(http, settings.magento_rest_url, settings.magento_token, settings.magento_rest_page_size,
                   settings.magento_rest_concurrency)

    def check(self) -> str:
        """The smallest orders list: proves the URL, the token and its right to read orders. An
        order that cannot be loaded fails that list only after the token was accepted, and a sync
        rejects it alone, so the check passes and says so."""
        try:
            body = self._get("orders", {"searchCriteria[pageSize]": "1"})
        except _ProductMissing as error:
            return f"Magento REST (token accepted; an order on the first page cannot be loaded: {error.answer})"
        total = body.get("total_count") if isinstance(body, dict) else None
        if not isinstance(total, int):
            raise ProtocolError(f"{self.http.describe(self.url)}orders: not a Magento REST answer ({type_name(body)})")
        return f"Magento REST, {total} orders"

    def pages(self, window: Window) -> Iterator[Page]:
        """Orders whose credit memos changed first, then every order by update time, then the orders
        that gained or changed a memo while those were read. Memo pages do not move the cursor: a
        memo does not always touch its order's updated_at, and after a long run the cursor can be
        hours past a memo made during it, so only this run can still see that memo."""
        numbers = itertools.count()
        created = [("created_at", "gteq", window.created_after.strftime(TIME_FORMAT))]
        read = _Read()
        start = window.updated_after or window.created_after
        if window.updated_after is not None:
            yield from self._credited(start, created, read, numbers, window.stored_credits)
        for batch, memos in self._by_update(created, _Keyset(UPDATED, _seconds(start))):
            yield self._page(next(numbers), batch, read, memos=memos)
        yield from self._credited(start, created, read, numbers, window.stored_credits)

    def parse(self, payload: Mapping[str, Any]) -> Order:
        return parse_stored(payload, self.name)

    def refetch(self, external_ids: Sequence[str]) -> Page:
        """These orders loaded by id with their memos, whatever their update time: one the shop could
        not load is kept as its id alone, and repairing its product does not touch its updated_at."""
        batch = [self._single(int(external_id)) for external_id in external_ids if external_id.isdigit()]
        return self._page(0, batch, _Read(), advances_cursor=False)

    def _credited(self, since: datetime, created: list[Filter], read: _Read, numbers: Iterator[int],
                  stored: Callable[[Sequence[str]], Mapping[str, datetime | None]] | None = None) -> Iterator[Page]:
        """The orders (in the window) of the memos updated since ``since`` that neither this run has
        read nor the database holds at that version, with all their memos. Memos already read or
        stored cost one list request, not an order."""
        for memos in self._walk("creditmemos", [], _Keyset(UPDATED, _seconds(since))):
            fresh = [memo for memo in memos if read.memos.get(_whole(memo, "entity_id"), -1) != _updated_second(memo)]
            read.memos.update(_memo_version(memo) for memo in fresh)  # settled even if the order is outside the window
            if fresh and stored is not None:
                held = stored([str(_whole(memo, "entity_id")) for memo in fresh])
                fresh = [memo for memo in fresh if _stored_second(held, memo) != _updated_second(memo)]
            order_ids = sorted({_whole(memo, "order_id") for memo in fresh} - read.unloadable)
            if order_ids:
                by_id = [("entity_id", "in", ",".join(map(str, order_ids)))]
                for batch in self._walk("orders", created + by_id, _Keyset(ENTITY, 1)):
                    yield self._page(next(numbers), batch, read, advances_cursor=False)

    def _page(self, number: int, batch: list[Any], read: _Read, advances_cursor: bool = True,
              memos: list[dict[str, Any]] | None = None) -> Page:
        """The batch's orders with their memos (fetched here unless given), into ``read``; an order
        that cannot be loaded is rejected once a run, though the memo pass may meet it again."""
        orders = [entry for entry in batch if not isinstance(entry, Rejected)]
        if memos is None:
            memos = self._credit_memos([_whole(order, "entity_id") for order in orders]) if orders else []
        read.memos.update(_memo_version(memo) for memo in memos)
        page = parse_page(number, orders, memos, self.name)
        for entry in batch:
            if isinstance(entry, Rejected) and int(entry.external_id) not in read.unloadable:
                read.unloadable.add(int(entry.external_id))
                page.rejected.append(entry)
        page.advances_cursor = advances_cursor
        return page

    def _credit_memos(self, order_ids: list[int]) -> list[dict[str, Any]]:
        """Every credit memo of these orders, however many pages they fill."""
        by_order = [("order_id", "in", ",".join(map(str, order_ids)))]
        return [memo for batch in self._walk("creditmemos", by_order, _Keyset(ENTITY, 1)) for memo in batch]

    def _by_update(self, filters: list[Filter], keyset: _Keyset) -> Iterator[tuple[list[Any], list[dict[str, Any]] | None]]:
        """The orders walk by update time, as (batch, its memos or None): parallel pages where the
        walk is long, then the keyset walk from wherever they stopped."""
        if self.concurrency > 1:
            finished = yield from self._parallel(filters, keyset)
            if finished:
                return
        for batch in self._walk("orders", filters, keyset):
            yield batch, None

    def _parallel(self, filters: list[Filter], keyset: _Keyset) -> Iterator[tuple[list[Any], list[dict[str, Any]] | None]]:
        """The keyset walk's first page; when its ``total_count`` promises a long walk, snapshots of
        parallel pages. Returns True when the walk is complete, False when the keyset walk goes on
        from the keyset (having read nothing twice: every page moved the keyset)."""
        by_update = [UPDATED.field, "entity_id"]
        try:
            items, total, size = self._first_page("orders", keyset.filters() + filters, by_update)
        except _ProductMissing:
            return False  # the keyset walk narrows around it
        fresh = keyset.take(items)
        if not fresh:
            return False
        more = len(items) >= size and not (total is not None and total <= size)
        if not more or total is None or total < PARALLEL_MIN_ORDERS:
            yield fresh, None
            return not more
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="magento-rest") as pool:
            memos = pool.submit(self._credit_memos, [_whole(order, "entity_id") for order in fresh])
            try:  # while the first page's memos come: where the snapshot ends, and what it holds
                newest = self._newest_second("orders", keyset.filters() + filters)
                bound = None if newest is None else newest - 1  # later updates land after it: the range only loses orders
                ranged = [] if bound is None else keyset.filters() + filters + [(UPDATED.field, "lteq", UPDATED.text(bound))]
                count = self._count(ranged, by_update) if bound is not None and keyset.position <= bound else None
            except Exception:
                yield fresh, memos.result()  # the page read before the failure is written first
                raise
            yield fresh, memos.result()
            stalled = 0  # snapshots in a row that changed before a page of them was read
            while count is not None and bound is not None:
                at = (keyset.position, len(keyset.seen))
                outcome = yield from self._snapshot(pool, ranged, keyset, by_update, count)
                stalled = stalled + 1 if at == (keyset.position, len(keyset.seen)) else 0
                if outcome != _CHANGED or keyset.position > bound or stalled > 2:
                    break
                ranged = keyset.filters() + filters + [(UPDATED.field, "lteq", UPDATED.text(bound))]
                count = self._count(ranged, by_update)
        return False

    def _count(self, filters: list[Filter], sort: list[str]) -> int | None:
        """How many orders match ``filters`` (one order is loaded to learn it); None if unknown."""
        try:
            return self._search("orders", filters, sort, 1)[1]
        except _ProductMissing:
            return None

    def _snapshot(self, pool: ThreadPoolExecutor, ranged: list[Filter], keyset: _Keyset, sort: list[str],
                  total: int) -> Iterator[tuple[list[Any], list[dict[str, Any]] | None]]:
        """Every page of the orders ``ranged`` selects (``total`` of them when counted, before any
        page was asked for), up to ``concurrency`` in flight, each with its memos, in order. Returns
        ``_DONE`` when all were read, ``_CHANGED`` when the range lost (or gained) an order,
        ``_STOPPED`` when the keyset walk must go on from here."""
        size = self.page_size
        if total <= size:
            return _STOPPED  # one page: the keyset walk reads it as fast
        last = -(-total // size)
        numbers = iter(range(1, last + 1))
        flying: deque[tuple[int, Future[_OffsetPage | None]]] = deque()

        def ask(count: int) -> None:
            flying.extend((n, pool.submit(self._offset_page, ranged, sort, size, n)) for n in itertools.islice(numbers, count))

        ask(self.concurrency)
        try:
            while flying:
                number, future = flying.popleft()
                answer = future.result()
                expected = size if number < last else total - size * (last - 1)
                if answer is None:  # an order that cannot be loaded: the keyset walk narrows to it
                    return _STOPPED
                if answer.total != total:
                    return _CHANGED
                if len(answer.items) != expected:
                    return _STOPPED  # a store that pages otherwise than it counts: no offsets then
                fresh = keyset.take(answer.items)
                if fresh:
                    wanted = {_whole(order, "entity_id") for order in fresh}
                    yield fresh, [memo for memo in answer.memos if memo.get("order_id") in wanted]
                ask(1)
        finally:
            for _, future in flying:
                future.cancel()
        return _DONE

    def _offset_page(self, filters: list[Filter], sort: list[str], size: int, number: int) -> _OffsetPage | None:
        """One page of a snapshot and the memos of its orders; None if an order on it cannot be loaded."""
        try:
            items, total = self._search("orders", filters, sort, size, number)
        except _ProductMissing:
            return None
        memos = self._credit_memos([_whole(item, "entity_id") for item in items]) if items else []
        return _OffsetPage(items, total, memos)

    def _newest_second(self, path: str, filters: list[Filter]) -> int | None:
        """The update second of the newest entry matching ``filters``; None if it cannot be read."""
        try:
            items, _ = self._search(path, filters, [UPDATED.field], 1, descending=True)
        except _ProductMissing:
            return None
        return UPDATED.of(items[0]) if items else None

    def _walk(self, path: str, filters: list[Filter], keyset: _Keyset) -> Iterator[list[Any]]:
        """Every entry matching ``filters`` from the keyset's position on, in batches, each entry once
        per position (a ``Rejected`` stands in for an order that cannot be loaded)."""
        key = keyset.key
        sort = [key.field] if key.unique else [key.field, "entity_id"]
        while True:
            if not keyset.isolated():
                try:
                    items, more = self._list(path, keyset.filters() + filters, sort)
                except _ProductMissing:
                    if path != "orders":
                        raise
                    if keyset.upper is None:
                        log.warning("%s: listing orders from %s %s fails on a deleted product; narrowing",
                                    self.name, key.field, key.text(keyset.position))
                    keyset.failed()
                    continue
                fresh = keyset.take(items)
                if fresh:
                    yield fresh
                if not more:
                    if keyset.range_done():
                        continue
                    return
                if fresh:
                    continue
                if key.unique or any(key.of(item) != keyset.position for item in items):
                    raise ProtocolError(f"{self.http.describe(self.url)}{path}: a full page from {key.field} "
                                        f"{key.text(keyset.position)} held nothing new; the paging filters are ignored")
            yield from self._alone(path, filters, keyset)
            if not keyset.key_done():
                return

    def _alone(self, path: str, filters: list[Filter], keyset: _Keyset) -> Iterator[list[Any]]:
        """The position read on its own: a crowded or failing second swept by entity_id, or one order."""
        if keyset.key.unique:
            yield [self._single(keyset.position)]
            return
        start = max(keyset.seen) + 1 if keyset.seen else 1
        second = [("updated_at", "eq", UPDATED.text(keyset.position))]
        yield from self._walk(path, filters + second, _Keyset(ENTITY, start))

    def _single(self, entity_id: int) -> Any:
        """An order no list can load may still load alone; if not, it is rejected, not fatal."""
        try:
            order = self._get(f"orders/{entity_id}")
        except _ProductMissing:
            return Rejected(self.name, str(entity_id), None, canonical_json({"entity_id": entity_id}),
                            f"{PRODUCT_MISSING} (the order cannot be loaded)")
        if not isinstance(order, dict):
            raise ProtocolError(f"{self.http.describe(self.url)}orders/{entity_id}: not an order ({type_name(order)})")
        return order

    def _list(self, path: str, filters: Sequence[Filter], sort: Sequence[str]) -> tuple[list[dict[str, Any]], bool]:
        """Page 1 of a search: (items, whether more may follow). A refused page size is lowered."""
        items, total, size = self._first_page(path, filters, sort)
        return items, len(items) >= size and not (total is not None and total <= size)

    def _first_page(self, path: str, filters: Sequence[Filter], sort: Sequence[str]) -> tuple[list[dict[str, Any]], int | None, int]:
        """Page 1 of a search: (items, ``total_count``, the page size used), lowering a refused page size."""
        while True:
            size = self.page_size
            try:
                items, total = self._search(path, filters, sort, size)
            except RemoteError as error:
                cap = _PAGE_SIZE_CAP.search(str(error))
                if cap is None:
                    raise
                self._lower_page_size(int(cap[1]) if cap[1] else None, error)
                continue
            return items, total, size

    def _search(self, path: str, filters: Sequence[Filter], sort: Sequence[str], size: int, page: int = 1,
                descending: bool = False) -> tuple[list[dict[str, Any]], int | None]:
        """One page of a search: (items, ``total_count`` if the store said it)."""
        body = self._get(path, search_criteria(filters, sort, size, page, descending))
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ProtocolError(f"{self.http.describe(self.url)}{path}: expected an object with an items list")
        total = body.get("total_count")
        return items, total if isinstance(total, int) and not isinstance(total, bool) else None

    def _lower_page_size(self, limit: int | None, error: RemoteError) -> None:
        smaller = limit if limit and limit < self.page_size else self.page_size // 2
        if smaller < 1:
            raise error
        if not self.page_size_capped:
            log.warning("%s: the store refuses pageSize %d; using %d (lower MAGENTO_REST_PAGE_SIZE)",
                        self.name, self.page_size, smaller)
        self.page_size, self.page_size_capped = smaller, True

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET under ``/V1/``; an error answer in Magento's own words (placeholders filled) becomes a
        typed error: a refused token, a deleted product, the page-size cap."""
        url = self.url + path
        response = self.http.request("GET", url, final=_product_missing, params=params, headers=self.headers)
        message = self.http.mask(_error_message(response)) if response.status_code >= 400 else ""
        where = f"GET {self.http.describe(url)}"
        if message and response.status_code in (401, 403):
            refused = f"HTTP {response.status_code}, credentials refused ({message.rstrip('.')})"
            raise AuthError(f"{where}: {refused}; check MAGENTO_TOKEN")
        if message and PRODUCT_MISSING in message:
            raise _ProductMissing(where, f"HTTP {response.status_code} {message}")
        if message:
            raise RemoteError(f"{where}: HTTP {response.status_code} {message}")
        try:
            return self.http.decode(response)
        except AuthError as error:
            raise AuthError(f"{error}; check MAGENTO_TOKEN") from None


_DONE, _CHANGED, _STOPPED = "done", "changed", "stopped"  # how a snapshot of parallel pages ended


class _OffsetPage(NamedTuple):
    items: list[dict[str, Any]]
    total: int | None
    memos: list[dict[str, Any]]


class _Key(NamedTuple):
    field: str
    unique: bool  # entity_id: one entry per value; updated_at: any number per second
    of: Callable[[Mapping[str, Any]], int]
    text: Callable[[int], str]


@dataclass
class _Read:
    """What one run has read: each memo's version (entity_id -> updated_at second), and the orders
    that could not be loaded (rejected once)."""

    memos: dict[int, int | None] = field(default_factory=dict)
    unloadable: set[int] = field(default_factory=set)


@dataclass
class _Keyset:
    """Where a walk stands: entries with ``key >= position``, minus ``seen`` (ids read at exactly it).

    Narrowing around a deleted product adds ``key <= upper``: probing forward with ranges twice as
    wide each time until one fails, then halving ``[position, failing]`` until one key fails alone.
    Bounds are always inclusive: at whole seconds and ids, ``gt k`` is ``gteq k+1``."""

    key: _Key
    position: int
    seen: set[int] = field(default_factory=set)
    upper: int | None = None
    failing: int | None = None  # an upper bound known to fail from the position
    span: int = 0

    def filters(self) -> list[Filter]:
        bounds = [(self.key.field, "gteq", self.key.text(self.position))]
        if self.upper is not None:
            bounds.append((self.key.field, "lteq", self.key.text(self.upper)))
        return bounds

    def take(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The items not read yet at their position; the position moves to the newest of them."""
        fresh: dict[int, tuple[int, dict[str, Any]]] = {}
        for item in items:
            key, entity_id = self.key.of(item), _whole(item, "entity_id")
            if key > self.position or (key == self.position and entity_id not in self.seen):
                fresh.setdefault(entity_id, (key, item))
        if fresh:
            newest = max(key for key, _ in fresh.values())
            at_newest = {entity_id for entity_id, (key, _) in fresh.items() if key == newest}
            if self.key.unique:
                self.position, self.seen = newest + 1, set()
            elif newest > self.position:
                self.position, self.seen = newest, at_newest
            else:
                self.seen |= at_newest
        return [item for _, item in fresh.values()]

    def isolated(self) -> bool:
        """The key at the position is known to fail on its own."""
        return self.failing == self.position

    def failed(self) -> None:
        if self.upper is None:
            self.upper, self.span = self.position, 0
        else:
            self.failing = self.upper
            self.upper = (self.position + self.failing) // 2

    def range_done(self) -> bool:
        """A short answer read the range; False when that was the end of the walk."""
        if self.upper is None or self.upper >= MAX_KEY:
            return False
        self.position, self.seen = self.upper + 1, set()
        if self.failing is not None and self.position < self.failing:
            self.upper = (self.position + self.failing) // 2
        else:  # probing on; a failing key is only isolated once a request for it alone failed
            self.span = 0 if self.failing is not None else 2 * self.span + 1
            self.failing, self.upper = None, min(self.position + self.span, MAX_KEY)
        return True

    def key_done(self) -> bool:
        """The position was read on its own; False when that was the end of the walk."""
        if self.isolated():
            self.upper = self.failing = None
        elif self.upper is not None and self.position >= self.upper:
            return self.range_done()
        self.position, self.seen = self.position + 1, set()
        return True


def search_criteria(filters: Sequence[Filter], sort: Sequence[str], page_size: int, page: int = 1,
                    descending: bool = False) -> dict[str, str]:
    """Query parameters for a page of a search (page 1 unless told), ascending by ``sort`` unless told."""
    params: dict[str, str] = {}
    for group, (name, condition, value) in enumerate(filters):
        prefix = f"searchCriteria[filter_groups][{group}][filters][0]"
        params.update({f"{prefix}[field]": name, f"{prefix}[value]": value, f"{prefix}[condition_type]": condition})
    for index, name in enumerate(sort):
        params.update({f"searchCriteria[sortOrders][{index}][field]": name,
                       f"searchCriteria[sortOrders][{index}][direction]": "DESC" if descending else "ASC"})
    params.update({"searchCriteria[pageSize]": str(page_size), "searchCriteria[currentPage]": str(page)})
    return params


def _product_missing(response: requests.Response) -> bool:
    """A 500 saying an ordered product is gone: the same answer every time, so never retried."""
    return PRODUCT_MISSING in _error_message(response)


def _error_message(response: requests.Response) -> str:
    """The filled message of a Magento error body; "" for any other body."""
    try:
        return magento_message(response.json())
    except ValueError:
        return ""


def magento_message(body: Any) -> str:
    """Magento's ``{"message": "...", "parameters": ...}`` as Magento itself renders it: ``%1``,
    ``%2``... from a ``parameters`` list, ``%name`` from an object, longest placeholder first and
    each replaced once (PHP's ``strtr``); unknown placeholders stay. "" if ``body`` is no such error."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return ""
    parameters = body.get("parameters")
    if isinstance(parameters, list):
        parameters = dict(enumerate(parameters, start=1))
    if not isinstance(parameters, dict):
        return message
    values = {f"%{name}": "" if value is None else str(value) for name, value in parameters.items() if str(name)}
    if not values:
        return message
    placeholders = re.compile("|".join(map(re.escape, sorted(values, key=len, reverse=True))))
    return placeholders.sub(lambda match: values[match[0]], message)


def rest_root(base_url: str) -> str:
    """``MAGENTO_REST_URL`` without trailing slashes and without one trailing ``/V1``: the
    reference writes the base with the version (``https://shop/rest/default/V1``), and the source
    adds it itself."""
    root = base_url.rstrip("/")
    return root[:-3].rstrip("/") if root[-3:].lower() == "/v1" else root


def _seconds(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds())


def _moment(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime(TIME_FORMAT)


def _whole(entry: Mapping[str, Any], name: str) -> int:
    """An id the walk orders or filters by; without one the answer cannot be paged."""
    value = entry.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ProtocolError(f"list answer: {name} {value!r} is not an id")
    return value


def _updated_second(entry: Mapping[str, Any]) -> int:
    try:
        moment = Fields(entry).time("updated_at")
    except MappingError as error:
        raise ProtocolError(f"list answer: {error}") from None
    if moment is None:
        raise ProtocolError("list answer: an entry without updated_at")
    return _seconds(moment)


def _stored_second(held: Mapping[str, datetime | None], memo: Mapping[str, Any]) -> int | None:
    """The update second at which the database holds ``memo``; None if it holds it at none."""
    moment = held.get(str(_whole(memo, "entity_id")))
    return None if moment is None else _seconds(moment)


def _memo_version(memo: Mapping[str, Any]) -> tuple[int, int | None]:
    """(entity_id, updated_at second) of a memo read; None for a time the walk could not compare."""
    try:
        return _whole(memo, "entity_id"), _updated_second(memo)
    except ProtocolError:
        return _whole(memo, "entity_id"), None


UPDATED = _Key("updated_at", False, _updated_second, _moment)
ENTITY = _Key("entity_id", True, lambda entry: _whole(entry, "entity_id"), str)
