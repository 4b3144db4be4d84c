"""Smoke test of ``python -m synclet.bench`` at --quick sizes: every measurement runs and the JSON
holds what the README's table is made from. No timing is asserted: figures belong to the bench."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import synclet.cli
from synclet.bench.__main__ import main
from synclet.bench.child import BenchError
from synclet.bench.databases import DatabaseMaker
from synclet.bench.measure import NO_CHANGE_RUNS_PER_RUN, PER_ORDER_SOURCES
from synclet.bench.report import table
from tests.conftest import MARIADB_SERVER, REQUIRE_MARIADB

SOURCES = ("magento", "valerdat")  # one paged source, one that fetches each order on its own


def _databases(tmp_path: Path) -> list[str]:
    """SQLite always; MariaDB too when a server answers (required under CI)."""
    try:
        DatabaseMaker("mariadb", tmp_path, MARIADB_SERVER).version()
    except BenchError as error:
        if REQUIRE_MARIADB:
            pytest.fail(str(error))
        return ["sqlite"]
    return ["sqlite", "mariadb"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, list[str]]:
    """One quick bench run shared by the tests below: it costs a few seconds of child processes."""
    folder = tmp_path_factory.mktemp("bench")
    databases = _databases(folder)
    path = folder / "last-run.json"
    args = ["--quick", "--runs", "2", "--databases", ",".join(databases), "--sources", ",".join(SOURCES),
            "--mariadb-url", MARIADB_SERVER, "--json", str(path)]
    outcome = CliRunner().invoke(main, args, catch_exceptions=False)
    assert outcome.exit_code == 0, outcome.output
    return json.loads(path.read_text()), outcome.output, databases


def test_every_database_and_source_is_backfilled_completely(bench_run: tuple[dict[str, Any], str, list[str]]) -> None:
    result, _, databases = bench_run
    assert [(e["database"], e["source"]) for e in result["sources"]] == [(d, s) for d in databases for s in SOURCES]
    for entry in result["sources"]:
        backfill, floor = entry["backfill"], entry["floor"]
        assert backfill["orders"] == entry["expected_orders"] > 0
        assert backfill["rows"] > backfill["orders"]  # lines and addresses too
        assert (floor["orders"], floor["rows"]) == (backfill["orders"], backfill["rows"])
        assert backfill["orders_per_s"] > 0 and floor["orders_per_s"] > 0 and entry["backfill_over_floor"] > 0
        assert entry["peak_rss_mib"] > 10
        runs = result["options"]["runs"]
        assert len(entry["backfill_runs_s"]) == len(entry["changed"]["seconds"]) == runs
        assert len(entry["no_change"]["seconds"]) == runs * NO_CHANGE_RUNS_PER_RUN
        assert all(0 <= updated <= entry["changed_orders"] for updated in entry["changed"]["updated"])
        # each no-change run has its start floor; the two can be within the noise of each other
        # (a Valerdat run that finds nothing does little more than import), so only their gap is checked
        assert len(entry["start_floor"]["seconds"]) == runs * NO_CHANGE_RUNS_PER_RUN
        assert all(seconds > 0 for seconds in entry["start_floor"]["seconds"])
        assert entry["no_change_over_start_s"] == pytest.approx(entry["no_change"]["median_s"] - entry["start_floor"]["median_s"], abs=0.002)
        if entry["source"] in PER_ORDER_SOURCES:  # the bench checked that it fetched every order
            assert len(entry["fetch_alone"]["seconds"]) == runs and entry["fetch_alone"]["median_s"] > 0
            assert entry["fetch_alone_over_backfill"] == pytest.approx(
                entry["fetch_alone"]["median_s"] / entry["backfill"]["seconds"], abs=0.002)
        else:
            assert entry["fetch_alone"] is None and entry["fetch_alone_over_backfill"] is None


def test_memory_latency_and_machine_are_reported(bench_run: tuple[dict[str, Any], str, list[str]]) -> None:
    result, _, databases = bench_run
    memory = result["memory"]
    assert memory["database"] == databases[0] and memory["source"] == SOURCES[0]
    assert memory["big"]["orders"] == 10 * memory["small"]["orders"]
    assert memory["small"]["stored_orders"] > 0 and memory["big"]["stored_orders"] > memory["small"]["stored_orders"]
    assert memory["big_over_small"] > 0
    assert [entry["source"] for entry in result["latency"]] == list(SOURCES)
    options = result["options"]
    for entry in result["latency"]:
        assert entry["stored_orders"] > 0 and entry["sequential_over_parallel"] > 0
        # a paged source is timed on the backfill's size; one that asks per order on a smaller one
        assert entry["orders"] == (options["latency_orders"] if entry["source"] == "valerdat" else options["orders"])
    assert options["latency_orders"] != options["orders"]
    machine = result["machine"]
    assert {"date", "platform", "cpus", "cpu_model", "python", "sqlalchemy", "pymysql", "commit", "commit_at_end"} <= set(machine)
    assert {f"{kind}_version" for kind in databases} <= set(machine)


def test_targets_are_judged_and_printed(bench_run: tuple[dict[str, Any], str, list[str]]) -> None:
    result, output, databases = bench_run
    figures = [target["figure"] for target in result["targets"]]
    assert sum("no-change incremental" in figure for figure in figures) == len(databases) * len(SOURCES)
    assert sum("backfill / floor" in figure for figure in figures) == len(SOURCES) * ("mariadb" in databases)
    assert sum("latency" in figure for figure in figures) == len(SOURCES)
    assert all(isinstance(target["met"], bool) and target["value"] > 0 for target in result["targets"])
    assert "Targets:" in output and "Wrote " in output
    assert "start floor" in output and "above floor" in output


def test_synclet_is_measured_with_its_bytecode_cached(bench_run: tuple[dict[str, Any], str, list[str]]) -> None:
    """As cron runs it (PYTHONDONTWRITEBYTECODE=1 would otherwise make every child compile it)."""
    assert Path(importlib.util.cache_from_source(str(Path(synclet.cli.__file__)))).is_file()


def test_table_aligns_numbers_right_and_text_left() -> None:
    assert table(("name", "n"), [("a", 1234), ("bbb", 5.5)]).splitlines() == [
        "name      n", "----  -----", "a     1,234", "bbb   5.500",
    ]
