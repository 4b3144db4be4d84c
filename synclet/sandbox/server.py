"""The sandbox over real HTTP: the server thread, request handling and fault injection.

``Sandbox`` runs in a daemon thread for tests (``with Sandbox(orders=2000, seed=7) as sb:``);
``serve_forever`` runs it in the foreground for ``python synclet.py sandbox``. It serves OneSaas
Connect (``onesaas_url``), Magento REST (``rest_url``) and Valerdat (``valerdat_url``) from the same
store, and a Big Block warehouse (``bigblock_url``) with orders of its own for synclet to push to;
the control API (``synclet.sandbox.control``) and the same operations as methods on ``Sandbox``
drive it.
"""
from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from synclet.sandbox import bigblock, onesaas, valerdat
from synclet.sandbox.control import CONTROL_PREFIX, Controller, Response, json_response
from synclet.sandbox.data import Store
from synclet.sandbox.faults import Fault
from synclet.sandbox.model import fmt_time
from synclet.sandbox.rest import DEFAULT_MAX_PAGE_SIZE

DEFAULT_ACCESS_KEY = "sandbox-access-key"
DEFAULT_REST_TOKEN = "sandbox-rest-token"
DEFAULT_PORT = 8765
VALERDAT_CREDENTIALS = (valerdat.DEFAULT_CUSTOMER, valerdat.DEFAULT_USERNAME, valerdat.DEFAULT_PASSWORD)


