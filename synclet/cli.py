"""The command line: parse, build Settings, call one function, print, choose the exit code.

Every ``SyncletError`` becomes a one-line ``Error: …`` on stderr and its exit code here, and
nowhere else.
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import itertools
import json
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError

from synclet import __version__, db, report, store
from synclet.config import Settings, load_settings, parse_datetime_setting
from synclet.errors import EXIT_FAILED, EXIT_OK, ConfigError, DatabaseError, LockHeld, SyncletError
from synclet.http import HttpClient
from synclet.locks import SourceLock
from synclet.logs import configure as configure_logging
from synclet.progress import for_terminal
from synclet.sources import Source, build_source, check_known, resumes_initial
from synclet.sync import RunResult, SyncOptions, summary, sync_source, utc_now

if TYPE_CHECKING:  # the Big Block modules load only for commands that use them: a sync starts faster
    from sqlalchemy import Engine

    from synclet.push import PushOptions

F = TypeVar("F", bound=Callable[..., Any])
MAX_WATCH_BACKOFF_SECONDS = 600.0
DEMO_DATABASE_URL = "sqlite:///synclet-demo.db"
IDLE_LOG_SECONDS = 3600.0  # under --watch, how often a stretch of idle cycles is written to the log
HOW_TO_CONFIGURE = ("set MAGENTO_BASE_URL and MAGENTO_ACCESS_KEY, MAGENTO_REST_URL and MAGENTO_TOKEN, or the four "
                    "VALERDAT_* settings (see .env.example)")
log = logging.getLogger(__name__)


class Context:
    """What the group's options give every command: settings are read on first use."""

    def __init__(self, env_file: Path | None, verbosity: int) -> None:
        self.env_file = env_file
        self.verbosity = verbosity
        self._settings: Settings | None = None

    def mask(self, text: str) -> str:
        """``text`` with the configured secrets masked: a server may echo a key in its error."""
        return self._settings.mask(text) if self._settings is not None else text

    def how_to_configure(self) -> str:
        """What to set for a source, and where no .env was found: cron starts in the home folder."""
        if self.env_file is None and not Path(".env").is_file():
            return f"{HOW_TO_CONFIGURE}; there is no .env in {Path.cwd()} (from cron: cd to synclet's folder first, or give --env-file)"
        return HOW_TO_CONFIGURE

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(self.env_file)
            try:
                configure_logging(settings.log_file, settings.mask, self.verbosity)
            except OSError as error:
                raise ConfigError(f"LOG_FILE: cannot write {settings.log_file!r} ({error.strerror})") from None
            self._settings = settings
        return self._settings


