"""The Valerdat purchase-order API (``/valerdat/api/``) over the sandbox's truth orders.

Routes: ``POST api/auth/token/``, ``GET api/purchase-orders/ids/`` and ``GET api/purchase-orders/<uuid>/``
as /work/shared/reference/valerdat.md describes them; errors are Django REST framework's
``{"detail": ...}``. Shapes are in ``synclet.sandbox.valerdat_render``.

What tests control: a token lives ``token_lifetime`` seconds on ``clock`` (injectable, so expiry
needs no sleep) and ``expire_tokens()`` revokes every token at once; ``rate_limit`` requests per
second per token (None: no limit) answers 429 with ``Retry-After``. Orders in ``Store.deleted``
stay in the ids pages (a stale index, the reference's race made repeatable) but 404 on detail.
"""
from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from synclet.sandbox.data import Store
from synclet.sandbox.model import Order
from synclet.sandbox.onesaas import parse_time
from synclet.sandbox.valerdat_render import order_uuid, render_order, updated_time

PREFIX = "/valerdat"
DEFAULT_CUSTOMER = "sandbox"
DEFAULT_USERNAME = "synclet"
DEFAULT_PASSWORD = "sandbox-password"
DEFAULT_TOKEN_LIFETIME = 3600
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
Response = tuple[int, bytes, str, dict[str, str]]  # as control.Response: status, body, type, headers
NOT_FOUND = "Not found."
Row = tuple[datetime, str, Order]  # (updated_at, uuid, order): the ids listing's sort key and order


class ApiError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return status, json.dumps(payload).encode("utf-8"), "application/json", headers or {}


