"""OneSaas (Magento) source: pure parsing on recorded-shape JSON, and paging against a real server."""
from __future__ import annotations

import dataclasses
import itertools
import json
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
from synclet.errors import AuthError, MappingError, ProtocolError, RemoteError
from synclet.http import HttpClient
from synclet.records import Address, Credit, Item, Order, Page, canonical_json, content_hash
from synclet.sources import Window, magento_rest_parse
from synclet.sources.onesaas import OneSaasSource, parse_order, parse_page

from payloads import DELETE, changed, load_fixture

ACCESS_KEY = "s3cr3t-access-key"
D = Decimal


def load(name: str) -> Any:
    return load_fixture("onesaas", name)


FULL_ITEMS = [
    Item(1, "WIDGET-RED", "Red widget", D("2"), D("50"), D("60"), D("0.2"), D("20"), D("0"), D("120"),
         product_id="501", tax_code="VAT20"),
    Item(2, "BOOK-1", "Notes on the engine", D("1"), D("15.5"), D("15.5"), D("0"), D("0"), D("0"), D("15.5"),
         product_id="502", tax_code=None),
    Item(3, "GEAR-S", "Small gear", D("3"), D("10"), D("12"), D("0.2"), D("4.25"), D("10.5"), D("25.5"),
         product_id="503", tax_code="UK VAT"),
]
FULL_ADDRESSES = [
    Address("billing", "Ada", "Lovelace", "Analytical Engines Ltd", "+44 20 7946 0000", "ada@example.com",
            "12 St James's Square", "Flat 3", "London", "Greater London", "SW1Y 4JH", "GB"),
    Address("shipping", "Charles", "Babbage", None, "+44 20 7946 0001", None,
            "1 Dorset Street", "", "London", None, "W1U 4EG", "GB"),
]
BLANK_ORDER = dict(
    order_number=None, status=None, order_date=None, currency_code=None, customer_email=None, customer_name=None,
    subtotal=None, tax_amount=D("0"), shipping_amount=None, discount_amount=None, grand_total=None,
    payment_method=None, payment_amount=None, shipping_method=None, notes=None,
)

