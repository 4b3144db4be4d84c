"""One HTTP policy for every source and destination: timeouts, bounded retries, masking.

Only transient failures are retried (connection errors, timeouts, 429, 5xx), with exponential
backoff and jitter, never sooner than a ``Retry-After`` asks, bounded by attempts and total time.
Everything else fails at once with a one-line message that holds no secret. A page is therefore
either read whole or the run stops: nothing is ever skipped.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import tenacity

from synclet import __version__
from synclet.config import Settings, mask_url
from synclet.errors import AuthError, Interrupted, ProtocolError, RemoteError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(520, 530))
POOL_CONNECTIONS = 10  # requests' default: connections kept per host
MAX_RETRY_AFTER_SECONDS = 300.0
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # \ud800-\udfff: half of a pair, or alone
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class _Transient(Exception):
    """A failure worth another attempt; carries the response (if any) for the final message."""

    def __init__(self, message: str, response: requests.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


def retry_after_seconds(response: requests.Response | None, now: datetime | None = None) -> float | None:
    """The wait a ``Retry-After`` header asks for (seconds or HTTP date), if any."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        now = now or datetime.now(timezone.utc)
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


#: Every session of this process: a forked child (a reader of pages ahead) must not send its
#: requests over its parent's pooled connections, whose sockets the two would then share.
_SESSIONS: weakref.WeakSet[requests.Session] = weakref.WeakSet()


def _forget_pooled_connections() -> None:
    """In a forked child: close the child's copies of the pooled sockets (the parent's stay open,
    untouched), so each session opens connections of its own."""
    for session in list(_SESSIONS):
        session.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pooled_connections)


def _own_headers_only(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The session's auth, which leaves a request as it is: every API here is given its key or
    token by the caller. Without one, requests reads ~/.netrc for every request (file checks that
    cost a request per order dearly) and sends an entry it finds there as Basic auth, in place of
    the token in our Authorization header."""
    return request


class _Session(requests.Session):
    """A session that reads the environment's proxies and CA bundle once per origin, not for
    every request: requests scans every environment variable twice per request for them, a tenth
    of the CPU of a request per order. A cron run's environment does not change while it runs."""

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[str, str], dict[str, Any]] = {}

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict[str, Any]:
        if proxies or stream is not None or verify is not None or cert is not None:  # set per request: not ours
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        settings = self._environment.get(origin)
        if settings is None:
            settings = self._environment[origin] = super().merge_environment_settings(url, {}, None, None, None)
        return {**settings, "proxies": dict(settings["proxies"])}


