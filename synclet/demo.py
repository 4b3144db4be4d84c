"""``demo``: the first thing a new user runs. Sandbox store -> sync -> status, no setup needed."""
from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from synclet import db, report
from synclet.config import Settings, database_url_setting, parse_datetime_setting, today_utc
from synclet.errors import EXIT_OK
from synclet.http import HttpClient
from synclet.logs import configure as configure_logging
from synclet.progress import for_terminal
from synclet.sandbox.server import Sandbox
from synclet.sources.onesaas import OneSaasSource
from synclet.sync import SyncOptions, summary, sync_source, utc_now

DEMO_LOG_FILE = "synclet-demo.log"


def run_demo(orders: int, seed: int, database_url: str, verbosity: int = 0) -> int:
    """Serve ``orders`` generated orders on a free port and sync them into ``database_url``.

    The sandbox's clock is today 00:00 UTC, so a second demo on the same day finds the same orders
    and shows an incremental run with nothing to change.
    """
    with Sandbox(orders=orders, seed=seed, now=today_utc()) as sandbox:
        env = sandbox.env()
        settings = Settings(
            database_url=database_url_setting(database_url),
            magento_base_url=env["MAGENTO_BASE_URL"],
            magento_access_key=env["MAGENTO_ACCESS_KEY"],
            initial_sync_date=parse_datetime_setting("INITIAL_SYNC_DATE", env["INITIAL_SYNC_DATE"]),
            http_max_retries=1,
            log_file=DEMO_LOG_FILE,  # the sandbox's orders stay out of the store's activity log too
        )
        configure_logging(settings.log_file, settings.mask, verbosity, console=verbosity > 0)
        click.echo(f"Sandbox store with {orders} orders (seed {seed}) at {sandbox.url}")
        click.echo(f"Syncing into {settings.masked_database_url()} …")
        engine = db.connect(settings.database_url)
        http = HttpClient.from_settings(settings)
        progress = for_terminal()
        try:
            result = sync_source(engine, OneSaasSource.from_settings(settings, http), settings, SyncOptions(), progress)
        finally:
            http.close()
            if progress is not None:
                progress.close()
        click.echo(f"magento: {result.sync_type} sync {summary(result)}")
        for entry in report.source_status(engine, ["magento"], utc_now()):
            click.echo(report.render(entry, configured=True))
        engine.dispose()
    url = make_url(settings.database_url)
    sqlite_file = url.database if url.get_backend_name() == "sqlite" else None
    where = sqlite_file or settings.masked_database_url()  # a MariaDB URL may hold a password
    client = f"sqlite3 {sqlite_file}" if sqlite_file else "your SQL client:"
    click.echo(
        f"\nThe demo keeps its orders in {where} and its log in {DEMO_LOG_FILE}, apart from those `sync` uses,"
        "\nso they never mix with your store's. Next: look inside with"
        f"\n  {client} 'select order_number, status, grand_total from orders limit 5'"
        "\nrun `python synclet.py demo` again (nothing changes), or point .env at your store (see README)."
    )
    return EXIT_OK if result.exit_code == EXIT_OK else result.exit_code
