"""Magento REST source: pure parsing on recorded-shape JSON, and keyset paging against a fake store."""
from __future__ import annotations

import copy
import itertools
import json
import random
import logging
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from synclet.config import Settings
from synclet.errors import AuthError, MappingError, ProtocolError
from synclet.http import HttpClient
from synclet.records import Address, Credit, Item, Order, Page, Rejected, canonical_json, content_hash
from synclet.sources import Window
from synclet.sources.magento_rest import MagentoRestSource, magento_message, rest_root
from synclet.sources.magento_rest_parse import CREDITS_KEY, parse_order, parse_page, parse_stored

from payloads import DELETE, changed, load_fixture

TOKEN = "s3cr3t-integration-token"
D = Decimal


def load(name: str) -> Any:
    return load_fixture("magento_rest", name)


def full_memos() -> list[dict[str, Any]]:
    return load("creditmemos_full.json")["items"]


FULL_CREDITS = [
    (dict(external_id="88", credit_number="000000088", state="2", credit_date=datetime(2025, 7, 2, 9, 10),
          subtotal=D("20"), tax_amount=D("5"), shipping_amount=D("0"), adjustment_positive=D("0"),  # net of the -5 discount
          adjustment_negative=D("0"), grand_total=D("25"), source_updated_at=datetime(2025, 7, 2, 9, 15))),
    (dict(external_id="89", credit_number="000000089", state="2", credit_date=datetime(2025, 7, 3, 11),
          subtotal=D("0"), tax_amount=D("0"), shipping_amount=D("0"), adjustment_positive=D("5.5"),
          adjustment_negative=D("0.5"), grand_total=D("5"), source_updated_at=datetime(2025, 7, 3, 11))),
]
WHOLE_ORDERS = {
    "order_full.json": dict(
        external_id="1234", order_number="000001234", status="complete",
        order_date=datetime(2025, 7, 1, 7, 41, 16), source_updated_at=datetime(2025, 7, 2, 9, 15),
        currency_code="GBP", customer_email="ada@example.com", customer_name="Ada Lovelace", customer_external_id="77",
        subtotal=D("100"), tax_amount=D("22"), shipping_amount=D("5"), shipping_tax_amount=D("1"),  # 105 - 5 discount
        shipping_incl_tax=D("6"), discount_amount=D("5"), grand_total=D("127"),
        payment_method="checkmo", payment_amount=D("127"), shipping_method="flatrate_flatrate",
        notes="Leave at the back door", store_name="Main Website\nMain Website Store\nDefault Store View",
        items=[  # configurable pair folded: the child's SKU, the parent's name and amounts; the bundle as one line
            Item(1, "TSHIRT-RED-M", "Organic T-shirt", D("2"), D("20"), D("24"), D("0.2"), D("8"), D("0"), D("48"),
                 product_id="12"),
            Item(2, "KIT-STARTER", "Starter kit", D("1"), D("35"), D("42"), D("0.2"), D("7"), D("5"), D("37"),
                 product_id="20"),
            Item(3, "GEAR-S", "Small gear", D("3"), D("10"), D("12"), D("0.2"), D("6"), D("0"), D("36"), product_id="30"),
        ],
        addresses=[
            Address("billing", "Ada", "Lovelace", "Analytical Engines Ltd", "+44 20 7946 0000", "ada@example.com",
                    "12 St James's Square", "Flat 3, Second floor", "London", "Greater London", "SW1Y 4JH", "GB"),
            Address("shipping", "Charles", "Babbage", None, "+44 20 7946 0001", "ada@example.com",
                    "1 Dorset Street", None, "London", None, "W1U 4EG", "GB"),
        ],
    ),
    "order_virtual.json": dict(
        external_id="1300", order_number="000001300", status="pending",
        order_date=datetime(2025, 7, 3, 8), source_updated_at=datetime(2025, 7, 3, 8),
        currency_code="EUR", customer_email="grace@example.com", customer_name="Grace Hopper", customer_external_id="78",
        subtotal=D("25"), tax_amount=D("0"), shipping_amount=D("0"), shipping_tax_amount=D("0"),
        shipping_incl_tax=D("0"), discount_amount=D("0"), grand_total=D("25"),
        payment_method="banktransfer", payment_amount=None, shipping_method=None, notes=None, store_name="Gift cards",
        items=[Item(1, "GIFT-25", "Gift card 25", D("1"), D("25"), D("25"), D("0"), D("0"), D("0"), D("25"),
                    product_id="900")],
        addresses=[Address("billing", "Grace", "Hopper", None, "030 1234", "grace@example.com", "Hauptstr. 1", None,
                           "Berlin", "Berlin", "10115", "DE")],
    ),
    "order_guest.json": dict(
        external_id="1401", order_number="000001400-1", status="processing",
        replaces_external_id="1400", replaces_order_number="000001400",  # an edited order names its parent
        order_date=datetime(2025, 7, 5, 12), source_updated_at=datetime(2025, 7, 5, 12, 0, 1),
        currency_code="GBP", customer_email="guest@example.com", customer_name="Alan Turing", customer_external_id=None,
        subtotal=D("50"), tax_amount=D("10"), shipping_amount=D("0"), shipping_tax_amount=D("0"),
        shipping_incl_tax=D("0"), discount_amount=D("0"), grand_total=D("60"),
        payment_method="free", payment_amount=D("60"), shipping_method="Free Shipping - Free", notes=None,
        store_name="Main Website",
        items=[  # a fixed-price bundle: its unpriced children fold into the parent
            Item(1, "GIFTBOX", "Gift box", D("1"), D("50"), D("60"), D("0.2"), D("10"), D("0"), D("60"), product_id="40"),
        ],
        addresses=[
            Address("billing", "Alan", "Turing", "", "01908 640404", "guest@example.com", "2 Bletchley Park", None,
                    "Milton Keynes", None, "MK3 6EB", "GB"),
            Address("shipping", "Alan", "Turing", None, "01908 640404", None, "2 Bletchley Park", None,
                    "Milton Keynes", None, "MK3 6EB", "GB"),
        ],
    ),
}


