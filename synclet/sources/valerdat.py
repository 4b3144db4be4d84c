"""Valerdat purchase orders: ids of changed orders, then each order's detail, fetched in parallel.

Token auth: one login per run, reused by every request, refreshed once when a call answers 401
(a token may expire before it says). The ids endpoint is sorted by ``(updated_at, uuid)`` with an
inclusive ``updated_since``, so the walk is keyed: each ids page is asked from the newest update
time read so far, and the uuids already read at exactly that time are dropped. Details of ids the
database already holds at the same version are not fetched again. Field names live in
``synclet.sources.valerdat_parse``.
"""
from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any, ClassVar

import requests

from synclet.config import Settings
from synclet.errors import AuthError, ConfigError, MappingError, ProtocolError
from synclet.http import HttpClient
from synclet.records import Order, Page, Rejected, canonical_json
from synclet.sources import Window
from synclet.sources.valerdat_parse import AUTH_PATH, AUTH_SCHEME, IDS_PATH, MAX_PAGE_SIZE, ORDER_PATH, parse_ids_page, parse_order

log = logging.getLogger(__name__)

SOURCE = "valerdat"
MAX_STALLED_PAGES = 1000  # more ids than this many pages sharing one second would be absurd
#: Details in one page, the unit a run commits: a stop waits for at most this many (at the real
#: API's 10 requests a second, 5 s rather than the 50 s of a whole ids page of 500).
DETAILS_PER_PAGE = 50