WHOLE_ORDERS = {
    "order_full.json": dict(
        external_id="1234", order_number="000001234", status="complete",
        order_date=datetime(2025, 7, 1, 7, 41, 16), source_updated_at=datetime(2025, 7, 2, 9, 15),
        currency_code="GBP", customer_email="ada@example.com", customer_name="Ada Lovelace",
        subtotal=D("136.75"), tax_amount=D("25.25"), shipping_amount=D("5"), discount_amount=D("10.5"),
        grand_total=D("165"), payment_method="checkmo", payment_amount=D("165"),
        shipping_method="flatrate_flatrate", notes="Leave at the back door",
        shipping_tax_amount=D("1"), shipping_incl_tax=D("6"), customer_external_id="77",
        store_name="Main Website\nMain Website Store\nDefault Store View",
        replaces_external_id=None, replaces_order_number=None,
        items=FULL_ITEMS, addresses=FULL_ADDRESSES,
    ),
    "order_virtual.json": dict(
        external_id="1300", order_number="000001300", status="pending",
        order_date=datetime(2025, 7, 3, 8, 0), source_updated_at=datetime(2025, 7, 3, 8, 0),
        currency_code="EUR", customer_email="guest@example.com", customer_name="Guest Org",
        subtotal=D("25"), tax_amount=D("0"), shipping_amount=None, discount_amount=D("0"),
        grand_total=D("25"), payment_method="banktransfer", payment_amount=None,
        shipping_method=None, notes=None, shipping_tax_amount=None, shipping_incl_tax=None,
        customer_external_id="0", store_name="Gift cards",
        items=[Item(1, "GIFT-25", "Gift card 25", D("1"), D("25"), D("25"), D("0"), D("0"), D("0"), D("25"),
                    product_id="900")],
        addresses=[Address("billing", "", "", "Guest Org", None, "guest@example.com",
                           "Hauptstr. 1", None, "Berlin", "Berlin", "10115", "DE")],
        credits=[],
    ),
    "order_edited.json": dict(
        external_id="1401", order_number="000001234-1", status="processing",
        order_date=datetime(2025, 7, 5, 12), source_updated_at=datetime(2025, 7, 5, 12, 0, 1),
        currency_code="GBP", customer_email="ada@example.com", customer_name="Ada Lovelace",
        subtotal=D("10"), tax_amount=D("2"), shipping_amount=D("0"), discount_amount=D("0"),
        grand_total=D("12"), payment_method=None, payment_amount=None,
        shipping_method="freeshipping_freeshipping", notes=None,
        shipping_tax_amount=D("0"), shipping_incl_tax=D("0"), customer_external_id="77",
        store_name="Main Website", replaces_external_id="1234", replaces_order_number="000001234",
        items=[Item(1, "GEAR-L", "Large gear", D("1"), D("10"), D("12"), D("0.2"), D("2"), D("0"), D("12"),
                    product_id="504", tax_code="VAT20")],
        addresses=[], credits=[],
    ),
    "order_deleted_product.json": dict(
        external_id="1500", order_number="000001500", status="closed",
        order_date=datetime(2025, 7, 6, 8), source_updated_at=datetime(2025, 7, 6, 8, 30),
        currency_code="GBP", customer_email=None, customer_name=None,
        subtotal=D("30"), tax_amount=D("0"), shipping_amount=D("0"), discount_amount=D("0"),
        grand_total=D("30"), payment_method=None, payment_amount=None, shipping_method="pickup", notes=None,
        shipping_tax_amount=D("0"), shipping_incl_tax=D("0"), customer_external_id="0", store_name="Main Website",
        items=[
            Item(1, None, "Ordered product could not be found!", None, None, None, None, None, None, None,
                 error_code="Product.ProductNotFound"),
            Item(2, "BOLT", "Bolt", D("10"), D("3"), D("3"), D("0"), D("0"), D("0"), D("30"), product_id="505"),
        ],
        addresses=[], credits=[],
    ),
}


def full_credit(payload: dict[str, Any]) -> Credit:
    return Credit("88", "000000088", "2", datetime(2025, 7, 2, 9), D("15.5"), D("0"), D("0"), D("0"), D("0"),
                  D("15.5"), raw_json=canonical_json(payload["Credits"][0]),
                  source_updated_at=datetime(2025, 7, 2, 9, 15))


@pytest.mark.parametrize("fixture", list(WHOLE_ORDERS))
def test_parse_order_maps_whole_records(fixture: str) -> None:
    payload = load(fixture)
    fields = dict(WHOLE_ORDERS[fixture])
    if "credits" not in fields:
        fields["credits"] = [full_credit(payload)]
    raw_json = canonical_json(payload)

    order = parse_order(payload)

    assert order == Order(source="magento", raw_json=raw_json, content_hash=content_hash(raw_json), **fields)


def test_amounts_are_decimal_never_float() -> None:
    order = parse_order(load("order_full.json"))
    amounts = [order.subtotal, order.tax_amount, order.grand_total, order.discount_amount]
    amounts += [value for item in order.items for value in (item.quantity, item.tax_rate, item.discount_amount)]
    assert all(type(value) is Decimal for value in amounts)


@pytest.mark.parametrize("total", ["165.0000", " 165.00 ", D("165.0000"), 165, "1.65E+2"])
def test_numbers_as_strings_or_json_numbers_agree(total: object) -> None:
    order = parse_order(changed(load("order_full.json"), ("Total",), total))
    assert order.grand_total == D("165") and type(order.grand_total) is Decimal


@pytest.mark.parametrize("total", [None, "", "  ", DELETE])
def test_absent_or_blank_amounts_are_none(total: object) -> None:
    assert parse_order(changed(load("order_full.json"), ("Total",), total)).grand_total is None


