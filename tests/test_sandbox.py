"""The sandbox shop: deterministic data with every quirk, the OneSaas endpoint's rules over real
HTTP, the control API, fault injection, and a truth whose numbers add up."""
from __future__ import annotations

import io
import json
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from dotenv import dotenv_values

from synclet.sandbox import Sandbox, Store
from synclet.sandbox.onesaas import PATH, parse_time

ROOT = Path(__file__).resolve().parents[1]  # subprocesses run here: the autouse fixture moves the cwd
NOW = datetime(2026, 1, 1)
MONEY = re.compile(r"^\d+\.\d{4}$")
TIME = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def shop() -> Iterator[Sandbox]:
    """A read-only shop shared by the tests that do not mutate it."""
    with Sandbox(orders=2000, seed=7, now=NOW) as sandbox:
        yield sandbox


@pytest.fixture()
def fresh() -> Iterator[Sandbox]:
    """A small shop of its own for a test that mutates it or arms faults."""
    with Sandbox(orders=120, seed=3, now=NOW) as sandbox:
        yield sandbox


def get(sb: Sandbox, **params: Any) -> requests.Response:
    query = {"AccessKey": sb.access_key, "Action": "Orders", **params}
    return requests.get(sb.onesaas_url, params=query, timeout=10)


def all_pages(sb: Sandbox, page_size: int = 100, **params: Any) -> tuple[list[Any], int]:
    """Every entry of every page until the bare "" answer, and how many pages held orders."""
    entries: list[Any] = []
    for page in range(10_000):
        body = get(sb, PageSize=page_size, Page=page, **params).json()
        if body == "":
            return entries, page
        entries.extend(body["Orders"])
    raise AssertionError("paging never ended")


def ids_of(entries: list[Any]) -> list[str]:
    return [entry["Id"] for entry in entries if entry != ""]


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def fmt(value: datetime) -> str:
    return value.strftime(TIME)


# --- generation -----------------------------------------------------------------------------------

def test_generation_is_deterministic_for_a_seed() -> None:
    first = Store.generate(300, seed=11, now=NOW).truth()
    again = Store.generate(300, seed=11, now=NOW).truth()
    other = Store.generate(300, seed=12, now=NOW).truth()
    assert first == again
    assert first != other


def test_timeline_ascends_with_shared_seconds_and_stays_before_now(shop: Sandbox) -> None:
    orders = shop.store.orders
    assert [o.entity_id for o in orders] == list(range(1, 2001))
    created = [o.created_at for o in orders]
    assert created == sorted(created)
    assert len(set(created)) < len(created)  # several orders share a second
    assert min(created) >= NOW - timedelta(days=30)
    assert all(o.created_at <= o.updated_at <= NOW for o in orders)
    assert all(o.updated_at.microsecond == 0 for o in orders)


def test_every_quirk_is_present(shop: Sandbox) -> None:
    truth = shop.truth()
    by_number = {row["order_number"]: row for row in truth}
    lines = [item for row in truth for item in row["items"]]
    taxed = [item for item in lines if item["tax_rate"] != "0.0000"]

    no_address = [row for row in truth if not row["has_identity"]]
    assert no_address and all(row["addresses"] == [] for row in no_address)
    virtual = [row for row in truth if [a["address_type"] for a in row["addresses"]] == ["billing"]]
    assert virtual and all(row["shipping_method"] is None for row in virtual)
    edited = [row for row in truth if row["replaces_order_number"]]
    assert edited
    for row in edited:
        assert row["order_number"] == row["replaces_order_number"] + "-1"
        assert by_number[row["replaces_order_number"]]["status"] == "canceled"
        assert by_number[row["replaces_order_number"]]["external_id"] == row["replaces_external_id"]
    assert any(item["deleted_product"] for item in lines)
    assert 0.3 < len(taxed) / len(lines) < 0.5
    assert {item["tax_rate"] for item in taxed} == {"0.2000", "0.0500"}
    assert 0.10 < sum(row["discount_amount"] != "0.0000" for row in truth) / len(truth) < 0.20
    assert 0.05 < sum(bool(row["credits"]) for row in truth) / len(truth) < 0.15
    assert any(len(row["credits"]) == 2 for row in truth)
    assert any(row["customer_external_id"] == "0" for row in truth)
    assert any(row["notes"] is None for row in truth)
    assert any(row["notes"] and ('"' in row["notes"] or not row["notes"].isascii()) for row in truth)
    assert all("\n" in row["store_name"] for row in truth)
    assert {row["currency_code"] for row in truth} == {"GBP", "EUR", "USD"}
    assert {len(row["items"]) for row in truth} >= {1, 2, 3, 4, 5}
    assert {row["status"] for row in truth} == {"pending", "processing", "complete", "canceled", "closed", "holded"}
    assert any(row["customer_name"] == row["addresses"][0]["company"] for row in truth if row["addresses"])
    assert any(not item["unit_price_ex_tax"].endswith("00") for item in lines)  # 4-place prices


