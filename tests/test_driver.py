"""The PyMySQL connection class: PREFERRED mode's TLS context made once, on first use; any TLS
option handled by PyMySQL itself; real connections to MariaDB through it."""
from __future__ import annotations

import ssl

from pymysql.connections import Connection
from pymysql.constants import CLIENT
from sqlalchemy import select

from synclet import db
from synclet.driver import LazyTlsConnection


def test_preferred_mode_shares_one_context_that_checks_no_certificate() -> None:
    first, second = LazyTlsConnection(defer_connect=True), LazyTlsConnection(defer_connect=True)
    assert first._context is None and second._context is None  # nothing made while connecting
    assert isinstance(first.ctx, ssl.SSLContext) and first.ctx is second.ctx
    assert first.ctx.verify_mode == ssl.CERT_NONE and first.ctx.check_hostname is False
    own = Connection(defer_connect=True)
    if getattr(own, "ssl", False):  # PyMySQL 1.2 on: the same settings as its own context
        assert (own.ctx.verify_mode, own.ctx.check_hostname, own.ctx.verify_flags) == (
            first.ctx.verify_mode, first.ctx.check_hostname, first.ctx.verify_flags)


def test_a_tls_option_gets_pymysqls_own_context() -> None:
    strict = LazyTlsConnection(defer_connect=True, ssl_verify_cert=True)
    assert strict._context is not None and strict._ssl_required
    assert strict.ctx.verify_mode == ssl.CERT_REQUIRED
    assert strict.ctx is not LazyTlsConnection(defer_connect=True).ctx
    plain = LazyTlsConnection(defer_connect=True, ssl_disabled=True)
    assert not plain.ssl


def test_connections_to_mariadb_make_a_context_only_if_the_server_offers_tls(mariadb_url: str) -> None:
    engine = db.connect(mariadb_url)
    try:
        with engine.connect() as conn:
            assert conn.scalar(select(1)) == 1
            raw = conn.connection.dbapi_connection
            assert isinstance(raw, LazyTlsConnection)
            if raw.server_capabilities & CLIENT.SSL and raw.ssl:
                assert raw._secure and raw._context is not None
            else:
                assert not raw._secure and raw._context is None
    finally:
        engine.dispose()
