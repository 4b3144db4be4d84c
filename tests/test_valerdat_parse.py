"""Valerdat parsing: recorded-shape purchase orders and ids pages into records, bad values named by
path, and a property test that any decoded JSON maps or is rejected with a MappingError."""
from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synclet.errors import MappingError, ProtocolError
from synclet.http import map_json, replace_lone_surrogates
from synclet.records import Address, Item, Order, canonical_json, content_hash
from synclet.sources.valerdat_parse import parse_ids_page, parse_order

from payloads import DELETE, changed, load_fixture
from test_onesaas_properties import (
    PROPERTY,
    assert_short_one_line,
    assert_stored_whole,
    dates,
    json_values,
    numbers,
    reversed_keys,
    scalars,
)

D = Decimal


def load(name: str) -> Any:
    return load_fixture("valerdat", name)


def reference() -> dict[str, Any]:
    return load("order_reference.json")


TORNILLOS = dict(customer_external_id="S-88", customer_name="Tornillos SL", customer_email="ventas@example.es")
ZARAGOZA = dict(city="Zaragoza", region="Aragón", country_code="ES")
NOT_GIVEN = dict(payment_method=None, payment_amount=None, shipping_method=None)

WHOLE_ORDERS = {
    "order_reference.json": dict(
        external_id="6f1c2b9e-4d3a-4b8e-9a51-0c2f7d1e8a90", order_number="PO-2025-000123", status="confirmed",
        order_date=datetime(2025, 7, 1, 7), source_updated_at=datetime(2025, 7, 2, 10), currency_code="EUR",
        **TORNILLOS, subtotal=D("22.50"), tax_amount=D("4.73"), shipping_amount=D("0"), discount_amount=D("0"),
        grand_total=D("27.23"), notes=None, **NOT_GIVEN,
        items=[  # 500 x 0.0450 = 22.50; 27.2250 - 22.50 = 4.7250 of tax; 0.0450 x 1.21 = 0.05445, half up
            Item(1, "M8-40", "Tornillo M8x40", D("500"), D("0.045"), D("0.0545"), D("0.21"), D("4.725"), D("0"),
                 D("27.225"), product_id="L1"),
        ],
        addresses=[  # the name whole, "" line2 as None; nothing borrowed from the supplier
            Address("billing", "María José García López", None, line1="Calle Mayor 12", line2=None,
                    postcode="50001", **ZARAGOZA),
            Address("shipping", "Almacén Central", None, line1="Polígono Malpica, Nave 7", line2="Muelle 3",
                    postcode="50016", **ZARAGOZA),
        ],
    ),
    "order_winter_time.json": dict(
        external_id="b7e3c1d2-8f4a-4c6b-a1d9-2e5f6a7b8c9d", order_number="PO-2025-000007", status="sent",
        order_date=datetime(2025, 1, 15, 7, 30), source_updated_at=datetime(2025, 1, 15, 23, 15),  # +01:00
        currency_code="EUR", customer_external_id="S-12", customer_name="Ferretería Ebro SA",
        customer_email="pedidos@example.es", subtotal=D("28.9999"), tax_amount=D("2.66"), shipping_amount=D("5"),
        discount_amount=D("0"), grand_total=D("36.66"), notes="Entregar por la mañana", **NOT_GIVEN,
        items=[
            Item(1, "LLAVE-10", "Llave fija 10 mm", D("10"), D("2.5"), D("2.75"), D("0.1"), D("2.5"), D("0"),
                 D("27.5"), product_id="L1"),
            Item(2, "ARAND-6", "Arandela 6 mm", D("3"), D("1.3333"), D("1.3866"), D("0.04"), D("0.16"), D("0"),
                 D("4.1599"), product_id="L2"),
        ],
        addresses=[
            Address("billing", "Compras", None, None, None, None,
                    "Avenida de Madrid 200", "Planta 2", "Zaragoza", "Aragón", "50010", "ES"),
            Address("shipping", "Taller", None, None, None, None, "Calle del Tranvía 5", None,
                    "Utebo", "Aragón", "50180", "ES"),
        ],
    ),
    "order_no_delivery.json": dict(
        external_id="3f2504e0-4f89-11d3-9a0c-0305e82c3301",  # sent in capitals: one spelling per uuid
        order_number="PO-2025-000200", status="draft",
        order_date=datetime(2025, 3, 30, 1, 30), source_updated_at=datetime(2025, 3, 30, 1, 45), currency_code="EUR",
        customer_external_id="S-5", customer_name="Servicios Gómez", customer_email=None,
        subtotal=D("150"), tax_amount=D("31.5"), shipping_amount=D("0"), discount_amount=D("0"),
        grand_total=D("181.5"), notes=None, **NOT_GIVEN,
        items=[Item(1, None, "Mantenimiento anual", D("1"), D("150"), D("181.5"), D("0.21"), D("31.5"), D("0"),
                    D("181.5"), product_id="L1")],
        addresses=[Address("billing", "Oficina", None, None, None, None, "Plaza del Pilar 1", None,
                           "Zaragoza", None, "50003", "ES")],
    ),
    "order_discounts.json": dict(
        external_id="9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", order_number="PO-2025-000321",
        status="partially_received", order_date=datetime(2025, 7, 10, 16, 5), source_updated_at=datetime(2025, 7, 11, 7),
        currency_code="EUR", **TORNILLOS, subtotal=D("106.5"), tax_amount=D("19.53"), shipping_amount=D("12"),
        discount_amount=D("11.8333"), grand_total=D("138.03"), notes="Parcial: falta la broca", **NOT_GIVEN,
        items=[  # tax = total - quantity x unit_price + discount: the discount comes off before tax
            Item(1, "TALAD-18V", "Taladro 18 V", D("4"), D("25"), D("30.25"), D("0.21"), D("18.9"), D("10"),
                 D("108.9"), product_id="L1"),
            Item(2, "LIBRO-M", "Manual de taller", D("2"), D("7.5"), D("7.5"), D("0"), D("0"), D("1.5"), D("13.5"),
                 product_id="L2"),
            Item(3, "BROCA-3", "Broca 3 mm", D("1"), D("3.3333"), D("4.0333"), D("0.21"), D("0.63"), D("0.3333"),
                 D("3.63"), product_id="L3"),
        ],
        addresses=[
            Address("billing", "Compras", None, line1="Calle Mayor 12", postcode="50001", **ZARAGOZA),
            Address("shipping", "Almacén Central", None, line1="Polígono Malpica, Nave 7", postcode="50016",
                    **ZARAGOZA),
        ],
    ),
}