@pytest.mark.parametrize("fixture", list(WHOLE_ORDERS))
def test_parse_order_maps_whole_records(fixture: str) -> None:
    payload = load(fixture)
    memos = full_memos() if fixture == "order_full.json" else []
    raw_json = canonical_json({**payload, CREDITS_KEY: memos})

    order = parse_order(payload, memos, source="shop-b")

    credits = [Credit(raw_json=canonical_json(memo), **fields) for memo, fields in zip(memos, FULL_CREDITS)]
    assert order == Order(source="shop-b", raw_json=raw_json, content_hash=content_hash(raw_json), credits=credits,
                          **WHOLE_ORDERS[fixture])


def test_the_stored_payload_maps_again_to_the_same_order() -> None:
    order = parse_order(load("order_full.json"), full_memos())
    stored = json.loads(order.raw_json, parse_float=Decimal)
    assert [memo["entity_id"] for memo in stored[CREDITS_KEY]] == [88, 89]
    assert parse_stored(stored) == order
    assert MagentoRestSource(HttpClient(timeout=5, max_retries=0), "http://shop", TOKEN).parse(stored) == order


def test_a_new_credit_memo_changes_the_hash() -> None:
    payload, memos = load("order_full.json"), full_memos()
    assert parse_order(payload, memos[:1]).content_hash != parse_order(payload, memos).content_hash
    assert parse_order(payload, memos).content_hash == parse_order(load("order_full.json"), full_memos()).content_hash


@pytest.mark.parametrize("total", ["127.0000", " 127.00 ", D("127.0000"), 127, "1.27E+2"])
def test_numbers_as_strings_or_json_numbers_agree(total: object) -> None:
    order = parse_order(changed(load("order_full.json"), ("grand_total",), total))
    assert order.grand_total == D("127") and type(order.grand_total) is Decimal


@pytest.mark.parametrize(("lines", "expected"), [
    pytest.param([{"item_id": 1, "sku": "A", "name": "Ay", "price": 5}, {"item_id": 2, "sku": "B", "name": "Bee"}],
                 [("A", "Ay"), ("B", "Bee")], id="plain lines as they are"),
    pytest.param([{"item_id": 1, "sku": "C", "name": "Child", "parent_item_id": 9, "price": 5}],
                 [("C", "Child")], id="a child without its parent stands alone"),
    pytest.param([{"item_id": 1, "sku": "P", "name": "Parent", "product_type": "configurable", "price": 9}],
                 [("P", "Parent")], id="a configurable without its child"),
    pytest.param([{"item_id": 1, "sku": "K", "name": "Kit", "product_type": "bundle", "price": 0},
                  {"item_id": 2, "sku": "K1", "name": "One", "parent_item_id": 1, "price": "0.0000"},
                  {"item_id": 3, "sku": "K2", "name": "Two", "parent_item_id": 1, "price": 4}],
                 [("K", "Kit")], id="a bundle priced by its children is one line"),
    pytest.param([{"item_id": 1, "sku": "K", "name": "Kit", "product_type": "bundle", "price": 8}],
                 [("K", "Kit")], id="a bundle without children"),
])
def test_item_folding(lines: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    items = parse_order(changed(load("order_full.json"), ("items",), lines)).items
    assert [(item.line_no, item.sku, item.name) for item in items] == [(n, *e) for n, e in enumerate(expected, start=1)]


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("customer_firstname",), None, "Lovelace"),
    (("customer_lastname",), DELETE, "Ada"),
])
def test_customer_name_keeps_the_part_it_has(path: tuple, value: object, expected: str) -> None:
    assert parse_order(changed(load("order_full.json"), path, value)).customer_name == expected


def test_customer_name_falls_back_to_the_billing_company_then_names() -> None:
    payload = changed(changed(load("order_full.json"), ("customer_firstname",), None), ("customer_lastname",), "")
    assert parse_order(payload).customer_name == "Analytical Engines Ltd"
    assert parse_order(changed(payload, ("billing_address", "company"), None)).customer_name == "Ada Lovelace"


