"""The HTTP policy over real loopback HTTP: what is retried, what fails at once, what is masked."""
from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from synclet.errors import AuthError, Interrupted, ProtocolError, RemoteError
from synclet.http import HttpClient, retry_after_seconds

SECRET = "s3cr3t-key"


class ScriptedServer:
    """Answers each request with the next (status, headers, body) of a script; counts requests."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.script = list(script)
        self.requests: list[str] = []
        self.arrivals: list[float] = []  # time.monotonic() of each request
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.requests.append(self.path)
                outer.arrivals.append(time.monotonic())
                status, headers, body = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers:  # a scripted one may promise more than is sent
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api?AccessKey={SECRET}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[ScriptedServer] = []

    def start(*script: tuple[int, dict[str, str], bytes]) -> ScriptedServer:
        servers.append(ScriptedServer(list(script)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def client(retries: int = 3) -> HttpClient:
    return HttpClient(timeout=5, max_retries=retries, mask=lambda t: t.replace(SECRET, "***"), backoff_seconds=0.01)


OK = (200, {"Content-Type": "application/json"}, b'{"ok": 1.50}')


def test_transient_statuses_are_retried_until_success(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve((500, {}, b"boom"), (503, {"Retry-After": "0"}, b""), (429, {}, b"slow down"), OK)
    body = client().get_json(server.url)
    assert body == {"ok": pytest.approx(1.5)} and str(body["ok"]) == "1.50"  # a Decimal, never a float
    assert len(server.requests) == 4


def test_retries_are_bounded_and_the_error_is_masked(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve((502, {}, b"bad gateway"))
    with pytest.raises(RemoteError) as caught:
        client(retries=2).get_json(server.url)
    assert len(server.requests) == 3
    assert "HTTP 502" in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        ((401, {}, b'{"detail": "Invalid API key."}'), AuthError, "HTTP 401"),
        ((403, {}, b"forbidden"), AuthError, "HTTP 403"),
        ((400, {}, b'{"message": "bad"}'), RemoteError, "HTTP 400"),
        ((404, {}, b'{"detail": "Not found."}'), RemoteError, "HTTP 404"),
        ((200, {"Content-Type": "text/html"}, b"<html><body>Maintenance</body></html>"), ProtocolError, "not JSON (text/html)"),
        ((200, {"Content-Type": "application/json"}, b'{"Orders": [1, 2'), ProtocolError, "not JSON"),
    ],
)
def test_non_retryable_answers_fail_at_once(serve, answer, error, text) -> None:  # type: ignore[no-untyped-def]
    server = serve(answer)
    with pytest.raises(error) as caught:
        client().get_json(server.url)
    assert len(server.requests) == 1
    assert text in str(caught.value) and SECRET not in str(caught.value) and "\n" not in str(caught.value)


def test_connection_refused_is_retried_then_reported_without_the_key() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RemoteError) as caught:
        client(retries=1).get_json(f"http://127.0.0.1:{port}/x?AccessKey={SECRET}")
    assert "cannot connect" in str(caught.value) and SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        ("100000", 300.0),
        ("Wed, 25 Nov 2026 10:00:30 GMT", 30.0),
        ("soon", None),
    ],
)
def test_retry_after_parsing(header: str, expected: float | None) -> None:
    response = requests.Response()
    response.headers["Retry-After"] = header
    now = datetime(2026, 11, 25, 10, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds(response, now) == expected


def test_retry_after_is_waited_for(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve((429, {"Retry-After": "1"}, b""), OK)
    http = client()
    waits: list[float] = []
    original = http._wait
    http._wait = lambda state: waits.append(original(state)) or waits[-1]  # type: ignore[method-assign]
    http.get_json(server.url)
    assert waits and waits[0] >= 1.0
    assert json.dumps(server.requests[0]).count("AccessKey") == 1


# ---- hostile bodies: every one decodes into values the parsers and databases can take -----------


def test_nan_infinity_and_huge_numbers_never_become_floats(serve) -> None:  # type: ignore[no-untyped-def]
    huge = "9" * 5000  # past Python's int conversion limit
    body = b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400, "e": 1e9999999999999999999999, "f": ' + huge.encode() + b', "g": 7}'
    decoded = client().get_json(serve((200, {}, body)).url)
    assert [str(decoded[key]) for key in "abcd"] == ["NaN", "Infinity", "-Infinity", "1E+400"]
    assert all(type(decoded[key]) is Decimal for key in "abcd")
    assert decoded["e"] == "1e9999999999999999999999"  # beyond Decimal too: the text, for the parser to name
    assert decoded["f"] == Decimal(huge) and (decoded["g"], type(decoded["g"])) == (7, int)


def test_lone_surrogates_become_replacement_characters_and_pairs_stay(serve) -> None:  # type: ignore[no-untyped-def]
    body = rb'{"name": "a\ud800b\uDFFFc", "emoji": "\ud83d\ude00", "\udc00key": ["\ud83d", "x\\ud800"], "raw": "' + "\ud800".encode("utf-8", "surrogatepass") + b'"}'
    decoded = client().get_json(serve((200, {}, body)).url)
    assert decoded == {"name": "a\ufffdb\ufffdc", "emoji": "😀", "\ufffdkey": ["\ufffd", "x\\ud800"], "raw": "\ufffd\ufffd\ufffd"}
    json.dumps(decoded, ensure_ascii=False).encode("utf-8")  # nothing left that UTF-8 refuses


def test_invalid_utf8_is_replaced_with_a_warning_and_a_bom_is_ignored(serve, caplog) -> None:  # type: ignore[no-untyped-def]
    server = serve((200, {}, b'\xef\xbb\xbf{"name": "M\xfcller", "city": "K\xc3\xb6ln"}'))
    with caplog.at_level("WARNING", logger="synclet.http"):
        assert client().get_json(server.url) == {"name": "M\ufffdller", "city": "Köln"}
    assert "not valid UTF-8" in caplog.text and SECRET not in caplog.text


def test_a_body_nested_too_deeply_is_a_protocol_error(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve((200, {}, b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(ProtocolError, match="nested too deeply") as caught:
        client().get_json(server.url)
    assert "\n" not in str(caught.value) and SECRET not in str(caught.value)


def test_a_retry_after_holds_back_the_other_threads_of_the_run(serve) -> None:  # type: ignore[no-untyped-def]
    """Workers share one token's rate limit: after one of them is told to wait, none asks sooner."""
    server = serve((429, {"Retry-After": "1"}, b"slow down"), OK)
    shared = client()
    first = threading.Thread(target=shared.get_json, args=(server.url,))
    first.start()
    while shared._quiet_until == 0:  # until the 429 has been read
        time.sleep(0.01)
    assert shared.get_json(server.url) == {"ok": Decimal("1.50")}
    first.join()
    told = server.arrivals[0]
    assert len(server.arrivals) == 3 and min(server.arrivals[1:]) - told >= 0.95