@pytest.mark.parametrize("fixture", list(WHOLE_ORDERS))
def test_parse_order_maps_whole_records(fixture: str) -> None:
    payload = load(fixture)
    raw_json = canonical_json(payload)

    order = parse_order(payload, source="valerdat-es")

    assert order == Order(source="valerdat-es", raw_json=raw_json, content_hash=content_hash(raw_json),
                          **WHOLE_ORDERS[fixture])


def test_the_source_defaults_to_valerdat() -> None:
    assert parse_order(reference()).source == "valerdat"


@pytest.mark.parametrize(("stamp", "utc"), [
    ("2025-07-01T09:00:00+02:00", datetime(2025, 7, 1, 7)),
    ("2025-01-01T00:30:00+01:00", datetime(2024, 12, 31, 23, 30)),
    ("2025-07-02T10:00:00Z", datetime(2025, 7, 2, 10)),
    ("2025-07-02T10:00:00.123456+00:00", datetime(2025, 7, 2, 10, 0, 0, 123456)),
    ("2025-07-01T20:00:00-05:00", datetime(2025, 7, 2, 1)),
    ("2025-07-02T10:00:00", datetime(2025, 7, 2, 10)),  # no offset: already UTC
])
def test_timestamps_become_naive_utc(stamp: str, utc: datetime) -> None:
    order = parse_order(changed(changed(reference(), ("created_at",), stamp), ("updated_at",), stamp))
    assert order.order_date == order.source_updated_at == utc


