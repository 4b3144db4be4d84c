"""Property tests of the OneSaas parse functions: for any JSON they return records or raise the typed
error, and what they return is always storable (finite amounts, naive times, encodable text)."""
from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synclet.errors import AuthError, MappingError, ProtocolError, RemoteError
from synclet.records import Order, Page, content_hash
from synclet.sources.onesaas import parse_order, parse_page

FIXTURES = Path(__file__).parent / "fixtures" / "onesaas"
ORDER_FIXTURES = sorted(path.name for path in FIXTURES.glob("order_*.json"))
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ID, DATE, AMOUNT = "id", "date", "amount"  # leaves that get plausible values more often than random ones
ADDRESS = dict.fromkeys("Salutation FirstName LastName OrganizationName WorkPhone Line1 Line2 City PostCode State CountryCode".split())
TAXES = {**dict.fromkeys("TaxId TaxCode TaxName".split()), **dict.fromkeys(("TaxRate", "TaxAmount"), AMOUNT)}
ITEM = {
    **dict.fromkeys("ProductId ProductCode ProductName ErrorCode Message".split()),
    **dict.fromkeys("Quantity Price UnitPriceExTax Discount LineTotalIncTax".split(), AMOUNT), "Taxes": TAXES,
}
CREDIT = {
    "entity_id": ID, **dict.fromkeys("increment_id order_id state".split()), **dict.fromkeys(("created_at", "updated_at"), DATE),
    **dict.fromkeys("grand_total subtotal tax_amount shipping_amount adjustment_positive adjustment_negative".split(), AMOUNT),
    "Items": [ITEM],
}
#: The shape of a OneSaas order (None: a scalar); the strategies follow it with random values and
#: now and then put random JSON where an object, a list or a scalar belongs.
ORDER_SHAPE = {
    "Id": ID, **dict.fromkeys("OrderNumber ReplaceOrderNumber Type Status CurrencyCode Notes Tags".split()),
    **dict.fromkeys(("Date", "LastUpdatedDate"), DATE), **dict.fromkeys(("Discounts", "Total"), AMOUNT),
    'ReplaceOrderNumber Id="12"': None,
    "Contact": {**dict.fromkeys("Id Salutation FirstName LastName WorkPhone Email OrganizationName".split()),
                "Addresses": {"BillingAddress": ADDRESS, "ShippingAddress": ADDRESS}},
    "Addresses": {"BillingAddress": ADDRESS, "ShippingAddress": ADDRESS},
    "Items": [ITEM],
    "Shipping": {"ShippingMethod": None, "Amount": AMOUNT, "Discount": AMOUNT, "Taxes": TAXES},
    "Payments": {"PaymentMethod": {"MethodName": None, "Amount": AMOUNT}},
    "Credits": [CREDIT],
    "CustomFields": {"CreditPoints": AMOUNT, "Invoices": [{"InvNumber": None, "Date": DATE}]},
}


def known_keys(shape: Any) -> set[str]:
    if isinstance(shape, dict):
        return set(shape).union(*map(known_keys, shape.values()))
    return known_keys(shape[0]) if isinstance(shape, list) else set()


# What HttpClient.decode can hand over: JSON numbers as int or Decimal (NaN and ±Infinity included,
# via parse_constant), and text with anything a \u escape can spell.
HOSTILE_TEXT = [
    "", " ", "0", "-5.00", "1e400", "99999999999999999999.99", "NaN", "Infinity", "-Infinity", "0x1F",
    "2099-12-31 23:59:59", "1969-07-20 20:17:40", "0000-00-00 00:00:00", "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00", "2025-07-01T07:41:16Z", "Robert'); DROP TABLE orders;--", '"\\\'%_',
    "😀👍🏽👨‍👩‍👧‍👦", "\x00\x01\x07\t\n\r\x1b\x7f\x85\u2028", "\ud800", "a\udfffb", "\ud83d", "x" * 10_000,
    "😀" * 2_500 + "\n" * 10, "١٢٣", "1_000", "  12.5  ", "1e999999999", "-9.9E+999999", "1E-999999999",
]
texts = st.text(st.characters(exclude_categories=())) | st.sampled_from(HOSTILE_TEXT)
numbers = (
    st.integers()
    | st.integers(min_value=-(10**4000), max_value=10**4000)
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.sampled_from([Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("-0.0")])
    | st.sampled_from([Decimal("1E+400"), Decimal("1E+999999999"), Decimal("-9.9E+999999"), Decimal("1E-999999999")])
)
scalars = st.none() | st.booleans() | numbers | texts
offsets = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)))
dates = (
    st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S"))
    | st.datetimes(timezones=offsets).map(datetime.isoformat)
)
entity_ids = st.integers(1, 10**12).map(str)
LEAVES = {
    None: scalars,
    ID: st.one_of(entity_ids, entity_ids, entity_ids, scalars),
    DATE: st.one_of(dates, dates, scalars),
    AMOUNT: st.one_of(numbers, numbers.map(str), scalars),
}
keys = st.sampled_from(sorted(known_keys(ORDER_SHAPE))) | texts
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=25,
)


