"""The sandbox's Magento 2 REST API over real HTTP: auth, searchCriteria as MySQL-backed Magento
answers it (quirks included), broken orders, parent/child items, credit memos, and a REST truth
that a client folding the served JSON reproduces exactly."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
import requests

from synclet.sandbox import Sandbox, criteria
from synclet.sandbox.data import Order
from synclet.sandbox.model import fmt_time, money
from synclet.sandbox.rest import ORDER_COLUMNS

NOW = datetime(2026, 1, 1)
ORDERS = 600
Filters = list[tuple[str, Any, str | None]]  # (field, value, condition_type) of one OR group


@pytest.fixture(scope="module")
def shop() -> Iterator[Sandbox]:
    """A read-only shop shared by the tests that do not mutate it."""
    with Sandbox(orders=ORDERS, seed=7, now=NOW) as sandbox:
        yield sandbox


@pytest.fixture()
def fresh() -> Iterator[Sandbox]:
    """A small shop of its own for a test that mutates it or arms faults."""
    with Sandbox(orders=80, seed=3, now=NOW) as sandbox:
        yield sandbox


def search(*groups: Filters, sorts: tuple[tuple[str, str], ...] = (), page_size: int | None = None,
           page: int | None = None) -> dict[str, Any]:
    """``searchCriteria[...]`` query parameters, as a client builds them."""
    params: dict[str, Any] = {}
    for g, group in enumerate(groups):
        for f, (field, value, condition) in enumerate(group):
            prefix = f"searchCriteria[filter_groups][{g}][filters][{f}]"
            params[f"{prefix}[field]"] = field
            if value is not None:
                params[f"{prefix}[value]"] = value
            if condition is not None:
                params[f"{prefix}[condition_type]"] = condition
    for i, (field, direction) in enumerate(sorts):
        params[f"searchCriteria[sortOrders][{i}][field]"] = field
        params[f"searchCriteria[sortOrders][{i}][direction]"] = direction
    if page_size is not None:
        params["searchCriteria[pageSize]"] = page_size
    if page is not None:
        params["searchCriteria[currentPage]"] = page
    return params or {"searchCriteria": ""}


def call(sb: Sandbox, path: str, params: dict[str, Any] | None = None, token: str | None = None,
         base: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {sb.rest_token if token is None else token}"}
    return requests.get(f"{base or sb.rest_url}/V1/{path}", params=params, headers=headers, timeout=30)


def orders(sb: Sandbox, *groups: Filters, **paging: Any) -> dict[str, Any]:
    response = call(sb, "orders", search(*groups, **paging))
    assert response.status_code == 200, response.text
    return response.json()


def ids(body: dict[str, Any]) -> list[int]:
    return [item["entity_id"] for item in body["items"]]


def d(value: float | int | None) -> Decimal:
    """A served JSON number back as the exact Decimal it was rendered from."""
    return Decimal(str(value or 0))


# --- auth and routing -----------------------------------------------------------------------------

def test_auth_is_a_bearer_token(shop: Sandbox) -> None:
    refused = {"message": "The consumer isn't authorized to access %resources.",
               "parameters": {"resources": "Magento_Sales::actions_view"}}
    missing = requests.get(shop.rest_url + "/V1/orders", params={"searchCriteria": ""}, timeout=10)
    assert missing.status_code == 401 and missing.json() == refused
    assert call(shop, "orders", search(), token="wrong").status_code == 401
    assert call(shop, "orders/1", token="wrong").json() == refused
    basic = requests.get(shop.rest_url + "/V1/orders/1", headers={"Authorization": f"Basic {shop.rest_token}"},
                         timeout=10)
    assert basic.status_code == 401
    assert call(shop, "orders", search(page_size=1)).status_code == 200

def test_env_names_either_api(shop: Sandbox) -> None:
    both = shop.env(rest=True)
    assert both["MAGENTO_REST_URL"] == shop.rest_url == shop.url + "/rest/default"
    assert both["MAGENTO_TOKEN"] == "sandbox-rest-token"
    assert both["MAGENTO_BASE_URL"] == shop.onesaas_url and "INITIAL_SYNC_DATE" in both
    assert "MAGENTO_REST_URL" not in shop.env()  # opt-in: synclet syncs every configured source
    assert set(shop.env(rest=True, onesaas=False)) == {"MAGENTO_REST_URL", "MAGENTO_TOKEN", "INITIAL_SYNC_DATE"}


def test_every_base_path_serves_the_same_orders(shop: Sandbox) -> None:
    one = call(shop, "orders/5").json()
    for base in ("/rest/V1", "/rest/all/V1", "/rest/default/V1"):
        assert call(shop, "orders/5", base=shop.url + base[:-3]).json() == one
    assert call(shop, "orders/5", base=shop.url + "/rest/nowhere").status_code == 400
    assert call(shop, "products", search()).status_code == 404
    assert call(shop, "products").json() == {"message": "Request does not match any route."}


def test_missing_search_criteria_and_unknown_fields_answer_like_magento(shop: Sandbox) -> None:
    missing = call(shop, "orders")
    assert missing.status_code == 400 and missing.json()["parameters"] == {"fieldName": "searchCriteria"}
    unknown = call(shop, "orders", search([("no_such_column", "1", "eq")]))
    assert unknown.status_code == 500 and unknown.json()["message"].startswith("Internal Error.")
    bad_size = call(shop, "orders", search(page_size="ten"))  # type: ignore[arg-type]
    assert bad_size.status_code == 400 and bad_size.json()["parameters"] == {"value": "ten", "type": "int"}


# --- searchCriteria -------------------------------------------------------------------------------

def _cut(shop: Sandbox, entity_id: int) -> datetime:
    return shop.store.get(entity_id).updated_at


CONDITIONS: list[tuple[str, Callable[[Sandbox], tuple[Filters, Callable[[Order], bool]]]]] = [
    ("eq", lambda s: ([("entity_id", "17", "eq")], lambda o: o.entity_id == 17)),
    ("default eq", lambda s: ([("increment_id", "000000042", None)], lambda o: o.increment_id == "000000042")),
    ("neq", lambda s: ([("entity_id", "17", "neq")], lambda o: o.entity_id != 17)),
    ("gt", lambda s: ([("entity_id", "590", "gt")], lambda o: o.entity_id > 590)),
    ("gteq", lambda s: ([("entity_id", "590", "gteq")], lambda o: o.entity_id >= 590)),
    ("lt", lambda s: ([("entity_id", "5", "lt")], lambda o: o.entity_id < 5)),
    ("lteq", lambda s: ([("entity_id", "5", "lteq")], lambda o: o.entity_id <= 5)),
    ("numeric prefix", lambda s: ([("entity_id", "595abc", "gt")], lambda o: o.entity_id > 595)),
    ("in", lambda s: ([("entity_id", "3, 5,7,9999", "in")], lambda o: o.entity_id in (3, 5, 7))),
    ("nin", lambda s: ([("entity_id", "3,5,7", "nin")], lambda o: o.entity_id not in (3, 5, 7))),
    ("in text, any case", lambda s: ([("status", "COMPLETE,canceled", "in")], lambda o: o.status in ("complete", "canceled"))),
    ("in times, one not a time", lambda s: ([("updated_at", f"{fmt_time(_cut(s, 300))},soon", "in")],
                                            lambda o: o.updated_at == _cut(s, 300))),
    ("like", lambda s: ([("increment_id", "%0001_", "like")], lambda o: o.increment_id[-5:-1] == "0001")),
    ("like text", lambda s: ([("customer_email", "ALICE%", "like")], lambda o: o.customer.email.startswith("alice"))),
    ("from", lambda s: ([("updated_at", fmt_time(_cut(s, 300)), "from")], lambda o: o.updated_at >= _cut(s, 300))),
    ("to", lambda s: ([("updated_at", fmt_time(_cut(s, 300)), "to")], lambda o: o.updated_at <= _cut(s, 300))),
    ("date only", lambda s: ([("created_at", "2025-12-10", "lteq")], lambda o: o.created_at <= datetime(2025, 12, 10))),
    ("status any case", lambda s: ([("status", "Complete", "eq")], lambda o: o.status == "complete")),
    ("null", lambda s: ([("customer_id", None, "null")], lambda o: o.customer.contact_id == "0")),
    ("notnull", lambda s: ([("customer_id", None, "notnull")], lambda o: o.customer.contact_id != "0")),
    ("neq skips null", lambda s: ([("customer_id", "1", "neq")], lambda o: o.customer.contact_id not in ("0", "1"))),
]


@pytest.mark.parametrize("name, case", CONDITIONS, ids=[name for name, _ in CONDITIONS])
def test_each_condition_type(shop: Sandbox, name: str, case: Callable[..., Any]) -> None:
    filters, wanted = case(shop)
    expected = [o.entity_id for o in shop.store.orders if wanted(o)]
    body = orders(shop, filters)
    assert expected, "the case must select something"
    assert ids(body) == expected and body["total_count"] == len(expected)


def test_filters_in_a_group_are_or_and_groups_are_and(shop: Sandbox) -> None:
    either = orders(shop, [("entity_id", "10", "lteq"), ("entity_id", "590", "gt")])
    assert ids(either) == list(range(1, 11)) + list(range(591, 601))
    both = orders(shop, [("entity_id", "10", "gt")], [("entity_id", "20", "lteq")])
    assert ids(both) == list(range(11, 21))
    mixed = orders(shop, [("entity_id", "5", "lteq"), ("entity_id", "595", "gt")], [("entity_id", "3", "gteq")])
    assert ids(mixed) == [3, 4, 5, 596, 597, 598, 599, 600]
    assert orders(shop, [("entity_id", "10", "lt")], [("entity_id", "20", "gt")])["total_count"] == 0


def test_sort_by_updated_at_then_entity_id(shop: Sandbox) -> None:
    everything = shop.store.orders
    ascending = orders(shop, sorts=(("updated_at", "ASC"), ("entity_id", "ASC")))
    assert ids(ascending) == [o.entity_id for o in sorted(everything, key=lambda o: (o.updated_at, o.entity_id))]
    mixed = orders(shop, sorts=(("updated_at", "desc"), ("entity_id", "ASC")))
    newest_first = sorted(everything, key=lambda o: (-o.updated_at.timestamp(), o.entity_id))
    assert ids(mixed) == [o.entity_id for o in newest_first]
    times = [o.updated_at for o in everything]
    assert len(set(times)) < len(times), "ties on updated_at must exist for the second key to matter"
    bad = call(shop, "orders", search(sorts=(("entity_id", "UP"),)))
    assert bad.status_code == 400


def test_paging_repeats_the_last_page_past_the_end(shop: Sandbox) -> None:
    sort = (("entity_id", "ASC"),)
    pages = [orders(shop, sorts=sort, page_size=250, page=n) for n in (1, 2, 3, 4, 99)]
    assert [len(p["items"]) for p in pages] == [250, 250, 100, 100, 100]
    assert all(p["total_count"] == ORDERS for p in pages)
    assert ids(pages[0]) + ids(pages[1]) + ids(pages[2]) == list(range(1, ORDERS + 1))
    assert pages[3]["items"] == pages[2]["items"] == pages[4]["items"]  # the last page again, not []
    assert orders(shop, sorts=sort, page_size=250)["items"] == pages[0]["items"]  # currentPage defaults to 1
    assert orders(shop, sorts=sort, page_size=250, page=0)["items"] == pages[0]["items"]
    assert len(orders(shop)["items"]) == ORDERS  # no pageSize: everything
    empty = orders(shop, [("entity_id", "0", "lt")], page_size=50, page=3)
    assert empty["items"] == [] and empty["total_count"] == 0


def test_client_loop_with_stop_rule_and_dedup_reads_each_order_once(shop: Sandbox) -> None:
    window = [("updated_at", fmt_time(_cut(shop, 200)), "gteq")]
    seen: dict[int, dict[str, Any]] = {}
    page = 1
    while True:
        body = orders(shop, window, sorts=(("updated_at", "ASC"), ("entity_id", "ASC")), page_size=40, page=page)
        seen.update((item["entity_id"], item) for item in body["items"])
        if page * 40 >= body["total_count"]:
            break
        page += 1
    assert sorted(seen) == [o.entity_id for o in shop.store.orders if o.updated_at >= _cut(shop, 200)]


def test_page_size_cap_is_a_400_and_configurable(shop: Sandbox) -> None:
    over = call(shop, "orders", search(page_size=301))
    assert over.status_code == 400
    assert over.json() == {"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 300}}
    assert call(shop, "creditmemos", search(page_size=301)).status_code == 400
    assert len(orders(shop, page_size=300)["items"]) == 300
    with Sandbox(orders=5, seed=1, now=NOW, rest_max_page_size=None) as uncapped:
        assert len(orders(uncapped, page_size=5000)["items"]) == 5
    with Sandbox(orders=5, seed=1, now=NOW) as small:
        answer = requests.post(small.url + "/_sandbox/settings", json={"rest_max_page_size": 2}, timeout=10)
        assert answer.json() == {"credit_bumps_order": True, "rest_max_page_size": 2}
        assert call(small, "orders", search(page_size=3)).json()["parameters"] == {"max": 2}


def test_search_criteria_is_echoed(shop: Sandbox) -> None:
    body = orders(shop, [("updated_at", "2025-12-20 00:00:00", "gteq")], sorts=(("updated_at", "ASC"),),
                  page_size=5, page=2)
    assert body["search_criteria"] == {
        "filter_groups": [{"filters": [{"field": "updated_at", "value": "2025-12-20 00:00:00",
                                        "condition_type": "gteq"}]}],
        "sort_orders": [{"field": "updated_at", "direction": "ASC"}], "page_size": 5, "current_page": 2}


# --- single orders and broken ones ----------------------------------------------------------------

def test_get_by_id_and_404(shop: Sandbox) -> None:
    one = call(shop, "orders/17")
    assert one.status_code == 200
    assert one.json() == orders(shop, [("entity_id", "17", "eq")])["items"][0]
    gone = {"message": "The entity that was requested doesn't exist. Verify the entity and try again."}
    for missing in ("99999", "0", "abc"):
        answer = call(shop, f"orders/{missing}")
        assert answer.status_code == 404 and answer.json() == gone
    memo = next(m for o in shop.store.orders for m in o.credit_memos)
    assert call(shop, f"creditmemos/{memo.entity_id}").json()["increment_id"] == memo.increment_id
    assert call(shop, "creditmemos/99999").status_code == 404


def test_broken_orders_fail_the_pages_that_hold_them(fresh: Sandbox) -> None:
    broken = {"message": "Requested product doesn't exist"}
    fresh.set_rest_broken([25])
    sort = (("entity_id", "ASC"),)
    failing = call(fresh, "orders", search(sorts=sort, page_size=10, page=3))
    assert failing.status_code == 500 and failing.json() == broken
    assert ids(orders(fresh, sorts=sort, page_size=10, page=2)) == list(range(11, 21))
    assert ids(orders(fresh, sorts=sort, page_size=10, page=4)) == list(range(31, 41))
    assert call(fresh, "orders", search()).status_code == 500  # everything in one page holds it too
    assert orders(fresh, [("entity_id", "25", "neq")])["total_count"] == 79  # narrowed around it
    one = call(fresh, "orders/25")
    assert one.status_code == 500 and one.json() == broken
    assert call(fresh, "orders/24").status_code == 200
    assert "25" not in fresh.truth_by_id("rest") and "25" in fresh.truth_by_id()
    control = fresh.url + "/_sandbox/rest_broken"
    assert requests.post(control, json={"ids": [3, 4]}, timeout=10).json() == {"ids": [3, 4]}
    assert requests.get(control, timeout=10).json() == {"ids": [3, 4]}
    assert call(fresh, "orders/25").status_code == 200 and call(fresh, "orders/3").status_code == 500
    assert requests.post(control, json={"ids": [99999]}, timeout=10).status_code == 404
    assert requests.delete(control, timeout=10).json() == {"ids": []}
    assert call(fresh, "orders", search()).status_code == 200
    fresh.store.rest_broken.add(7)  # settable from Python too
    assert call(fresh, "orders/7").status_code == 500


# --- order shape ----------------------------------------------------------------------------------

def _all_orders(sb: Sandbox) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in range(1, 100):
        body = orders(sb, sorts=(("entity_id", "ASC"),), page_size=300, page=page)
        items += body["items"]
        if page * 300 >= body["total_count"]:
            return items
    raise AssertionError("paging never ended")


@pytest.fixture(scope="module")
def served(shop: Sandbox) -> list[dict[str, Any]]:
    return _all_orders(shop)


def test_configurable_and_bundle_lines(served: list[dict[str, Any]]) -> None:
    rows = [item for order in served for item in order["items"]]
    parents = {item["item_id"]: item for item in rows if item["product_type"] in ("configurable", "bundle")}
    children = [item for item in rows if item["parent_item_id"] is not None]
    assert {p["product_type"] for p in parents.values()} == {"configurable", "bundle"}
    sold = [item for item in rows if item["parent_item_id"] is None]
    share = sum(item["product_type"] == "configurable" for item in sold) / len(sold)
    assert 0.2 < share < 0.4
    for child in children:
        parent = parents[child["parent_item_id"]]
        assert child["product_type"] == "simple" and child["parent_item"] == parent
        if parent["product_type"] == "configurable":  # the parent carries the price
            assert child["sku"] == parent["sku"] and child["name"].startswith(parent["name"] + " - ")
            assert child["price"] == child["row_total"] == child["tax_amount"] == child["discount_amount"] == 0
            assert child["qty_ordered"] == parent["qty_ordered"]
        else:  # the children carry the price; a part may be in each bundle more than once
            assert parent["price"] == parent["row_total"] == parent["tax_amount"] == 0
            assert child["sku"].startswith(parent["sku"] + "-") and child["price"] > 0
            assert child["qty_ordered"] / parent["qty_ordered"] in (1, 2, 3)
    per_bundle = set()
    for parent in parents.values():
        kids = [c for c in children if c["parent_item_id"] == parent["item_id"]]
        assert len(kids) == (1 if parent["product_type"] == "configurable" else 2)
        if parent["product_type"] == "bundle":
            per_bundle.add(kids[0]["qty_ordered"] / parent["qty_ordered"])
            assert kids[1]["qty_ordered"] == parent["qty_ordered"]
    assert per_bundle == {1, 2, 3}
    assert len({item["item_id"] for item in rows}) == len(rows)


def test_shipping_address_only_in_shipping_assignments(shop: Sandbox, served: list[dict[str, Any]]) -> None:
    truth = shop.truth_by_id("rest")
    for order in served:
        row = truth[str(order["entity_id"])]
        assert "shipping_address" not in order
        shipping = order["extension_attributes"]["shipping_assignments"][0]["shipping"]
        addresses = {a["address_type"]: a for a in row["addresses"]}
        assert ("address" in shipping) == ("shipping" in addresses)
        if "address" in shipping:
            assert shipping["address"]["address_type"] == "shipping"
            assert shipping["address"]["street"][0] == addresses["shipping"]["line1"]
        assert shipping.get("method") == row["shipping_method"]
        billing = order["billing_address"]
        assert (billing is None) == ("billing" not in addresses)
        if billing:
            assert billing["address_type"] == "billing" and billing["email"] == order["customer_email"]
            assert billing["street"] == [addresses["billing"]["line1"]] + (
                [addresses["billing"]["line2"]] if addresses["billing"]["line2"] else [])
    virtual = [o for o in served if o["is_virtual"]]
    bare = [o for o in served if o["billing_address"] is None]
    assert virtual and bare
    assert all("method" not in o["extension_attributes"]["shipping_assignments"][0]["shipping"] for o in virtual)


def test_amounts_are_numbers_with_magento_meanings(served: list[dict[str, Any]]) -> None:
    for order in served:
        assert isinstance(order["grand_total"], float) and isinstance(order["entity_id"], int)
        assert order["discount_amount"] <= 0
        parts = ("subtotal", "discount_amount", "tax_amount", "shipping_amount")
        assert sum(d(order[k]) for k in parts) == d(order["grand_total"])
        priced = [i for i in order["items"] if i["product_type"] != "bundle"]
        assert sum(d(i["row_total"]) for i in priced) == d(order["subtotal"])
        assert order["customer_is_guest"] == int(order["customer_id"] is None)
        assert order["base_grand_total"] == order["grand_total"] and order["status_histories"] == []
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", order["updated_at"])
    taxed = [i for o in served for i in o["items"] if i["tax_amount"]]
    assert {i["tax_percent"] for i in taxed} == {20.0, 5.0}


# --- credit memos ---------------------------------------------------------------------------------

def test_credit_memo_filters_paging_and_totals(shop: Sandbox) -> None:
    order = next(o for o in shop.store.orders if len(o.credit_memos) == 2)
    mine = call(shop, "creditmemos", search([("order_id", str(order.entity_id), "eq")])).json()
    assert [m["entity_id"] for m in mine["items"]] == [m.entity_id for m in order.credit_memos]
    memos = sorted((m for o in shop.store.orders for m in o.credit_memos), key=lambda m: m.entity_id)
    cut = memos[len(memos) // 2].updated_at
    recent = call(shop, "creditmemos", search([("updated_at", fmt_time(cut), "gteq")], page_size=300)).json()
    assert [m["entity_id"] for m in recent["items"]] == [m.entity_id for m in memos if m.updated_at >= cut]
    last = -(-len(memos) // 7)
    pages = [call(shop, "creditmemos", search(page_size=7, page=n)).json() for n in (last, last + 1)]
    assert pages[0]["items"] == pages[1]["items"] and pages[0]["total_count"] == len(memos)
    for memo in call(shop, "creditmemos", search()).json()["items"]:
        total = sum(d(memo[k]) for k in ("subtotal", "discount_amount", "tax_amount", "shipping_amount",
                                         "adjustment_positive")) - d(memo["adjustment_negative"])
        assert total == d(memo["grand_total"])
        assert memo["subtotal"] == float(sum(d(i["row_total"]) for i in memo["items"]))
        order_items = {i["item_id"] for i in call(shop, f"orders/{memo['order_id']}").json()["items"]}
        assert all(i["order_item_id"] in order_items for i in memo["items"])


@pytest.mark.parametrize(("field", "condition", "pick"), [
    ("updated_at", "gt", lambda o: fmt_time(o.updated_at)),  # orders at the bound itself are out
    ("updated_at", "gteq", lambda o: fmt_time(o.updated_at)),
    ("updated_at", "from", lambda o: fmt_time(o.updated_at)[:10]),  # a date is its midnight
    ("created_at", "moreq", lambda o: fmt_time(o.created_at).replace(" ", "T") + "+01:00"),
    ("entity_id", "gteq", lambda o: f"{o.entity_id}abc"),
    ("entity_id", "gt", lambda o: f"{o.entity_id}.5"),
    ("updated_at", "gteq", lambda o: "yesterday"),  # unreadable: compared as text, by the scan
])
def test_a_lower_bound_from_the_order_index_finds_what_a_scan_finds(
        shop: Sandbox, field: str, condition: str, pick: Callable[[Order], str]) -> None:
    """Lower bounds on updated_at, created_at and entity_id are answered from sorted indexes: the
    same orders, in the same (entity) order, as the filter over every order, with the other
    groups still applied."""
    bound = pick(sorted(shop.store.orders, key=lambda o: o.updated_at)[len(shop.store.orders) * 2 // 3])
    groups = ([(field, bound, condition)], [("status", "canceled", "neq")])
    body = orders(shop, *groups)
    scanned = criteria.select(shop.store.orders, ORDER_COLUMNS, criteria.parse(search(*groups), None))
    assert ids(body) == [o.entity_id for o in scanned] and body["total_count"] == len(scanned)
    assert 0 < len(scanned) < len(shop.store.orders) or bound == "yesterday"


def test_credit_memos_of_listed_orders_read_the_ids_as_mysql_does(shop: Sandbox) -> None:
    """``order_id in`` is answered from an index of memos by order: the same memos as the filter
    over every row, however the ids are spelled, and the other groups still apply."""
    credited = [o for o in shop.store.orders if o.credit_memos][:4]
    a, b, c, e = (o.entity_id for o in credited)
    listed = f"{a}, {b}.0,{c}abc,{e}.5,999999"  # 7abc reads as 7; a fraction names no order
    first_memo = min(m.entity_id for o in credited[:3] for m in o.credit_memos)
    body = call(shop, "creditmemos", search([("order_id", listed, "in")],
                                            [("entity_id", str(first_memo), "gt")])).json()
    expected = sorted(m.entity_id for o in credited[:3] for m in o.credit_memos if m.entity_id > first_memo)
    assert [m["entity_id"] for m in body["items"]] == expected and body["total_count"] == len(expected)
    either = call(shop, "creditmemos", search([("order_id", str(a), "in"), ("order_id", str(e), "eq")])).json()
    assert {m["order_id"] for m in either["items"]} == {a, e}


def _update_until_credit(sb: Sandbox, entity_id: int) -> tuple[datetime, datetime]:
    """Update one order until an update adds a credit memo: (order updated_at before, the stamp)."""
    order = sb.store.get(entity_id)
    for _ in range(200):
        before, memos = order.updated_at, len(order.credit_memos)
        sb.update(ids=[entity_id])
        if len(order.credit_memos) > memos:
            return before, sb.store.clock
    raise AssertionError("no update added a credit memo")


@pytest.mark.parametrize("bumps", [False, True])
def test_credit_bumps_order_flag(fresh: Sandbox, bumps: bool) -> None:
    answer = requests.post(fresh.url + "/_sandbox/settings", json={"credit_bumps_order": bumps}, timeout=10)
    assert answer.json()["credit_bumps_order"] is bumps and fresh.store.credit_bumps_order is bumps
    entity_id = next(o.entity_id for o in fresh.store.orders if o.amount_paid is not None)
    before, stamp = _update_until_credit(fresh, entity_id)
    memo = fresh.store.get(entity_id).credit_memos[-1]
    assert memo.updated_at == stamp
    new = call(fresh, "creditmemos", search([("updated_at", fmt_time(stamp), "gteq")])).json()
    assert [m["entity_id"] for m in new["items"]] == [memo.entity_id]
    changed = ids(orders(fresh, [("updated_at", fmt_time(stamp), "gteq")]))
    assert changed == ([entity_id] if bumps else [])
    assert call(fresh, f"orders/{entity_id}").json()["updated_at"] == fmt_time(stamp if bumps else before)


# --- truth, determinism, faults -------------------------------------------------------------------

def fold(order: dict[str, Any]) -> list[dict[str, Any]]:
    """A reference client's folding: one line per sold product (rules in sandbox.rest_items)."""
    lines = []
    for parent in (i for i in order["items"] if i["parent_item_id"] is None):
        kids = [i for i in order["items"] if i["parent_item_id"] == parent["item_id"]]
        bundle, quantity = parent["product_type"] == "bundle", d(parent["qty_ordered"])
        priced = kids if bundle else [parent]
        total = {k: sum(d(i[k]) for i in priced) for k in ("price", "price_incl_tax", "tax_amount",
                                                            "discount_amount", "row_total", "row_total_incl_tax")}
        if bundle:  # unit prices are the row totals per bundle: a part may be in it more than once
            total["price"] = money(total["row_total"] / quantity)
            total["price_incl_tax"] = money(total["row_total_incl_tax"] / quantity)
        lines.append({
            "line_no": len(lines) + 1,
            "sku": kids[0]["sku"] if parent["product_type"] == "configurable" else parent["sku"],
            "name": parent["name"], "quantity": quantity, "unit_price_ex_tax": total["price"],
            "price_incl_tax": total["price_incl_tax"], "tax_rate": d(priced[0]["tax_percent"]) / 100,
            "tax_amount": total["tax_amount"], "discount_amount": total["discount_amount"],
            "line_total_incl_tax": total["row_total_incl_tax"] - total["discount_amount"],
            "deleted_product": False,
        })
    return lines