class ValerdatApi:
    """Answers requests under ``/valerdat/``; the (updated_at, uuid)-sorted rows and the uuid index
    are cached per store version, so paging a large store sorts it once per change."""

    def __init__(self, store: Store, customer: str = DEFAULT_CUSTOMER, username: str = DEFAULT_USERNAME,
                 password: str = DEFAULT_PASSWORD, *, token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
                 rate_limit: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.credentials = {"customer": customer, "username": username, "password": password}
        self.token_lifetime = token_lifetime
        self.rate_limit = rate_limit
        self.clock = clock
        self.lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token -> expiry on ``clock``
        self.hits: dict[str, deque[float]] = {}  # token -> its request times in the last second
        self._rows: tuple[int, list[Row], dict[str, Order]] | None = None
        self._rendered: dict[str, bytes] = {}
        self._rendered_version = -1

    def prerender(self) -> None:
        """Make every order's detail now: until the store changes, details are served from it, as a
        benchmark needs (a real server renders on its own machine, not on the cores measured)."""
        with self.store.lock:
            _, orders = self._index()
            self._rendered = {uuid: _json(200, render_order(order, self.store.seed))[1] for uuid, order in orders.items()}
            self._rendered_version = self.store.version

    def answer(self, method: str, path: str, params: Mapping[str, str], authorization: str | None,
               body: bytes = b"", host: str | None = None) -> Response:
        """The response to one request whose path starts with ``/valerdat/``."""
        try:
            return self._route(method, path, params, authorization, body, host)
        except ApiError as error:
            return _json(error.status, {"detail": error.detail}, error.headers)

    def expire_tokens(self) -> int:
        """Revoke every token issued so far (a client must log in again); returns how many."""
        with self.lock:
            count, self.tokens = len(self.tokens), {}
            self.hits.clear()
            return count

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change ``token_lifetime`` (seconds) and ``rate_limit`` (per second, null: off); returns both."""
        unknown = set(changes) - {"token_lifetime", "rate_limit"}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        for name, value in changes.items():
            if (value is None and name == "token_lifetime") or (value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or value < 1)):
                raise ValueError(f"{name} must be a positive integer" + (" or null" if name == "rate_limit" else ""))
        with self.lock:
            self.token_lifetime = changes.get("token_lifetime", self.token_lifetime)
            self.rate_limit = changes.get("rate_limit", self.rate_limit)
            return {"token_lifetime": self.token_lifetime, "rate_limit": self.rate_limit}

    def _route(self, method: str, path: str, params: Mapping[str, str], authorization: str | None,
               body: bytes, host: str | None) -> Response:
        parts = path[len(PREFIX):].strip("/").split("/")
        if parts[:1] != ["api"] or len(parts) < 3 or len(parts) > 4:
            raise ApiError(404, NOT_FOUND)
        if parts[1:] == ["auth", "token"]:
            if method != "POST":
                raise ApiError(405, f'Method "{method}" not allowed.')
            return _json(200, self._login(body))
        if parts[1] != "purchase-orders" or len(parts) != 3:
            raise ApiError(404, NOT_FOUND)
        if method != "GET":
            raise ApiError(405, f'Method "{method}" not allowed.')
        self._admit(authorization)
        if parts[2] == "ids":
            return _json(200, self._ids(path, params, host))
        detail = self._detail(parts[2].lower())
        return (200, detail, "application/json", {}) if isinstance(detail, bytes) else _json(200, detail)

    def _login(self, body: bytes) -> dict[str, Any]:
        try:
            given = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "JSON parse error.") from None
        if not isinstance(given, dict) or any(not given.get(name) for name in self.credentials):
            raise ApiError(400, "customer, username and password are required.")
        if any(str(given[name]) != value for name, value in self.credentials.items()):
            raise ApiError(401, "Invalid credentials.")
        token = secrets.token_hex(20)
        with self.lock:
            self.tokens[token] = self.clock() + self.token_lifetime
            return {"token": token, "expires_in": self.token_lifetime}

    def _admit(self, authorization: str | None) -> None:
        """Authenticate the request's token, then count it against the token's rate limit."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        challenge = {"WWW-Authenticate": "Token"}
        if scheme.lower() != "token" or not token.strip():
            raise ApiError(401, "Authentication credentials were not provided.", challenge)
        token, now = token.strip(), self.clock()
        with self.lock:
            expiry = self.tokens.get(token)
            if expiry is None:
                raise ApiError(401, "Invalid token.", challenge)
            if now >= expiry:
                del self.tokens[token]
                raise ApiError(401, "Token has expired.", challenge)
            if self.rate_limit is None:
                return
            hits = self.hits.setdefault(token, deque())
            while hits and hits[0] <= now - 1:
                hits.popleft()
            if len(hits) >= self.rate_limit:
                wait = max(1, math.ceil(hits[0] + 1 - now))
                raise ApiError(429, f"Request was throttled. Expected available in {wait} seconds.",
                               {"Retry-After": str(wait)})
            hits.append(now)

    def _ids(self, path: str, params: Mapping[str, str], host: str | None) -> dict[str, Any]:
        since = None
        if params.get("updated_since"):
            since = parse_time(params["updated_since"])
            if since is None:
                raise ApiError(400, "updated_since: enter a valid ISO 8601 date and time.")
        page = _positive(params.get("page", "1"), 0)
        size = min(_positive(params.get("page_size"), DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        with self.store.lock:
            rows, _ = self._index()
            matching = [row for row in rows if since is None or row[0] >= since]
            pages = max(1, math.ceil(len(matching) / size))
            if not 1 <= page <= pages:
                raise ApiError(404, "Invalid page.")
            chunk = matching[(page - 1) * size: page * size]
            results = [{"uuid": uuid, "updated_at": updated_time(order)} for _, uuid, order in chunk]

        def link(number: int) -> str:
            return f"http://{host or '127.0.0.1'}{path}?{urlencode({**params, 'page': number})}"

        return {"count": len(matching), "next": link(page + 1) if page < pages else None,
                "previous": link(page - 1) if page > 1 else None, "results": results}

    def _detail(self, uuid: str) -> dict[str, Any] | bytes:
        """The order's detail; its JSON text when it was prerendered at the store's version."""
        with self.store.lock:
            order = self._index()[1].get(uuid)
            if order is None or order.entity_id in self.store.deleted:
                raise ApiError(404, NOT_FOUND)
            if self._rendered_version == self.store.version and uuid in self._rendered:
                return self._rendered[uuid]
            return render_order(order, self.store.seed)

    def _index(self) -> tuple[list[Row], dict[str, Order]]:
        """Rows sorted by (updated_at, uuid) and orders by uuid; call with the store locked."""
        version = self.store.version
        cached = self._rows
        if cached is None or cached[0] != version or len(cached[2]) != len(self.store.orders):
            seed = self.store.seed
            rows = sorted((order.updated_at, order_uuid(seed, order.entity_id), order) for order in self.store.orders)
            cached = self._rows = (version, rows, {uuid: order for _, uuid, order in rows})
        return cached[1], cached[2]


def _positive(text: str | None, default: int) -> int:
    """An integer query parameter; DRF ignores a page_size it cannot read, as this does."""
    try:
        value = int(text) if text is not None else default
    except ValueError:
        return default
    return value if value >= 1 else default