def shaped(shape: Any) -> st.SearchStrategy[Any]:
    """Values following ``shape`` mostly, arbitrary JSON sometimes."""
    if isinstance(shape, dict):
        values = {key: shaped(value) for key, value in shape.items()}
        required = {key: values.pop(key) for key in ("Id", "Date", "entity_id") if key in values}
        follows = st.fixed_dictionaries(required, optional=values)
    elif isinstance(shape, list):
        follows = st.lists(shaped(shape[0]), max_size=3)
    else:
        follows = LEAVES[shape]
    return st.one_of(follows, follows, follows, json_values)


orders = st.dictionaries(keys, json_values, max_size=12) | shaped(ORDER_SHAPE).filter(lambda value: isinstance(value, dict))


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"), parse_float=Decimal)


def assert_storable(value: object, where: str = "order") -> None:
    """Every Decimal finite, every datetime naive, every str encodable as UTF-8, all the way down."""
    if isinstance(value, Decimal):
        assert value.is_finite(), where
    elif isinstance(value, datetime):
        assert value.tzinfo is None, where
    elif isinstance(value, str):
        value.encode("utf-8")  # raises on a lone surrogate
    elif isinstance(value, list):
        for index, element in enumerate(value):
            assert_storable(element, f"{where}[{index}]")
    elif is_dataclass(value):
        for field in fields(value):
            assert_storable(getattr(value, field.name), f"{where}.{field.name}")


def assert_stored_whole(order: Order) -> None:
    """Storable values, and raw JSON that is strict JSON (no NaN or Infinity) hashed as it reads."""
    assert_storable(order)
    for raw_json in [order.raw_json] + [credit.raw_json for credit in order.credits]:
        json.loads(raw_json, parse_constant=_refuse)
    assert order.content_hash == content_hash(order.raw_json)


def assert_short_one_line(message: str) -> None:
    assert len(message) < 300 and len(message.splitlines()) == 1, message[:500]
    message.encode("utf-8")


def _refuse(constant: str) -> None:
    raise AssertionError(f"raw_json holds {constant}")


def parse_or_mapping_error(payload: dict[str, Any]) -> None:
    try:
        order = parse_order(payload)
    except MappingError as error:
        assert_short_one_line(str(error))
    else:
        assert_stored_whole(order)
        assert parse_order(payload).content_hash == order.content_hash


@PROPERTY
@given(orders)
def test_parse_order_on_any_object_returns_an_order_or_raises_mapping_error(payload: dict[str, Any]) -> None:
    parse_or_mapping_error(payload)


@st.composite
def mutated(draw: st.DrawFn, fixtures: Sequence[Any]) -> Any:
    """One of ``fixtures`` (recorded payloads, left as they are) with a few values, at any depth,
    replaced by random JSON."""
    payload = copy.deepcopy(draw(st.sampled_from(fixtures)))
    for _ in range(draw(st.integers(1, 4))):
        target: Any = payload
        while True:
            slots = list(target) if isinstance(target, dict) else list(range(len(target)))
            if not slots:
                break
            slot = draw(st.sampled_from(slots))
            if isinstance(target[slot], (dict, list)) and target[slot] and draw(st.booleans()):
                target = target[slot]
                continue
            target[slot] = draw(json_values)
            break
    return payload


def mutated_fixture() -> st.SearchStrategy[Any]:
    """A valid OneSaas fixture order, mutated."""
    return mutated([load(name) for name in ORDER_FIXTURES])


@PROPERTY
@given(mutated_fixture())
def test_parse_order_on_mutated_fixtures_returns_an_order_or_raises_mapping_error(payload: dict[str, Any]) -> None:
    parse_or_mapping_error(payload)


bodies = (
    json_values
    | st.fixed_dictionaries({"OneSaas Version": texts, "Orders": st.lists(orders | mutated_fixture() | json_values, max_size=5)})
    | st.fixed_dictionaries({"Error": json_values})
)


@PROPERTY
@given(bodies, st.integers(0, 10**6))
def test_parse_page_returns_a_page_or_raises_a_source_error(body: object, number: int) -> None:
    try:
        page = parse_page(body, number)
    except (ProtocolError, AuthError, RemoteError) as error:
        assert_short_one_line(str(error))
        return
    assert isinstance(page, Page) and page.number == number
    for order in page.orders:
        assert_stored_whole(order)
    for rejected in page.rejected:
        assert_storable([rejected.raw_json, rejected.external_id, rejected.order_number])
        json.loads(rejected.raw_json, parse_constant=_refuse)
        assert_short_one_line(rejected.error)


def reversed_keys(value: Any) -> Any:
    """The same JSON with every object's keys in the opposite order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(element) for element in value]
    return value


@pytest.mark.parametrize("fixture", ORDER_FIXTURES)
def test_content_hash_does_not_depend_on_key_order(fixture: str) -> None:
    payload = load(fixture)
    assert parse_order(reversed_keys(payload)).content_hash == parse_order(payload).content_hash