def test_a_body_cut_short_of_its_length_is_retried(serve) -> None:  # type: ignore[no-untyped-def]
    server = serve((200, {"Content-Type": "application/json", "Content-Length": "500"}, b'{"ok": 1'), OK)
    assert client().get_json(server.url) == {"ok": Decimal("1.50")}
    assert len(server.requests) == 2


def test_a_stop_ends_the_wait_for_a_retry(serve) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM during a 60-second Retry-After ends the run now, not after the wait."""
    server = serve((429, {"Retry-After": "60"}, b"slow down"), OK)
    stop = threading.Event()
    stopped = HttpClient(timeout=5, max_retries=3, backoff_seconds=0.01, stop=stop)
    threading.Thread(target=lambda: (wait_until(lambda: bool(server.requests)), stop.set()), daemon=True).start()
    with pytest.raises(Interrupted, match="stopped on request while waiting 60s"):
        stopped.get_json(server.url)
    assert len(server.requests) == 1


def wait_until(condition: Callable[[], bool]) -> None:
    while not condition():
        time.sleep(0.01)


def test_the_environments_proxies_apply_to_every_request_and_no_proxy_is_honoured(serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The client reads proxy settings once per origin, not per request: each request still goes
    through the proxy the environment names, and a host in no_proxy is still reached directly."""
    proxy, direct = serve(OK), serve(OK)
    for name in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, proxy.url.split("/api", 1)[0])
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1")
    http = client()
    for _ in range(2):
        assert http.get_json("http://shop.invalid/api/orders?page=1") == {"ok": Decimal("1.50")}
    assert http.get_json(direct.url) == {"ok": Decimal("1.50")}
    assert proxy.requests == ["http://shop.invalid/api/orders?page=1"] * 2
    assert direct.requests == [f"/api?AccessKey={SECRET}"]