def test_shipping_method_falls_back_to_the_description_and_a_missing_assignment_means_no_address() -> None:
    order = parse_order(changed(load("order_full.json"), ("extension_attributes",), DELETE))
    assert order.shipping_method == "Flat Rate - Fixed"
    assert [address.address_type for address in order.addresses] == ["billing"]


@pytest.mark.parametrize(("path", "value", "message"), [
    (("entity_id",), DELETE, "entity_id: missing or empty"),
    (("entity_id",), "", "entity_id: missing or empty"),
    (("grand_total",), "12,50", "grand_total: '12,50' is not a number"),
    (("grand_total",), "NaN", "grand_total: 'NaN' is not a number"),
    (("grand_total",), "Infinity", "grand_total: 'Infinity' is not a number"),
    (("grand_total",), True, "grand_total: True is not a number"),
    (("subtotal",), {"value": 1}, "subtotal: {'value': 1} is not a number"),
    (("items", 5, "qty_ordered"), "abc", "items[5].qty_ordered: 'abc' is not a number"),
    (("items", 0, "row_total_incl_tax"), "x", "items[0].row_total_incl_tax: 'x' is not a number"),
    (("items", 3, "price"), "free", "items[3].price: 'free' is not a number"),  # decides the bundle folding
    (("items",), {"0": {}}, "items: expected a list, got dict"),
    (("items",), [""], "items[0]: expected an object, got str"),
    (("payment", "amount_paid"), "paid", "payment.amount_paid: 'paid' is not a number"),
    (("payment",), "checkmo", "payment: expected an object, got str"),
    (("billing_address", "street"), {"0": "x"}, "billing_address.street: expected a list of lines, got dict"),
    (("billing_address", "city"), ["London"], "billing_address.city: expected text, got list"),
    (("extension_attributes", "shipping_assignments"), {}, "extension_attributes.shipping_assignments: expected a list"),
    (("extension_attributes", "shipping_assignments", 0, "shipping", "address", "postcode"), {"a": 1},
     "extension_attributes.shipping_assignments[0].shipping.address.postcode: expected text, got dict"),
    (("created_at",), "yesterday", "created_at: 'yesterday' is not a date"),
    (("updated_at",), "0000-00-00 00:00:00", "updated_at: '0000-00-00 00:00:00' is not a date"),
])
def test_malformed_order_raises_one_line_naming_the_field(path: tuple, value: object, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_order(changed(load("order_full.json"), path, value))
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("path", "value", "message"), [
    ((1, "grand_total"), "?", f"{CREDITS_KEY}[1].grand_total: '?' is not a number"),
    ((0, "entity_id"), DELETE, f"{CREDITS_KEY}[0].entity_id: missing or empty"),
    ((0, "created_at"), "soon", f"{CREDITS_KEY}[0].created_at: 'soon' is not a date"),
])
def test_malformed_credit_memo_names_its_place_in_the_stored_payload(path: tuple, value: object, message: str) -> None:
    memos = changed({"memos": full_memos()}, ("memos", *path), value)["memos"]
    with pytest.raises(MappingError, match=re.escape(message)):
        parse_order(load("order_full.json"), memos)


def test_neither_update_nor_creation_date_is_an_error() -> None:
    payload = changed(changed(load("order_full.json"), ("created_at",), None), ("updated_at",), DELETE)
    with pytest.raises(MappingError, match="updated_at: missing, and created_at too"):
        parse_order(payload)


def test_a_stored_payload_whose_memos_are_not_a_list_is_a_mapping_error() -> None:
    with pytest.raises(MappingError, match=f"{CREDITS_KEY}: expected a list, got str"):
        parse_stored({**load("order_full.json"), CREDITS_KEY: "none"})


def test_page_attaches_memos_by_order_and_rejects_a_bad_order_with_its_memos() -> None:
    good, bad = load("order_virtual.json"), changed(load("order_full.json"), ("grand_total",), "12,50")
    memos = full_memos() + [{"entity_id": 90, "order_id": 1300, "increment_id": "90", "grand_total": 1}]

    page = parse_page(7, [good, bad], memos, source="shop-b")

    assert (page.number, [o.external_id for o in page.orders]) == (7, ["1300"])
    assert [credit.external_id for credit in page.orders[0].credits] == ["90"]
    assert page.rejected == [Rejected("shop-b", "1234", "000001234", canonical_json({**bad, CREDITS_KEY: full_memos()}),
                                      "grand_total: '12,50' is not a number")]


# ---- paging over real HTTP ---------------------------------------------------------------------

NOT_AUTHORIZED = {"message": "The consumer isn't authorized to access %resources.",
                  "parameters": {"resources": "Magento_Sales::actions_view"}}
