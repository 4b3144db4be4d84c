"""Valerdat's purchase-order contract, and the pure mapping of its answers into records.

No public specification exists, so every path and field name synclet assumes lives in the block of
constants below: a tenant whose API differs needs one small change here. Parsing does no I/O, so it
is tested on recorded shapes.
"""
from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from synclet.errors import MappingError, ProtocolError
from synclet.records import Address, AddressType, Item, Order, canonical_json, content_hash
from synclet.sources.fields import Fields, blank, money, quoted, required_text, type_name

SOURCE = "valerdat"
ZERO = Decimal("0")
ONE = Decimal("1")
HUNDRED = Decimal("100")

# ---- The Valerdat contract: every path and name, here and nowhere else. ----
# Requests (paths relative to VALERDAT_BASE_URL), for the client.
AUTH_PATH = "api/auth/token/"
IDS_PATH = "api/purchase-orders/ids/"
ORDER_PATH = "api/purchase-orders/{uuid}/"
CUSTOMER, USERNAME, PASSWORD = "customer", "username", "password"  # the login body
TOKEN, EXPIRES_IN = "token", "expires_in"  # the login answer
AUTH_SCHEME = "Token"  # Authorization: Token <token>
UPDATED_SINCE, PAGE, PAGE_SIZE = "updated_since", "page", "page_size"  # ids query; page is 1-based
MAX_PAGE_SIZE = 500
DETAIL = "detail"  # the message of an error body
# The ids page.
RESULTS, NEXT = "results", "next"
# One order; the ids page's results name their uuid and updated_at alike.
UUID, NUMBER, STATUS, CREATED_AT, UPDATED_AT = "uuid", "number", "status", "created_at", "updated_at"
CURRENCY, NOTES = "currency", "notes"
SUBTOTAL, TAX_TOTAL, SHIPPING_TOTAL, TOTAL = "subtotal", "tax_total", "shipping_total", "total"
SUPPLIER = "supplier"
SUPPLIER_ID, SUPPLIER_NAME, SUPPLIER_EMAIL = "id", "name", "email"
ADDRESSES: tuple[tuple[str, AddressType], ...] = (("billing_address", "billing"), ("delivery_address", "shipping"))
ADDRESS_NAME = "name"
ADDRESS_KEYS = {  # Address attribute -> Valerdat key
    "line1": "line1", "line2": "line2", "city": "city", "postcode": "postal_code", "region": "region",
    "country_code": "country",
}
LINES = "lines"
LINE_ID, LINE_SKU, LINE_DESCRIPTION = "id", "sku", "description"
LINE_QUANTITY, LINE_UNIT_PRICE, LINE_TAX_RATE, LINE_DISCOUNT, LINE_TOTAL = (
    "quantity", "unit_price", "tax_rate", "discount", "total",
)


def parse_order(payload: Mapping[str, Any], source: str = SOURCE) -> Order:
    """One purchase order into records; raises ``MappingError`` naming the first bad field.

    The supplier is the other party of a purchase order, so it fills the ``customer_*`` columns
    (CONTRACT.md)."""
    order = Fields(payload)
    external_id = _uuid(order)
    updated_at = order.time(UPDATED_AT) or order.time(CREATED_AT)
    if updated_at is None:
        raise MappingError(f"{UPDATED_AT}: missing, and {CREATED_AT} too")
    supplier = order.child(SUPPLIER) or Fields({}, SUPPLIER)
    items = [_item(line, line_no) for line_no, line in enumerate(order.objects(LINES), start=1)]
    raw_json = canonical_json(payload)
    return Order(
        source=source, external_id=external_id, order_number=order.text(NUMBER), status=order.text(STATUS),
        order_date=order.time(CREATED_AT), source_updated_at=updated_at, currency_code=order.text(CURRENCY),
        customer_email=supplier.text(SUPPLIER_EMAIL), customer_name=supplier.text(SUPPLIER_NAME),
        customer_external_id=supplier.text(SUPPLIER_ID),
        subtotal=order.decimal(SUBTOTAL), tax_amount=order.decimal(TAX_TOTAL),
        shipping_amount=order.decimal(SHIPPING_TOTAL), grand_total=order.decimal(TOTAL),
        discount_amount=sum((item.discount_amount or ZERO for item in items), ZERO),
        payment_method=None, payment_amount=None, shipping_method=None, notes=order.text(NOTES),
        raw_json=raw_json, content_hash=content_hash(raw_json),
        items=items, addresses=_addresses(order),
    )