def handles_errors(command: F) -> F:
    """Turn synclet's errors into one line on stderr and the exit code of the contract."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SyncletError as error:
            context = click.get_current_context().find_object(Context)
            click.echo(f"Error: {context.mask(str(error)) if context else error}", err=True)
            sys.exit(error.exit_code)

    return wrapper  # type: ignore[return-value]


def stdin_is_terminal() -> bool:
    """Whether a person can answer a question (not cron, not a pipe)."""
    return sys.stdin.isatty()


def parse_since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime_setting("--since", value)
    except ConfigError as error:
        raise click.BadParameter(str(error).split(": ", 1)[1]) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--env-file", type=click.Path(path_type=Path), help="Read settings from this file instead of ./.env.")
@click.option("-v", "--verbose", count=True, help="Show the activity log on stderr (-vv adds each HTTP request and its time).")
@click.version_option(__version__, prog_name="synclet")
@click.pass_context
def main(ctx: click.Context, env_file: Path | None, verbose: int) -> None:
    """synclet: sync orders from Magento (OneSaas or REST) and Valerdat into your own database."""
    ctx.obj = Context(env_file, verbose)


@main.command()
@click.pass_obj
@handles_errors
def init(obj: Context) -> None:
    """Create or upgrade the database schema to the newest migration (safe to repeat)."""
    settings = obj.settings
    before, after = db.upgrade(db.connect(settings.database_url))
    where = settings.masked_database_url()
    if before == after:
        click.echo(f"Database {where} is up to date (schema {after}).")
    else:
        click.echo(f"Database {where} upgraded from {before or 'empty'} to schema {after}.")


@main.command()
@click.pass_obj
@handles_errors
def test(obj: Context) -> None:
    """Check the database, every configured source and Big Block if set; one line each."""
    settings = obj.settings
    checks: list[tuple[str, Callable[[], str]]] = [("database", lambda: _check_database(settings))]
    checks += [(name, functools.partial(_check_source, settings, name)) for name in settings.configured_sources()]
    if settings.bigblock_configured():
        checks.append(("bigblock", lambda: _check_bigblock(settings)))
    failures = 0
    for name, check in checks:
        try:
            click.echo(f"✓ {name}: {check()}")
        except SyncletError as error:
            failures += 1
            click.echo(f"✗ {name}: {settings.mask(str(error))}")
    if not settings.configured_sources():
        failures += 1
        click.echo(f"✗ sources: none configured ({obj.how_to_configure()})")
    sys.exit(EXIT_FAILED if failures else EXIT_OK)


def _check_database(settings: Settings) -> str:
    """The database's URL (password masked) and what ``sync`` will do with its schema; every
    failure names the URL too, the first thing to check when it is wrong."""
    where = settings.masked_database_url()
    engine = db.connect(settings.database_url)
    try:
        state, revision = db.schema_state(engine)
        if state == "empty":
            db.check_foreign_tables(engine)  # another program's `orders` table is no place to create ours
    except DatabaseError as error:
        raise DatabaseError(f"{where}: {error}") from None
    finally:
        engine.dispose()
    if state == "unknown":
        raise DatabaseError(f"{where}: schema {revision} is newer than this synclet or not synclet's")
    advice = {"empty": "empty: `sync` or `init` will create the schema",
              "outdated": f"schema {revision}: the next `sync` or `init` upgrades it to {db.head_revision()}"}
    return f"{where} ({advice.get(state, f'schema {revision}')})"


def _check_source(settings: Settings, name: str) -> str:
    http = HttpClient.from_settings(settings)
    try:
        return build_source(name, settings, http).check()
    finally:
        http.close()


def _check_bigblock(settings: Settings) -> str:
    from synclet.push import bigblock_client, load_locations

    locations = load_locations(settings)
    with bigblock_client(settings) as bigblock:
        answer = bigblock.check()
    if locations.path is None:
        return f"{answer}; no locations file, orders go without locations"
    return f"{answer}; {len(locations.by_sku):,} SKUs located in {locations.path}"


@main.command()
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Sync only this source (repeatable).")
@click.option("--force-initial", is_flag=True, help="Re-read every order created since INITIAL_SYNC_DATE/--since.")
@click.option("--since", callback=parse_since, metavar="DATETIME", help="Start of the window (UTC, YYYY-MM-DD[ HH:MM:SS]).")
@click.option("--dry-run", is_flag=True, help="Fetch and map, print what would change, write nothing.")
@click.option("--watch", is_flag=True, help="Repeat every --interval seconds until interrupted.")
@click.option("--interval", type=click.FloatRange(min=1, max=86400), default=10.0, show_default=True, metavar="SECONDS",
              help="Seconds between --watch cycles.")
@click.pass_obj
@handles_errors
def sync(obj: Context, sources: tuple[str, ...], force_initial: bool, since: datetime | None, dry_run: bool, watch: bool, interval: float) -> None:
    """Sync each configured source (or those named) into the database."""
    settings = obj.settings
    names = list(dict.fromkeys(sources)) or settings.configured_sources()  # a source named twice syncs once
    if not names:
        raise ConfigError(f"no source configured: {obj.how_to_configure()}")
    if settings.bigblock_push_after_sync and not dry_run:
        from synclet.push import load_locations

        load_locations(settings)  # a locations file the push cannot use stops the sync before it starts
    options = SyncOptions(force_initial=force_initial, since=since, dry_run=dry_run)
    with stop_on_signals() as stop, open_sources(settings, names, stop) as opened:
        if not watch:
            code, results = run_sync(settings, opened, options, stop)
            sys.exit(max(code, push_after_sync(settings, opened, results, options, stop)))
        watch_sources(settings, opened, options, stop, interval)
    click.echo("Stopped watching.", err=True)


def watch_sources(settings: Settings, sources: list[Source], options: SyncOptions, stop: threading.Event,
                  interval: float) -> None:
    """Sync every ``interval`` seconds until ``stop``; back off after failed cycles.

    Sources (and so a login's token) live across cycles. A cycle that changes nothing prints its
    one console line, but reaches the log file only when it starts a quiet stretch and then about
    once an hour, so a 10-second poll does not fill the log; so do the orders the push holds back."""
    failures = 0
    idle_streak: Counter[str] = Counter()
    heartbeat = max(1, round(IDLE_LOG_SECONDS / interval))
    for cycle in itertools.count():
        if stop.is_set():
            break
        quiet = {name for name, streak in idle_streak.items() if streak % heartbeat}
        _, results = run_sync(settings, sources, dataclasses.replace(options, quiet_if_idle=frozenset(quiet)), stop)
        push_after_sync(settings, sources, results, options, stop, quiet_repeats=bool(cycle % heartbeat))
        for result in results:
            idle_streak[result.source] = idle_streak[result.source] + 1 if result.idle else 0
        # Back off only when a source could not finish; rejects waiting for a fix are not a reason
        # to poll less often (the exit code still says they wait).
        finished = len(results) == len(sources) and all(result.status in ("success", "dry-run") for result in results)
        failures = 0 if finished else failures + 1
        if finished:  # --force-initial and --since hold until a cycle has done what they ask
            options = SyncOptions(dry_run=options.dry_run)
        wait = min(interval * 2**failures, MAX_WATCH_BACKOFF_SECONDS) if failures else interval
        if failures and not stop.is_set():
            log.warning("A sync cycle failed (%d in a row); next cycle in %.0fs", failures, wait)
        stop.wait(wait)


@contextlib.contextmanager
def open_sources(settings: Settings, names: list[str], stop: threading.Event) -> Iterator[list[Source]]:
    """Each named source with an HTTP client of its own (one source's Retry-After must not hold
    back another) that gives up waiting when ``stop`` is set; all checked before any work starts
    and closed together."""
    with contextlib.ExitStack() as stack:
        sources = []
        for name in names:
            http = HttpClient.from_settings(settings, stop)
            stack.callback(http.close)
            sources.append(build_source(name, settings, http))
        yield sources


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Ctrl-C or SIGTERM ask the run to stop after the page in flight; a second Ctrl-C aborts."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        how = "Ctrl-C again to abort" if signum == signal.SIGINT else "asked by SIGTERM"
        click.echo(f"Stopping after the page in flight ({how})…", err=True)

    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.signal(signum, request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_sync(settings: Settings, sources: list[Source], options: SyncOptions,
             stop: threading.Event | None = None) -> tuple[int, list[RunResult]]:
    """Sync ``sources`` one after the other; the worst outcome decides the exit code."""
    engine = db.connect(settings.database_url)
    codes = []
    results = []
    progress = for_terminal()
    try:
        for source in sources:
            if stop is not None and stop.is_set():
                break
            try:
                result = sync_source(engine, source, settings, options, progress, click.echo, stop)
            except (LockHeld, DatabaseError) as error:  # this source's turn is over; the others go on
                line = f"{source.name}: {settings.mask(str(error))}"
                click.echo(line, err=True)
                # The activity log would otherwise hold no line at all for a run that could not start.
                log.log(logging.WARNING if isinstance(error, LockHeld) else logging.ERROR, "%s", line, extra={"console": False})
                codes.append(error.exit_code)
                continue
            finally:
                if progress is not None:
                    progress.close()
            _print_result(result)
            codes.append(result.exit_code)
            results.append(result)
    finally:
        engine.dispose()
    return EXIT_FAILED if EXIT_FAILED in codes else max(codes, default=EXIT_OK), results


def push_after_sync(settings: Settings, sources: list[Source], results: list[RunResult], options: SyncOptions,
                    stop: threading.Event, quiet_repeats: bool = False) -> int:
    """With BIGBLOCK_PUSH_AFTER_SYNC, push once every source synced (rejects waiting do not hold the
    push back: the orders that were stored are complete). Returns the push's exit code, or 0.
    ``quiet_repeats``: problems the last push reported stay unsaid (PushOptions)."""
    if not settings.bigblock_push_after_sync or options.dry_run or stop.is_set():
        return EXIT_OK
    from synclet.push import PushOptions

    if len(results) != len(sources) or any(result.status != "success" for result in results):
        click.echo("bigblock: not pushed, as a sync did not finish", err=True)
        return EXIT_FAILED
    try:
        return run_push(settings, PushOptions(quiet_repeats=quiet_repeats), stop)
    except SyncletError as error:
        click.echo(f"bigblock: {settings.mask(str(error))}", err=True)
        return error.exit_code


def run_push(settings: Settings, options: PushOptions, stop: threading.Event | None = None) -> int:
    from synclet.push import bigblock_client, push_bigblock

    engine = db.connect(settings.database_url)
    try:
        with bigblock_client(settings, stop) as bigblock:
            echo = functools.partial(_echo_masked, settings)
            result = push_bigblock(engine, bigblock, settings, options, echo, utc_now, stop)
    except LockHeld as error:  # the contract gives push 0 or 1: another push is doing the work
        click.echo(f"Error: {error}", err=True)
        return EXIT_FAILED
    finally:
        engine.dispose()
    verb = "dry run" if options.dry_run else "push"
    click.echo(f"bigblock: {verb} {result.summary()}", err=result.exit_code != EXIT_OK)
    return result.exit_code


def _echo_masked(settings: Settings, text: str, err: bool = False) -> None:
    """Print a line that may hold what a server said, which may echo a secret."""
    click.echo(settings.mask(text), err=err)


def _print_result(result: RunResult) -> None:
    line = f"{result.source}: {result.sync_type} sync {summary(result)}"
    click.echo(line, err=result.exit_code != EXIT_OK)


@main.group()
def push() -> None:
    """Upload stored orders to a destination (Big Block)."""


@push.command("bigblock")
@click.option("--dry-run", is_flag=True, help="Print what would be created, replaced or deleted; change nothing.")
@click.option("--since", callback=parse_since, metavar="DATETIME",
              help="Leave out orders placed before this (UTC, YYYY-MM-DD[ HH:MM:SS]) unless already in Big Block.")
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Only this source's orders (repeatable).")
@click.pass_obj
@handles_errors
def push_bigblock_command(obj: Context, dry_run: bool, since: datetime | None, sources: tuple[str, ...]) -> None:
    """Upload orders still to be picked to Big Block; replace changed ones, delete cancelled ones."""
    from synclet.push import PushOptions

    settings = obj.settings
    check_known(sources)
    with stop_on_signals() as stop:
        sys.exit(run_push(settings, PushOptions(dry_run=dry_run, since=since, sources=sources), stop))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--source", "sources", multiple=True, metavar="NAME", help="Show only this source (repeatable).")
@click.pass_obj
@handles_errors
def status(obj: Context, as_json: bool, sources: tuple[str, ...]) -> None:
    """Per source: last run, cursor, orders stored, lag, rejects and the newest orders."""
    settings = obj.settings
    check_known(sources)
    try:
        engine = db.connect(settings.database_url)
        state, revision = db.schema_state(engine)
        statuses, destinations = _read_status(settings, engine, state, sources)
    except DatabaseError as error:  # the contract's exit is 0: status reports a database it cannot read
        unreadable = obj.mask(str(error))
        if as_json:
            click.echo(json.dumps({"database": settings.masked_database_url(), "error": unreadable, "sources": [],
                                   "destinations": []}, indent=2))
        else:
            click.echo(f"Database: {settings.masked_database_url()}\nCannot read it: {unreadable}")
        return
    if as_json:
        click.echo(json.dumps(report.jsonable({"database": settings.masked_database_url(), "sources": statuses,
                                               "destinations": destinations}), indent=2))
        return
    click.echo(f"Database: {settings.masked_database_url()}")
    if state == "empty":
        try:
            db.check_foreign_tables(engine)
        except DatabaseError as error:  # status still shows what it can, and exits 0
            click.echo(f"Warning: {error}")
    if state == "unknown":  # what follows is read as if the tables were this version's
        click.echo(f"Warning: the database schema ({revision}) is newer than this synclet or not synclet's: `sync`, "
                   "`push` and `init` refuse it until synclet is upgraded; Big Block is left out here.")
    if state == "outdated":  # what Big Block holds is read from the newest schema only
        click.echo(f"Schema {revision} is older than this synclet's ({db.head_revision()}): the next `sync`, `push` or "
                   "`init` upgrades it; until then Big Block is left out here.")
    if not statuses:
        click.echo("No source configured and nothing synced yet.")
    for entry in statuses:
        click.echo(report.render(entry, configured=entry["source"] in settings.configured_sources()))
    for destination in destinations:
        click.echo(report.render_destination(destination))


def _read_status(settings: Settings, engine: Engine, state: db.SchemaState,
                 sources: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each source's status, and Big Block's when it is configured and the schema is the newest."""
    if state == "empty":
        names: list[str] = list(dict.fromkeys(sources)) or settings.configured_sources()
        return [report.empty_status(name) for name in names], []
    with engine.connect() as conn:
        names = list(dict.fromkeys(sources)) or sorted(set(settings.configured_sources()) | set(report.known_sources(conn)))
    statuses = report.source_status(engine, names, utc_now(), [name for name in names if resumes_initial(name)])
    if not settings.bigblock_configured() or state != "current" or sources:
        return statuses, []
    from synclet import pushes
    from synclet.destinations.bigblock import orders_url

    with engine.connect() as conn:
        return statuses, [pushes.summary(conn, settings.bigblock_statuses, orders_url(settings.bigblock_base_url or ""),
                                         settings.bigblock_order_prefixes)]


@main.command()
@click.option("--source", metavar="NAME", help="Clear only this source's data.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
@handles_errors
def clear(obj: Context, source: str | None, yes: bool) -> None:
    """Delete synced orders and sync state (all, or one source's)."""
    settings = obj.settings
    try:
        check_known([source] if source else [])
    except ConfigError as error:  # the contract gives clear 0 or 1
        click.echo(f"Error: {error}", err=True)
        sys.exit(EXIT_FAILED)
    what = f"the orders, rejects and sync history of {source}" if source else "ALL synced orders, rejects and sync history"
    if not yes:
        if not stdin_is_terminal():
            click.echo("Error: refusing to clear without confirmation: run on a terminal or add --yes", err=True)
            sys.exit(EXIT_FAILED)
        if not click.confirm(f"Delete {what} in {settings.masked_database_url()}?"):
            click.echo("Nothing deleted.")
            sys.exit(EXIT_FAILED)
    from synclet.push import LOCK_NAME as PUSH_LOCK_NAME

    engine = db.connect(settings.database_url)
    db.ensure_schema(engine)
    try:
        with engine.connect() as conn, contextlib.ExitStack() as locks:
            with conn.begin():
                names = [source] if source else report.known_sources(conn)
            try:
                for name in names:
                    locks.enter_context(SourceLock(conn, name))  # nothing is cleared under a running sync
                # nor under a push, which would record the answers of orders deleted under it
                locks.enter_context(SourceLock(conn, PUSH_LOCK_NAME, activity="push to Big Block"))
            except LockHeld as error:  # the contract gives clear 0 or 1: this is a refusal
                click.echo(f"Error: refusing to clear: {error}", err=True)
                sys.exit(EXIT_FAILED)
            with conn.begin():
                counts = store.clear(conn, source)
    except SQLAlchemyError as error:  # a user who may not delete, a lost connection: the transaction undid it all
        raise DatabaseError(f"nothing cleared: {db.describe_error(error)}") from None
    click.echo(
        f"Deleted {counts['orders']} orders, {counts['rejected_orders']} rejected orders and "
        f"{counts['sync_history']} history rows{f' of {source}' if source else ''}."
    )


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--orders", type=click.IntRange(min=0), default=500, show_default=True, help="How many orders to generate.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same orders.")
@handles_errors
def sandbox(port: int, orders: int, seed: int) -> None:
    """Serve a local fake store (OneSaas, Magento REST, Valerdat) and Big Block until stopped."""
    from synclet.sandbox.server import serve_forever

    try:
        serve_forever(port=port, orders=orders, seed=seed, echo=click.echo)
    except OSError as error:  # the port is taken (a second sandbox on the default one) or not ours to open
        if error.errno not in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise
        raise ConfigError(f"--port: cannot listen on 127.0.0.1:{port} ({error.strerror}); give another, or 0 for a free one") from None


@main.command()
@click.option("--orders", type=click.IntRange(min=1), default=500, show_default=True, help="How many orders the sandbox makes.")
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same orders.")
@click.option("--database-url", default=DEMO_DATABASE_URL, show_default=True,
              help="Where to sync (an embedded SQLite file of its own, so demo orders never mix with real ones).")
@click.pass_obj
@handles_errors
def demo(obj: Context, orders: int, seed: int, database_url: str) -> None:
    """Start the sandbox store, sync it into the embedded database and show `status`."""
    from synclet.demo import run_demo

    sys.exit(run_demo(orders=orders, seed=seed, database_url=database_url, verbosity=obj.verbosity))
