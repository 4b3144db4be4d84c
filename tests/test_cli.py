"""The command line as a user meets it: help for every command, the entry points, the demo."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from synclet.cli import main
from synclet.config import load_settings
from synclet.sandbox import Sandbox

from conftest import MARIADB_SERVER, run_cli

ROOT = Path(__file__).resolve().parent.parent
#: A source nobody answers for, so that `test` has one configured and tries it once, quickly.
SHOP_FOR_NOBODY = {"MAGENTO_BASE_URL": "http://127.0.0.1:1/onesaas", "MAGENTO_ACCESS_KEY": "unused-key",
                   "HTTP_MAX_RETRIES": "0"}


@pytest.mark.parametrize("name", sorted(main.commands))
def test_every_command_has_help(name: str) -> None:
    command = main.commands[name]
    assert command.help and len(command.help.strip()) > 20
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            assert parameter.help, f"{name} {parameter.opts} has no help text"
    result = run_cli(name, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output


def test_help_names_option_values_as_the_readme_does() -> None:
    """`--interval FLOAT RANGE` told nothing of the unit; `test` checks Big Block too."""
    assert "--interval SECONDS" in run_cli("sync", "--help").output
    assert "Big Block" in run_cli("test", "--help").output
    assert "unless already in Big Block" in " ".join(run_cli("push", "bigblock", "--help").output.split())


def run_python(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAGENTO", "DATABASE_URL", "DB_", "VALERDAT", "BIGBLOCK"))}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def run_synclet(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python synclet.py ARGS`` in a process of its own, with ``env`` added to the clean environment."""
    return subprocess.run([sys.executable, str(ROOT / "synclet.py"), *args], cwd=cwd, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)


def test_python_m_synclet_the_script_and_the_installed_command_agree(tmp_path: Path) -> None:
    as_module = run_python("-m", "synclet", "--version", cwd=ROOT)
    as_script = run_python(str(ROOT / "synclet.py"), "--version", cwd=tmp_path)
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["synclet"]
    module, function = target.split(":")
    as_command = run_python("-c", f"import sys; sys.argv[1:] = ['--version']; from {module} import {function}; {function}()",
                            cwd=ROOT)
    assert as_module.returncode == as_script.returncode == as_command.returncode == 0
    assert as_module.stdout.strip() == as_script.stdout.strip() == as_command.stdout.strip()
    assert "synclet" in as_module.stdout


