"""Shared fixtures: a clean environment per test, and the two real databases synclet supports.

MariaDB tests run against a real server (``SYNCLET_TEST_MARIADB_URL``, default root on
127.0.0.1:3306), one throwaway database per test. Without a server they skip, unless
``SYNCLET_REQUIRE_MARIADB=1`` (set by CI) turns the skip into a failure.
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from synclet.cli import main

SETTING_NAMES = (
    "DATABASE_URL DB_HOST DB_PORT DB_NAME DB_USER DB_PASSWORD MAGENTO_BASE_URL MAGENTO_ACCESS_KEY "
    "MAGENTO_PAGE_SIZE MAGENTO_REST_URL MAGENTO_TOKEN MAGENTO_REST_PAGE_SIZE VALERDAT_BASE_URL "
    "VALERDAT_CUSTOMER VALERDAT_USERNAME VALERDAT_PASSWORD VALERDAT_CONCURRENCY INITIAL_SYNC_DATE "
    "SYNC_OVERLAP_SECONDS HTTP_TIMEOUT HTTP_MAX_RETRIES HTTP_BACKOFF_SECONDS LOG_FILE BIGBLOCK_BASE_URL "
    "BIGBLOCK_API_KEY BIGBLOCK_LOCATIONS_CSV BIGBLOCK_STATUSES BIGBLOCK_CANCELLED_STATUSES BIGBLOCK_ORDER_PREFIXES "
    "BIGBLOCK_ALLOW_MISSING_LOCATION BIGBLOCK_PUSH_AFTER_SYNC MAGENTO_REST_CONCURRENCY FETCH_AHEAD_PAGES"
).split()
MARIADB_SERVER = os.environ.get("SYNCLET_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/")
REQUIRE_MARIADB = os.environ.get("SYNCLET_REQUIRE_MARIADB") == "1"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the developer's shell, and relative files land in tmp_path."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database for this test, dropped afterwards."""
    name = f"synclet_t_{uuid.uuid4().hex[:12]}"
    server = create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    except SQLAlchemyError as error:
        server.dispose()
        reason = f"MariaDB not reachable at {MARIADB_SERVER}: {str(error).splitlines()[0]}"
        if REQUIRE_MARIADB:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield f"{MARIADB_SERVER.rstrip('/')}/{name}?charset=utf8mb4"
    finally:
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        server.dispose()


@pytest.fixture(params=["sqlite", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on the embedded SQLite file and once on MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'synclet.db'}"
    return request.getfixturevalue("mariadb_url")


def run_cli(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    """Invoke the CLI in-process, as a user would type it."""
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)