def test_rest_truth_is_what_folding_the_served_json_gives(shop: Sandbox, served: list[dict[str, Any]]) -> None:
    truth = shop.truth("rest")
    assert len(truth) == len(served) == ORDERS and all(row["has_identity"] for row in truth)
    company_named = [o for o in served if not (o["customer_firstname"] or o["customer_lastname"])]
    assert company_named and any(o["billing_address"] for o in company_named)
    assert any(not row["has_identity"] for row in shop.truth())  # the OneSaas view differs here
    for order, row in zip(served, truth, strict=True):
        want = [{k: Decimal(v) if k in ("quantity", "unit_price_ex_tax", "price_incl_tax", "tax_rate",
                                        "tax_amount", "discount_amount", "line_total_incl_tax") else v
                 for k, v in item.items()} for item in row["items"]]
        assert fold(order) == want, order["entity_id"]
        assert Decimal(row["subtotal"]) == d(order["subtotal"]) + d(order["discount_amount"])
        assert Decimal(row["discount_amount"]) == -d(order["discount_amount"])
        assert row["payment_amount"] == (None if order["payment"]["amount_paid"] is None
                                         else f"{d(order['payment']['amount_paid']):.4f}")
        assert row["customer_external_id"] == (None if order["customer_is_guest"] else str(order["customer_id"]))
        names = " ".join(n for n in (order["customer_firstname"], order["customer_lastname"]) if n)
        assert row["customer_name"] == (names or (order["billing_address"] or {}).get("company"))
        assert row["replaces_external_id"] == order.get("relation_parent_id")
        lines = sum(Decimal(i["line_total_incl_tax"]) for i in row["items"])
        shipping = Decimal(row["shipping_amount"]) + Decimal(row["shipping_tax_amount"])
        assert lines + shipping == Decimal(row["grand_total"])
        net = Decimal(row["subtotal"]) + Decimal(row["tax_amount"]) + Decimal(row["shipping_amount"])
        assert net == Decimal(row["grand_total"])
    lines = [item for row in truth for item in row["items"]]
    assert not any(item["deleted_product"] for item in lines)
    deleted = [item for row in shop.truth() for item in row["items"] if item["deleted_product"]]
    assert deleted and all(item["sku"].startswith("OLD-") for item in deleted)
    assert any(item["sku"].startswith("OLD-") for item in lines)  # served as ordinary lines