_CRITERION = re.compile(r"searchCriteria\[filter_groups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]")
_SORT = re.compile(r"searchCriteria\[sortOrders\]\[(\d+)\]\[field\]")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "gt": lambda a, b: a > b, "gteq": lambda a, b: a >= b,
    "lt": lambda a, b: a < b, "lteq": lambda a, b: a <= b, "in": lambda a, b: a in b,
}


@dataclass
class FakeMagento:
    """Just enough of Magento's REST search: AND of filter groups (OR inside one), ascending sorts,
    page sizes capped like 2.4.3+, and orders whose deleted product breaks every list holding them."""

    url: str = ""
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    memos: dict[int, dict[str, Any]] = field(default_factory=dict)
    max_page_size: int = 300
    cap_parameters: bool = True  # whether the page-size error names the maximum
    broken: set[int] = field(default_factory=set)
    broken_status: int = 404
    broken_loads_alone: bool = False
    ignore_filters: bool = False
    after_list: Callable[[int], None] = lambda count: None  # called with the number of lists answered
    requests: list[str] = field(default_factory=list)

    def add(self, entity_id: int, updated: str, created: str = "2025-07-01 09:00:00") -> None:
        self.orders[entity_id] = {"entity_id": entity_id, "increment_id": f"{entity_id:09d}", "status": "pending",
                                  "created_at": created, "updated_at": updated, "grand_total": 10}

    def add_memo(self, entity_id: int, order_id: int, updated: str = "2025-07-01 12:00:00") -> None:
        self.memos[entity_id] = {"entity_id": entity_id, "order_id": order_id, "increment_id": f"M{entity_id}",
                                 "state": 2, "created_at": updated, "updated_at": updated, "grand_total": 1}

    def answer(self, path: str, query: dict[str, str], authorization: str | None) -> tuple[int, object]:
        if authorization != f"Bearer {TOKEN}":
            return 401, NOT_AUTHORIZED
        single = re.fullmatch(r"orders/(\d+)", path)
        if single:
            self.requests.append(path)
            entity_id = int(single[1])
            if entity_id in self.broken and not self.broken_loads_alone:
                return self.broken_status, {"message": "Requested product doesn't exist"}
            found = self.orders.get(entity_id)
            return (200, found) if found else (404, {"message": "The entity that was requested doesn't exist."})
        self.requests.append(describe(path, query))
        size = int(query.get("searchCriteria[pageSize]", "20"))
        if size > self.max_page_size:
            parameters = {"parameters": {"max": self.max_page_size}} if self.cap_parameters else {}
            return 400, {"message": "Maximum SearchCriteria pageSize is %max", **parameters}
        table = self.orders if path == "orders" else self.memos
        matched = sorted((e for e in table.values() if self.ignore_filters or matches(e, query)), key=sort_key(query))
        page = matched[(int(query.get("searchCriteria[currentPage]", "1")) - 1) * size:][:size]
        if path == "orders" and self.broken & {order["entity_id"] for order in page}:
            return self.broken_status, {"message": "Requested product doesn't exist", "parameters": []}
        body = {"items": copy.deepcopy(page), "search_criteria": {}, "total_count": len(matched)}
        self.after_list(len(self.lists()))
        return 200, body

    def lists(self, path: str = "orders") -> list[str]:
        """The list requests made of one resource, in order."""
        return [r for r in self.requests if r.startswith(f"{path}?")]

    def update(self, entity_id: int, updated: str) -> None:
        self.orders[entity_id]["updated_at"] = updated


def search(query: dict[str, str]) -> tuple[list[list[dict[str, str]]], list[str]]:
    """A query's filter groups (each a list of filters) and its sort fields, in their indexed order."""
    groups: dict[int, dict[int, dict[str, str]]] = {}
    sorts: dict[int, str] = {}
    for key, value in query.items():
        criterion, sort = _CRITERION.fullmatch(key), _SORT.fullmatch(key)
        if criterion:
            groups.setdefault(int(criterion[1]), {}).setdefault(int(criterion[2]), {})[criterion[3]] = value
        elif sort:
            sorts[int(sort[1])] = value
    filter_groups = [[group[i] for i in sorted(group)] for _, group in sorted(groups.items())]
    return filter_groups, [sorts[i] for i in sorted(sorts)]


def describe(path: str, query: dict[str, str]) -> str:
    """A list request in one line: ``path?field cond value&... sort=... size=N`` (page 1 is implied)."""
    groups, sort = search(query)
    filters = "&".join("|".join(f"{f['field']} {f['condition_type']} {f['value']}" for f in group) for group in groups)
    page = query.get("searchCriteria[currentPage]", "1")
    return f"{path}?{filters} sort={','.join(sort)} size={query.get('searchCriteria[pageSize]')}" + (
        "" if page == "1" else f" page={page}")


def matches(entry: dict[str, Any], query: dict[str, str]) -> bool:
    return all(any(holds(entry, criterion) for criterion in group) for group in search(query)[0])