def test_without_updated_at_the_creation_time_stands_in() -> None:
    assert parse_order(changed(reference(), ("updated_at",), None)).source_updated_at == datetime(2025, 7, 1, 7)
    with pytest.raises(MappingError, match="updated_at: missing, and created_at too"):
        parse_order(changed(changed(reference(), ("updated_at",), DELETE), ("created_at",), ""))


@pytest.mark.parametrize(("path", "value", "message"), [
    (("uuid",), DELETE, "uuid: missing or empty"),
    (("uuid",), " ", "uuid: missing or empty"),
    (("uuid",), "PO-2025-000123", "uuid: 'PO-2025-000123' is not a uuid"),
    (("uuid",), "../../auth/token", "uuid: '../../auth/token' is not a uuid"),
    (("uuid",), {"hex": "6f1c"}, "uuid: expected text, got dict"),
    (("created_at",), "01/07/2025", "created_at: '01/07/2025' is not a date"),
    (("updated_at",), 1751450400, "updated_at: 1751450400 is not a date"),
    (("total",), "27,23", "total: '27,23' is not a number"),
    (("tax_total",), D("NaN"), "tax_total: NaN is not a number"),
    (("subtotal",), D("1E+100"), "subtotal: 1E+100 is out of range"),
    (("supplier",), "Tornillos SL", "supplier: expected an object, got str"),
    (("supplier", "email"), ["a@example.es"], "supplier.email: expected text, got list"),
    (("billing_address",), ["Calle Mayor 12"], "billing_address: expected an object, got list"),
    (("delivery_address", "postal_code"), {"code": "50016"}, "delivery_address.postal_code: expected text, got dict"),
    (("lines",), {"id": "L1"}, "lines: expected a list, got dict"),
    (("lines", 0), "L1", "lines[0]: expected an object, got str"),
    (("lines", 0, "quantity"), "500 uds", "lines[0].quantity: '500 uds' is not a number"),
    (("lines", 0, "unit_price"), True, "lines[0].unit_price: True is not a number"),
    (("lines", 0, "tax_rate"), "21 %", "lines[0].tax_rate: '21 %' is not a number"),
    (("lines", 0, "discount"), D("-Infinity"), "lines[0].discount: -Infinity is not a number"),
    (("lines", 0, "total"), [], "lines[0].total: [] is not a number"),
    (("lines", 0, "description"), {"es": "Tornillo"}, "lines[0].description: expected text, got dict"),
])
def test_malformed_values_raise_a_mapping_error_naming_the_field(path: tuple[str | int, ...], value: object,
                                                                 message: str) -> None:
    with pytest.raises(MappingError, match=f"^{re.escape(message)}$"):
        parse_order(changed(reference(), path, value))


def test_the_error_names_the_line_it_is_in() -> None:
    payload = load("order_discounts.json")
    with pytest.raises(MappingError, match=re.escape("lines[2].quantity: 'uno' is not a number")):
        parse_order(changed(payload, ("lines", 2, "quantity"), "uno"))


