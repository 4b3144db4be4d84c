"""The Magento REST source end to end: the CLI syncs the sandbox's REST API into SQLite and MariaDB
and every stored row is compared with the store's truth as a REST client must see it."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from synclet import db
from synclet.sandbox import Sandbox
from synclet.store import ORDERS, REJECTS

from conftest import run_cli
from truth import differences, runs_of

NOW = datetime(2026, 3, 1, 12, 0, 0)
SOURCE = "magento-rest"


@pytest.fixture
def shop() -> Iterator[Sandbox]:
    with Sandbox(orders=700, seed=41, now=NOW) as sandbox:
        yield sandbox


def rest_env(shop: Sandbox, database_url: str, **extra: str) -> dict[str, str]:
    return {**shop.env(rest=True, onesaas=False), "DATABASE_URL": database_url, "HTTP_MAX_RETRIES": "1",
            "HTTP_BACKOFF_SECONDS": "0.01", "MAGENTO_REST_PAGE_SIZE": "50", **extra}


def mismatches(database_url: str, shop: Sandbox) -> list[str]:
    return differences(db.connect(database_url), shop.truth(view="rest"), SOURCE)


def test_backfill_changes_credit_memos_and_incremental_match_the_store(database_url: str, shop: Sandbox) -> None:
    env = rest_env(shop, database_url)
    first = run_cli("sync", env=env)
    assert first.exit_code == 0, first.output
    assert mismatches(database_url, shop) == []
    assert runs_of(database_url, SOURCE)[-1]["orders_added"] == len(shop.truth(view="rest"))
    cursor = runs_of(database_url, SOURCE)[-1]["cursor"]
    changed = shop.update(count=30, updated_at=cursor)  # same second as the cursor
    shop.update(count=20, updated_at=cursor + timedelta(seconds=3))  # some of these add credit memos
    shop.add(count=15, created_at=cursor + timedelta(seconds=4))
    second = run_cli("sync", env=env)
    assert second.exit_code == 0, second.output
    assert mismatches(database_url, shop) == []
    run = runs_of(database_url, SOURCE)[-1]
    assert run["sync_type"] == "incremental" and run["orders_added"] == 15 and run["orders_updated"] >= len(changed)


def test_a_credit_memo_that_does_not_touch_its_order_is_still_picked_up(database_url: str, shop: Sandbox) -> None:
    env = rest_env(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 0
    shop.store.credit_bumps_order = False  # the reference: not guaranteed to touch the order
    before = {o["external_id"]: len(o["credits"]) for o in shop.truth(view="rest")}
    updated_before = {o["external_id"]: o["source_updated_at"] for o in shop.truth(view="rest")}
    for _ in range(10):
        shop.update(count=5, updated_at=NOW + timedelta(minutes=1))
    credited = [o for o in shop.truth(view="rest") if len(o["credits"]) > before[o["external_id"]]]
    assert credited and any(o["source_updated_at"] == updated_before[o["external_id"]] for o in credited)
    assert run_cli("sync", env=env).exit_code == 0
    assert mismatches(database_url, shop) == []


ORDERS_PATH = "/rest/default/V1/orders"


def credit_one_of(shop: Sandbox, ids: list[int], at: datetime) -> int:
    """Update these orders one by one until an update gives one a credit memo; its id. With
    ``credit_bumps_order`` off, that order's updated_at stays (the others' moves to ``at``)."""
    for entity_id in ids:
        memos = len(shop.store.get(entity_id).credit_memos)
        shop.update(ids=[entity_id], updated_at=at)
        if len(shop.store.get(entity_id).credit_memos) > memos:
            return entity_id
    raise AssertionError("no update added a credit memo")


def test_a_memo_made_mid_run_for_an_order_already_read_is_read_by_that_run(database_url: str, shop: Sandbox) -> None:
    """The run's cursor ends hours after the memo, so no later run's memo walk would reach back to it."""
    shop.store.credit_bumps_order = False
    memo_at, later = NOW + timedelta(minutes=1), NOW + timedelta(hours=3)
    first_page = [o.entity_id for o in sorted(shop.store.orders, key=lambda o: (o.updated_at, o.entity_id))][:50]
    shop.arm_fault(kind="delay", delay_ms=20, times=None)  # every request: the run pages for a while
    made: dict[str, int] = {}

    def shop_works_during_the_run() -> None:
        deadline = time.monotonic() + 60
        while shop.stats()["paths"].get(ORDERS_PATH, 0) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)  # the second page is asked for: the first and its memos were read
        made["credited"] = credit_one_of(shop, first_page, memo_at)
        shop.update(ids=[i for i in range(600, 620) if i != made["credited"]], updated_at=later)
        made["served"] = shop.stats()["requests"]

    worker = threading.Thread(target=shop_works_during_the_run)
    worker.start()
    result = run_cli("sync", env=rest_env(shop, database_url))
    worker.join()
    shop.clear_faults()
    assert result.exit_code == 0, result.output
    assert made["served"] < shop.stats()["requests"]  # the shop changed while the run still paged
    run = runs_of(database_url, SOURCE)[-1]
    assert run["cursor"] == later and memo_at < run["cursor"] - timedelta(seconds=300)
    assert mismatches(database_url, shop) == []

    idle = shop.stats()["requests"]
    assert run_cli("sync", env=rest_env(shop, database_url)).exit_code == 0
    assert runs_of(database_url, SOURCE)[-1]["orders_updated"] == 0
    asked = [asked_for(r) for r in shop.stats()["recent"][idle - shop.stats()["requests"]:]]
    # after the orders walk: the memos of the orders it read, then the trailing memo walk, which
    # finds every memo read already and so fetches no order by id
    assert asked[asked.index("orders by updated_at, created_at"):] == [
        "orders by updated_at, created_at", "creditmemos by entity_id, order_id", "creditmemos by updated_at"]


def asked_for(request: dict[str, Any]) -> str:
    """A request the sandbox served, as its resource and the fields it filtered by."""
    fields = [value for name, value in sorted(request["params"].items())
              if name.startswith("searchCriteria[filter_groups]") and name.endswith("[field]")]
    return f"{request['path'].rsplit('/', 1)[1]} by {', '.join(fields)}"


def test_an_interrupted_backfill_resumes_instead_of_starting_over(database_url: str, shop: Sandbox) -> None:
    env = rest_env(shop, database_url)
    shop.arm_fault(status=500, times=None, after=8)
    failed = run_cli("sync", env=env)
    assert failed.exit_code == 1
    stopped = runs_of(database_url, SOURCE)[-1]
    assert stopped["status"] == "failed" and stopped["cursor"] is not None and stopped["orders_added"] > 0
    assert (f"cursor     none yet (the next sync goes on with the initial one from {stopped['cursor']:%Y-%m-%d %H:%M:%S} "
            "UTC, where it stopped)") in run_cli("status", env=env).output
    shop.clear_faults()
    rerun = run_cli("sync", env=env)
    assert rerun.exit_code == 0, rerun.output
    resumed = runs_of(database_url, SOURCE)[-1]
    assert resumed["sync_type"] == "initial" and resumed["cursor"] >= stopped["cursor"]
    assert resumed["orders_added"] + resumed["orders_unchanged"] < len(shop.truth(view="rest"))  # did not start over
    assert mismatches(database_url, shop) == []


def test_one_order_the_shop_cannot_load_is_rejected_and_the_rest_stored(database_url: str, shop: Sandbox) -> None:
    broken = 123
    shop.store.rest_broken.add(broken)
    result = run_cli("sync", env=rest_env(shop, database_url))
    assert result.exit_code == 1
    with db.connect(database_url).connect() as conn:
        reject = conn.execute(select(REJECTS).where(REJECTS.c.source == SOURCE)).mappings().one()
        stored = conn.execute(select(func.count()).select_from(ORDERS).where(ORDERS.c.source == SOURCE)).scalar()
    assert reject["external_id"] == str(broken) and "Requested product doesn't exist" in reject["error_message"]
    assert stored == len(shop.truth(view="rest"))  # the truth leaves out what no client can load
    assert mismatches(database_url, shop) == []


def test_an_unloadable_order_with_credit_memos_is_rejected_once_a_run(database_url: str, shop: Sandbox) -> None:
    """The memo pass after the orders walk meets the order again (its memos were never read): it
    is neither asked for nor counted a second time."""
    broken = next(order.entity_id for order in shop.store.orders if order.credit_memos)
    shop.set_rest_broken([broken])
    result = run_cli("sync", env=rest_env(shop, database_url))
    assert result.exit_code == 1 and ", 1 rejected," in result.output
    assert runs_of(database_url, SOURCE)[-1]["orders_rejected"] == 1
    assert Path("synclet.log").read_text().count(f"Rejected order {SOURCE} {broken}:") == 1


def test_a_dry_run_counts_and_lists_what_the_real_run_then_does(database_url: str, shop: Sandbox) -> None:
    """An incremental run reads an order whose memo changed twice (the memo pass, then the walk by
    update time): the dry run names it once and counts it as the real run does, leaving unread the
    orders of memos stored at their version, as the real run does."""
    env = rest_env(shop, database_url, SYNC_OVERLAP_SECONDS="86400")  # the window reaches back over many memos
    assert run_cli("sync", env=env).exit_code == 0
    cursor = runs_of(database_url, SOURCE)[-1]["cursor"]
    credited = credit_one_of(shop, [o.entity_id for o in shop.store.orders], cursor + timedelta(seconds=1))
    shop.update(count=5, updated_at=cursor + timedelta(seconds=2))
    dry = run_cli("sync", "--dry-run", env=env)
    replaced = re.findall(r"\[dry-run\] would replace: (.+)", dry.output)
    real = run_cli("sync", env=env)
    assert credited and dry.exit_code == 0 and real.exit_code == 0, dry.output + real.output
    assert len(replaced) == len(set(replaced)) == runs_of(database_url, SOURCE)[-1]["orders_updated"] >= 5
    counted = re.compile(r"(\d+) added, (\d+) updated, (\d+) unchanged")
    assert counted.search(dry.output).groups() == counted.search(real.output).groups()  # type: ignore[union-attr]


def test_an_order_the_shop_can_load_again_is_stored_though_its_update_time_stays(database_url: str,
                                                                                  shop: Sandbox) -> None:
    """The deleted product is restored: the order's updated_at does not move, so no window reads it
    again; its reject (its id alone) is loaded by id on each run until it maps."""
    broken = shop.store.orders[0].entity_id  # the oldest: far outside any later run's overlap
    shop.set_rest_broken([broken])
    env = rest_env(shop, database_url)
    assert run_cli("sync", env=env).exit_code == 1
    still = run_cli("sync", env=env)
    assert still.exit_code == 1 and ", 1 rejected," in still.output  # tried again, and refused again
    shop.set_rest_broken([])
    healed = run_cli("sync", env=env)
    assert healed.exit_code == 0 and ", 1 added," in healed.output, healed.output
    with db.connect(database_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(REJECTS)).scalar() == 0
    assert mismatches(database_url, shop) == []


def test_a_page_size_above_the_shops_cap_is_halved(database_url: str) -> None:
    with Sandbox(orders=400, seed=42, now=NOW, rest_max_page_size=60) as shop:
        result = run_cli("sync", env=rest_env(shop, database_url, MAGENTO_REST_PAGE_SIZE="300"))
        assert result.exit_code == 0, result.output
        assert mismatches(database_url, shop) == []


def test_a_wrong_token_names_the_setting(database_url: str, shop: Sandbox) -> None:
    env = rest_env(shop, database_url, MAGENTO_TOKEN="not-the-token-1")
    result = run_cli("sync", env=env)
    assert result.exit_code == 1 and "MAGENTO_TOKEN" in result.output and "not-the-token-1" not in result.output
    checked = run_cli("test", env=env)
    assert checked.exit_code == 1 and "✗ magento-rest" in checked.output
    assert "Magento_Sales::actions_view" in checked.output and "%resources" not in checked.output


def test_the_check_passes_when_the_first_order_cannot_be_loaded(database_url: str, shop: Sandbox) -> None:
    env = rest_env(shop, database_url, MAGENTO_REST_URL=shop.rest_url + "/V1")
    assert run_cli("init", env=env).exit_code == 0
    shop.set_rest_broken([shop.store.orders[0].entity_id])
    checked = run_cli("test", env=env)
    assert checked.exit_code == 0, checked.output
    assert ("✓ magento-rest: Magento REST (token accepted; an order on the first page cannot be loaded: "
            "HTTP 500 Requested product doesn't exist)") in checked.output
    shop.set_rest_broken([])
    assert f"✓ magento-rest: Magento REST, {len(shop.truth(view='rest'))} orders" in run_cli("test", env=env).output


def test_both_magento_sources_sync_side_by_side(database_url: str, shop: Sandbox) -> None:
    env = {**shop.env(rest=True), "DATABASE_URL": database_url}
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.output
    assert "magento: initial sync success" in result.output and "magento-rest: initial sync success" in result.output
    assert differences(db.connect(database_url), shop.truth()) == []
    assert mismatches(database_url, shop) == []
    report = json.loads(run_cli("status", "--json", env=env).output)
    assert sorted(s["source"] for s in report["sources"]) == ["magento", "magento-rest"]
    assert run_cli("test", env=env).output.count("✓") == 3


def test_an_unloadable_order_costs_no_retries(database_url: str, shop: Sandbox) -> None:
    shop.store.rest_broken.add(50)
    env = rest_env(shop, database_url, HTTP_MAX_RETRIES="5", HTTP_BACKOFF_SECONDS="30")
    result = run_cli("sync", env=env)  # with retries each narrowing step would wait minutes
    assert result.exit_code == 1 and "1 order(s) rejected" in result.output
    assert "retry" not in Path("synclet.log").read_text()


def test_an_incremental_run_fetches_no_order_for_memos_already_stored_at_their_version(database_url: str,
                                                                                        shop: Sandbox) -> None:
    env = rest_env(shop, database_url, SYNC_OVERLAP_SECONDS="86400")  # the window reaches back over many memos
    assert run_cli("sync", env=env).exit_code == 0
    served = shop.stats()["requests"]
    assert run_cli("sync", env=env).exit_code == 0
    asked = [asked_for(r) for r in shop.stats()["recent"][served - shop.stats()["requests"]:]]
    assert not any(request.startswith("orders by entity_id, created_at, entity_id") for request in asked)
    shop.store.credit_bumps_order = False  # a memo that leaves its order's updated_at alone
    cursor = runs_of(database_url, SOURCE)[-1]["cursor"]
    credited = credit_one_of(shop, [o.entity_id for o in shop.store.orders][:60], cursor + timedelta(seconds=1))
    assert run_cli("sync", env=env).exit_code == 0
    assert mismatches(database_url, shop) == []
    assert runs_of(database_url, SOURCE)[-1]["orders_updated"] >= 1 and credited


def test_a_netrc_entry_for_the_shop_does_not_replace_the_token(database_url: str, shop: Sandbox, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"  # what curl or ftp left for this host: requests would send it as Basic auth
    netrc.write_text("machine 127.0.0.1 login someone password not-the-token\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    result = run_cli("sync", env=rest_env(shop, database_url))
    assert result.exit_code == 0, result.output
    assert mismatches(database_url, shop) == []
