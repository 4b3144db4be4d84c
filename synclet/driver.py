"""PyMySQL connections that make their TLS context only when a server offers TLS.

Given no TLS option, PyMySQL (1.2 on) connects in its PREFERRED mode: TLS when the server offers
it, without checking the certificate. It still builds that mode's context for every connection,
loading the system's CA store (20 ms of CPU) that the mode never reads, and against a server
without TLS (the usual MariaDB on the same machine) never uses it at all. A sync opens a connection
in each of its two processes, and an hourly run that finds nothing new lasts half a second, so
here that context is made when a server first offers TLS, once per process. A connection given
any TLS option gets exactly what PyMySQL makes of it.
"""
from __future__ import annotations

import ssl
import threading
from typing import Any

from pymysql.connections import Connection

_preferred: list[ssl.SSLContext] = []  # PREFERRED mode's context, once made
_preferred_lock = threading.Lock()


class LazyTlsConnection(Connection):  # type: ignore[misc]
    """A PyMySQL connection whose PREFERRED-mode context is the process's one, made on first use."""

    _context: ssl.SSLContext | None = None

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext | None:
        if isinstance(sslp, dict) and not sslp:  # no option given: PREFERRED mode, see ``ctx``
            return None
        return super()._create_ssl_ctx(sslp)  # type: ignore[no-any-return]

    @property
    def ctx(self) -> ssl.SSLContext:
        if self._context is None:
            with _preferred_lock:
                if not _preferred:
                    _preferred.append(super()._create_ssl_ctx({}))
            self._context = _preferred[0]
        return self._context

    @ctx.setter
    def ctx(self, context: ssl.SSLContext | None) -> None:
        self._context = context


def lazy_tls_connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> LazyTlsConnection:
    """SQLAlchemy's ``do_connect`` hook: what ``pymysql.connect`` does, with the class above."""
    return LazyTlsConnection(*cargs, **cparams)
