"""Injected faults: what a flaky shop does to a client, armed on demand and counted per request.

A fault covers the API requests numbered ``after + 1`` … ``after + times`` counted from the moment
it was armed (control requests under ``/_sandbox/`` are not counted), so a test can say "the third
and fourth page fail with 503" without sleeping or racing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: status: that HTTP status and body; html: a maintenance page (200 unless a status is given);
#: truncate: the real JSON answer cut in half (200); delay: answer normally after delay_ms;
#: disconnect: close the connection without answering
KINDS = ("status", "html", "truncate", "delay", "disconnect")
DEFAULT_STATUS = {"status": 500, "html": 200, "truncate": 200, "delay": 200, "disconnect": 0}
MAINTENANCE_PAGE = (
    "<!doctype html>\n<html><head><title>Service Temporarily Unavailable</title></head>\n"
    "<body><h1>Service Temporarily Unavailable</h1>\n"
    "<p>The server is temporarily unable to service your request due to maintenance downtime.</p>\n"
    "</body></html>\n"
)


@dataclass(slots=True)
class Fault:
    kind: str = "status"
    status: int = 500
    times: int | None = 1  # None: every request until cleared
    after: int = 0
    body: str | None = None
    retry_after: str | None = None  # sent as the Retry-After header when set
    delay_ms: int = 0
    armed_at: int = 0  # API requests served before arming

    @classmethod
    def from_spec(cls, spec: dict[str, Any], armed_at: int) -> Fault:
        """Validate a JSON spec such as ``{"status": 503, "times": 2, "retry_after": "1"}``."""
        unknown = set(spec) - {"kind", "status", "times", "after", "body", "retry_after", "delay_ms"}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        kind = spec.get("kind") or "status"
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        status = int(spec["status"]) if spec.get("status") is not None else DEFAULT_STATUS[kind]
        if kind != "disconnect" and not 100 <= status <= 599:
            raise ValueError("status must be an HTTP status code")
        times = None if spec.get("times", 1) is None else int(spec.get("times", 1))
        after = int(spec.get("after") or 0)
        delay_ms = int(spec.get("delay_ms") or 0)
        if (times is not None and times < 1) or after < 0 or delay_ms < 0:
            raise ValueError("times must be >= 1 (or null), after and delay_ms >= 0")
        retry_after = spec.get("retry_after")
        body = spec.get("body")
        return cls(kind, status, times, after, None if body is None else str(body),
                   None if retry_after is None else str(retry_after), delay_ms, armed_at)

    def covers(self, request_no: int) -> bool:
        """Whether the API request numbered ``request_no`` (since the server started) is hit."""
        since_armed = request_no - self.armed_at
        return since_armed > self.after and (self.times is None or since_armed <= self.after + self.times)

    def spent(self, request_no: int) -> bool:
        return self.times is not None and request_no - self.armed_at >= self.after + self.times

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def response_body(self) -> tuple[bytes, str]:
        """(body, content type) for a ``status`` or ``html`` fault."""
        if self.kind == "html":
            return (self.body or MAINTENANCE_PAGE).encode("utf-8"), "text/html; charset=UTF-8"
        text = self.body if self.body is not None else f'{{"error": "sandbox fault: HTTP {self.status}"}}'
        kind = "application/json" if text.lstrip()[:1] in ("{", "[", '"') else "text/plain; charset=UTF-8"
        return text.encode("utf-8"), kind