def parse_ids_page(body: object) -> tuple[list[tuple[str, datetime]], str | None]:
    """One page of the ids endpoint: ``[(uuid, updated_at as naive UTC)]`` and the next page's URL,
    None on the last page (``null``, absent or ``""``). A body of another shape is a
    ``ProtocolError``: the walk cannot go on without knowing what it skipped."""
    if not isinstance(body, dict) or not isinstance(body.get(RESULTS), list):
        raise ProtocolError(f'ids page: expected an object with a "{RESULTS}" list, got {type_name(body)}')
    next_url = body.get(NEXT)
    if next_url is not None and not isinstance(next_url, str):
        raise ProtocolError(f"ids page: {NEXT}: expected a URL or null, got {type_name(next_url)}")
    try:
        results = [(_uuid(entry), _updated_at(entry)) for entry in Fields(body).objects(RESULTS)]
    except MappingError as error:
        raise ProtocolError(f"ids page: {error}") from None
    return results, None if blank(next_url) else next_url


def _uuid(fields: Fields) -> str:
    """The order's key in canonical form (lowercase, hyphenated), so the ids page and the order
    name it alike; anything else is refused, as the client puts it in a URL path."""
    text = required_text(fields, UUID)
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise MappingError(f"{fields.name(UUID)}: {quoted(text)} is not a uuid") from None


def _updated_at(entry: Fields) -> datetime:
    moment = entry.time(UPDATED_AT)
    if moment is None:
        raise MappingError(f"{entry.name(UPDATED_AT)}: missing or empty")
    return moment


def _item(line: Fields, line_no: int) -> Item:
    quantity, unit_price = line.decimal(LINE_QUANTITY), line.decimal(LINE_UNIT_PRICE)
    percent, discount, total = line.decimal(LINE_TAX_RATE), line.decimal(LINE_DISCOUNT), line.decimal(LINE_TOTAL)
    rate = None if percent is None else percent / HUNDRED
    return Item(
        line_no=line_no, sku=line.text(LINE_SKU), name=line.text(LINE_DESCRIPTION), product_id=line.text(LINE_ID),
        quantity=quantity, unit_price_ex_tax=unit_price,
        price_incl_tax=None if unit_price is None or rate is None else money(unit_price * (ONE + rate)),
        tax_rate=rate, tax_amount=_line_tax(total, quantity, unit_price, discount),
        discount_amount=discount, line_total_incl_tax=total,
    )


def _line_tax(total: Decimal | None, quantity: Decimal | None, unit_price: Decimal | None,
              discount: Decimal | None) -> Decimal | None:
    """Valerdat gives a line's total including tax but not its tax: it is ``total - quantity x
    unit_price + discount``, taking ``discount`` as the line's whole discount before tax and the
    row amount ``quantity x unit_price`` rounded to 4 places first, as the total was built. The
    reference's 500 x 0.0450 = 22.50 at 21 % is 27.2250 in total, so 4.7250 of tax."""
    if total is None or quantity is None or unit_price is None:
        return None
    return money(total - money(quantity * unit_price) + (discount or ZERO))


def _addresses(order: Fields) -> list[Address]:
    """Billing then shipping (the delivery address), each only when present, as served.

    Valerdat's one ``name`` is kept whole as the first name, last name None: splitting it guesses
    wrong on Spanish double surnames (García López) and on company names; whole, it loses nothing.
    Nothing is borrowed from the supplier: a purchase order's billing address is usually the
    buyer's own, so the supplier's name or phone there would be wrong."""
    addresses = []
    for key, kind in ADDRESSES:
        fields = order.child(key)
        if fields is None:
            continue
        addresses.append(Address(
            kind, first_name=_text(fields, ADDRESS_NAME), **{attr: _text(fields, name) for attr, name in ADDRESS_KEYS.items()},
        ))
    return addresses


def _text(fields: Fields, key: str) -> str | None:
    """Address text; Valerdat sends ``""`` for an unused line, which says nothing, so it is None."""
    value = fields.text(key)
    return None if blank(value) else value