def test_a_discounted_credit_memo_is_stored_as_the_rest_source_stores_the_same_row() -> None:
    """Credits are whole ``sales_creditmemo`` rows, whose ``subtotal`` is before the (negative)
    ``discount_amount``: the stored subtotal is net of it, so the memo's amounts add up."""
    row = {"entity_id": "89", "increment_id": "000000089", "order_id": "1234", "state": "2",
           "created_at": "2025-07-03 11:00:00", "updated_at": "2025-07-03 11:00:00", "subtotal": "30.0000",
           "discount_amount": "-10.5000", "tax_amount": "3.9000", "shipping_amount": "5.0000",
           "adjustment_positive": "1.0000", "adjustment_negative": "0.5000", "grand_total": "28.9000", "Items": []}

    credit = parse_order(changed(load("order_full.json"), ("Credits",), [row])).credits[0]
    rest = magento_rest_parse.parse_order(load_fixture("magento_rest", "order_full.json"), [row]).credits[0]

    assert credit.subtotal == D("19.5")
    assert credit.subtotal + credit.tax_amount + credit.shipping_amount + credit.adjustment_positive \
        - credit.adjustment_negative == credit.grand_total
    assert dataclasses.replace(credit, raw_json="") == dataclasses.replace(rest, raw_json="")


