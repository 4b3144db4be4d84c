"""``python -m synclet.bench``: parse the options, run every measurement, print the table, write JSON."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from synclet.bench.child import BenchError
from synclet.bench.databases import DATABASES, DEFAULT_MARIADB_SERVER
from synclet.bench.report import render, write_json
from synclet.bench.run import QUICK, BenchOptions, run_bench
from synclet.config import SOURCE_NAMES

DEFAULTS = BenchOptions()


def _names(allowed: tuple[str, ...]) -> Callable[[click.Context, click.Parameter, str], tuple[str, ...]]:
    """A click callback turning ``a,b`` into a tuple of known names."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(name.strip() for name in value.split(",") if name.strip()))
        unknown = [name for name in names if name not in allowed]
        if not names or unknown:
            raise click.BadParameter(f"give one or more of {', '.join(allowed)}, separated by commas")
        return names

    return parse


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--orders", type=click.IntRange(min=1), default=DEFAULTS.orders, show_default=True,
              help="Orders in the sandbox for the backfill, floor and incremental runs.")
@click.option("--big-orders", type=click.IntRange(min=10), default=DEFAULTS.big_orders, show_default=True,
              help="Orders of the big memory run (the small one has a tenth).")
@click.option("--latency-ms", type=click.IntRange(min=1), default=DEFAULTS.latency_ms, show_default=True,
              help="Delay added to every API request in the parallel-against-sequential runs.")
@click.option("--latency-orders", type=click.IntRange(min=1), default=DEFAULTS.latency_orders, show_default=True,
              help="Orders of the latency runs of Valerdat, which asks for each order on its own "
                   "(the paged sources use --orders).")
@click.option("--runs", type=click.IntRange(min=1), default=DEFAULTS.runs, show_default=True,
              help="Repetitions of the noisy figures (floor, incremental runs); the median is reported.")
@click.option("--databases", default=",".join(DEFAULTS.databases), show_default=True,
              callback=_names(DATABASES), help="Comma-separated; the first also hosts the memory and latency runs.")
@click.option("--sources", default=",".join(DEFAULTS.sources), show_default=True, callback=_names(SOURCE_NAMES),
              help="Comma-separated; the first is the one whose memory growth is measured.")
@click.option("--mariadb-url", default=DEFAULT_MARIADB_SERVER, show_default=True,
              help="MariaDB server (no database): the bench creates and drops synclet_bench_* databases on it.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench/last-run.json"), show_default=True, help="Where to write every figure as JSON.")
@click.option("--quick", is_flag=True, help="Tiny sizes and one run (unless given): a smoke run, not figures to quote.")
@click.pass_context
def main(ctx: click.Context, json_path: Path, quick: bool, **chosen: object) -> None:
    """Measure synclet against the sandbox store on SQLite and MariaDB; see the README's Benchmark section."""
    if quick:
        chosen.update({name: value for name, value in QUICK.items()
                       if ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT})
    options = BenchOptions(**chosen)  # type: ignore[arg-type]
    try:
        result = run_bench(options)
    except BenchError as error:
        raise click.ClickException(str(error)) from None
    click.echo(render(result))
    write_json(result, json_path)
    click.echo(f"\nWrote {json_path}")


if __name__ == "__main__":
    main()