class HttpClient:
    """A ``requests.Session`` with synclet's policy; one per run, shared by a run's calls."""

    def __init__(
        self,
        timeout: float,
        max_retries: int,
        mask: Callable[[str], str] = lambda text: text,
        backoff_seconds: float = 1.0,
        max_total_seconds: float = 600.0,
        stop: threading.Event | None = None,
        connections: int = POOL_CONNECTIONS,
    ) -> None:
        self.timeout = timeout
        self.max_retries = max_retries
        self.mask = mask
        self.backoff = tenacity.wait_exponential(multiplier=backoff_seconds, max=60.0) + tenacity.wait_random(0, backoff_seconds)
        self.max_total_seconds = max_total_seconds
        self.session = _Session()
        self.session.auth = _own_headers_only
        _SESSIONS.add(self.session)
        self.session.headers["User-Agent"] = f"synclet/{__version__}"
        if connections > POOL_CONNECTIONS:
            # Parallel requests beyond the default pool would each open (and drop) a connection.
            for prefix in ("http://", "https://"):
                self.session.mount(prefix, requests.adapters.HTTPAdapter(pool_maxsize=connections))
        # A Retry-After holds back every request of the run, not only the one that got it: parallel
        # workers on one token share the server's limit.
        self._quiet_until = 0.0
        self._quiet_lock = threading.Lock()
        self.stop = stop or threading.Event()

    @classmethod
    def from_settings(cls, settings: Settings, stop: threading.Event | None = None) -> HttpClient:
        parallel = max(settings.valerdat_concurrency, settings.magento_rest_concurrency, settings.fetch_ahead_pages) + 1
        return cls(settings.http_timeout, settings.http_max_retries, mask=settings.mask,
                   backoff_seconds=settings.http_backoff_seconds, stop=stop, connections=parallel)

    def close(self) -> None:
        self.session.close()

    def describe(self, url: str) -> str:
        """The URL as it may be printed: secrets masked, query string dropped for brevity."""
        return self.mask(mask_url(url).split("?", 1)[0])

    def _wait(self, state: tenacity.RetryCallState) -> float:
        backoff = self.backoff(state)
        error = state.outcome.exception() if state.outcome else None
        asked = retry_after_seconds(error.response) if isinstance(error, _Transient) else None
        if asked is None:
            return backoff
        with self._quiet_lock:
            self._quiet_until = max(self._quiet_until, time.monotonic() + asked)
        return max(asked, backoff)

    def request(
        self, method: str, url: str, final: Callable[[requests.Response], bool] | None = None, *,
        retries: int | None = None, **kwargs: Any
    ) -> requests.Response:
        """Send with retries; return a 2xx/3xx/4xx response, or raise after the last attempt.

        ``final`` marks error answers no retry can mend (a store that cannot load one order
        answers 500 every time): they are returned at once for the caller to handle. ``retries``
        overrides the client's number for this request (0: one attempt, for a request sent on spec)."""
        attempts = (self.max_retries if retries is None else retries) + 1
        kwargs["params"] = query_string(kwargs.get("params"))
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Transient),
            stop=tenacity.stop_after_attempt(attempts) | tenacity.stop_after_delay(self.max_total_seconds),
            wait=self._wait,
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return retrying(self._send, method, url, final, **kwargs)
        except _Transient as error:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise RemoteError(self.mask(f"{error} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})")) from None

    def _send(
        self, method: str, url: str, final: Callable[[requests.Response], bool] | None, **kwargs: Any
    ) -> requests.Response:
        with self._quiet_lock:
            quiet = self._quiet_until - time.monotonic()
        if quiet > 0:
            self._sleep(quiet)
        started = time.monotonic()
        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise _Transient(f"{method} {self.describe(url)}: no answer within {self.timeout:g}s") from None
        except requests.ConnectionError as error:
            raise _Transient(f"{method} {self.describe(url)}: cannot connect ({_reason(error)})") from None
        except requests.exceptions.ChunkedEncodingError as error:  # the body stopped short of its length
            raise _Transient(f"{method} {self.describe(url)}: the answer broke off ({_reason(error)})") from None
        except requests.RequestException as error:
            raise RemoteError(self.mask(f"{method} {self.describe(url)}: {_reason(error)}")) from None
        if log.isEnabledFor(logging.DEBUG):  # -vv; masking a URL costs more than reading a small answer
            log.debug("%s %s: HTTP %d in %.0f ms", method, self.mask(mask_url(response.url)), response.status_code,
                      (time.monotonic() - started) * 1000)
        if response.status_code in RETRY_STATUSES and not (final is not None and final(response)):
            raise _Transient(f"{method} {self.describe(url)}: HTTP {response.status_code} {_snippet(response)}", response)
        return response

    def _sleep(self, seconds: float) -> None:
        """Wait before a retry, but end at once when the run is asked to stop: a Retry-After or a
        backoff can last minutes, longer than a service manager waits after SIGTERM."""
        if self.stop.wait(seconds):
            raise Interrupted(f"stopped on request while waiting {seconds:.0f}s to retry a request")

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0
        # A 429 is the server pacing us, expected under parallel fetching: the log file keeps it,
        # the console does not.
        throttled = isinstance(error, _Transient) and error.response is not None and error.response.status_code == 429
        log.log(logging.INFO if throttled else logging.WARNING, "%s; retry %d/%d in %.1fs", self.mask(str(error)),
                state.attempt_number, self.max_retries, wait)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
                 retries: int | None = None) -> Any:
        """GET and decode JSON (numbers with a fraction become ``Decimal``); raise on non-2xx."""
        response = self.request("GET", url, params=params, headers=headers, retries=retries)
        return self.decode(response)

    def decode(self, response: requests.Response) -> Any:
        """The JSON body of a successful response, or the typed error a person can act on.

        Hostile bodies still decode: invalid UTF-8 and lone surrogates (which no database driver
        can encode) become U+FFFD; numbers become int or Decimal, never float, and ``NaN`` or
        ``Infinity`` a non-finite Decimal that the parser rejects with the field it sits in."""
        if response.status_code in (401, 403):
            raise AuthError(self.mask(f"{self._where(response)}: HTTP {response.status_code}, credentials refused "
                                      f"{_snippet(response)}"))
        if response.status_code >= 400:
            raise RemoteError(self.mask(f"{self._where(response)}: HTTP {response.status_code} {_snippet(response)}"))
        try:
            text = response.content.decode("utf-8-sig")
        except UnicodeDecodeError:
            log.warning("%s: the answer is not valid UTF-8; undecodable bytes were read as U+FFFD", self._where(response))
            text = response.content.decode("utf-8-sig", "replace")
        try:
            body = loads(text)
            if _SURROGATE_ESCAPE.search(response.content):  # valid pairs are already one character each
                body = map_json(body, replace_lone_surrogates)
        except RecursionError:
            raise ProtocolError(self.mask(f"{self._where(response)}: answer is nested too deeply to read "
                                          f"{_snippet(response)}")) from None
        except ValueError:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise ProtocolError(self.mask(f"{self._where(response)}: answer is not JSON ({kind}) {_snippet(response)}")) from None
        return body

    def _where(self, response: requests.Response) -> str:
        """The request of ``response`` as a message names it; only on the way to one, since masking
        a URL costs more than the rest of reading a small answer."""
        return f"{response.request.method} {self.describe(response.url)}"