def test_a_store_of_20000_orders_has_unique_ids_and_numbers_within_its_window() -> None:
    """The bench's size: how fast it is generated is the bench's business, not a timed assertion."""
    store = Store.generate(20_000, seed=1, now=NOW)
    assert len(store) == 20_000
    assert len(store.by_id) == len({order.increment_id for order in store.orders}) == 20_000
    assert all(NOW - timedelta(days=30) <= order.created_at <= order.updated_at <= store.clock for order in store.orders)


# --- truth ----------------------------------------------------------------------------------------

def test_truth_amounts_follow_the_documented_formulas(shop: Sandbox) -> None:
    for row in shop.truth():
        money_values = [row[k] for k in ("subtotal", "tax_amount", "shipping_amount", "shipping_tax_amount",
                                         "discount_amount", "grand_total")]
        assert all(MONEY.match(value) for value in money_values), row
        items = row["items"]
        line_tax = sum(Decimal(i["tax_amount"]) for i in items)
        line_totals = sum(Decimal(i["line_total_incl_tax"]) for i in items)
        visible_ex = sum(Decimal(i["line_total_incl_tax"]) - Decimal(i["tax_amount"])
                         for i in items if not i["deleted_product"])
        shipping, shipping_tax = Decimal(row["shipping_amount"]), Decimal(row["shipping_tax_amount"])
        assert Decimal(row["grand_total"]) == line_totals + shipping + shipping_tax
        assert Decimal(row["tax_amount"]) == line_tax + shipping_tax
        assert Decimal(row["subtotal"]) == visible_ex
        assert Decimal(row["discount_amount"]) == sum(Decimal(i["discount_amount"]) for i in items)
        assert row["payment_amount"] in (None, row["grand_total"])
        for n, item in enumerate(items, start=1):
            assert item["line_no"] == n
            qty, unit, rate = (Decimal(item[k]) for k in ("quantity", "unit_price_ex_tax", "tax_rate"))
            assert Decimal(item["tax_amount"]) == half_up(unit * qty * rate)
            expected = half_up(unit * qty) - Decimal(item["discount_amount"]) + Decimal(item["tax_amount"])
            assert Decimal(item["line_total_incl_tax"]) == expected
            if item["deleted_product"]:
                assert item["tax_amount"] == item["discount_amount"] == "0.0000"
        for credit in row["credits"]:
            parts = [Decimal(credit[k]) for k in ("subtotal", "tax_amount", "shipping_amount",
                                                  "adjustment_positive", "adjustment_negative")]
            assert Decimal(credit["grand_total"]) == parts[0] + parts[1] + parts[2] + parts[3] - parts[4]
            assert credit["state"] in ("1", "2", "3")
    assert shop.truth_by_id()["17"]["order_number"] == shop.store.get(17).increment_id


# --- the OneSaas endpoint -------------------------------------------------------------------------

