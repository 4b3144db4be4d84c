"""What every request thread shares: the store, the APIs, the armed faults, the counters, and the
``/_sandbox/`` control API.

Control endpoints (JSON bodies; errors are 400/404 with an ``error`` key):
``GET /_sandbox/truth[?view=onesaas|rest]``, ``GET /_sandbox/stats``, ``POST /_sandbox/update``
``{"ids"|"count", "updated_at"}``, ``POST /_sandbox/add`` ``{"count", "created_at"}``,
``POST|GET|DELETE /_sandbox/faults``, ``POST|GET|DELETE /_sandbox/rest_broken`` (``{"ids": [..]}``
replaces the set of orders REST cannot load), ``POST|GET|DELETE /_sandbox/deleted`` (likewise, the
orders deleted at the source), ``GET|POST /_sandbox/settings`` (``{"credit_bumps_order": bool,
"rest_max_page_size": int | null}``), ``POST /_sandbox/valerdat/expire_tokens`` and
``GET|POST /_sandbox/valerdat/settings`` (``{"token_lifetime": int, "rate_limit": int | null}``).
Big Block (``synclet.sandbox.bigblock``): ``GET|DELETE /_sandbox/bigblock/orders`` (every order held;
DELETE forgets them and the received log), ``GET /_sandbox/bigblock/locations.csv`` (a
``BIGBLOCK_LOCATIONS_CSV`` for every product the shop sells), ``GET /_sandbox/bigblock/received`` (every request the
API answered: ``[{"method", "path", "status", "body"}]``), ``POST /_sandbox/bigblock/pick``
(``{"order_number": str, "quantity": int}``) and ``GET|POST /_sandbox/bigblock/settings``
(``{"page_size": int, "paginated": bool, "rate_limit": int | null}``).
"""
from __future__ import annotations

import json
import threading
from collections import Counter, deque
from datetime import datetime
from typing import Any

from synclet.sandbox import bigblock, onesaas, rest, valerdat
from synclet.sandbox.data import Store
from synclet.sandbox.faults import Fault

CONTROL_PREFIX = "/_sandbox/"
Response = tuple[int, bytes, str, dict[str, str]]  # status, body, content type, extra headers


def json_response(status: int, payload: Any) -> Response:
    return status, json.dumps(payload).encode("utf-8"), "application/json", {}