def query_string(params: Mapping[str, Any] | str | None) -> str:
    """``params`` encoded as requests encodes them (items in order, None left out, sequences
    repeated): handed over as text, requests skips its costly per-request check of the mapping."""
    if params is None:
        return ""
    if isinstance(params, str):
        return params
    return urlencode([(key, value) for key, value in params.items() if value is not None], doseq=True)


def loads(text: str) -> Any:
    """JSON whose fractions (and ``NaN``, ``Infinity``) are Decimal, parsed at the decoder's full
    speed; the rare body it cannot take (an integer past Python's digit limit, an exponent no
    Decimal holds) is parsed again with hooks that keep such numbers, as int or text."""
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, ArithmeticError):
        return json.loads(text, parse_float=_json_fraction, parse_int=_json_int, parse_constant=Decimal)


def map_json(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """A copy of decoded JSON with ``leaf`` applied to every object key and every scalar."""
    if isinstance(value, dict):
        return {leaf(key): map_json(item, leaf) for key, item in value.items()}
    if isinstance(value, list):
        return [map_json(item, leaf) for item in value]
    return leaf(value)


def replace_lone_surrogates(value: Any) -> Any:
    """Text with each unpaired surrogate (from a ``\\udXXX`` escape) as U+FFFD; other values as
    they are. A lone surrogate is not a character: UTF-8, and so every database, refuses it."""
    return _LONE_SURROGATE.sub("\ufffd", value) if isinstance(value, str) else value


def _json_fraction(text: str) -> Decimal | str:
    """A JSON fraction as Decimal; one whose exponent even Decimal cannot hold stays text, for the
    parser to reject by field rather than fail the page."""
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


def _json_int(text: str) -> int | Decimal:
    """A JSON integer; past Python's 4,300-digit conversion limit, a Decimal holding it exactly."""
    try:
        return int(text)
    except ValueError:
        return Decimal(text)


def _snippet(response: requests.Response, limit: int = 120) -> str:
    """The start of a body on one line, for messages."""
    text = " ".join(response.text[: limit * 2].split())
    if not text:
        return "(empty body)"
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _reason(error: Exception) -> str:
    """The innermost cause of a requests error, without the URL (which may hold a secret)."""
    cause: BaseException = error
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause).split(": ", 1)[-1] if ": " in str(cause) else str(cause)
    return type(cause).__name__ + (f": {text[:120]}" if text else "")
