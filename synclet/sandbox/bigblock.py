"""The Big Block Orders API (``/bigblock/api/``): the warehouse destination synclet pushes orders to.

Routes ``GET|POST api/orders/`` and ``GET|DELETE api/orders/{id}/`` as
/work/shared/reference/bigblock.md describes them. Where the reference is silent this does what a
Django REST framework app does: ``{"detail": ...}`` errors, field errors as ``{"field": ["message"]}``
(nested per shipment and item), PageNumberPagination (or a bare array with ``paginated`` off), and
its order of checks: route, then API key, then throttle, then method, then the view.

Orders live here alone, apart from the shop's generated ones. Every request that reaches the API is
logged (``received``) so a test can assert exactly what a client created or deleted; ``pick`` starts
picking an order, as the warehouse floor would.
"""
from __future__ import annotations

import copy
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

PREFIX = "/bigblock/api"
DEFAULT_API_KEY = "sandbox-bigblock-key"
DEFAULT_PAGE_SIZE = 10
NUMBER_MAX_LENGTH = 100
Response = tuple[int, bytes, str, dict[str, str]]  # as control.Response: status, body, type, headers
NOT_FOUND = "Not found."
REQUIRED = "This field is required."
UNIQUE = "The fields order_number, voodoo_customer must make a unique set."
CHALLENGE = {"WWW-Authenticate": "API-KEY"}  # DRF answers 401 (not 403) only with a challenge
_ROUTE = re.compile(r"^/bigblock/api/orders/(?:(?P<id>[^/.]+)/)?$")
_DECIMAL_TAIL = re.compile(r"\.0*\s*$")  # DRF's IntegerField reads "5.0" and 5.0 as 5


class ApiError(Exception):
    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers or {}


class Invalid(Exception):
    """A value's errors as DRF reports them: a list of messages, or a dict/list nesting them."""

    def __init__(self, errors: Any) -> None:
        super().__init__(errors)
        self.errors = errors


Check = Callable[[Mapping[str, Any], str], Any]  # (object, field name) -> clean value, or raise Invalid


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return status, json.dumps(payload).encode("utf-8"), "application/json", headers or {}


