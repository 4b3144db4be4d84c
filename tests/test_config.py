"""Settings: defaults, the .env file, DB_* pieces, validation naming the setting, secret masking."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from synclet.config import SQLITE_DEFAULT_URL, load_settings, mask_url
from synclet.errors import ConfigError

from conftest import run_cli

SHOP = {"MAGENTO_BASE_URL": "https://shop.example/onesaas_connect/index/index", "MAGENTO_ACCESS_KEY": "k3y-s3cr3t"}


def test_defaults_use_the_embedded_database_and_today() -> None:
    settings = load_settings(environ={})
    assert settings.database_url == SQLITE_DEFAULT_URL
    assert settings.initial_sync_date is None  # the day the first sync is first tried (sync.plan)
    assert (settings.magento_page_size, settings.magento_rest_page_size, settings.valerdat_concurrency) == (50, 100, 8)
    assert (settings.sync_overlap_seconds, settings.http_timeout, settings.http_max_retries) == (300, 30.0, 5)
    assert settings.log_file == "synclet.log"
    assert settings.configured_sources() == []


def test_db_pieces_build_a_mariadb_url_with_utf8mb4() -> None:
    settings = load_settings(environ={"DB_HOST": "db.local", "DB_NAME": "shop", "DB_USER": "sync", "DB_PASSWORD": "p@ss/w"})
    assert settings.database_url == "mysql+pymysql://sync:p%40ss%2Fw@db.local:3306/shop?charset=utf8mb4"
    assert "p%40ss" not in settings.masked_database_url() and "***" in settings.masked_database_url()


def test_database_url_wins_over_pieces_and_gets_utf8mb4() -> None:
    settings = load_settings(environ={"DATABASE_URL": "mysql+pymysql://u@h/db", "DB_HOST": "ignored"})
    assert settings.database_url == "mysql+pymysql://u@h/db?charset=utf8mb4"


def test_a_driverless_mysql_url_gets_the_driver_synclet_ships_with() -> None:
    settings = load_settings(environ={"DATABASE_URL": "mysql://u:pw@h:3307/db"})
    assert settings.database_url == "mysql+pymysql://u:pw@h:3307/db?charset=utf8mb4"


def test_an_unwritable_log_file_exits_2(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = run_cli("status", env={"LOG_FILE": str(tmp_path / "taken")})  # a folder, not a file
    assert result.exit_code == 2 and result.output.startswith("Error: LOG_FILE: cannot write")


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("MAGENTO_PAGE_SIZE=20\nSYNC_OVERLAP_SECONDS=60\nINITIAL_SYNC_DATE=2025-07-01 07:41:16\n")
    settings = load_settings(env_file, environ={"MAGENTO_PAGE_SIZE": "30"})
    assert settings.magento_page_size == 30
    assert settings.sync_overlap_seconds == 60
    assert settings.initial_sync_date == datetime(2025, 7, 1, 7, 41, 16)


def test_dot_env_in_the_working_directory_is_read() -> None:
    Path(".env").write_text("LOG_FILE=\n")
    assert load_settings(environ={}).log_file is None


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"MAGENTO_PAGE_SIZE": "0"}, "MAGENTO_PAGE_SIZE"),
        ({"MAGENTO_PAGE_SIZE": "fifty"}, "MAGENTO_PAGE_SIZE"),
        ({"MAGENTO_REST_PAGE_SIZE": "301"}, "MAGENTO_REST_PAGE_SIZE"),
        ({"INITIAL_SYNC_DATE": "2025-13-01"}, "INITIAL_SYNC_DATE"),
        ({"INITIAL_SYNC_DATE": "yesterday"}, "INITIAL_SYNC_DATE"),
        ({"SYNC_OVERLAP_SECONDS": "-1"}, "SYNC_OVERLAP_SECONDS"),
        ({"SYNC_OVERLAP_SECONDS": "99999999999"}, "SYNC_OVERLAP_SECONDS"),  # reached back before year 1
        ({"HTTP_TIMEOUT": "0"}, "HTTP_TIMEOUT"),
        ({"HTTP_TIMEOUT": "1e20"}, "HTTP_TIMEOUT"),  # beyond what a socket's timeout can hold
        ({"HTTP_BACKOFF_SECONDS": "nan"}, "HTTP_BACKOFF_SECONDS"),
        ({"HTTP_BACKOFF_SECONDS": "1e300"}, "HTTP_BACKOFF_SECONDS"),
        ({"HTTP_MAX_RETRIES": "x"}, "HTTP_MAX_RETRIES"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql+mysqldb://u@h/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql+pymysql://root@127.0.0.1"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql+pymysql://root@127.0.0.1:99999/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql+pymysql://root@127.0.0.1:port/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite://"}, "DATABASE_URL"),
        ({"DATABASE_URL": "sqlite:///:memory:"}, "DATABASE_URL"),
        ({"LOG_FILE": "/nonexistent-folder/synclet.log"}, "LOG_FILE"),
        ({"DB_HOST": "h", "DB_USER": "u"}, "DB_NAME"),
        ({"DB_HOST": "h", "DB_NAME": "n", "DB_PORT": "70000", "DB_USER": "u"}, "DB_PORT"),
        ({"DB_HOST": "127.0.0.1:3306", "DB_NAME": "n", "DB_USER": "u"}, "DB_HOST"),
        ({"DB_HOST": "root@db.local", "DB_NAME": "n", "DB_USER": "u"}, "DB_HOST"),
        ({"MAGENTO_BASE_URL": "shop.example/onesaas", "MAGENTO_ACCESS_KEY": "k"}, "MAGENTO_BASE_URL"),
        ({"MAGENTO_BASE_URL": SHOP["MAGENTO_BASE_URL"]}, "MAGENTO_ACCESS_KEY"),
        ({"MAGENTO_ACCESS_KEY": "k"}, "MAGENTO_BASE_URL"),
        ({"VALERDAT_BASE_URL": "https://v.example", "VALERDAT_CUSTOMER": "c"}, "VALERDAT_USERNAME"),
        ({"BIGBLOCK_BASE_URL": "https://bb.example/api"}, "BIGBLOCK_API_KEY"),
        ({"BIGBLOCK_ALLOW_MISSING_LOCATION": "maybe"}, "BIGBLOCK_ALLOW_MISSING_LOCATION"),
        ({"BIGBLOCK_PUSH_AFTER_SYNC": "2"}, "BIGBLOCK_PUSH_AFTER_SYNC"),
        ({"BIGBLOCK_PUSH_AFTER_SYNC": "true"}, "BIGBLOCK_PUSH_AFTER_SYNC"),
        ({"BIGBLOCK_STATUSES": " , "}, "BIGBLOCK_STATUSES"),
        ({"BIGBLOCK_ORDER_PREFIXES": "shopify=S-"}, "BIGBLOCK_ORDER_PREFIXES"),
        ({"BIGBLOCK_ORDER_PREFIXES": "magento"}, "BIGBLOCK_ORDER_PREFIXES"),
        ({"MAGENTO_REST_CONCURRENCY": "0"}, "MAGENTO_REST_CONCURRENCY"),
        ({"FETCH_AHEAD_PAGES": "-1"}, "FETCH_AHEAD_PAGES"),
    ],
)
def test_bad_values_name_the_setting(environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    assert str(caught.value).startswith(f"{named}:")
    assert "\n" not in str(caught.value)


def test_big_block_settings_are_read_with_their_defaults() -> None:
    defaults = load_settings(environ={})
    assert defaults.bigblock_statuses == {"pending", "processing", "confirmed"}
    assert not defaults.bigblock_configured() and not defaults.bigblock_push_after_sync
    settings = load_settings(environ={
        "BIGBLOCK_BASE_URL": "https://bb.example/api/", "BIGBLOCK_API_KEY": "k",
        "BIGBLOCK_STATUSES": "Processing, confirmed", "BIGBLOCK_ORDER_PREFIXES": "magento=M-, valerdat=PO-",
        "BIGBLOCK_ALLOW_MISSING_LOCATION": "yes", "BIGBLOCK_PUSH_AFTER_SYNC": "true",
    })
    assert settings.bigblock_configured() and settings.bigblock_base_url == "https://bb.example/api"
    assert settings.bigblock_statuses == {"processing", "confirmed"}
    assert settings.bigblock_order_prefixes == {"magento": "M-", "valerdat": "PO-"}
    assert settings.bigblock_allow_missing_location and settings.bigblock_push_after_sync


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--env-file: .*nope.env does not exist"):
        load_settings(tmp_path / "nope.env", environ={})
    with pytest.raises(ConfigError, match=f"--env-file: {tmp_path} is not a file"):
        load_settings(tmp_path, environ={})


def test_bad_configuration_exits_2_before_any_work() -> None:
    result = run_cli("sync", env={**SHOP, "MAGENTO_PAGE_SIZE": "0"})
    assert result.exit_code == 2
    assert result.output.strip() == "Error: MAGENTO_PAGE_SIZE: 0 is out of range (must be between 1 and 1000)"
    assert not Path("synclet.db").exists()


def test_sync_without_a_source_exits_2() -> None:
    result = run_cli("sync", env={})
    assert result.exit_code == 2
    assert "no source configured" in result.output and "MAGENTO_BASE_URL" in result.output


def test_bad_since_is_a_usage_error() -> None:
    result = run_cli("sync", "--since", "last tuesday", env=SHOP)
    assert result.exit_code == 2
    assert "--since" in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://s/onesaas_connect/index/index?AccessKey=abc&Action=Orders", "https://s/onesaas_connect/index/index?AccessKey=***&Action=Orders"),
        ("https://user:pw@s/x?token=t&page=2", "https://user:***@s/x?token=***&page=2"),
        ("https://s/x?api_key=1&PageSize=50", "https://s/x?api_key=***&PageSize=50"),
    ],
)
def test_mask_url(url: str, expected: str) -> None:
    assert mask_url(url) == expected


def test_settings_never_show_secrets() -> None:
    settings = load_settings(environ={**SHOP, "DATABASE_URL": "mysql+pymysql://u:dbpw!x@h/db"})
    shown = repr(settings) + settings.masked_database_url()
    assert "k3y-s3cr3t" not in shown and "dbpw!x" not in shown
    assert settings.mask("GET ?AccessKey=k3y-s3cr3t failed") == "GET ?AccessKey=*** failed"


BROKEN_LINES = (
    'MAGENTO_BASE_URL=http://127.0.0.1:1/onesaas\nMAGENTO_ACCESS_KEY=k\nDATABASE_URL=sqlite:///x.db\n'
    'INITIAL_SYNC_DATE="2026-12-01\nMAGENTO_PAGE_SIZE 5\nHTTP_MAX_RETRIES=0\n'
)


@pytest.mark.parametrize("command", [["test"], ["sync"], ["status"], ["push", "bigblock"], ["init"]])
def test_an_unparsable_env_file_line_exits_2_naming_file_line_and_setting(
        command: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """python-dotenv only warns and skips such a line: the sync would run from today."""
    (tmp_path / "bad.env").write_text(BROKEN_LINES)
    result = run_cli("--env-file", "bad.env", *command)
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "Error: INITIAL_SYNC_DATE: line 4 of bad.env cannot be read (write NAME=value, any quote closed)"]
    assert not any(record.name.startswith("dotenv") for record in caplog.records)
    assert "could not parse" not in result.output
    assert not Path("x.db").exists()


def test_an_unparsable_dot_env_line_never_shows_its_value() -> None:
    Path(".env").write_text("LOG_FILE=\n# the password\nVALERDAT_PASSWORD='pa$$ w0rd\n")
    result = run_cli("status")
    assert result.exit_code == 2
    assert result.output == "Error: VALERDAT_PASSWORD: line 3 of .env cannot be read (write NAME=value, any quote closed)\n"


def test_an_unparsable_line_of_no_known_setting_is_named_by_its_number_only() -> None:
    """What starts the line may be a pasted password, not a name."""
    Path(".env").write_text("LOG_FILE=\n  hunter2 x\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={})
    assert str(caught.value) == "line 2 of .env cannot be read (write NAME=value, any quote closed)"


def test_an_env_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "latin1.env").write_bytes("MAGENTO_ACCESS_KEY=clé\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "latin1.env", environ={})
    assert str(caught.value).startswith(f"{tmp_path / 'latin1.env'}: not UTF-8 text")
    assert "cl" not in str(caught.value).split(":", 1)[1]


def test_a_valid_env_file_keeps_dotenv_features(tmp_path: Path) -> None:
    """Quotes, export, comments and ${VAR} expansion still read as python-dotenv reads them."""
    (tmp_path / "ok.env").write_text(
        "# comment\nexport DB_HOST=db.local\nDB_NAME='shop'\nDB_USER=\"sync\"  # inline\n"
        "SECRET=s3\nDB_PASSWORD=${SECRET}x\nLOG_FILE=\n")
    settings = load_settings(tmp_path / "ok.env", environ={})
    assert settings.database_url == "mysql+pymysql://sync:s3x@db.local:3306/shop?charset=utf8mb4"


def test_a_watch_interval_beyond_a_day_is_refused_before_any_work() -> None:
    """1e20 seconds overflowed the wait after the first cycle, in a traceback."""
    result = run_cli("sync", "--watch", "--interval", "1e20", env={})
    assert result.exit_code == 2 and "'--interval'" in result.output and "86400" in result.output


def test_no_source_and_no_env_file_says_where_it_looked(tmp_path: Path) -> None:
    """Cron starts in the home folder: the settings in synclet's .env are there, not here."""
    result = run_cli("sync", env={})
    assert result.exit_code == 2 and f"there is no .env in {tmp_path} (from cron: cd to" in result.output
    Path(".env").write_text("LOG_FILE=\n")
    assert "there is no .env" not in run_cli("sync", env={}).output