@pytest.mark.parametrize(("value", "expected"), [
    ("2025-07-01 07:41:16", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01T07:41:16", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01T07:41:16Z", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01T07:41:16.250z", datetime(2025, 7, 1, 7, 41, 16, 250000)),
    ("2025-07-01T09:41:16+02:00", datetime(2025, 7, 1, 7, 41, 16)),
    ("2025-07-01 02:41:16-05:00", datetime(2025, 7, 1, 7, 41, 16)),
])
def test_dates_become_naive_utc(value: str, expected: datetime) -> None:
    order = parse_order(changed(load("order_full.json"), ("LastUpdatedDate",), value))
    assert order.source_updated_at == expected and order.source_updated_at.tzinfo is None


@pytest.mark.parametrize(("path", "value", "message"), [
    (("Id",), DELETE, "Id: missing or empty"),
    (("Id",), "", "Id: missing or empty"),
    (("Total",), "12,50", "Total: '12,50' is not a number"),
    (("Total",), "abc", "Total: 'abc' is not a number"),
    (("Total",), "NaN", "Total: 'NaN' is not a number"),
    (("Total",), True, "Total: True is not a number"),
    (("Total",), [1], "Total: [1] is not a number"),
    (("Items", 1, "Quantity"), "abc", "Items[1].Quantity: 'abc' is not a number"),
    (("Items", 0, "Taxes", "TaxAmount"), "x", "Items[0].Taxes.TaxAmount: 'x' is not a number"),
    (("Shipping", "Taxes", "TaxAmount"), "1,00", "Shipping.Taxes.TaxAmount: '1,00' is not a number"),
    (("Payments", "PaymentMethod", "Amount"), "paid", "Payments.PaymentMethod.Amount: 'paid' is not a number"),
    (("Credits", 0, "grand_total"), "?", "Credits[0].grand_total: '?' is not a number"),
    (("Credits", 0, "entity_id"), DELETE, "Credits[0].entity_id: missing or empty"),
    (("Date",), "yesterday", "Date: 'yesterday' is not a date"),
    (("LastUpdatedDate",), "0000-00-00 00:00:00", "LastUpdatedDate: '0000-00-00 00:00:00' is not a date"),
    (("Contact",), "ada", "Contact: expected an object, got str"),
    (("Contact", "Email"), {"a": 1}, "Contact.Email: expected text, got dict"),
    (("Contact", "Addresses", "BillingAddress"), ["x"], "Contact.Addresses.BillingAddress: expected an object"),
    (("Items",), {"0": {}}, "Items: expected a list, got dict"),
    (("Items",), [""], "Items[0]: expected an object, got str"),
    (("Credits",), "none", "Credits: expected a list, got str"),
    (("Id",), "12 OR 1=1", "Id: '12 OR 1=1' is not an entity id"),
    (("Id",), "7" * 21, "Id: '777777777777777777777' is not an entity id"),
    (("Id",), True, "Id: 'True' is not an entity id"),
    (("Total",), D("NaN"), "Total: 'NaN' is not a number"),
    (("Total",), D("-Infinity"), "Total: '-Infinity' is not a number"),
    (("Total",), D("1E+400"), "Total: 1E+400 is out of range"),
    (("Discounts",), "9E+999999", "Discounts: '9E+999999' is out of range"),
    (("Items", 2, "Quantity"), "1e999999", "Items[2].Quantity: '1e999999' is out of range"),
    (("Date",), "0001-01-01T00:00:00+05:00", "Date: '0001-01-01T00:00:00+05:00' is out of range in UTC"),
    (("LastUpdatedDate",), "9999-12-31T23:00:00-05:00", "LastUpdatedDate: '9999-12-31T23:00:00-05:00' is out of range"),
    (("Total",), "9" * 10_000, "Total: '9999999999999999999999999999999999999"),
    (("Notes",), {"x" * 10_000: ["\n" * 10_000]}, "Notes: expected text, got dict"),
    (('ReplaceOrderNumber Id="1\n' + "2" * 10_000 + '"',), [], "'ReplaceOrderNumber Id=\"1\\n22222"),
])
def test_malformed_order_raises_one_line_naming_the_field(path: tuple, value: object, message: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_order(changed(load("order_full.json"), path, value))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_values_json_text_cannot_hold_are_kept_as_text_and_surrogates_as_replacement_characters() -> None:
    payload = changed(load("order_full.json"), ("CustomFields",), {"CreditPoints": D("NaN"), "Fee": D("1E+400")})
    payload = changed(payload, ("Notes",), "a\ud800b")
    payload = changed(payload, ("Contact", "Addresses", "BillingAddress", "\udfffCity"), "\ud83d")

    order = parse_order(payload)

    assert order.notes == "a\ufffdb"
    kept = json.loads(order.raw_json)  # strict JSON: no NaN or Infinity
    assert kept["CustomFields"] == {"CreditPoints": "NaN", "Fee": "1E+400"}
    assert kept["Contact"]["Addresses"]["BillingAddress"]["\ufffdCity"] == "\ufffd"
    assert order.content_hash == content_hash(order.raw_json) == parse_order(payload).content_hash


def test_a_rejected_payload_is_kept_storable() -> None:
    entry = changed(changed(load("order_full.json"), ("Total",), D("Infinity")), ("Notes",), "\udc00")
    (rejected,) = parse_page({"OneSaas Version": "4.2.0.6", "Orders": [entry]}, 0).rejected
    assert (rejected.external_id, rejected.error) == ("1234", "Total: 'Infinity' is not a number")
    assert json.loads(rejected.raw_json)["Notes"] == "\ufffd"


def test_an_error_body_message_is_one_short_line() -> None:
    with pytest.raises(RemoteError) as caught:
        parse_page({"Error": "Deadlock\n" + "x" * 10_000}, 1)
    assert str(caught.value).startswith("page 1: OneSaas error: Deadlock xxx") and len(str(caught.value)) < 300


def test_neither_update_nor_creation_date_is_an_error() -> None:
    payload = changed(changed(load("order_full.json"), ("Date",), None), ("LastUpdatedDate",), None)
    with pytest.raises(MappingError, match="LastUpdatedDate"):
        parse_order(payload)


def test_page_skips_blanks_rejects_bad_orders_and_keeps_the_later_duplicate() -> None:
    body = load("page_mixed.json")
    entries = body["Orders"]

    page = parse_page(body, 4)

    assert (page.number, page.skipped) == (4, 2)
    assert [(o.external_id, o.notes, o.status) for o in page.orders] == [
        ("2005", None, "processing"), ("2001", "second copy", "processing")]
    assert [(r.source, r.external_id, r.order_number, r.error) for r in page.rejected] == [
        ("magento", "2002", "000002002", "Total: '12,50' is not a number"),
        ("magento", "2003", "000002003", "Items[0].Quantity: 'abc' is not a number"),
        ("magento", None, "000002004", "Id: missing or empty"),
    ]
    assert [r.raw_json for r in page.rejected] == [canonical_json(entries[i]) for i in (2, 3, 4)]


def test_page_duplicate_rejected_then_valid_keeps_only_the_valid_one() -> None:
    good = {"Id": "9", "OrderNumber": "9", "Date": "2025-07-07 10:00:00", "Total": "1"}
    body = {"OneSaas Version": "4.2.0.6", "Orders": [changed(good, ("Total",), "x"), good]}
    page = parse_page(body, 0, source="shop-b")
    assert [(o.source, o.external_id) for o in page.orders] == [("shop-b", "9")]
    assert page.rejected == []


@pytest.mark.parametrize("entry", ["", None, 7, [], {}, {"Id": "", "OrderNumber": None}, {"Status": "pending"}])
def test_entries_without_identity_are_skipped(entry: object) -> None:
    page = parse_page({"OneSaas Version": "4.2.0.6", "Orders": [entry]}, 0)
    assert (page.skipped, page.orders, page.rejected) == (1, [], [])


def test_bare_empty_string_body_is_an_empty_page() -> None:
    assert parse_page("", 3) == Page(3)


@pytest.mark.parametrize(("body", "error", "message"), [
    ({"Error": "Invalid API key"}, AuthError, "page 3: OneSaas refused the access key (Invalid API key); check MAGENTO_ACCESS_KEY"),
    ({"Error": "Invalid Action"}, RemoteError, "page 3: OneSaas error: Invalid Action"),
    (["not", "a", "page"], ProtocolError, 'page 3: expected "" or an object with an "Orders" list, got list'),
    ({"OneSaas Version": "4.2.0.6"}, ProtocolError, "page 3: expected"),
    ({"OneSaas Version": "4.2.0.6", "Orders": ""}, ProtocolError, "page 3: expected"),
    (None, ProtocolError, "got null"),
    ("error", ProtocolError, "got str"),
])
def test_page_bodies_that_are_not_pages_raise(body: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        parse_page(body, 3)
    assert type(caught.value) is error and message in str(caught.value)


# ---- paging over real HTTP ---------------------------------------------------------------------


@dataclass
class FakeOneSaas:
    """A OneSaas endpoint in a thread: ``respond`` turns a request's query into a JSON body."""

    url: str = ""
    respond: Callable[[dict[str, str]], object] = lambda query: ""
    requests: list[dict[str, str]] = field(default_factory=list)

    def reset(self) -> None:
        self.respond = lambda query: ""
        self.requests.clear()

    def serve_pages(self, pages: dict[int, object]) -> None:
        self.respond = lambda query: pages.get(int(query["Page"]), "")

    def page_numbers(self) -> list[int]:
        return [int(query["Page"]) for query in self.requests]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOneSaas]:
    store = FakeOneSaas()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            store.requests.append(query)
            body = json.dumps(store.respond(query)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=UTF-8")  # as Magento sends it
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    store.url = f"http://127.0.0.1:{server.server_port}/onesaas_connect/index/index"
    try:
        yield store
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def fake(server: FakeOneSaas) -> FakeOneSaas:
    server.reset()
    return server


@pytest.fixture
def source(fake: FakeOneSaas) -> Iterator[OneSaasSource]:
    http = HttpClient(timeout=5, max_retries=0)
    settings = Settings(magento_base_url=fake.url, magento_access_key=ACCESS_KEY, magento_page_size=2)
    try:
        yield OneSaasSource.from_settings(settings, http)
    finally:
        http.close()


def order(n: int) -> dict[str, str]:
    return {"Id": str(n), "OrderNumber": f"{n:09d}", "Date": "2025-07-01 10:00:00", "Total": "1.0000"}


def page_of(*entries: object) -> dict[str, object]:
    return {"OneSaas Version": "4.2.0.6", "Orders": list(entries)}


def read_ids(source: OneSaasSource, window: Window, limit: int = 10) -> list[list[str]]:
    """Order ids per page; ``limit`` keeps a looping implementation from hanging the test."""
    return [[o.external_id for o in page.orders] for page in itertools.islice(source.pages(window), limit)]


WINDOW = Window(created_after=datetime(2025, 7, 1), updated_after=datetime(2025, 7, 2, 12))


def test_pages_sends_every_parameter_with_strict_bounds_one_second_early(fake, source) -> None:
    fake.serve_pages({0: page_of(order(1), order(2)), 1: page_of(order(3), order(4))})

    assert read_ids(source, WINDOW) == [["1", "2"], ["3", "4"]]
    assert fake.requests == [
        {"AccessKey": ACCESS_KEY, "Action": "Orders", "PageSize": "2", "Page": str(number),
         "OrderCreatedTime": "2025-06-30 23:59:59", "LastUpdatedTime": "2025-07-02 11:59:59"}
        for number in (0, 1, 2)
    ]


def test_initial_window_sends_no_update_bound(fake, source) -> None:
    fake.serve_pages({})
    assert read_ids(source, Window(created_after=datetime(2025, 1, 1, 0, 0, 30))) == []
    assert fake.requests == [{"AccessKey": ACCESS_KEY, "Action": "Orders", "PageSize": "2", "Page": "0",
                              "OrderCreatedTime": "2025-01-01 00:00:29"}]


def test_short_page_ends_paging_without_asking_for_the_next(fake, source) -> None:
    fake.serve_pages({0: page_of(order(1), order(2)), 1: page_of(order(3)), 2: page_of(order(99))})
    assert read_ids(source, WINDOW) == [["1", "2"], ["3"]]
    assert fake.page_numbers() == [0, 1]


def test_blank_entries_count_toward_a_full_page(fake, source) -> None:
    fake.serve_pages({0: page_of(order(1), ""), 1: page_of(order(3))})
    pages = list(source.pages(WINDOW))
    assert [(p.number, p.skipped, len(p.orders)) for p in pages] == [(0, 1, 1), (1, 0, 1)]
    assert fake.page_numbers() == [0, 1]


def test_a_repeated_page_stops_paging(fake, source) -> None:
    fake.respond = lambda query: page_of(order(1), order(2))  # a server that ignores Page
    assert read_ids(source, WINDOW) == [["1", "2"]]
    assert fake.page_numbers() == [0, 1]


@pytest.mark.parametrize(("error_body", "error"), [
    ({"Error": "Invalid API key"}, AuthError),
    ({"Error": "Database is locked"}, RemoteError),
    ({"Orders": None}, ProtocolError),
])
def test_error_body_mid_paging_raises_after_the_pages_read(fake, source, error_body, error) -> None:
    fake.serve_pages({0: page_of(order(1), order(2)), 1: error_body})
    pages = source.pages(WINDOW)
    assert [o.external_id for o in next(pages).orders] == ["1", "2"]
    with pytest.raises(error, match="page 1") as caught:
        next(pages)
    assert ACCESS_KEY not in str(caught.value)


@pytest.mark.parametrize(("body", "expected"), [
    (page_of(order(1)), "OneSaas 4.2.0.6"),
    ("", "OneSaas (no orders yet)"),
])
def test_check_reports_the_version_from_one_small_request(fake, source, body, expected) -> None:
    fake.respond = lambda query: body
    assert source.check() == expected
    assert [(q["Action"], q["PageSize"], q["Page"], q["AccessKey"]) for q in fake.requests] == [
        ("Orders", "1", "0", ACCESS_KEY)]


@pytest.mark.parametrize(("body", "error", "message"), [
    ({"Error": "Invalid API key"}, AuthError, "MAGENTO_ACCESS_KEY"),
    ({"Error": "Invalid Action"}, RemoteError, "Invalid Action"),
    (["x"], ProtocolError, "not a OneSaas answer (list)"),
    ({"Orders": []}, ProtocolError, "not a OneSaas answer (dict)"),
])
def test_check_failures(fake, source, body, error, message) -> None:
    fake.respond = lambda query: body
    with pytest.raises(error, match=re.escape(message)) as caught:
        source.check()
    assert type(caught.value) is error and ACCESS_KEY not in str(caught.value)