class BigBlockApi:
    """Answers requests under ``/bigblock/``; one lock guards the orders, the log and the settings.
    ``rate_limit`` is requests a second (None: off), counted on ``clock`` so tests need no sleep."""

    def __init__(self, api_key: str = DEFAULT_API_KEY, *, page_size: int = DEFAULT_PAGE_SIZE,
                 paginated: bool = True, rate_limit: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api_key = api_key
        self.page_size = page_size
        self.paginated = paginated
        self.rate_limit = rate_limit
        self.clock = clock
        self.lock = threading.Lock()
        self.held: dict[int, dict[str, Any]] = {}  # id -> order, in id order
        self.numbers: dict[str, int] = {}  # order_number -> id, the unique constraint
        self.log: list[dict[str, Any]] = []
        self.hits: deque[float] = deque()  # admitted request times in the last second
        self._last_id = {"order": 0, "shipment": 0, "item": 0}  # never reused, like autoincrement

    def answer(self, method: str, path: str, params: Mapping[str, str], api_key: str | None,
               body: bytes = b"", host: str | None = None) -> Response:
        """The response to one request whose path starts with ``/bigblock/``; logged in ``received``."""
        try:
            response = self._route(method, path, params, api_key, body, host)
        except ApiError as error:
            response = _json(error.status, error.payload, error.headers)
        posted = _parse_or_none(body) if method == "POST" else None
        with self.lock:
            self.log.append({"method": method, "path": path, "status": response[0], "body": posted})
        return response

    def orders(self) -> list[dict[str, Any]]:
        """Every order held, in id order, as the API renders them."""
        with self.lock:
            return copy.deepcopy(list(self.held.values()))

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.log)

    def clear(self) -> dict[str, int]:
        """Forget every order and the received log (ids keep counting up); returns how many of each."""
        with self.lock:
            counts = {"orders": len(self.held), "received": len(self.log)}
            self.held, self.numbers, self.log = {}, {}, []
            return counts

    def pick(self, order_number: str, quantity: int = 1) -> dict[str, Any]:
        """Set the first item's ``quantity_fulfilled``, as when picking starts; KeyError if no such order."""
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValueError("quantity must be an integer >= 0")
        with self.lock:
            if order_number not in self.numbers:
                raise KeyError(f"no Big Block order numbered {order_number!r}")
            order = self.held[self.numbers[order_number]]
            items = [item for shipment in order["shipments"] for item in shipment["items"]]
            if not items:
                raise ValueError(f"order {order_number!r} has no items to pick")
            items[0]["quantity_fulfilled"] = quantity
            return copy.deepcopy(order)

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change ``page_size``, ``paginated`` and ``rate_limit`` (validated first); returns all three."""
        unknown = set(changes) - {"page_size", "paginated", "rate_limit"}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        if "paginated" in changes and not isinstance(changes["paginated"], bool):
            raise ValueError("paginated must be true or false")
        for name in ("page_size", "rate_limit"):
            value = changes.get(name, 1)
            if (value is None and name == "page_size") or (value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1)):
                raise ValueError(f"{name} must be a positive integer" + (" or null" if name == "rate_limit" else ""))
        with self.lock:
            self.page_size = changes.get("page_size", self.page_size)
            self.paginated = changes.get("paginated", self.paginated)
            self.rate_limit = changes.get("rate_limit", self.rate_limit)
            return {"page_size": self.page_size, "paginated": self.paginated, "rate_limit": self.rate_limit}

    def _route(self, method: str, path: str, params: Mapping[str, str], api_key: str | None, body: bytes,
               host: str | None) -> Response:
        match = _ROUTE.match(path)
        if match is None:
            raise ApiError(404, {"detail": NOT_FOUND})
        self._admit(api_key)
        allowed = ("GET", "POST") if match["id"] is None else ("GET", "DELETE")
        if method not in allowed:
            raise ApiError(405, {"detail": f'Method "{method}" not allowed.'}, {"Allow": ", ".join(allowed)})
        if match["id"] is not None:
            return self._one(method, match["id"])
        if method == "POST":
            return self._create(body)
        return self._list(path, params, host)

    def _admit(self, api_key: str | None) -> None:
        """Authenticate the key, then count the request against the rate limit (DRF's order)."""
        if not api_key:
            raise ApiError(401, {"detail": "Authentication credentials were not provided."}, CHALLENGE)
        if api_key != self.api_key:
            raise ApiError(401, {"detail": "Invalid API key."}, CHALLENGE)
        now = self.clock()
        with self.lock:
            if self.rate_limit is None:
                return
            while self.hits and self.hits[0] <= now - 1:
                self.hits.popleft()
            if len(self.hits) >= self.rate_limit:
                wait = max(1, math.ceil(self.hits[0] + 1 - now))
                raise ApiError(429, {"detail": f"Request was throttled. Expected available in {wait} seconds."},
                               {"Retry-After": str(wait)})
            self.hits.append(now)

    def _list(self, path: str, params: Mapping[str, str], host: str | None) -> Response:
        with self.lock:
            if not self.paginated:
                return _json(200, list(self.held.values()))
            orders, size = list(self.held.values()), self.page_size
            pages = max(1, math.ceil(len(orders) / size))  # an empty first page is still a page
            page = _page_number(params.get("page", "1"), pages)
            results = orders[(page - 1) * size: page * size]
            base = f"http://{host or '127.0.0.1'}{path}"
            return _json(200, {"count": len(orders), "next": _link(base, params, page + 1) if page < pages else None,
                               "previous": _link(base, params, page - 1) if page > 1 else None,
                               "results": results})

    def _one(self, method: str, raw_id: str) -> Response:
        try:
            order_id = int(raw_id)
        except ValueError:
            raise ApiError(404, {"detail": NOT_FOUND}) from None
        with self.lock:
            order = self.held.get(order_id)
            if order is None:
                raise ApiError(404, {"detail": NOT_FOUND})
            if method == "GET":
                return _json(200, order)
            del self.held[order_id], self.numbers[order["order_number"]]
            return 204, b"", "", {}  # DRF sends no Content-Type with an empty body

    def _create(self, body: bytes) -> Response:
        try:
            data = _parse(body) if body.strip() else {}
        except ValueError as error:
            raise ApiError(400, {"detail": f"JSON parse error - {error}"}) from None
        try:
            fields = parse_order(data)
        except Invalid as invalid:
            raise ApiError(400, invalid.errors) from None
        with self.lock:
            if fields["order_number"] in self.numbers:
                raise ApiError(400, {"non_field_errors": [UNIQUE]})
            order = self._stored(fields)
            return _json(201, order)

    def _stored(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Give the validated order and its parts ids and keep it; call with the lock held."""
        shipments = [{"id": self._next_id("shipment"), "shipment_number": shipment["shipment_number"],
                      "items": [{"id": self._next_id("item"), **item} for item in shipment["items"]]}
                     for shipment in fields["shipments"]]
        order = {"id": self._next_id("order"), "order_number": fields["order_number"], "shipments": shipments,
                 "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")}
        self.held[order["id"]] = order
        self.numbers[order["order_number"]] = order["id"]
        return order

    def _next_id(self, kind: str) -> int:
        self._last_id[kind] += 1
        return self._last_id[kind]


def _page_number(text: str, pages: int) -> int:
    """Django's Paginator: a whole number within the pages, or ``last``; anything else is 404."""
    if text == "last":
        return pages
    try:
        page = int(text)
    except ValueError:
        page = 0
    if not 1 <= page <= pages:
        raise ApiError(404, {"detail": "Invalid page."})
    return page


def _link(base: str, params: Mapping[str, str], page: int) -> str:
    """DRF's page link: the request's query with ``page`` replaced (dropped for page 1), sorted."""
    query = {name: value for name, value in params.items() if name != "page"} | ({"page": str(page)} if page > 1 else {})
    return f"{base}?{urlencode(sorted(query.items()))}" if query else base


def _parse(body: bytes) -> Any:
    """JSON as DRF's strict parser reads it: UTF-8, and no NaN or Infinity."""
    def refuse(constant: str) -> Any:
        raise ValueError(f"Out of range float values are not JSON compliant: {constant!r}")

    return json.loads(body.decode("utf-8"), parse_constant=refuse)


def _parse_or_none(body: bytes) -> Any:
    try:
        return _parse(body) if body.strip() else None
    except ValueError:
        return None


# --- validation: DRF's serializer rules and messages -----------------------------------------------

def parse_order(data: Any) -> dict[str, Any]:
    """``{"order_number", "shipments"}`` from a POST body, or Invalid with DRF's error document.
    Top-level ``items`` (used only when ``shipments`` is absent) become one shipment named after the order."""
    checks: dict[str, Check] = {"order_number": _text(blank=False, max_length=NUMBER_MAX_LENGTH)}
    if isinstance(data, dict) and "shipments" not in data and "items" in data:
        order = _validate(data, checks | {"items": _many(_item)})
        return {"order_number": order["order_number"],
                "shipments": [{"shipment_number": order["order_number"], "items": order["items"]}]}
    return _validate(data, checks | {"shipments": _many(_shipment)})


def _validate(data: Any, checks: dict[str, Check]) -> dict[str, Any]:
    """Run every field's check and report all fields' errors at once, as a serializer does."""
    if not isinstance(data, dict):
        raise Invalid({"non_field_errors": [f"Invalid data. Expected a dictionary, but got {type(data).__name__}."]})
    clean, errors = {}, {}
    for name, check in checks.items():
        try:
            clean[name] = check(data, name)
        except Invalid as invalid:
            errors[name] = invalid.errors
    if errors:
        raise Invalid(errors)
    return clean


def _present(data: Mapping[str, Any], name: str) -> Any:
    if name not in data:
        raise Invalid([REQUIRED])
    if data[name] is None:
        raise Invalid(["This field may not be null."])
    return data[name]


def _text(blank: bool, max_length: int | None = None) -> Check:
    """A CharField: numbers become text, whitespace is trimmed, blank only where allowed."""
    def check(data: Mapping[str, Any], name: str) -> str:
        value = _present(data, name)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid(["Not a valid string."])
        text = str(value).strip()
        if not text and not blank:
            raise Invalid(["This field may not be blank."])
        if max_length is not None and len(text) > max_length:
            raise Invalid([f"Ensure this field has no more than {max_length} characters."])
        return text
    return check


def _count(minimum: int) -> Check:
    """An IntegerField with ``min_value``: integers, digit strings and whole floats; never 1.5 or true."""
    def check(data: Mapping[str, Any], name: str) -> int:
        value = _present(data, name)
        if isinstance(value, str) and len(value) > 1000:
            raise Invalid(["String value too large."])
        try:
            number = int(_DECIMAL_TAIL.sub("", str(value)))  # str(True) is "True": refused, as in DRF
        except ValueError:
            raise Invalid(["A valid integer is required."]) from None
        if number < minimum:
            raise Invalid([f"Ensure this value is greater than or equal to {minimum}."])
        return number
    return check


def _optional(data: Mapping[str, Any], name: str) -> Any:
    return data.get(name)


def _many(element: Callable[[Any], dict[str, Any]]) -> Check:
    """A nested list: errors come back one entry per element, ``{}`` for the valid ones."""
    def check(data: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
        value = _present(data, name)
        if not isinstance(value, list):
            raise Invalid({"non_field_errors": [f'Expected a list of items but got type "{type(value).__name__}".']})
        clean, errors = [], []
        for entry in value:
            try:
                clean.append(element(entry))
                errors.append({})
            except Invalid as invalid:
                errors.append(invalid.errors)
        if any(errors):
            raise Invalid(errors)
        return clean
    return check


ITEM_CHECKS: dict[str, Check] = {
    "name": _text(blank=False), "description": _text(blank=True), "SKU": _text(blank=False),
    "UPC": _text(blank=True), "ordered_quantity": _count(1), "quantity_fulfilled": _count(0),
    "warehouse_location": _text(blank=True), "device": _optional,
}


def _item(data: Any) -> dict[str, Any]:
    return _validate(data, ITEM_CHECKS)


def _shipment(data: Any) -> dict[str, Any]:
    return _validate(data, {"shipment_number": _text(blank=False, max_length=NUMBER_MAX_LENGTH),
                            "items": _many(_item)})