@pytest.mark.parametrize(("line", "tax", "price_incl_tax"), [
    pytest.param(dict(quantity="1", unit_price="10", total="10.00025"), D("0.0003"), D("12.1"), id="tax half up"),
    pytest.param(dict(quantity="1", total="0.05445"), D("0.0095"), D("0.0545"), id="both half up"),
    pytest.param(dict(quantity="1.500", unit_price="173.8381", tax_rate="5.00", total="273.7951"), D("13.0379"),
                 D("182.5300"), id="row amount rounded before the tax is derived"),
    pytest.param(dict(quantity=500, unit_price=D("0.045"), tax_rate=21, total=D("27.225")), D("4.725"), D("0.0545"),
                 id="JSON numbers as strings"),
    pytest.param(dict(total=None), None, D("0.0545"), id="no total, no tax"),
    pytest.param(dict(quantity=None), None, D("0.0545"), id="no quantity, no tax"),
    pytest.param(dict(discount=None, quantity="400", total="21.7800"), D("3.78"), D("0.0545"),
                 id="no discount counts as none"),
    pytest.param(dict(unit_price=None), None, None, id="no unit price"),
    pytest.param(dict(tax_rate=""), D("4.725"), None, id="no rate, no price incl tax"),
])
def test_derived_line_amounts(line: dict[str, Any], tax: Decimal | None, price_incl_tax: Decimal | None) -> None:
    payload = reference()
    payload["lines"][0].update(line)
    item = parse_order(payload).items[0]
    assert (item.tax_amount, item.price_incl_tax) == (tax, price_incl_tax)


@pytest.mark.parametrize(("lines", "discount"), [
    pytest.param(None, D("0"), id="no lines"),
    pytest.param([], D("0"), id="empty lines"),
    pytest.param([{"discount": "2.50"}, {"discount": None}, {"discount": "0.5"}], D("3"), id="summed"),
])
def test_the_order_discount_is_the_sum_of_line_discounts(lines: object, discount: Decimal) -> None:
    order = parse_order(changed(reference(), ("lines",), lines))
    assert order.discount_amount == discount
    assert [item.line_no for item in order.items] == list(range(1, len(lines or []) + 1))


def test_without_supplier_or_addresses_nothing_is_invented() -> None:
    payload = changed(changed(reference(), ("supplier",), None), ("billing_address",), DELETE)
    order = parse_order(changed(payload, ("delivery_address",), None))
    assert (order.customer_name, order.customer_email, order.customer_external_id, order.addresses) == (None, None, None, [])


def test_the_hash_follows_the_content_not_the_key_order() -> None:
    payload = reference()
    assert parse_order(reversed_keys(payload)).content_hash == parse_order(payload).content_hash
    assert parse_order(changed(payload, ("status",), "received")).content_hash != parse_order(payload).content_hash


def test_parse_ids_page_reads_uuids_and_utc_update_times() -> None:
    results, next_url = parse_ids_page(load("ids_page.json"))
    assert results == [
        ("6f1c2b9e-4d3a-4b8e-9a51-0c2f7d1e8a90", datetime(2025, 7, 2, 10)),
        ("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", datetime(2025, 7, 11, 7)),
        ("b7e3c1d2-8f4a-4c6b-a1d9-2e5f6a7b8c9d", datetime(2025, 7, 11, 7, 0, 0, 250000)),  # the same key as its order
    ]
    assert next_url == "https://valerdat.example.com/api/purchase-orders/ids/?page=2&updated_since=2025-07-01T00%3A00%3A00Z"


def test_the_last_ids_page_has_no_next() -> None:
    assert parse_ids_page(load("ids_last_page.json")) == (
        [("3f2504e0-4f89-11d3-9a0c-0305e82c3301", datetime(2025, 7, 11, 22, 30))], None)


@pytest.mark.parametrize("body", [{"results": []}, {"results": [], "next": None}, {"results": [], "next": ""}])
def test_an_empty_ids_page_without_next_is_the_end(body: dict[str, Any]) -> None:
    assert parse_ids_page(body) == ([], None)


GOOD_ID = {"uuid": "6f1c2b9e-4d3a-4b8e-9a51-0c2f7d1e8a90", "updated_at": "2025-07-02T10:00:00Z"}