class Controller:
    """Routes API requests to OneSaas, REST, Valerdat or Big Block and counts them (faults cover all alike)."""

    def __init__(self, store: Store, access_key: str, rest_token: str,
                 rest_max_page_size: int | None = rest.DEFAULT_MAX_PAGE_SIZE,
                 valerdat_api: valerdat.ValerdatApi | None = None,
                 bigblock_api: bigblock.BigBlockApi | None = None) -> None:
        self.store = store
        self.onesaas = onesaas.OneSaasApi(store, access_key)
        self.rest = rest.RestApi(store, rest_token, rest_max_page_size)
        self.valerdat = valerdat_api or valerdat.ValerdatApi(store)
        self.bigblock = bigblock_api or bigblock.BigBlockApi()
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.requests = 0
        self.control_requests = 0
        self.faults_served = 0
        self.paths: Counter[str] = Counter()
        self.recent: deque[dict[str, Any]] = deque(maxlen=100)

    def count_api_request(self, method: str, path: str, params: dict[str, str]) -> Fault | None:
        """Number this API request and return the armed fault that covers it, if any."""
        with self.lock:
            self.requests += 1
            self.paths[path] += 1
            self.recent.append({"method": method, "path": path, "params": params})
            fault = next((f for f in self.faults if f.covers(self.requests)), None)
            self.faults = [f for f in self.faults if not f.spent(self.requests)]
            if fault:
                self.faults_served += 1
            return fault

    def arm(self, spec: dict[str, Any]) -> Fault:
        with self.lock:
            fault = Fault.from_spec(spec, armed_at=self.requests)
            self.faults.append(fault)
            return fault

    def clear_faults(self) -> int:
        with self.lock:
            cleared, self.faults = len(self.faults), []
            return cleared

    def stats(self) -> dict[str, Any]:
        with self.lock:
            counters = {"requests": self.requests, "control_requests": self.control_requests,
                        "faults_served": self.faults_served, "faults_armed": len(self.faults),
                        "paths": dict(self.paths), "recent": list(self.recent)}
        return {**counters, **self.store.describe()}

    def set_rest_broken(self, ids: Any) -> list[int]:
        """Replace the orders REST cannot load; every id must exist."""
        return self._replace_ids("rest_broken", ids)

    def set_deleted(self, ids: Any) -> list[int]:
        """Replace the orders deleted at the source; every id must exist."""
        return self._replace_ids("deleted", ids)

    def _replace_ids(self, name: str, ids: Any) -> list[int]:
        if not isinstance(ids, list):
            raise TypeError("ids must be a list of order ids")
        wanted = {int(i) for i in ids}
        with self.store.lock:
            missing = sorted(wanted - self.store.by_id.keys())
            if missing:
                raise KeyError(f"no such order: {missing}")
            setattr(self.store, name, wanted)
        return sorted(wanted)

    def settings(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply ``changes`` (validated first) and return the current settings."""
        unknown = set(changes) - {"credit_bumps_order", "rest_max_page_size"}
        if unknown:
            raise ValueError(f"unknown settings: {sorted(unknown)}")
        if "credit_bumps_order" in changes and not isinstance(changes["credit_bumps_order"], bool):
            raise ValueError("credit_bumps_order must be true or false")
        cap = changes.get("rest_max_page_size", self.rest.max_page_size)
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError("rest_max_page_size must be a positive integer or null")
        with self.store.lock:
            self.store.credit_bumps_order = changes.get("credit_bumps_order", self.store.credit_bumps_order)
            self.rest.max_page_size = cap
            return {"credit_bumps_order": self.store.credit_bumps_order, "rest_max_page_size": cap}

    def api(self, method: str, path: str, params: dict[str, str], authorization: str | None = None,
            body: bytes = b"", host: str | None = None, *, api_key: str | None = None) -> Response:
        """``api_key`` is the request's ``API-KEY`` header, which only Big Block reads."""
        if path.startswith("/bigblock/"):
            return self.bigblock.answer(method, path, params, api_key, body, host)
        if path == valerdat.PREFIX or path.startswith(valerdat.PREFIX + "/"):
            return self.valerdat.answer(method, path, params, authorization, body, host)
        if path.startswith("/rest/"):
            status, answer = self.rest.answer(method, path, params, authorization)
            return (status, answer, "application/json", {}) if isinstance(answer, bytes) else json_response(status, answer)
        if method != "GET":
            return json_response(405, {"error": f"{method} not allowed"})
        if path.rstrip("/") == onesaas.PATH:
            return 200, self.onesaas.answer(params), "application/json", {}
        if path == "/":
            return json_response(200, {"name": "synclet sandbox", "onesaas": onesaas.PATH, "rest": rest.BASE_PATH,
                                       "valerdat": valerdat.PREFIX + "/api/", "bigblock": bigblock.PREFIX + "/"})
        return json_response(404, {"error": f"no such path: {path}"})

    def control(self, method: str, path: str, body: dict[str, Any], params: dict[str, str] | None = None) -> Response:
        """The ``/_sandbox/`` endpoints; errors are 400/404 JSON with an ``error`` key."""
        with self.lock:
            self.control_requests += 1
        route = (method, path[len(CONTROL_PREFIX):].strip("/"))
        try:
            return self._control(route, body, params or {})
        except KeyError as exc:
            return json_response(404, {"error": str(exc.args[0]) if exc.args else "not found"})
        except (TypeError, ValueError) as exc:
            return json_response(400, {"error": str(exc)})

    def _control(self, route: tuple[str, str], body: dict[str, Any], params: dict[str, str]) -> Response:
        if route[1].startswith("bigblock/"):
            return self._bigblock_control(route, body)
        if route == ("GET", "truth"):
            return json_response(200, self.store.truth(params.get("view") or "onesaas"))
        if route == ("GET", "stats"):
            return json_response(200, self.stats())
        if route == ("POST", "update"):
            ids = self.store.update(ids=body.get("ids"), count=body.get("count"),
                                    updated_at=_time_field(body, "updated_at"))
            return json_response(200, {"ids": ids})
        if route == ("POST", "add"):
            ids = self.store.add(int(body.get("count", 1)), created_at=_time_field(body, "created_at"))
            return json_response(200, {"ids": ids})
        if route == ("POST", "faults"):
            return json_response(200, {"fault": self.arm(body).to_json()})
        if route == ("GET", "faults"):
            with self.lock:
                return json_response(200, {"faults": [f.to_json() for f in self.faults]})
        if route == ("DELETE", "faults"):
            return json_response(200, {"cleared": self.clear_faults()})
        if route[1] in ("rest_broken", "deleted") and route[0] in ("POST", "DELETE"):
            ids = body.get("ids") if route[0] == "POST" else []
            return json_response(200, {"ids": self._replace_ids(route[1], ids)})
        if route in (("GET", "rest_broken"), ("GET", "deleted")):
            with self.store.lock:
                return json_response(200, {"ids": sorted(getattr(self.store, route[1]))})
        if route == ("POST", "valerdat/expire_tokens"):
            return json_response(200, {"expired": self.valerdat.expire_tokens()})
        if route[1] == "valerdat/settings" and route[0] in ("GET", "POST"):
            return json_response(200, self.valerdat.configure(body if route[0] == "POST" else {}))
        if route[1] == "settings" and route[0] in ("GET", "POST"):
            return json_response(200, self.settings(body if route[0] == "POST" else {}))
        return _no_endpoint(route)

    def _bigblock_control(self, route: tuple[str, str], body: dict[str, Any]) -> Response:
        if route == ("GET", "bigblock/orders"):
            return json_response(200, self.bigblock.orders())
        if route == ("DELETE", "bigblock/orders"):
            return json_response(200, self.bigblock.clear())
        if route == ("GET", "bigblock/received"):
            return json_response(200, self.bigblock.received())
        if route == ("GET", "bigblock/locations.csv"):
            return 200, self.store.locations_csv().encode("utf-8"), "text/csv; charset=utf-8", {}
        if route == ("POST", "bigblock/pick"):
            if not isinstance(body.get("order_number"), str):
                raise ValueError("order_number must be a string")
            return json_response(200, self.bigblock.pick(body["order_number"], body.get("quantity", 1)))
        if route[1] == "bigblock/settings" and route[0] in ("GET", "POST"):
            return json_response(200, self.bigblock.configure(body if route[0] == "POST" else {}))
        return _no_endpoint(route)


def _no_endpoint(route: tuple[str, str]) -> Response:
    return json_response(404, {"error": f"no such control endpoint: {route[0]} {CONTROL_PREFIX}{route[1]}"})


def _time_field(body: dict[str, Any], name: str) -> datetime | None:
    if body.get(name) is None:
        return None
    value = onesaas.parse_time(str(body[name]))
    if value is None:
        raise ValueError(f"{name}: cannot read {body[name]!r} as a time")
    return value