class _Handler(BaseHTTPRequestHandler):
    """One request: control endpoints go straight through; API requests meet the armed faults."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as a real shop behind nginx would
    # Headers and body go out in two writes; with Nagle on, a small body waits for the client's
    # delayed ACK (~40 ms on loopback), which would make the sandbox, not synclet, the bottleneck.
    disable_nagle_algorithm = True
    server_version = "synclet-sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: a benchmark's thousands of requests must not flood stderr."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:  # answered (405, mostly) rather than http.server's 501 page
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

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
                    self._send(json_response(400, {"error": "the body must be a JSON object"}))
                    return
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                self._send(controller.control(method, url.path, body, params))
                return
            params = dict(parse_qsl(url.query, keep_blank_values=True))  # last value wins, as in PHP
            fault = controller.count_api_request(method, url.path, params)
            self._send_api(controller, fault, method, url.path, params, raw)
        except ConnectionError:  # the client hung up (a stopped sync): nobody to answer
            self.close_connection = True
        except Exception as exc:  # answer rather than leave the client hanging on a bug
            self._send(json_response(500, {"error": f"sandbox error: {exc!r}"}))

    def _send_api(self, controller: Controller, fault: Fault | None, method: str, path: str,
                  params: dict[str, str], raw: bytes) -> None:
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
        api_key = self.headers.get("API-KEY") or self.headers.get("API_KEY")  # Big Block's, both spellings
        status, body, content_type, headers = controller.api(method, path, params, self.headers.get("Authorization"),
                                                             raw, self.headers.get("Host"), api_key=api_key)
        if fault and fault.kind == "truncate":
            status, body = fault.status, body[: len(body) // 2]
        self._send((status, body, content_type, headers))

    def _send(self, response: Response) -> None:
        """An empty ``content_type`` sends none (a 204's empty body); a 204 has no Content-Length either."""
        status, body, content_type, headers = response
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if status != 204:
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
    """A running fake shop. Generates ``orders`` for ``seed`` and ``now`` unless given a ``store``.
    ``rest_max_page_size`` is the REST pageSize cap (None: uncapped). Valerdat's token lifetime
    (seconds on ``valerdat_clock``) and rate limit (requests a second per token, None: off) are
    ``valerdat_token_lifetime`` and ``valerdat_rate_limit``; its login is ``valerdat_credentials``
    (customer, username, password). Big Block checks ``bigblock_api_key`` and throttles on ``bigblock_clock``."""

    def __init__(self, orders: int = 200, seed: int = 1, now: datetime | None = None, *, days: int = 30,
                 store: Store | None = None, access_key: str = DEFAULT_ACCESS_KEY,
                 rest_token: str = DEFAULT_REST_TOKEN, rest_max_page_size: int | None = DEFAULT_MAX_PAGE_SIZE,
                 valerdat_credentials: tuple[str, str, str] = VALERDAT_CREDENTIALS,
                 valerdat_token_lifetime: int = valerdat.DEFAULT_TOKEN_LIFETIME,
                 valerdat_rate_limit: int | None = None, valerdat_clock: Callable[[], float] = time.monotonic,
                 bigblock_api_key: str = bigblock.DEFAULT_API_KEY,
                 bigblock_clock: Callable[[], float] = time.monotonic,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.store = store if store is not None else Store.generate(orders, seed, now, days)
        self.access_key = access_key
        self.rest_token = rest_token
        self.valerdat_credentials = valerdat_credentials
        valerdat_api = valerdat.ValerdatApi(self.store, *valerdat_credentials, token_lifetime=valerdat_token_lifetime,
                                            rate_limit=valerdat_rate_limit, clock=valerdat_clock)
        self.bigblock_api_key = bigblock_api_key
        bigblock_api = bigblock.BigBlockApi(bigblock_api_key, clock=bigblock_clock)
        self.controller = Controller(self.store, access_key, rest_token, rest_max_page_size, valerdat_api,
                                     bigblock_api)
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

    @property
    def rest_url(self) -> str:
        """The REST base a client appends ``/V1/orders`` to."""
        return self.url + "/rest/default"

    @property
    def valerdat_url(self) -> str:
        """``VALERDAT_BASE_URL``: the base a client appends ``/api/...`` to."""
        return self.url + valerdat.PREFIX

    @property
    def bigblock_url(self) -> str:
        """``BIGBLOCK_BASE_URL``: the base a client appends ``/orders/`` to."""
        return self.url + bigblock.PREFIX

    def env(self, *, rest: bool = False, onesaas: bool = True, valerdat: bool = False,
            bigblock: bool = False) -> dict[str, str]:
        """Settings that point synclet at this sandbox from its first generated day: the OneSaas
        keys, plus ``MAGENTO_REST_URL``/``MAGENTO_TOKEN`` with ``rest=True``, the four
        ``VALERDAT_*`` with ``valerdat=True`` and ``BIGBLOCK_BASE_URL``/``BIGBLOCK_API_KEY`` with
        ``bigblock=True``. The others are opt-in because synclet syncs every configured source, and
        a sync test means one of them."""
        with self.store.lock:
            first = self.store.orders[0].created_at if self.store.orders else self.store.clock
        env = {"MAGENTO_BASE_URL": self.onesaas_url, "MAGENTO_ACCESS_KEY": self.access_key} if onesaas else {}
        if rest:
            env.update({"MAGENTO_REST_URL": self.rest_url, "MAGENTO_TOKEN": self.rest_token})
        if valerdat:
            customer, username, password = self.valerdat_credentials
            env.update({"VALERDAT_BASE_URL": self.valerdat_url, "VALERDAT_CUSTOMER": customer,
                        "VALERDAT_USERNAME": username, "VALERDAT_PASSWORD": password})
        if bigblock:
            env.update({"BIGBLOCK_BASE_URL": self.bigblock_url, "BIGBLOCK_API_KEY": self.bigblock_api_key})
        return env | {"INITIAL_SYNC_DATE": (first - timedelta(days=1)).strftime("%Y-%m-%d")}

    def truth(self, view: str = "onesaas") -> list[dict[str, Any]]:
        return self.store.truth(view)

    def truth_by_id(self, view: str = "onesaas") -> dict[str, dict[str, Any]]:
        return self.store.truth_by_id(view)

    def set_rest_broken(self, ids: list[int]) -> list[int]:
        """Make these orders (and only these) unloadable over REST; ``[]`` heals them all."""
        return self.controller.set_rest_broken(list(ids))

    def set_deleted(self, ids: list[int]) -> list[int]:
        """Delete these orders (and only these) at the source: Valerdat answers 404 for their
        detail, though a stale ids page may still list them; ``[]`` restores them all."""
        return self.controller.set_deleted(list(ids))

    def expire_valerdat_tokens(self) -> int:
        """Revoke every Valerdat token now, as a server-side expiry mid-run would."""
        return self.controller.valerdat.expire_tokens()

    def update(self, ids: list[int] | None = None, count: int | None = None,
               updated_at: datetime | None = None) -> list[int]:
        return self.store.update(ids=ids, count=count, updated_at=updated_at)

    def add(self, count: int = 1, created_at: datetime | None = None) -> list[int]:
        return self.store.add(count, created_at=created_at)

    def bigblock_orders(self) -> list[dict[str, Any]]:
        """Every order the Big Block API holds, in id order, as it renders them."""
        return self.controller.bigblock.orders()

    def bigblock_received(self) -> list[dict[str, Any]]:
        """Every request the Big Block API answered: ``{"method", "path", "status", "body"}``, oldest first."""
        return self.controller.bigblock.received()

    def bigblock_pick(self, order_number: str, quantity: int = 1) -> dict[str, Any]:
        """Start picking: the order's first item gets ``quantity_fulfilled``; KeyError if no such order."""
        return self.controller.bigblock.pick(order_number, quantity)

    def bigblock_configure(self, **settings: Any) -> dict[str, Any]:
        """Change ``page_size``, ``paginated`` or ``rate_limit`` (per second, None: off); returns all three."""
        return self.controller.bigblock.configure(settings)

    def bigblock_clear(self) -> dict[str, int]:
        """Forget every Big Block order and the received log; returns how many of each."""
        return self.controller.bigblock.clear()

    def arm_fault(self, status: int | None = None, times: int | None = 1, after: int = 0, *,
                  kind: str = "status", body: str | None = None, retry_after: str | int | None = None,
                  delay_ms: int = 0) -> Fault:
        """Make API requests ``after + 1`` … ``after + times`` (from now) fail; see ``faults.KINDS``."""
        return self.controller.arm({"kind": kind, "status": status, "times": times, "after": after,
                                    "body": body, "retry_after": retry_after, "delay_ms": delay_ms})

    def prerender(self) -> None:
        """Render every order's OneSaas, REST and Valerdat answer now, before a benchmark's clock
        starts; answers are the same bytes, made earlier."""
        self.controller.onesaas.prerender()
        self.controller.rest.prerender()
        self.controller.valerdat.prerender()

    def clear_faults(self) -> int:
        return self.controller.clear_faults()

    def stats(self) -> dict[str, Any]:
        return self.controller.stats()


def serve_forever(port: int = DEFAULT_PORT, orders: int = 500, seed: int = 1, *, host: str = "127.0.0.1",
                  now: datetime | None = None, echo: Callable[[str], None] = print) -> None:
    """Serve a generated shop in the foreground until Ctrl-C, after printing how to point synclet at it."""
    sandbox = Sandbox(orders, seed, now, host=host, port=port).start()
    echo(f"synclet sandbox: {orders} orders (seed {seed}), clock {fmt_time(sandbox.store.clock)} UTC")
    echo(f"  URL: {sandbox.url}  (OneSaas {onesaas.PATH}, REST /rest/default/V1/, Valerdat {valerdat.PREFIX}/api/,"
         f" Big Block {bigblock.PREFIX}/)")
    echo(f"  Control API: {sandbox.url}{CONTROL_PREFIX}"
         "{truth,stats,update,add,faults,rest_broken,deleted,settings,valerdat/...,bigblock/...}")
    echo("Example .env (OneSaas; uncomment the REST or Valerdat lines instead, or as well, for those APIs,"
         " and the Big Block lines to push orders to its warehouse):")
    onesaas_env = sandbox.env()
    for name, value in onesaas_env.items():
        echo(f"  {name}={value}")
    for name, value in sandbox.env(rest=True, valerdat=True, bigblock=True, onesaas=False).items():
        if name not in onesaas_env:
            echo(f"  # {name}={value}")
    # The hint after the value is a comment too: an uncommented line must still read as the file's name.
    echo(f"  # BIGBLOCK_LOCATIONS_CSV=locations.csv  # made by: curl -s {sandbox.url}{CONTROL_PREFIX}bigblock/locations.csv > locations.csv")
    echo("Press Ctrl-C to stop.")
    previous = _stop_on_signals()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        echo("stopping the sandbox")
    finally:
        sandbox.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stop_on_signals() -> dict[int, Any]:
    """Let ``kill`` (a harness, a container stop) end the foreground sandbox as Ctrl-C does, and
    Ctrl-C end it even where the shell started it with SIGINT ignored (a background job), as it
    ends a sync. Returns the handlers replaced."""
    if threading.current_thread() is not threading.main_thread():
        return {}

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return {signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)}