def test_the_command_imports_with_the_collector_off_and_leaves_it_on() -> None:
    """What the imports made is frozen out of the collector's walks; what a run makes is collected."""
    code = ("import gc, sys; sys.argv[1:] = ['--version']; from synclet.startup import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(gc.isenabled(), gc.get_freeze_count())")
    result = run_python("-c", code, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    enabled, frozen = result.stdout.split()[-2:]
    assert enabled == "True" and int(frozen) > 10_000  # the imports' objects (about 90,000), not a handful


def test_demo_runs_on_a_fresh_directory_and_again(tmp_path: Path) -> None:
    first = run_python(str(ROOT / "synclet.py"), "demo", "--orders", "120", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "initial sync success" in first.stdout and "stored" in first.stdout
    assert (tmp_path / "synclet-demo.db").exists() and (tmp_path / "synclet-demo.log").exists()
    assert not (tmp_path / "synclet.db").exists()  # the database a real `sync` uses stays untouched
    assert not (tmp_path / "synclet.log").exists()  # and so does its activity log
    second = run_python(str(ROOT / "synclet.py"), "demo", "--orders", "120", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "incremental sync success, 0 added, 0 updated" in second.stdout
    assert first.stderr == second.stderr == ""


def test_sandbox_on_a_port_in_use_says_so_in_one_line() -> None:
    """A second sandbox on the default port ended in an OSError traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("sandbox", "--port", str(port))
    assert result.exit_code == 2
    assert result.output == (f"Error: --port: cannot listen on 127.0.0.1:{port} (Address already in use); "
                             "give another, or 0 for a free one\n")


def test_demo_does_not_read_the_operators_env_file() -> None:
    """A .env filled in halfway stopped the demo with an error about a setting it never uses."""
    Path(".env").write_text("MAGENTO_BASE_URL=https://shop.example.com/onesaas_connect/index/index\nMAGENTO_PAGE_SIZE=0\n")
    result = run_cli("demo", "--orders", "20")
    assert result.exit_code == 0, result.output
    assert "initial sync success" in result.output


def test_demo_into_mariadb_never_prints_its_password(mariadb_url: str) -> None:
    """Its closing words named the database by the URL as given, password and all."""
    database = make_url(mariadb_url).database
    user = f"demo_{database[-12:]}"
    admin = create_engine(MARIADB_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'demo-s3cret'"))
        conn.execute(text(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
    try:
        url = make_url(mariadb_url).set(username=user, password="demo-s3cret").render_as_string(hide_password=False)
        result = run_cli("demo", "--orders", "20", "--database-url", url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP USER '{user}'@'%'"))
        admin.dispose()
    assert result.exit_code == 0, result.output
    assert "demo-s3cret" not in result.output and f"{user}:***@" in result.output
    assert "sqlite3" not in result.output  # no SQLite file to open


@pytest.mark.parametrize("command", [["test"], ["sync", "--dry-run"], ["sync"]])
def test_a_key_echoed_in_a_server_error_is_masked(command: list[str], tmp_path: Path) -> None:
    """A store may quote the key back in its error body; no command prints it."""
    with Sandbox(orders=5, seed=3) as shop:
        shop.arm_fault(status=200, times=None, body=json.dumps({"Error": f"Unknown store for key {shop.access_key}"}))
        result = run_cli(*command, env={**shop.env(), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LOG_FILE": "log"})
    assert result.exit_code == 1
    assert "Unknown store for key ***" in result.output and shop.access_key not in result.output
    assert shop.access_key not in Path("log").read_text()


def test_test_refuses_a_database_with_another_programs_table_named_like_ours(database_url: str) -> None:
    """`init` and `sync` refuse such a database; `test` must not call it empty and pass."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, foo VARCHAR(10))"))
    engine.dispose()
    env = {"DATABASE_URL": database_url, **SHOP_FOR_NOBODY}
    checked = run_cli("test", env=env)
    initialised = run_cli("init", env=env)
    assert checked.exit_code == initialised.exit_code == 1
    reason = initialised.output.removeprefix("Error: ").strip()
    assert reason.startswith("the database already has tables named like synclet's (orders)")
    database_line = next(line for line in checked.output.splitlines() if "database" in line)
    masked = load_settings(environ=env).masked_database_url()
    assert database_line == f"✗ database: {masked}: {reason}"
    shown = run_cli("status", env=env)
    assert shown.exit_code == 0 and f"Warning: {reason}" in shown.output


def test_an_unreachable_database_is_named_with_its_password_masked() -> None:
    env = {"DATABASE_URL": "mysql+pymysql://synclet:pw-s3cret@127.0.0.1:1/shop", "LOG_FILE": "log"}
    result = run_cli("test", env=env)
    assert result.exit_code == 1
    database_line = next(line for line in result.output.splitlines() if "database" in line)
    assert database_line.startswith("✗ database: mysql+pymysql://synclet:***@127.0.0.1:1/shop?charset=utf8mb4: "
                                    "cannot reach the database: (2003)")
    assert "pw-s3cret" not in result.output and "pw-s3cret" not in Path("log").read_text()


def test_status_reports_an_unreachable_database_and_exits_0_as_the_contract_says() -> None:
    env = {"DATABASE_URL": "mysql+pymysql://synclet:pw-s3cret@127.0.0.1:1/shop", "LOG_FILE": "log"}
    shown = run_cli("status", env=env)
    database, reason = shown.output.splitlines()
    assert shown.exit_code == 0 and database == "Database: mysql+pymysql://synclet:***@127.0.0.1:1/shop?charset=utf8mb4"
    assert reason.startswith("Cannot read it: cannot reach the database: (2003)")
    as_json = run_cli("status", "--json", env=env)
    assert as_json.exit_code == 0
    report = json.loads(as_json.output)
    assert report["error"].startswith("cannot reach the database: (2003)") and report["sources"] == []
    assert "pw-s3cret" not in shown.output + as_json.output + Path("log").read_text()


def test_status_refuses_an_unknown_source_as_sync_does() -> None:
    synced = run_cli("sync", "--source", "nosuch", env={})
    shown = run_cli("status", "--source", "nosuch", env={})
    assert synced.exit_code == shown.exit_code == 2
    assert shown.output == synced.output == "Error: --source: unknown source 'nosuch' (known: magento, magento-rest, valerdat)\n"
    assert not Path("synclet.db").exists()


@pytest.mark.parametrize("command", [["sync"], ["push", "bigblock"]])
def test_vv_shows_each_request_at_debug_level_with_secrets_masked(command: list[str], tmp_path: Path) -> None:
    with Sandbox(orders=5, seed=3) as shop:
        env = {**shop.env(bigblock=True), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "LOG_FILE": "log",
               "BIGBLOCK_ALLOW_MISSING_LOCATION": "true"}
        assert run_cli("sync", env=env).exit_code == 0
        # As a user runs it: a sync may read its pages in a forked child, whose stderr is the process's.
        verbose = run_synclet("-vv", *command, env=env, cwd=tmp_path)  # first: a push with nothing to do sends nothing
        quiet = run_synclet("-v", *command, env=env, cwd=tmp_path)
    assert verbose.returncode == quiet.returncode == 0, verbose.stderr
    debug = [line for line in verbose.stderr.splitlines() if " - DEBUG - " in line]
    assert debug and all(re.search(r" - DEBUG - (GET|POST|PUT|DELETE) http://127\.0\.0\.1:\d+/\S*: HTTP \d{3} in \d+ ms$", line)
                         for line in debug), verbose.stderr
    assert " - DEBUG - " not in quiet.stderr and " - DEBUG - " not in Path("log").read_text()
    for secret in (env["MAGENTO_ACCESS_KEY"], env["BIGBLOCK_API_KEY"]):
        assert secret not in verbose.stdout + verbose.stderr
