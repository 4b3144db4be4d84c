"""The sandbox over real HTTP: routing, the ``/_sandbox/`` control API, and fault injection.

``Sandbox`` runs in a daemon thread for tests (``with Sandbox(orders=2000, seed=7) as sb:``);
``serve_forever`` runs it in the foreground for ``python synclet.py sandbox``. Control endpoints:
``GET /_sandbox/truth``, ``POST /_sandbox/update`` and ``/_sandbox/add``, ``POST|GET|DELETE
/_sandbox/faults`` and ``GET /_sandbox/stats``; the same operations are methods on ``Sandbox``.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from synclet.sandbox import onesaas
from synclet.sandbox.data import Store
from synclet.sandbox.faults import Fault
from synclet.sandbox.model import fmt_time

CONTROL_PREFIX = "/_sandbox/"
DEFAULT_ACCESS_KEY = "sandbox-access-key"
DEFAULT_PORT = 8765
Response = tuple[int, bytes, str, dict[str, str]]  # status, body, content type, extra headers


def _json(status: int, payload: Any) -> Response:
    return status, json.dumps(payload).encode("utf-8"), "application/json", {}


class Controller:
    """What every request thread shares: the store, the APIs, the armed faults and the counters."""

    def __init__(self, store: Store, access_key: str) -> None:
        self.store = store
        self.onesaas = onesaas.OneSaasApi(store, access_key)
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

    def api(self, method: str, path: str, params: dict[str, str]) -> Response:
        if method != "GET":
            return _json(405, {"error": f"{method} not allowed"})
        if path.rstrip("/") == onesaas.PATH:
            return _json(200, self.onesaas.answer(params))
        if path == "/":
            return _json(200, {"name": "synclet sandbox", "onesaas": onesaas.PATH})
        return _json(404, {"error": f"no such path: {path}"})

    def control(self, method: str, path: str, body: dict[str, Any]) -> Response:
        """The ``/_sandbox/`` endpoints; errors are 400/404 JSON with an ``error`` key."""
        with self.lock:
            self.control_requests += 1
        route = (method, path[len(CONTROL_PREFIX):].strip("/"))
        try:
            if route == ("GET", "truth"):
                return _json(200, self.store.truth())
            if route == ("GET", "stats"):
                return _json(200, self.stats())
            if route == ("POST", "update"):
                ids = self.store.update(ids=body.get("ids"), count=body.get("count"),
                                        updated_at=_time_field(body, "updated_at"))
                return _json(200, {"ids": ids})
            if route == ("POST", "add"):
                ids = self.store.add(int(body.get("count", 1)), created_at=_time_field(body, "created_at"))
                return _json(200, {"ids": ids})
            if route == ("POST", "faults"):
                return _json(200, {"fault": self.arm(body).to_json()})
            if route == ("GET", "faults"):
                with self.lock:
                    return _json(200, {"faults": [f.to_json() for f in self.faults]})
            if route == ("DELETE", "faults"):
                return _json(200, {"cleared": self.clear_faults()})
        except KeyError as exc:
            return _json(404, {"error": str(exc.args[0]) if exc.args else "not found"})
        except (TypeError, ValueError) as exc:
            return _json(400, {"error": str(exc)})
        return _json(404, {"error": f"no such control endpoint: {method} {path}"})


def _time_field(body: dict[str, Any], name: str) -> datetime | None:
    if body.get(name) is None:
        return None
    value = onesaas.parse_time(str(body[name]))
    if value is None:
        raise ValueError(f"{name}: cannot read {body[name]!r} as a time")
    return value


class _Handler(BaseHTTPRequestHandler):
    """One request: control endpoints go straight through; API requests meet the armed faults."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as a real shop behind nginx would
    server_version = "synclet-sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark's thousands of requests must not flood stderr."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        controller = self.server.controller
        url = urlsplit(self.path)
        try:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if url.path.startswith(CONTROL_PREFIX):
                try:
                    body = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    self._send(_json(400, {"error": "the body must be a JSON object"}))
                    return
                self._send(controller.control(method, url.path, body))
                return
            params = dict(parse_qsl(url.query, keep_blank_values=True))  # last value wins, as in PHP
            fault = controller.count_api_request(method, url.path, params)
            self._send_api(controller, fault, method, url.path, params)
        except Exception as exc:  # answer rather than leave the client hanging on a bug
            self._send(_json(500, {"error": f"sandbox error: {exc!r}"}))

    def _send_api(self, controller: Controller, fault: Fault | None, method: str, path: str,
                  params: dict[str, str]) -> None:
        if fault and fault.kind == "delay":
            time.sleep(fault.delay_ms / 1000)
        if fault and fault.kind == "disconnect":
            self.close_connection = True
            return
        if fault and fault.kind in ("status", "html"):
            body, content_type = fault.response_body()
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send((fault.status, body, content_type, headers))
            return
        status, body, content_type, headers = controller.api(method, path, params)
        if fault and fault.kind == "truncate":
            status, body = fault.status, body[: len(body) // 2]
        self._send((status, body, content_type, headers))

    def _send(self, response: Response) -> None:
        status, body, content_type, headers = response
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # parallel clients must not meet a full listen backlog

    def __init__(self, address: tuple[str, int], controller: Controller) -> None:
        super().__init__(address, _Handler)
        self.controller = controller


class Sandbox:
    """A running fake shop. Generates ``orders`` for ``seed`` and ``now`` unless given a ``store``."""

    def __init__(self, orders: int = 200, seed: int = 1, now: datetime | None = None, *, days: int = 30,
                 store: Store | None = None, access_key: str = DEFAULT_ACCESS_KEY,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store if store is not None else Store.generate(orders, seed, now, days)
        self.access_key = access_key
        self.controller = Controller(self.store, access_key)
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        """Bind (port 0 picks a free one) and serve from a daemon thread."""
        if self._server is None:
            self._server = _Server(self._address, self.controller)
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name="synclet-sandbox", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    @property
    def onesaas_url(self) -> str:
        return self.url + onesaas.PATH

    def env(self) -> dict[str, str]:
        """Settings that point synclet at this sandbox, starting from its first generated day."""
        with self.store.lock:
            first = self.store.orders[0].created_at if self.store.orders else self.store.clock
        return {"MAGENTO_BASE_URL": self.onesaas_url, "MAGENTO_ACCESS_KEY": self.access_key,
                "INITIAL_SYNC_DATE": (first - timedelta(days=1)).strftime("%Y-%m-%d")}

    def truth(self) -> list[dict[str, Any]]:
        return self.store.truth()

    def truth_by_id(self) -> dict[str, dict[str, Any]]:
        return self.store.truth_by_id()

    def update(self, ids: list[int] | None = None, count: int | None = None,
               updated_at: datetime | None = None) -> list[int]:
        return self.store.update(ids=ids, count=count, updated_at=updated_at)

    def add(self, count: int = 1, created_at: datetime | None = None) -> list[int]:
        return self.store.add(count, created_at=created_at)

    def arm_fault(self, status: int | None = None, times: int | None = 1, after: int = 0, *,
                  kind: str = "status", body: str | None = None, retry_after: str | int | None = None,
                  delay_ms: int = 0) -> Fault:
        """Make API requests ``after + 1`` … ``after + times`` (from now) fail; see ``faults.KINDS``."""
        return self.controller.arm({"kind": kind, "status": status, "times": times, "after": after,
                                    "body": body, "retry_after": retry_after, "delay_ms": delay_ms})

    def clear_faults(self) -> int:
        return self.controller.clear_faults()

    def stats(self) -> dict[str, Any]:
        return self.controller.stats()


def serve_forever(port: int = DEFAULT_PORT, orders: int = 500, seed: int = 1, *, host: str = "127.0.0.1",
                  now: datetime | None = None, echo: Callable[[str], None] = print) -> None:
    """Serve a generated shop in the foreground until Ctrl-C, after printing how to point synclet at it."""
    sandbox = Sandbox(orders, seed, now, host=host, port=port).start()
    env = sandbox.env()
    echo(f"synclet sandbox: {orders} orders (seed {seed}), clock {fmt_time(sandbox.store.clock)} UTC")
    echo(f"  URL:           {sandbox.url}")
    echo(f"  OneSaas base:  {sandbox.onesaas_url}")
    echo(f"  Access key:    {sandbox.access_key}")
    echo(f"  Control API:   {sandbox.url}{CONTROL_PREFIX}{{truth,stats,update,add,faults}}")
    echo("Example .env:")
    for name, value in env.items():
        echo(f"  {name}={value}")
    echo("Press Ctrl-C to stop.")
    previous = _stop_on_sigterm()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("stopping the sandbox")
    finally:
        sandbox.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """Let ``kill`` (a harness, a container stop) end the foreground sandbox as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, interrupt)