def test_all_pages_render_the_truth_in_natural_order(shop: Sandbox) -> None:
    entries, pages = all_pages(shop, page_size=100)
    truth = shop.truth()
    assert pages == 20 and len(entries) == 2000  # "" entries count toward the page size
    assert [entry == "" for entry in entries] == [not row["has_identity"] for row in truth]
    assert ids_of(entries) == [row["external_id"] for row in truth if row["has_identity"]]
    by_id = shop.truth_by_id()
    for entry in entries:
        if entry == "":
            continue
        row = by_id[entry["Id"]]
        assert entry["Total"] == row["grand_total"] and entry["OrderNumber"] == row["order_number"]
        assert entry["Discounts"] == float(row["discount_amount"]) and isinstance(entry["Discounts"], float)
        assert entry["Tags"] == "StoreName:" + row["store_name"]
        assert entry["LastUpdatedDate"] == row["source_updated_at"]
        shipping_incl = Decimal(row["shipping_amount"]) + Decimal(row["shipping_tax_amount"])
        assert Decimal(entry["Shipping"]["Amount"]) == shipping_incl
        assert entry["Payments"]["PaymentMethod"]["Amount"] == row["payment_amount"]
        assert [c["increment_id"] for c in entry["Credits"]] == [c["credit_number"] for c in row["credits"]]
        assert ("ShippingAddress" in entry["Addresses"]) == (len(row["addresses"]) == 2)
        for item, line in zip(entry["Items"], row["items"], strict=True):
            if line["deleted_product"]:
                assert item == {"ErrorCode": "Product.ProductNotFound",
                                "Message": "Ordered product could not be found!"}
                continue
            assert item["ProductCode"] == line["sku"] and item["Quantity"] == line["quantity"]
            assert item["Price"] == line["price_incl_tax"] and item["LineTotalIncTax"] == line["line_total_incl_tax"]
            assert ("Taxes" in item) == (line["tax_amount"] != "0.0000")
            if "Taxes" in item:
                assert item["Taxes"]["TaxRate"] == float(line["tax_rate"])
                assert item["Taxes"]["TaxAmount"] == line["tax_amount"]
            assert ("Discount" in item) == (line["discount_amount"] != "0.0000")


def test_full_last_page_is_followed_by_bare_empty_string(shop: Sandbox) -> None:
    last = get(shop, PageSize=50, Page=39)
    assert last.status_code == 200 and len(last.json()["Orders"]) == 50
    assert get(shop, PageSize=50, Page=40).text == '""'
    assert get(shop, PageSize=50, Page=500).json() == ""
    page0 = get(shop, PageSize=50).json()  # a missing Page is page 0
    assert page0 == get(shop, PageSize=50, Page=0).json()
    assert len(get(shop).json()["Orders"]) == 50  # default PageSize


def test_nothing_matching_answers_empty_string_on_page_zero(shop: Sandbox) -> None:
    assert get(shop, OrderCreatedTime="2026-01-01 00:00:00").json() == ""


def test_updated_filter_is_strict(shop: Sandbox) -> None:
    target = shop.store.get(1500)
    cursor = fmt(target.updated_at)
    entries, _ = all_pages(shop, page_size=200, OrderCreatedTime="2020-01-01", LastUpdatedTime=cursor)
    expected = [r["external_id"] for r in shop.truth() if r["source_updated_at"] > cursor and r["has_identity"]]
    assert ids_of(entries) == expected
    assert "1500" not in expected
    earlier = fmt(target.updated_at - timedelta(seconds=1))
    entries, _ = all_pages(shop, page_size=200, OrderCreatedTime="2020-01-01", LastUpdatedTime=earlier)
    assert "1500" in ids_of(entries)


