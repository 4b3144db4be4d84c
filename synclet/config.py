"""Settings from the environment and a ``.env`` file, validated before any work starts.

Real environment variables win over the file. Every problem is a ``ConfigError`` naming the
setting, so a typo in a crontab's environment fails loudly instead of syncing the wrong thing.
"""
from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from dotenv import dotenv_values
from dotenv.parser import Original, parse_stream
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from synclet.errors import ConfigError

SQLITE_DEFAULT_URL = "sqlite:///synclet.db"
MASK = "***"
SOURCE_NAMES = ("magento", "magento-rest", "valerdat")
#: Orders still to be picked: Magento's new and paid orders, Valerdat's confirmed purchase orders.
DEFAULT_BIGBLOCK_STATUSES = frozenset({"pending", "processing", "confirmed"})
DEFAULT_BIGBLOCK_CANCELLED_STATUSES = frozenset({"canceled", "cancelled"})
#: Beyond these a value is a typo, and a time or a wait that far out overflows: a traceback, not a sync.
MAX_SECONDS = 3600.0  # HTTP_TIMEOUT, HTTP_BACKOFF_SECONDS
MAX_OVERLAP_SECONDS = 10 * 365 * 86400  # ten years back from the cursor
_SECRET_QUERY_KEYS = re.compile(r"(key|token|password|passwd|secret|signature)", re.IGNORECASE)
_LEADING_NAME = re.compile(r"[^\S\r\n]*(?:export[^\S\r\n]+)?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, repr=False)
class Settings:
    database_url: str = SQLITE_DEFAULT_URL
    magento_base_url: str | None = None
    magento_access_key: str | None = None
    magento_page_size: int = 50
    magento_rest_url: str | None = None
    magento_token: str | None = None
    magento_rest_page_size: int = 100
    valerdat_base_url: str | None = None
    valerdat_customer: str | None = None
    valerdat_username: str | None = None
    valerdat_password: str | None = None
    valerdat_concurrency: int = 8
    magento_rest_concurrency: int = 4
    fetch_ahead_pages: int = 2
    #: None when INITIAL_SYNC_DATE is not set: the day the source's first sync was first tried (sync.plan)
    initial_sync_date: datetime | None = None
    sync_overlap_seconds: int = 300
    http_timeout: float = 30.0
    http_max_retries: int = 5
    http_backoff_seconds: float = 1.0
    log_file: str | None = "synclet.log"
    bigblock_base_url: str | None = None
    bigblock_api_key: str | None = None
    bigblock_locations_csv: str | None = None
    bigblock_statuses: frozenset[str] = DEFAULT_BIGBLOCK_STATUSES
    bigblock_cancelled_statuses: frozenset[str] = DEFAULT_BIGBLOCK_CANCELLED_STATUSES
    bigblock_order_prefixes: Mapping[str, str] = field(default_factory=dict)
    bigblock_allow_missing_location: bool = False
    bigblock_push_after_sync: bool = False

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return self.mask(f"Settings({shown})")

    @cached_property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value set, longest first so a secret inside another is masked whole.
        Worked out once: every request's and every log line's text is masked with it."""
        values = [
            self.magento_access_key,
            self.magento_token,
            self.valerdat_password,
            self.bigblock_api_key,
            make_url(self.database_url).password,
        ]
        plain = {str(v) for v in values if v}
        # A secret inside a URL travels percent-encoded; mask that spelling too.
        encoded = {quote(v, safe="") for v in plain} | {quote_plus(v) for v in plain}
        return tuple(sorted(plain | encoded, key=len, reverse=True))

    def mask(self, text: str) -> str:
        """``text`` with every configured secret replaced, for anything that leaves the process."""
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def masked_database_url(self) -> str:
        return make_url(self.database_url).render_as_string(hide_password=True)

    def configured_sources(self) -> list[str]:
        """Names of the sources whose settings are complete, in a stable order."""
        names = []
        if self.magento_base_url:
            names.append("magento")
        if self.magento_rest_url:
            names.append("magento-rest")
        if self.valerdat_base_url:
            names.append("valerdat")
        return names

    def bigblock_configured(self) -> bool:
        return bool(self.bigblock_base_url and self.bigblock_api_key)


def today_utc() -> datetime:
    now = datetime.now(timezone.utc)
    return datetime(now.year, now.month, now.day)


def mask_url(url: str) -> str:
    """A URL fit for printing: password and secret-looking query values replaced."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode(
        [(k, MASK if _SECRET_QUERY_KEYS.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def parse_datetime_setting(name: str, value: str) -> datetime:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM:SS`` (UTC) into a naive UTC datetime."""
    text = value.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    raise ConfigError(f"{name}: {value!r} is not a date (use YYYY-MM-DD or YYYY-MM-DD HH:MM:SS, UTC)")


def load_settings(env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``env_file`` (default ``./.env`` if present) under ``environ`` and validate."""
    environ = os.environ if environ is None else environ
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"--env-file: {env_file} {'is not a file' if env_file.exists() else 'does not exist'}")
    path = env_file if env_file is not None else Path(".env")
    merged = read_env_file(path) if path.is_file() else {}
    merged.update(environ)
    return _Reader(merged).settings()


def database_url_setting(value: str) -> str:
    """``value`` checked and completed as ``DATABASE_URL`` is, reading nothing else: the demo's
    database must not depend on the operator's ``.env``, half filled in or not."""
    return _Reader({"DATABASE_URL": value}).database_url()


def read_env_file(path: Path) -> dict[str, str]:
    """The values of a ``.env`` file as python-dotenv reads them; a line it cannot parse (which it
    would only warn about and skip) is a ConfigError naming the line, never showing its value."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start + 1}); save it as UTF-8") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror})") from None
    broken = next((binding.original for binding in parse_stream(io.StringIO(text)) if binding.error), None)
    if broken is not None:
        raise ConfigError(_unparsable(path, broken))
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def _unparsable(path: Path, line: Original) -> str:
    """The message for a line python-dotenv cannot parse: its number, and the setting it starts
    with when that is one of synclet's (anything else might be a pasted password)."""
    where = f"line {line.line} of {path} cannot be read (write NAME=value, any quote closed)"
    leading = _LEADING_NAME.match(line.string)
    name = leading[1] if leading else None
    return f"{name}: {where}" if name in SETTING_NAMES else where


class _Reader:
    """Turns raw strings into typed, validated values, naming the setting in every error."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value.strip() if value is not None and value.strip() else None

    def integer(self, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}: {raw!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise ConfigError(f"{name}: {value} is out of range (must be {bounds})")
        return value

    def seconds(self, name: str, default: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name}: {raw!r} is not a number of seconds") from None
        if not 0 < value <= MAX_SECONDS:
            raise ConfigError(f"{name}: must be a number of seconds more than 0 and at most {MAX_SECONDS:.0f}")
        return value

    def http_url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is None:
            return None
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{name}: {mask_url(raw)!r} is not an http(s) URL")
        return raw.rstrip("/")

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        value = raw.lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: {raw!r} is not true or false")

    def words(self, name: str, default: frozenset[str]) -> frozenset[str]:
        """A comma-separated set of words, compared case-insensitively (stored lower-case)."""
        raw = self.text(name)
        if raw is None:
            return default
        words = frozenset(word.strip().lower() for word in raw.split(",") if word.strip())
        if not words:
            raise ConfigError(f"{name}: give at least one value, separated by commas")
        return words

    def prefixes(self, name: str) -> dict[str, str]:
        """``source=prefix`` pairs separated by commas, e.g. ``magento=M-,valerdat=V-``."""
        raw = self.text(name)
        if raw is None:
            return {}
        pairs: dict[str, str] = {}
        for part in (p.strip() for p in raw.split(",") if p.strip()):
            source, equals, prefix = part.partition("=")
            source = source.strip()
            if not equals or source not in SOURCE_NAMES:
                raise ConfigError(f"{name}: {part!r} is not source=prefix with a source among {', '.join(SOURCE_NAMES)}")
            pairs[source] = prefix.strip()
        return pairs

    def requires(self, trigger: str, *names: str) -> None:
        """When ``trigger`` is set, each of ``names`` must be set too (and the other way round)."""
        group = (trigger, *names)
        present = [n for n in group if self.text(n) is not None]
        if present and len(present) != len(group):
            missing = next(n for n in group if n not in present)
            raise ConfigError(f"{missing}: required when {present[0]} is set")

    def db_host(self) -> str | None:
        """DB_HOST as a host name or address: a port or user written into it (``127.0.0.1:3306``,
        ``root@db``) would otherwise fail only at connect time, as a host that does not resolve."""
        host = self.text("DB_HOST")
        if host is not None and re.fullmatch(r"[^\s/@:]+:\d+", host):
            raise ConfigError("DB_HOST: a host name or address only; give the port in DB_PORT")
        if host is not None and re.search(r"[\s/@]", host):
            raise ConfigError("DB_HOST: a host name or address only (no user, path or spaces)")
        return host

    def database_url(self) -> str:
        raw = self.text("DATABASE_URL")
        if raw is None and self.text("DB_HOST") is not None:
            for name in ("DB_NAME", "DB_USER"):
                if self.text(name) is None:
                    raise ConfigError(f"{name}: required when DB_HOST is set")
            url = URL.create(
                "mysql+pymysql",
                username=self.text("DB_USER"),
                password=self.values.get("DB_PASSWORD") or None,
                host=self.db_host(),
                port=self.integer("DB_PORT", 3306, 1, 65535),
                database=self.text("DB_NAME"),
                query={"charset": "utf8mb4"},
            )
            return url.render_as_string(hide_password=False)
        if raw is None:
            return SQLITE_DEFAULT_URL
        try:
            url = make_url(raw)
            port = url.port
        except (ArgumentError, ValueError):
            raise ConfigError("DATABASE_URL: not a valid SQLAlchemy URL (e.g. mysql+pymysql://user:pw@host/db)") from None
        backend = url.get_backend_name()
        if backend not in ("sqlite", "mysql", "mariadb"):
            raise ConfigError(f"DATABASE_URL: {backend!r} is not supported (use MariaDB/MySQL or SQLite)")
        if backend == "sqlite":
            if url.database in (None, "", ":memory:"):
                raise ConfigError("DATABASE_URL: an in-memory SQLite database forgets everything at exit; give a file (sqlite:///synclet.db)")
            return url.render_as_string(hide_password=False)
        if "+" not in url.drivername:  # mysql:// means "the driver synclet ships with"
            url = url.set(drivername=f"{backend}+pymysql")
        elif url.get_driver_name() != "pymysql":
            raise ConfigError(f"DATABASE_URL: driver {url.get_driver_name()!r} is not installed (use {backend}+pymysql://…)")
        if not url.database:
            raise ConfigError("DATABASE_URL: no database name (e.g. mysql+pymysql://user:pw@host:3306/synclet)")
        if port is not None and not 1 <= port <= 65535:
            raise ConfigError(f"DATABASE_URL: port {port} is out of range (must be between 1 and 65535)")
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        return url.render_as_string(hide_password=False)

    def log_file(self) -> str | None:
        """The activity log's path (None: disabled); its folder must exist, as it is not made."""
        raw = self.values.get("LOG_FILE")
        if raw is None:
            return "synclet.log"
        path = raw.strip()
        if path and not Path(path).parent.is_dir():
            raise ConfigError(f"LOG_FILE: the folder of {path!r} does not exist")
        return path or None

    def settings(self) -> Settings:
        self.requires("MAGENTO_BASE_URL", "MAGENTO_ACCESS_KEY")
        self.requires("MAGENTO_REST_URL", "MAGENTO_TOKEN")
        self.requires("VALERDAT_BASE_URL", "VALERDAT_CUSTOMER", "VALERDAT_USERNAME", "VALERDAT_PASSWORD")
        self.requires("BIGBLOCK_BASE_URL", "BIGBLOCK_API_KEY")
        if self.boolean("BIGBLOCK_PUSH_AFTER_SYNC", False) and self.text("BIGBLOCK_BASE_URL") is None:
            raise ConfigError("BIGBLOCK_PUSH_AFTER_SYNC: true, but Big Block is not configured (set BIGBLOCK_BASE_URL and BIGBLOCK_API_KEY)")
        initial = self.text("INITIAL_SYNC_DATE")
        return Settings(
            database_url=self.database_url(),
            magento_base_url=self.http_url("MAGENTO_BASE_URL"),
            magento_access_key=self.text("MAGENTO_ACCESS_KEY"),
            magento_page_size=self.integer("MAGENTO_PAGE_SIZE", 50, 1, 1000),
            magento_rest_url=self.http_url("MAGENTO_REST_URL"),
            magento_token=self.text("MAGENTO_TOKEN"),
            magento_rest_page_size=self.integer("MAGENTO_REST_PAGE_SIZE", 100, 1, 300),
            valerdat_base_url=self.http_url("VALERDAT_BASE_URL"),
            valerdat_customer=self.text("VALERDAT_CUSTOMER"),
            valerdat_username=self.text("VALERDAT_USERNAME"),
            valerdat_password=self.values.get("VALERDAT_PASSWORD") or None,
            valerdat_concurrency=self.integer("VALERDAT_CONCURRENCY", 8, 1, 64),
            magento_rest_concurrency=self.integer("MAGENTO_REST_CONCURRENCY", 4, 1, 16),
            fetch_ahead_pages=self.integer("FETCH_AHEAD_PAGES", 2, 0, 16),
            initial_sync_date=parse_datetime_setting("INITIAL_SYNC_DATE", initial) if initial else None,
            sync_overlap_seconds=self.integer("SYNC_OVERLAP_SECONDS", 300, 0, MAX_OVERLAP_SECONDS),
            http_timeout=self.seconds("HTTP_TIMEOUT", 30.0),
            http_max_retries=self.integer("HTTP_MAX_RETRIES", 5, 0, 20),
            http_backoff_seconds=self.seconds("HTTP_BACKOFF_SECONDS", 1.0),
            log_file=self.log_file(),
            bigblock_base_url=self.http_url("BIGBLOCK_BASE_URL"),
            bigblock_api_key=self.text("BIGBLOCK_API_KEY"),
            bigblock_locations_csv=self.text("BIGBLOCK_LOCATIONS_CSV"),
            bigblock_statuses=self.words("BIGBLOCK_STATUSES", DEFAULT_BIGBLOCK_STATUSES),
            bigblock_cancelled_statuses=self.words("BIGBLOCK_CANCELLED_STATUSES", DEFAULT_BIGBLOCK_CANCELLED_STATUSES),
            bigblock_order_prefixes=self.prefixes("BIGBLOCK_ORDER_PREFIXES"),
            bigblock_allow_missing_location=self.boolean("BIGBLOCK_ALLOW_MISSING_LOCATION", False),
            bigblock_push_after_sync=self.boolean("BIGBLOCK_PUSH_AFTER_SYNC", False),
        )


#: Every setting's name, as the environment and a ``.env`` file spell it.
SETTING_NAMES = frozenset({f.name.upper() for f in fields(Settings)} | {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD"})


def overlap(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.sync_overlap_seconds)