def holds(entry: dict[str, Any], criterion: dict[str, str]) -> bool:
    name, condition, value = criterion["field"], criterion.get("condition_type", "eq"), criterion["value"]
    cast: Callable[[Any], Any] = int if name in ("entity_id", "order_id") else str
    wanted = [cast(v) for v in value.split(",")] if condition == "in" else cast(value)
    return _COMPARE[condition](cast(entry[name]), wanted)


def sort_key(query: dict[str, str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    fields = search(query)[1]
    return lambda entry: tuple(entry[name] for name in fields)


@dataclass
class Served:
    """The running fake's address, and the store it answers from (a fresh one per test)."""

    url: str
    store: FakeMagento | None = None


@pytest.fixture(scope="module")
def server() -> Iterator[Served]:
    served = Served("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            assert served.store is not None
            parts = urlsplit(self.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            path = parts.path.removeprefix("/rest/default/V1/")
            status, body = served.store.answer(path, query, self.headers.get("Authorization"))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{http_server.server_port}/rest/default"
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        http_server.shutdown()
        http_server.server_close()
        thread.join()


@pytest.fixture
def fake(server: Served) -> FakeMagento:
    server.store = FakeMagento(url=server.url)
    return server.store


@pytest.fixture
def connect(fake: FakeMagento) -> Iterator[Callable[..., MagentoRestSource]]:
    """Builds the source as the CLI does, from Settings, over a client that never retries or sleeps."""
    clients: list[HttpClient] = []

    def make(page_size: int = 3, token: str = TOKEN) -> MagentoRestSource:
        clients.append(HttpClient(timeout=5, max_retries=0, backoff_seconds=0.01))
        settings = Settings(magento_rest_url=fake.url, magento_token=token, magento_rest_page_size=page_size)
        return MagentoRestSource.from_settings(settings, clients[-1])

    yield make
    for client in clients:
        client.close()


def at(second: int, minute: int = 0) -> str:
    return f"2025-07-01 {10 + minute // 60}:{minute % 60:02d}:{second:02d}"


INITIAL = Window(created_after=datetime(2025, 7, 1))
CREATED = "created_at gteq 2025-07-01 00:00:00"
BY_UPDATE = "sort=updated_at,entity_id"


def ids(pages: list[Page]) -> list[list[str]]:
    return [[o.external_id for o in page.orders] for page in pages]


def read(source: MagentoRestSource, window: Window = INITIAL, limit: int = 200) -> list[Page]:
    """The pages of a walk; ``limit`` keeps a looping implementation from hanging the test."""
    return list(itertools.islice(source.pages(window), limit))


def test_check_counts_orders_with_one_smallest_request(fake, connect) -> None:
    for n in range(1, 4):
        fake.add(n, at(n))
    assert connect().check() == "Magento REST, 3 orders"
    assert fake.requests == ["orders? sort= size=1"]


def test_check_accepts_a_base_url_copied_with_the_api_version(fake, connect) -> None:
    fake.add(1, at(1))
    fake.url += "/V1/"
    assert connect().check() == "Magento REST, 1 orders"
    assert fake.requests == ["orders? sort= size=1"]


@pytest.mark.parametrize("status", [404, 500])
def test_check_passes_when_the_token_is_accepted_but_the_first_order_cannot_be_loaded(fake, connect, status) -> None:
    for n in range(1, 4):
        fake.add(n, at(n))
    fake.broken, fake.broken_status = {1}, status
    assert connect().check() == (f"Magento REST (token accepted; an order on the first page cannot be loaded: "
                                 f"HTTP {status} Requested product doesn't exist)")


def test_a_refused_token_names_the_setting_and_never_the_token(fake, connect) -> None:
    with pytest.raises(AuthError) as caught:
        connect(token="wrong-token").check()
    assert str(caught.value) == (f"GET {fake.url}/V1/orders: HTTP 401, credentials refused (The consumer isn't "
                                 "authorized to access Magento_Sales::actions_view); check MAGENTO_TOKEN")
    assert TOKEN not in str(caught.value) and "wrong-token" not in str(caught.value)


def test_keyset_moves_across_a_second_shared_by_a_page_boundary(fake, connect) -> None:
    for n, second in enumerate([1, 2, 2, 3, 4, 5], start=1):
        fake.add(n, at(second))

    pages = read(connect(page_size=3))

    assert ids(pages) == [["1", "2", "3"], ["4"], ["5", "6"]]
    assert fake.lists() == [
        f"orders?updated_at gteq 2025-07-01 00:00:00&{CREATED} {BY_UPDATE} size=3",
        f"orders?updated_at gteq {at(2)}&{CREATED} {BY_UPDATE} size=3",
        f"orders?updated_at gteq {at(3)}&{CREATED} {BY_UPDATE} size=3",
    ]
    assert all(page.advances_cursor and page.rejected == [] for page in pages)
    assert [p.number for p in pages] == [0, 1, 2]


def test_more_orders_in_one_second_than_a_page_holds_are_swept_by_id(fake, connect) -> None:
    for n, second in enumerate([1, 2, 2, 2, 2, 2, 3], start=1):
        fake.add(n, at(second))

    pages = read(connect(page_size=2))

    assert ids(pages) == [["1", "2"], ["3"], ["4", "5"], ["6"], ["7"]]
    assert fake.lists() == [
        f"orders?updated_at gteq 2025-07-01 00:00:00&{CREATED} {BY_UPDATE} size=2",
        f"orders?updated_at gteq {at(2)}&{CREATED} {BY_UPDATE} size=2",
        f"orders?updated_at gteq {at(2)}&{CREATED} {BY_UPDATE} size=2",  # nothing new: sweep the second
        f"orders?entity_id gteq 4&{CREATED}&updated_at eq {at(2)} sort=entity_id size=2",
        f"orders?entity_id gteq 6&{CREATED}&updated_at eq {at(2)} sort=entity_id size=2",
        f"orders?updated_at gteq {at(3)}&{CREATED} {BY_UPDATE} size=2",
    ]


def test_an_order_updated_during_the_walk_is_read_once_more_and_nothing_is_skipped(fake, connect) -> None:
    for n in range(1, 7):
        fake.add(n, at(n))

    def shop_updates(lists_answered: int) -> None:
        if lists_answered == 1:
            fake.update(1, at(30))  # already read: moves behind everything
            fake.update(3, at(31))  # not read yet: moves from the next page to the end

    fake.after_list = shop_updates

    orders = [o.external_id for page in read(connect(page_size=2)) for o in page.orders]

    assert orders == ["1", "2", "4", "5", "6", "1", "3"]
    assert all(r.endswith("size=2") and "page=" not in r for r in fake.requests)


def test_a_refused_page_size_is_halved_once_warned_and_kept(fake, connect, caplog) -> None:
    for n in range(1, 6):
        fake.add(n, at(n))
    fake.max_page_size, fake.cap_parameters = 2, False

    with caplog.at_level(logging.WARNING, logger="synclet.sources.magento_rest"):
        pages = read(connect(page_size=8))

    assert ids(pages) == [["1", "2"], ["3"], ["4"], ["5"]]  # gteq the last second re-reads its order
    assert [r.rsplit("size=", 1)[1] for r in fake.lists()] == ["8", "4", "2", "2", "2", "2"]
    assert [r.getMessage() for r in caplog.records] == [
        "magento-rest: the store refuses pageSize 8; using 4 (lower MAGENTO_REST_PAGE_SIZE)"]


def test_a_refused_page_size_uses_the_maximum_the_store_names(fake, connect) -> None:
    for n in range(1, 4):
        fake.add(n, at(n))
    fake.max_page_size = 2
    assert ids(read(connect(page_size=300))) == [["1", "2"], ["3"]]
    assert [r.rsplit("size=", 1)[1] for r in fake.lists()] == ["300", "2", "2"]


@pytest.mark.parametrize("status", [404, 500])
def test_an_order_with_a_deleted_product_is_narrowed_to_and_rejected_alone(fake, connect, status) -> None:
    seconds = [1, 2, 3, 5, 8, 8, 8, 8, 9, 20, 40, 41]
    for n, second in enumerate(seconds, start=1):
        fake.add(n, at(second))
    fake.broken, fake.broken_status = {6}, status

    pages = read(connect(page_size=3))

    orders = [o.external_id for page in pages for o in page.orders]
    assert orders == [str(n) for n in range(1, 13) if n != 6]
    assert [r for page in pages for r in page.rejected] == [Rejected(
        "magento-rest", "6", None, canonical_json({"entity_id": 6}),
        "Requested product doesn't exist (the order cannot be loaded)")]
    assert fake.requests.count("orders/6") == 1
    assert not [r for r in fake.requests if r.startswith("orders/") and r != "orders/6"]
    assert len(fake.requests) < 60


def test_an_order_that_fails_every_list_but_loads_alone_is_read(fake, connect) -> None:
    for n, second in enumerate([1, 2, 2, 3], start=1):
        fake.add(n, at(second))
    fake.broken, fake.broken_loads_alone = {3}, True

    pages = read(connect(page_size=3))

    assert [o.external_id for page in pages for o in page.orders] == ["1", "2", "3", "4"]
    assert fake.requests.count("orders/3") == 1 and not [r for page in pages for r in page.rejected]


def test_every_credit_memo_is_attached_to_its_order(fake, connect) -> None:
    for n in range(1, 4):
        fake.add(n, at(n))
    for memo, order in [(10, 1), (11, 3), (12, 1), (13, 1)]:
        fake.add_memo(memo, order)

    pages = read(connect(page_size=2))

    credits = {o.external_id: [c.external_id for c in o.credits] for page in pages for o in page.orders}
    assert credits == {"1": ["10", "12", "13"], "2": [], "3": ["11"]}
    assert [r for r in fake.lists("creditmemos") if "order_id in" in r] == [
        "creditmemos?entity_id gteq 1&order_id in 1,2 sort=entity_id size=2",
        "creditmemos?entity_id gteq 13&order_id in 1,2 sort=entity_id size=2",
        "creditmemos?entity_id gteq 1&order_id in 3 sort=entity_id size=2",
    ]
    assert not [r for r in fake.requests if "entity_id in" in r]  # the trailing memo walk found them all read
    stored = json.loads(pages[0].orders[0].raw_json)
    assert [memo["entity_id"] for memo in stored[CREDITS_KEY]] == [10, 12, 13]


def test_an_incremental_run_first_reads_orders_whose_credit_memos_changed(fake, connect) -> None:
    fake.add(1, at(1))
    fake.add(2, at(2))
    fake.add(3, at(10, minute=30))
    fake.add(4, at(3), created="2025-06-01 00:00:00")  # before the window: never read
    fake.add_memo(20, 1, updated=at(0, minute=5))
    fake.add_memo(21, 1, updated=at(0, minute=20))
    fake.add_memo(22, 4, updated=at(0, minute=21))
    window = Window(created_after=datetime(2025, 7, 1), updated_after=datetime(2025, 7, 1, 10, 15))

    pages = read(connect(page_size=3), window)

    assert [(ids([p])[0], p.advances_cursor) for p in pages] == [(["1"], False), (["3"], True)]
    assert [c.external_id for c in pages[0].orders[0].credits] == ["20", "21"]
    assert fake.requests[:2] == [
        "creditmemos?updated_at gteq 2025-07-01 10:15:00 sort=updated_at,entity_id size=3",
        f"orders?entity_id gteq 1&{CREATED}&entity_id in 1,4 sort=entity_id size=3",
    ]
    assert f"orders?updated_at gteq 2025-07-01 10:15:00&{CREATED} {BY_UPDATE} size=3" in fake.requests
    memo_walk = "creditmemos?updated_at gteq 2025-07-01 10:15:00 sort=updated_at,entity_id size=3"
    assert fake.requests.count(memo_walk) == 2  # the trailing pass: one list, every memo in it already read
    assert len([r for r in fake.requests if "entity_id in" in r]) == 1


@pytest.mark.parametrize("window", [INITIAL, Window(datetime(2025, 7, 1), updated_after=datetime(2025, 7, 1, 10))],
                         ids=["initial", "incremental"])
def test_a_memo_made_mid_walk_for_an_order_already_read_is_read_by_the_trailing_pass(fake, connect, window) -> None:
    for n in range(1, 7):
        fake.add(n, at(n))
    fake.add_memo(20, 2, updated="2025-07-01 09:30:00")  # before the incremental window

    def shop_credits(lists_answered: int) -> None:
        if lists_answered == 2:  # order 1 and its memos were read; its order is not touched
            fake.add_memo(30, 1, updated=at(7))
            fake.add_memo(31, 4, updated=at(8))  # not read yet: attached on the way, not again

    fake.after_list = shop_credits

    pages = read(connect(page_size=2), window)

    read_orders = [(o.external_id, [c.external_id for c in o.credits], p.advances_cursor)
                   for p in pages for o in p.orders]
    assert read_orders == [("1", [], True), ("2", ["20"], True), ("3", [], True), ("4", ["31"], True),
                           ("5", [], True), ("6", [], True), ("1", ["30"], False)]
    walks = [r.split(" sort=")[0] for r in fake.lists("creditmemos") if "updated_at gteq" in r]
    if window.updated_after is None:  # memos 20 and 30 fill a page, so the walk goes on from 30's second
        assert walks == ["creditmemos?updated_at gteq 2025-07-01 00:00:00", f"creditmemos?updated_at gteq {at(7)}"]
    else:  # the first pass found nothing; the trailing pass starts where it did
        assert walks == ["creditmemos?updated_at gteq 2025-07-01 10:00:00"] * 2
    by_id = [r for r in fake.requests if "entity_id in" in r]
    assert by_id == [f"orders?entity_id gteq 1&{CREATED}&entity_id in 1 sort=entity_id size=2"]  # only the credited one


def test_a_store_ignoring_the_paging_filters_fails_instead_of_looping(fake, connect) -> None:
    for n in range(1, 6):
        fake.add(n, at(n))
    fake.ignore_filters = True
    with pytest.raises(ProtocolError, match="held nothing new"):
        read(connect(page_size=2))
    assert len(fake.lists()) == 2


@pytest.mark.parametrize("seed", range(12))
def test_random_stores_with_crowded_seconds_and_broken_orders_are_read_exactly_once(fake, connect, seed) -> None:
    rng = random.Random(seed)
    entity_ids = rng.sample(range(1, 5000), 40)
    for entity_id in entity_ids:
        fake.add(entity_id, at(rng.choice([0, 1, 1, 1, 2, 7, 30, 59]), minute=rng.choice([0, 0, 5, 59])))
    fake.broken = set(rng.sample(entity_ids, rng.randint(0, 3)))
    fake.broken_status = rng.choice([404, 500])
    clock = itertools.count(1)
    answered_at: dict[int, dict[int, str]] = {}  # orders lists answered -> the store as the last one saw it

    def shop_updates(lists_answered: int) -> None:  # the shop's clock only moves forward, past all data
        answered_at.setdefault(lists_answered, {n: order["updated_at"] for n, order in fake.orders.items()})
        if rng.random() < 0.1:
            tick = next(clock)
            fake.update(rng.choice(entity_ids), at(tick % 60, minute=60 + tick // 60))

    if seed % 2:
        fake.after_list = shop_updates

    pages = read(connect(page_size=rng.choice([1, 2, 3, 5])), limit=1000)

    versions = [(o.external_id, o.source_updated_at) for page in pages for o in page.orders]
    assert len(versions) == len(set(versions)), "a version was read twice"
    seen_last = answered_at.get(len(fake.lists()), {n: order["updated_at"] for n, order in fake.orders.items()})
    final = {str(n): datetime.fromisoformat(updated_at) for n, updated_at in seen_last.items()}
    assert dict(versions) == {n: final[n] for n in final if int(n) not in fake.broken}  # the last read is current
    rejected = [int(r.external_id) for page in pages for r in page.rejected]
    assert set(rejected) == fake.broken and (seed % 2 or len(rejected) == len(fake.broken))  # a moved one is met again
    assert all("page=" not in request for request in fake.requests)


BUNDLES = {  # case in bundle_items.json -> (quantity, unit ex tax, unit incl tax, rate, tax, discount, line total)
    "two of one part and three of another": ("1", "50", "60", "0.2", "10", "0", "60"),
    "two bundles, a discounted part twice in each": ("2", "27.99", "33.588", "0.2", "11.196", "3", "64.176"),
    "a row total per bundle rounds half up": ("8", "1.2513", "1.2513", "0", "0", "0", "10.01"),
    "one of each part": ("3", "10", "10.5", "0.05", "1.5", "1.5", "30"),
    "a bundle without a quantity has no unit price": (None, None, None, "0", "0", "0", "10"),
}


@pytest.mark.parametrize("case", list(BUNDLES))
def test_a_bundle_priced_by_its_parts_is_one_line_whose_unit_prices_are_its_row_totals_per_bundle(case: str) -> None:
    rows = load("bundle_items.json")[case]
    (item,) = parse_order(changed(load("order_full.json"), ("items",), rows)).items
    amounts = (item.quantity, item.unit_price_ex_tax, item.price_incl_tax, item.tax_rate, item.tax_amount,
               item.discount_amount, item.line_total_incl_tax)
    assert (item.sku, item.name) == (rows[0]["sku"], rows[0]["name"])
    assert amounts == tuple(None if value is None else D(value) for value in BUNDLES[case])


@pytest.mark.parametrize(("body", "message"), [
    pytest.param({"message": "The consumer isn't authorized to access %resources.",
                  "parameters": {"resources": "Magento_Sales::actions_view"}},
                 "The consumer isn't authorized to access Magento_Sales::actions_view.", id="named"),
    pytest.param({"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 300}},
                 "Maximum SearchCriteria pageSize is 300", id="a number"),
    pytest.param({"message": "%1 of %2 (%1)", "parameters": ["one", "two"]}, "one of two (one)", id="numbered"),
    pytest.param({"message": "%1 then %10", "parameters": list("abcdefghij")}, "a then j", id="longest first"),
    pytest.param({"message": "%1 and %2", "parameters": ["%2", "x"]}, "%2 and x", id="each replaced once"),
    pytest.param({"message": "%name and %other", "parameters": {"name": None}}, " and %other",
                 id="unknown placeholders stay"),
    pytest.param({"message": "Requested product doesn't exist", "parameters": []},
                 "Requested product doesn't exist", id="no parameters"),
    pytest.param({"message": "50% off %1"}, "50% off %1", id="parameters absent"),
    pytest.param({"message": "%1", "parameters": "x"}, "%1", id="parameters of no known shape"),
    pytest.param({"error": "nope"}, "", id="no message"),
    pytest.param({"message": ["x"]}, "", id="a message that is not text"),
    pytest.param(["message"], "", id="not an object"),
])
def test_magento_messages_are_filled_as_magento_renders_them(body: object, message: str) -> None:
    assert magento_message(body) == message


@pytest.mark.parametrize(("url", "root"), [
    ("https://shop.example/rest/default", "https://shop.example/rest/default"),
    ("https://shop.example/rest/default/", "https://shop.example/rest/default"),
    ("https://shop.example/rest/default/V1", "https://shop.example/rest/default"),
    ("https://shop.example/rest/default/V1/", "https://shop.example/rest/default"),
    ("https://shop.example/rest/v1", "https://shop.example/rest"),
    ("https://shop.example/rest/V1/V1", "https://shop.example/rest/V1"),  # only one
    ("https://shop.example/rest/XV1", "https://shop.example/rest/XV1"),
])
def test_the_rest_url_may_be_given_with_the_api_version(url: str, root: str) -> None:
    assert rest_root(url) == root