def test_created_filter_is_strict_and_bounds_updated_too(shop: Sandbox) -> None:
    target = shop.store.get(1000)
    entries, _ = all_pages(shop, page_size=500, OrderCreatedTime=fmt(target.created_at),
                           LastUpdatedTime="2011-01-01 00:00:00")
    expected = [r["external_id"] for r in shop.truth()
                if r["order_date"] > fmt(target.created_at) and r["has_identity"]]
    assert ids_of(entries) == expected
    assert "1000" not in expected and len(expected) < 1000


@pytest.mark.parametrize("text, expected", [
    ("2025-07-01T07:41:16", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01 07:41:16", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01T08:41:16+01:00", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01 08:41:16 01:00", datetime(2025, 7, 1, 7, 41, 16)),  # "+" decoded as a space
    ("2025-07-01T07:41:16Z", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01T07:41:16.900Z", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01", datetime(2025, 7, 1)),
    ("yesterday-ish", None),
    ("", None),
])
def test_time_parameters_read_like_strtotime(text: str, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_unparsable_created_time_means_2010(shop: Sandbox) -> None:
    body = get(shop, OrderCreatedTime="not a date", PageSize=5).json()
    assert [o["Id"] for o in body["Orders"] if o] == [o["Id"] for o in get(shop, PageSize=5).json()["Orders"] if o]
    assert body["Orders"][0] != "" and body["Orders"][0]["Id"] == "1"


def test_offset_time_parameter_is_converted_to_utc(shop: Sandbox) -> None:
    target = shop.store.get(1200)
    local = (target.updated_at + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00")
    entries, _ = all_pages(shop, page_size=500, LastUpdatedTime=local)
    assert "1200" not in ids_of(entries)
    assert ids_of(entries) == [r["external_id"] for r in shop.truth()
                               if r["source_updated_at"] > fmt(target.updated_at) and r["has_identity"]]


def test_orders_without_address_are_empty_strings(shop: Sandbox) -> None:
    first_missing = next(o.entity_id for o in shop.store.orders if not o.has_identity)
    page, index = divmod(first_missing - 1, 10)
    body = get(shop, PageSize=10, Page=page).json()
    assert len(body["Orders"]) == 10
    assert body["Orders"][index] == ""


def test_edited_order_names_its_parent_in_the_key(shop: Sandbox) -> None:
    child = next(o for o in shop.store.orders if o.edited_from)
    parent = shop.store.get(child.edited_from.entity_id)
    page, index = divmod(child.entity_id - 1, 10)
    rendered = get(shop, PageSize=10, Page=page).json()["Orders"][index]
    assert rendered["Id"] == str(child.entity_id)
    assert "ReplaceOrderNumber" not in rendered
    assert rendered[f'ReplaceOrderNumber Id="{parent.entity_id}"'] == parent.increment_id
    assert rendered["OrderNumber"] == parent.increment_id + "-1"
    ordinary = get(shop, PageSize=1).json()["Orders"][0]
    assert ordinary["ReplaceOrderNumber"] == ""


def test_values_from_the_database_are_strings(shop: Sandbox) -> None:
    order = next(o for o in get(shop, PageSize=50).json()["Orders"] if o)
    assert isinstance(order["Id"], str) and isinstance(order["Total"], str) and MONEY.match(order["Total"])
    item = order["Items"][0]
    assert isinstance(item["Quantity"], str) and isinstance(item["ProductId"], str)
    credit_order = next(o for o in shop.store.orders if o.credit_memos and o.has_identity)
    page, index = divmod(credit_order.entity_id - 1, 50)
    credit = get(shop, PageSize=50, Page=page).json()["Orders"][index]["Credits"][0]
    assert all(isinstance(credit[k], str) for k in ("entity_id", "order_id", "state", "grand_total", "subtotal"))
    assert credit["order_id"] == str(credit_order.entity_id) and credit["Items"]


def test_wrong_key_and_unknown_action_answer_200_errors(shop: Sandbox) -> None:
    wrong = requests.get(shop.onesaas_url, params={"AccessKey": "nope", "Action": "Orders"}, timeout=10)
    assert wrong.status_code == 200 and wrong.json() == {"Error": "Invalid API key"}
    missing = requests.get(shop.onesaas_url, params={"Action": "Orders"}, timeout=10)
    assert missing.json() == {"Error": "Invalid API key"}
    action = requests.get(shop.onesaas_url, params={"AccessKey": shop.access_key, "Action": "Products"}, timeout=10)
    assert action.status_code == 200 and action.json() == {"Error": "Invalid Action"}


def test_connection_check_with_page_size_one(shop: Sandbox) -> None:
    body = get(shop, PageSize=1).json()
    assert body["OneSaas Version"] == "4.2.0.6" and len(body["Orders"]) == 1


# --- control API ----------------------------------------------------------------------------------

def test_update_in_the_cursor_second_is_hidden_by_the_strict_filter(fresh: Sandbox) -> None:
    cursor = fmt(fresh.store.clock)
    before = next(o for o in get(fresh, PageSize=10).json()["Orders"] if o)
    answer = requests.post(fresh.url + "/_sandbox/update", json={"ids": [int(before["Id"])], "updated_at": cursor},
                           timeout=10)
    assert answer.json() == {"ids": [int(before["Id"])]}
    assert get(fresh, LastUpdatedTime=cursor).json() == ""  # same second as the cursor: not returned
    overlap = fmt(fresh.store.clock - timedelta(seconds=1))
    after = {o["Id"]: o for o in get(fresh, LastUpdatedTime=overlap, PageSize=500).json()["Orders"] if o}
    expected = {r["external_id"] for r in fresh.truth() if r["source_updated_at"] > overlap and r["has_identity"]}
    assert set(after) == expected
    assert after[before["Id"]]["LastUpdatedDate"] == cursor
    changed = {k for k in before if before[k] != after[before["Id"]][k]} - {"LastUpdatedDate"}
    assert changed, "an update must change something a sync would see"


def test_default_update_moves_the_clock_one_second(fresh: Sandbox) -> None:
    clock = fresh.store.clock
    ids = requests.post(fresh.url + "/_sandbox/update", json={"count": 4}, timeout=10).json()["ids"]
    assert len(set(ids)) == 4
    assert fresh.store.clock == clock + timedelta(seconds=1)
    served = get(fresh, LastUpdatedTime=fmt(clock)).json()["Orders"]
    truth = fresh.truth_by_id()
    assert sorted(int(o["Id"]) for o in served if o) == sorted(i for i in ids if truth[str(i)]["has_identity"])
    assert all(truth[str(i)]["source_updated_at"] == fmt(clock + timedelta(seconds=1)) for i in ids)


def test_add_appends_new_orders_at_the_end(fresh: Sandbox) -> None:
    clock = fresh.store.clock
    answer = requests.post(fresh.url + "/_sandbox/add", json={"count": 3}, timeout=10).json()
    assert answer == {"ids": [121, 122, 123]}
    entries, _ = all_pages(fresh, page_size=50)
    assert len(entries) == 123
    for entry, entity_id in zip(entries[-3:], answer["ids"], strict=True):
        assert entry == "" if not fresh.store.get(entity_id).has_identity else entry["Id"] == str(entity_id)
    served = get(fresh, LastUpdatedTime=fmt(clock)).json()["Orders"]
    assert len(served) == 3
    truth = requests.get(fresh.url + "/_sandbox/truth", timeout=10).json()
    assert [r["order_date"] for r in truth[-3:]] == [fmt(clock + timedelta(seconds=1))] * 3
    explicit = fresh.add(1, created_at=datetime(2026, 1, 5, 12))
    assert fresh.truth_by_id()[str(explicit[0])]["source_updated_at"] == "2026-01-05 12:00:00"
    assert fresh.store.clock == datetime(2026, 1, 5, 12)


def test_control_errors_are_json(fresh: Sandbox) -> None:
    unknown = requests.post(fresh.url + "/_sandbox/update", json={"ids": [99999]}, timeout=10)
    assert unknown.status_code == 404 and "99999" in unknown.json()["error"]
    bad_time = requests.post(fresh.url + "/_sandbox/update", json={"ids": [1], "updated_at": "soon"}, timeout=10)
    assert bad_time.status_code == 400
    bad_kind = requests.post(fresh.url + "/_sandbox/faults", json={"kind": "meteor"}, timeout=10)
    assert bad_kind.status_code == 400
    assert requests.get(fresh.url + "/_sandbox/nothing", timeout=10).status_code == 404


# --- faults ---------------------------------------------------------------------------------------

def test_status_fault_covers_the_counted_requests_only(fresh: Sandbox) -> None:
    armed = requests.post(fresh.url + "/_sandbox/faults",
                          json={"status": 503, "times": 3, "after": 2, "retry_after": "7"}, timeout=10)
    assert armed.json()["fault"]["status"] == 503
    seen = []
    for _ in range(7):
        response = get(fresh, PageSize=1)
        requests.get(fresh.url + "/_sandbox/stats", timeout=10)  # control requests are not counted
        seen.append((response.status_code, response.headers.get("Retry-After")))
    assert seen == [(200, None)] * 2 + [(503, "7")] * 3 + [(200, None)] * 2
    stats = requests.get(fresh.url + "/_sandbox/stats", timeout=10).json()
    assert stats["requests"] == 7 and stats["faults_served"] == 3 and stats["faults_armed"] == 0


def test_html_truncate_and_delay_faults(fresh: Sandbox) -> None:
    fresh.arm_fault(kind="html")
    html = get(fresh, PageSize=2)
    assert html.status_code == 200 and html.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        html.json()
    whole = get(fresh, PageSize=2).content
    fresh.arm_fault(kind="truncate")
    cut = get(fresh, PageSize=2)
    assert cut.status_code == 200 and cut.content == whole[: len(whole) // 2]
    with pytest.raises(ValueError):
        json.loads(cut.content)
    fresh.arm_fault(kind="delay", delay_ms=150)
    started = time.perf_counter()
    delayed = get(fresh, PageSize=2)
    assert time.perf_counter() - started >= 0.15 and delayed.content == whole


def test_a_client_gone_before_its_answer_costs_no_traceback(fresh: Sandbox, capfd: pytest.CaptureFixture[str]) -> None:
    """A sync stopped mid-request hangs up on the sandbox: nothing to answer, nothing to report."""
    fresh.arm_fault(kind="delay", delay_ms=100)
    before = set(threading.enumerate())  # other sandboxes' handlers may idle on kept-alive connections
    with socket.create_connection(("127.0.0.1", fresh.port)) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        client.sendall(f"GET {PATH}?Action=Orders HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        while fresh.stats()["requests"] == 0:  # the sandbox has read it and is waiting out the delay
            time.sleep(0.01)
    handler = [thread for thread in threading.enumerate() if thread not in before and "process_request" in thread.name]
    assert len(handler) == 1
    handler[0].join(10)
    assert not handler[0].is_alive()
    assert "Traceback" not in capfd.readouterr().err


def test_disconnect_fault_and_clearing(fresh: Sandbox) -> None:
    fresh.arm_fault(kind="disconnect")
    with pytest.raises(requests.ConnectionError):
        get(fresh, PageSize=1)
    requests.post(fresh.url + "/_sandbox/faults", json={"status": 500, "times": None}, timeout=10)
    assert [get(fresh, PageSize=1).status_code for _ in range(3)] == [500, 500, 500]
    assert requests.delete(fresh.url + "/_sandbox/faults", timeout=10).json() == {"cleared": 1}
    assert get(fresh, PageSize=1).status_code == 200


# --- serving --------------------------------------------------------------------------------------

def test_concurrent_reads_during_updates_stay_consistent(fresh: Sandbox) -> None:
    failures: list[str] = []

    def read() -> None:
        with requests.Session() as session:
            for page in range(12):
                params = {"AccessKey": fresh.access_key, "Action": "Orders", "PageSize": 10, "Page": page}
                body = session.get(fresh.onesaas_url, params=params, timeout=10).json()
                if body != "" and "Orders" not in body:
                    failures.append(repr(body))

    readers = [threading.Thread(target=read) for _ in range(8)]
    for reader in readers:
        reader.start()
    for _ in range(20):
        fresh.update(count=3)
    for reader in readers:
        reader.join()
    assert failures == []
    assert fresh.stats()["requests"] == 8 * 12


def test_sandbox_imports_nothing_else_from_synclet() -> None:
    code = ("import sys, synclet.sandbox; "
            "print([m for m in sys.modules if m.startswith('synclet.') and not m.startswith('synclet.sandbox')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_forever_prints_settings_and_stops_on_a_signal(stop_signal: int) -> None:
    """Ctrl-C stops it even where it starts with SIGINT ignored, as a shell's background job does."""
    code = ("import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
            "from synclet.sandbox import serve_forever; serve_forever(port=0, orders=30, seed=2)")
    process = subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        lines: list[str] = []
        while not lines or ("Press Ctrl-C" not in lines[-1] and lines[-1] and len(lines) < 40):  # the banner
            lines.append(process.stdout.readline())  # type: ignore[union-attr]
        text = "".join(lines)
        base = re.search(r"MAGENTO_BASE_URL=(\S+)", text).group(1)  # type: ignore[union-attr]
        key = re.search(r"MAGENTO_ACCESS_KEY=(\S+)", text).group(1)  # type: ignore[union-attr]
        assert "INITIAL_SYNC_DATE=" in text and "Press Ctrl-C" in text
        uncommented = "\n".join(line.strip().removeprefix("# ") for line in lines if "=" in line)
        assert dotenv_values(stream=io.StringIO(uncommented))["BIGBLOCK_LOCATIONS_CSV"] == "locations.csv"
        body = requests.get(base, params={"AccessKey": key, "Action": "Orders", "PageSize": 1}, timeout=10).json()
        assert "OneSaas Version" in body
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert "stopping the sandbox" in process.stdout.read()  # type: ignore[union-attr]
    finally:
        if process.poll() is None:
            process.kill()


def test_prerendered_answers_are_the_rendered_ones_byte_for_byte_until_the_store_changes() -> None:
    """The benchmark's prerender must change what the sandbox costs, never what it answers."""
    with Sandbox(orders=300, seed=5) as shop:
        api = shop.controller.api
        rest_auth = "Bearer " + shop.controller.rest.token
        login = api("POST", "/valerdat/api/auth/token/", {}, None, json.dumps(shop.controller.valerdat.credentials).encode())
        valerdat_auth = "Token " + json.loads(login[1])["token"]
        ids = json.loads(api("GET", "/valerdat/api/purchase-orders/ids/", {"page_size": "7"}, valerdat_auth)[1])
        requests = (
            [(PATH, {"AccessKey": shop.access_key, "Action": "Orders", "Page": str(page), "PageSize": "40"}, None)
             for page in range(9)]
            + [("/rest/default/V1/orders", {"searchCriteria[pageSize]": "40", "searchCriteria[currentPage]": str(page)},
                rest_auth) for page in (1, 4)]
            + [(f"/valerdat/api/purchase-orders/{entry['uuid']}/", {}, valerdat_auth) for entry in ids["results"]])

        def bodies() -> list[bytes]:
            return [api("GET", path, query, auth)[1] for path, query, auth in requests]

        rendered = bodies()
        shop.prerender()
        assert bodies() == rendered
        assert json.loads(rendered[0])["Orders"] and rendered[8] == b'""' and len(rendered) == 9 + 2 + 7
        shop.update(count=5, updated_at=NOW + timedelta(days=400))
        changed = bodies()
        assert changed != rendered  # served fresh after the change
        shop.prerender()
        assert bodies() == changed