def test_rest_truth_over_the_control_api(shop: Sandbox) -> None:
    served = requests.get(shop.url + "/_sandbox/truth", params={"view": "rest"}, timeout=30).json()
    assert served == shop.truth("rest")
    assert requests.get(shop.url + "/_sandbox/truth", params={"view": "soap"}, timeout=10).status_code == 400


def test_rendering_is_deterministic_for_a_seed() -> None:
    bodies = []
    for seed in (11, 11, 12):
        with Sandbox(orders=120, seed=seed, now=NOW) as sandbox:
            bodies.append((orders(sandbox, page_size=120),
                           call(sandbox, "creditmemos", search()).json()))
    assert bodies[0] == bodies[1]
    assert bodies[0] != bodies[2]


def test_faults_count_rest_and_onesaas_requests_alike(fresh: Sandbox) -> None:
    fresh.arm_fault(status=503, times=2, after=1, retry_after="3")
    onesaas = requests.get(fresh.onesaas_url, params={"AccessKey": fresh.access_key, "Action": "Orders",
                                                      "PageSize": 1}, timeout=10)
    first, second = call(fresh, "orders/1"), call(fresh, "orders", search(page_size=1))
    after = call(fresh, "orders/1")
    assert [onesaas.status_code, first.status_code, second.status_code, after.status_code] == [200, 503, 503, 200]
    assert first.headers["Retry-After"] == "3"
    fresh.arm_fault(kind="truncate")
    cut, whole = call(fresh, "orders/2"), call(fresh, "orders/2")
    assert cut.status_code == 200 and cut.content == whole.content[: len(whole.content) // 2]
    stats = fresh.stats()
    assert stats["requests"] == 6 and stats["faults_served"] == 3
    assert stats["paths"]["/rest/default/V1/orders/1"] == 2