@pytest.mark.parametrize(("body", "message"), [
    (None, 'ids page: expected an object with a "results" list, got null'),
    ("", 'ids page: expected an object with a "results" list, got str'),
    ([GOOD_ID], 'ids page: expected an object with a "results" list, got list'),
    ({"count": 0, "next": None}, 'ids page: expected an object with a "results" list, got dict'),
    ({"results": None}, 'ids page: expected an object with a "results" list, got dict'),
    ({"results": {"0": GOOD_ID}}, 'ids page: expected an object with a "results" list, got dict'),
    ({"results": [GOOD_ID], "next": 2}, "ids page: next: expected a URL or null, got int"),
    ({"results": [GOOD_ID], "next": {"page": 2}}, "ids page: next: expected a URL or null, got dict"),
    ({"results": [GOOD_ID, "6f1c"]}, "ids page: results[1]: expected an object, got str"),
    ({"results": [{"updated_at": "2025-07-02T10:00:00Z"}]}, "ids page: results[0].uuid: missing or empty"),
    ({"results": [{**GOOD_ID, "uuid": "a/b"}]}, "ids page: results[0].uuid: 'a/b' is not a uuid"),
    ({"results": [{**GOOD_ID, "updated_at": None}]}, "ids page: results[0].updated_at: missing or empty"),
    ({"results": [{**GOOD_ID, "updated_at": "ayer"}]}, "ids page: results[0].updated_at: 'ayer' is not a date"),
])
def test_a_malformed_ids_page_is_a_protocol_error(body: object, message: str) -> None:
    with pytest.raises(ProtocolError, match=f"^{re.escape(message)}$"):
        parse_ids_page(body)


# What HttpClient.decode can hand over: its lone surrogates are already U+FFFD.
def decoded(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy.map(lambda value: map_json(value, replace_lone_surrogates))


def sometimes(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the plausible value, now and then any JSON in its place."""
    return st.one_of(strategy, strategy, strategy, json_values)


amounts = sometimes(numbers | numbers.map(str))
texts_or_null = sometimes(scalars)
address = sometimes(st.fixed_dictionaries({}, optional=dict.fromkeys(
    "name line1 line2 city postal_code region country".split(), texts_or_null)))
line = sometimes(st.fixed_dictionaries({}, optional={
    **dict.fromkeys("id sku description".split(), texts_or_null),
    **dict.fromkeys("quantity unit_price tax_rate discount total".split(), amounts),
}))
purchase_orders = decoded(st.fixed_dictionaries(
    {"uuid": sometimes(st.uuids().map(str)), "updated_at": sometimes(dates)},
    optional={
        **dict.fromkeys("number status currency notes expected_delivery_date".split(), texts_or_null),
        "created_at": sometimes(dates),
        **dict.fromkeys("subtotal tax_total shipping_total total".split(), amounts),
        "supplier": sometimes(st.fixed_dictionaries({}, optional=dict.fromkeys(
            "id name email phone tax_id".split(), texts_or_null))),
        "billing_address": address, "delivery_address": address,
        "lines": sometimes(st.lists(line, max_size=3)),
    },
)) | decoded(st.dictionaries(st.text(), json_values, max_size=8))


@PROPERTY
@given(purchase_orders)
def test_parse_order_on_any_object_returns_an_order_or_raises_mapping_error(payload: dict[str, Any]) -> None:
    try:
        order = parse_order(payload)
    except MappingError as error:
        assert_short_one_line(str(error))
        return
    assert_stored_whole(order)
    assert order.content_hash == parse_order(payload).content_hash


@PROPERTY
@given(decoded(json_values | st.fixed_dictionaries(
    {"results": st.lists(sometimes(st.fixed_dictionaries({"uuid": sometimes(st.uuids().map(str)),
                                                          "updated_at": sometimes(dates)})), max_size=4)},
    optional={"next": sometimes(st.none() | st.just("https://valerdat.example.com/ids/?page=2"))},
)))
def test_parse_ids_page_returns_a_page_or_raises_a_protocol_error(body: object) -> None:
    try:
        results, next_url = parse_ids_page(body)
    except ProtocolError as error:
        assert_short_one_line(str(error))
        return
    assert all(moment.tzinfo is None for _, moment in results)
    assert next_url is None or isinstance(next_url, str)