class ValerdatSource:
    name: ClassVar[str] = SOURCE
    ordered_by_update: ClassVar[bool] = True

    def __init__(self, http: HttpClient, base_url: str, credentials: Mapping[str, str], concurrency: int = 8) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.credentials = dict(credentials)
        self.concurrency = concurrency
        self._token: str | None = None
        self._token_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, http: HttpClient) -> ValerdatSource:
        if not (settings.valerdat_base_url and settings.valerdat_customer and settings.valerdat_username and settings.valerdat_password):
            raise ConfigError("VALERDAT_BASE_URL, VALERDAT_CUSTOMER, VALERDAT_USERNAME, VALERDAT_PASSWORD: all are required for source valerdat")
        credentials = {"customer": settings.valerdat_customer, "username": settings.valerdat_username, "password": settings.valerdat_password}
        return cls(http, settings.valerdat_base_url, credentials, settings.valerdat_concurrency)

    def check(self) -> str:
        body = self._get_json(f"{self.base_url}/{IDS_PATH}", {"updated_since": "1970-01-01T00:00:00Z", "page_size": "1"})
        count = body.get("count") if isinstance(body, dict) else None
        return f"Valerdat, {count} purchase orders" if isinstance(count, int) else "Valerdat"

    def parse(self, payload: Mapping[str, Any]) -> Order:
        return parse_order(payload, self.name)

    def pages(self, window: Window) -> Iterator[Page]:
        """Pages of orders in update order; each covers its ids, fetched or skipped as unchanged."""
        since = window.updated_after or window.created_after
        seen_at_since: set[str] = set()
        numbers = itertools.count()
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="valerdat") as pool:
            while True:
                ids, complete = self._ids_from(since, seen_at_since)
                if ids:
                    yield from self._pages_of(ids, window, pool, numbers)
                    newest = max(updated for _, updated in ids)
                    at_newest = {uuid for uuid, updated in ids if updated == newest}
                    seen_at_since = at_newest | seen_at_since if newest == since else at_newest
                    since = newest
                if complete:
                    return

    def _ids_from(self, since: datetime, seen: set[str]) -> tuple[list[tuple[str, datetime]], bool]:
        """The next ids after what was read: the first page from ``since``, following ``next``
        only while every id on a page was read already (more ids in one second than a page)."""
        url: str | None = f"{self.base_url}/{IDS_PATH}"
        params: dict[str, str] | None = {"updated_since": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "page_size": str(MAX_PAGE_SIZE)}
        for _ in range(MAX_STALLED_PAGES):
            assert url is not None
            results, next_url = parse_ids_page(self._get_json(url, params))
            fresh = [(uuid, updated) for uuid, updated in results if not (updated == since and uuid in seen)]
            if fresh or next_url is None:
                return fresh, next_url is None
            url, params = next_url, None
        raise ProtocolError(f"more than {MAX_STALLED_PAGES} pages of ids share {since}")

    def _pages_of(self, ids: Sequence[tuple[str, datetime]], window: Window, pool: ThreadPoolExecutor,
                  numbers: Iterator[int]) -> Iterator[Page]:
        """The ids' orders in pages of ``DETAILS_PER_PAGE``. Every detail wanted is asked for at once
        (the pool bounds how many fly), so a page boundary never leaves the pool idle; those not
        yet sent when the run stops are not sent."""
        stored = window.stored_versions([uuid for uuid, _ in ids]) if window.stored_versions else {}
        details = {uuid: pool.submit(self._detail, uuid) for uuid, updated in ids if stored.get(uuid) != updated}
        try:
            for start in range(0, len(ids), DETAILS_PER_PAGE):
                yield self._page(next(numbers), ids[start:start + DETAILS_PER_PAGE], details, window)
        finally:
            for detail in details.values():
                detail.cancel()

    def _page(self, number: int, ids: Sequence[tuple[str, datetime]], details: dict[str, Future[Any]], window: Window) -> Page:
        """The orders of ``ids``, each detail taken out of ``details`` as it is read."""
        wanted = [uuid for uuid, _ in ids if uuid in details]
        page = Page(number, unchanged=len(ids) - len(wanted), covered_until=max(updated for _, updated in ids))
        for uuid in wanted:
            detail = details.pop(uuid).result()
            if detail is None:
                log.info("%s: purchase order %s was deleted before it could be read; skipped", self.name, uuid)
                continue
            try:
                order = parse_order(detail, self.name)
            except MappingError as error:
                number_text = detail.get("number") if isinstance(detail, dict) else None
                page.rejected.append(Rejected(self.name, uuid, number_text if isinstance(number_text, str) else None, canonical_json(detail), str(error)))
                continue
            if order.order_date is None or order.order_date >= window.created_after:
                page.orders.append(order)
        return page

    def _detail(self, uuid: str) -> Any:
        """One purchase order, or None when it was deleted between the ids call and this one."""
        response = self._authorized("GET", f"{self.base_url}/{ORDER_PATH.format(uuid=uuid)}")
        if response.status_code == 404:
            return None
        return self.http.decode(response)

    def _get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        return self.http.decode(self._authorized("GET", url, params=params))

    def _authorized(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send with the run's token; on a 401 log in again once and repeat the call."""
        token = self._current_token()
        response = self.http.request(method, url, headers={"Authorization": f"{AUTH_SCHEME} {token}"}, **kwargs)
        if response.status_code != 401:
            return response
        token = self._current_token(refresh_after=token)
        response = self.http.request(method, url, headers={"Authorization": f"{AUTH_SCHEME} {token}"}, **kwargs)
        if response.status_code == 401:
            raise AuthError(f"a fresh token was refused too (HTTP 401 at {self.http.describe(url)})")
        return response

    def session(self) -> str | None:
        """The login, for a reader in a child process to hand back to the run's process."""
        return self._token

    def resume(self, token: str) -> None:
        """Keep a login made in a child process, so the next run (a ``--watch`` cycle) reuses it."""
        with self._token_lock:
            self._token = token

    def _current_token(self, refresh_after: str | None = None) -> str:
        """The shared token; ``refresh_after`` names a refused one, replaced once for all workers."""
        with self._token_lock:
            if self._token is None or self._token == refresh_after:
                self._token = self._login()
            return self._token

    def _login(self) -> str:
        response = self.http.request("POST", f"{self.base_url}/{AUTH_PATH}", json=self.credentials)
        if response.status_code in (400, 401, 403):
            raise AuthError(f"login refused (HTTP {response.status_code}): check VALERDAT_CUSTOMER, VALERDAT_USERNAME and VALERDAT_PASSWORD")
        body = self.http.decode(response)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise ProtocolError("the login answer holds no token")
        return token
