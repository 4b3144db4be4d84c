"""The Big Block Orders API (a Django REST framework app): list, create, retrieve, delete.

Every call goes through the shared ``HttpClient`` (timeouts, retries, ``Retry-After``) with the key
in the ``API-KEY`` header: proxies drop header names with underscores, so never ``API_KEY``. A
retried create whose first attempt did reach Big Block comes back as "order number exists": the
caller finds that order rather than failing, so nothing is created twice.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

import requests

from synclet.config import mask_url
from synclet.errors import ProtocolError, RemoteError
from synclet.http import HttpClient

MAX_LIST_PAGES = 100_000  # a `next` that never ends is a broken server, not a big warehouse


class DuplicateOrder(RemoteError):
    """Big Block already has an order with this number (HTTP 400, unique order_number)."""


def orders_url(base_url: str) -> str:
    """The orders endpoint under BIGBLOCK_BASE_URL; with any password masked, it also names which
    Big Block a push record speaks of."""
    return mask_url(base_url.rstrip("/") + "/orders/")


class BigBlock:
    name = "bigblock"

    def __init__(self, base_url: str, api_key: str, http: HttpClient) -> None:
        self.orders_url = orders_url(base_url)
        self.http = http
        self.headers = {"API-KEY": api_key, "Accept": "application/json"}

    def check(self) -> str:
        """One list call: the key is accepted and the API answers in its shape."""
        try:
            body = self._get_json(self.orders_url)
        except RemoteError as error:
            if "HTTP 404" not in str(error):
                raise
            raise RemoteError(f"{error}: is BIGBLOCK_BASE_URL right? synclet appends /orders/ to it "
                              "(e.g. https://www.voodoodevices.com/api)") from None
        orders = body if isinstance(body, list) else body.get("results") if isinstance(body, dict) else None
        if not isinstance(orders, list) or not all(isinstance(order, dict) and "id" in order for order in orders):
            raise ProtocolError(f"GET {self.http.describe(self.orders_url)}: not a list of Big Block orders")
        count = body.get("count") if isinstance(body, dict) else len(orders)
        return f"key accepted, {count if isinstance(count, int) else 'some'} orders in Big Block"

    def orders(self) -> Iterator[dict[str, Any]]:
        """Every order Big Block holds: a bare array, or DRF pages followed through ``next``."""
        url: str | None = self.orders_url
        seen: set[str] = set()
        while url is not None:
            if url in seen or len(seen) >= MAX_LIST_PAGES:
                raise ProtocolError(f"GET {self.http.describe(url)}: the list's `next` pages go round in a circle")
            seen.add(url)
            body = self._get_json(url)
            if isinstance(body, list):
                yield from (order for order in body if isinstance(order, dict))
                return
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise ProtocolError(f"GET {self.http.describe(url)}: not a list of orders")
            yield from (order for order in body["results"] if isinstance(order, dict))
            following = body.get("next")
            url = urljoin(url, following) if isinstance(following, str) and following else None

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST the order; the created order (with its ``id``), or ``DuplicateOrder``."""
        response = self.http.request("POST", self.orders_url, json=body, headers=self.headers)
        if response.status_code == 400:
            errors = self._errors(response)
            if is_duplicate(errors):
                raise DuplicateOrder(f"Big Block already has order {body.get('order_number')}")
            raise RemoteError(f"Big Block refused order {body.get('order_number')}: {_describe(errors)}")
        created = self.http.decode(response)
        if not isinstance(created, dict) or created.get("id") in (None, ""):
            raise ProtocolError(f"POST {self.http.describe(self.orders_url)}: the answer has no order id")
        return created

    def get(self, order_id: str) -> dict[str, Any] | None:
        """One order, or None when Big Block no longer has it."""
        url = f"{self.orders_url}{order_id}/"
        response = self.http.request("GET", url, headers=self.headers)
        if response.status_code == 404:
            return None
        order = self.http.decode(response)
        if not isinstance(order, dict):
            raise ProtocolError(f"GET {self.http.describe(url)}: not an order")
        return order

    def delete(self, order_id: str) -> bool:
        """Delete one order; False when it was already gone (a retried DELETE lands here too)."""
        url = f"{self.orders_url}{order_id}/"
        response = self.http.request("DELETE", url, headers=self.headers)
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            self.http.decode(response)  # raises the typed error with Big Block's reason
        return True

    def _get_json(self, url: str) -> Any:
        return self.http.get_json(url, headers=self.headers)

    def _errors(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return " ".join(response.text[:200].split()) or "(empty body)"


def _messages(errors: Any) -> list[str]:
    """Every message in a DRF error body, flattened: ``{"field": ["msg"]}``, nested for items."""
    if isinstance(errors, str):
        return [errors]
    if isinstance(errors, list):
        return [message for value in errors for message in _messages(value)]
    if isinstance(errors, dict):
        return [f"{key}: {message}" if key not in ("non_field_errors", "detail") else message
                for key, value in errors.items() for message in _messages(value)]
    return [str(errors)]


def _describe(errors: Any) -> str:
    return "; ".join(_messages(errors))[:300]


def is_duplicate(errors: Any) -> bool:
    """DRF says so as ``unique_together`` (non_field_errors) or as a unique field error."""
    for message in _messages(errors):
        text = message.lower()
        if "order_number" in text and ("unique" in text or "already exists" in text):
            return True
    return False
