"""Magento through the OneSaas Connect extension: offset pages of JSON orders.

The API's quirks shape this module: errors come back as HTTP 200 ``{"Error": ...}``, the end of
pages is the bare JSON string ``""``, filters are strict ``>`` at one-second resolution, pages are
unsorted offsets, money arrives as strings, and an order without addresses is a ``""`` entry.
Parsing is pure (``parse_page``, ``parse_order``) so it is tested on recorded shapes without I/O.

Page numbers are known in advance: once a walk has shown it is long (``READ_AHEAD_AFTER_PAGES`` full
pages), the ``FETCH_AHEAD_PAGES`` pages after the one the caller needs next are asked for before it
is back. Those requests are sent once each: the answers come out in page order, and a page whose
early request failed is asked again in its turn, with the usual retries, so a failure surfaces at
the same page as without them. A walk past its last page wastes those few requests, which a short
walk (an hourly incremental run) never pays.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
import math
import re
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from synclet.config import Settings
from synclet.errors import AuthError, ConfigError, MappingError, ProtocolError, RemoteError
from synclet.http import HttpClient, map_json, replace_lone_surrogates
from synclet.records import Address, AddressType, Item, Order, Page, Rejected, canonical_json, content_hash
from synclet.sources import Window
from synclet.sources.fields import (
    Fields,
    credit_memo,
    cut,
    identifier,
    money,
    quoted,
    required_text,
    type_name,
)

log = logging.getLogger(__name__)

SOURCE = "magento"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CHECK_SINCE = "2000-01-01 00:00:00"  # earlier than any store, so the check finds an order if one exists
ONE_SECOND = timedelta(seconds=1)
READ_AHEAD_AFTER_PAGES = 5  # full pages read one at a time before the next ones are asked for early
ZERO = Decimal("0")
#: No amount comes near it, and the arithmetic on amounts stays far from Decimal's overflow.
ENTITY_ID = re.compile(r"[0-9]{1,20}")
_REPLACES_KEY = re.compile(r'ReplaceOrderNumber\s+Id="([^"]*)"')
_ADDRESS_KEYS = {
    "first_name": "FirstName", "last_name": "LastName", "company": "OrganizationName", "phone": "WorkPhone",
    "line1": "Line1", "line2": "Line2", "city": "City", "region": "State", "postcode": "PostCode",
    "country_code": "CountryCode",
}


class OneSaasSource:
    """Reads orders created (and, incrementally, updated) in a window, one offset page at a time."""

    name: ClassVar[str] = SOURCE
    ordered_by_update: ClassVar[bool] = False

    def __init__(self, http: HttpClient, base_url: str, access_key: str, page_size: int = 50, ahead: int = 0) -> None:
        self.http = http
        self.base_url = base_url
        self.access_key = access_key
        self.page_size = page_size
        self.ahead = ahead

    @classmethod
    def from_settings(cls, settings: Settings, http: HttpClient) -> OneSaasSource:
        if not settings.magento_base_url or not settings.magento_access_key:
            raise ConfigError("MAGENTO_BASE_URL, MAGENTO_ACCESS_KEY: both are required for source magento")
        return cls(http, settings.magento_base_url, settings.magento_access_key, settings.magento_page_size,
                   settings.fetch_ahead_pages)

    def check(self) -> str:
        """One smallest page: proves the URL is OneSaas and the key is accepted."""
        body = self._get({"Action": "Orders", "PageSize": 1, "Page": 0, "OrderCreatedTime": CHECK_SINCE})
        _raise_error_body(body, "check")
        if body == "":  # the key was accepted; the store simply has no orders yet
            return "OneSaas (no orders yet)"
        if isinstance(body, dict) and "OneSaas Version" in body:
            return f"OneSaas {body['OneSaas Version']}"
        raise ProtocolError(f"{self.http.describe(self.base_url)}: not a OneSaas answer ({type_name(body)})")

    def pages(self, window: Window) -> Iterator[Page]:
        """Pages from 0 until ``""``, a short page, or a page holding only orders already read."""
        created_after = (window.created_after - ONE_SECOND).strftime(TIME_FORMAT)
        params: dict[str, Any] = {"Action": "Orders", "PageSize": self.page_size, "OrderCreatedTime": created_after}
        if window.updated_after is not None:
            params["LastUpdatedTime"] = (window.updated_after - ONE_SECOND).strftime(TIME_FORMAT)
        previous: set[str] = set()  # only the last page: memory must not grow with the run
        with contextlib.closing(self._bodies(params)) as bodies:
            for number, body in bodies:
                if body == "":
                    return
                page = parse_page(body, number, self.name)
                ids = {o.external_id for o in page.orders} | {r.external_id for r in page.rejected if r.external_id}
                if ids and ids <= previous:
                    log.warning("%s: page %d repeats the page before it; stopping", self.name, number)
                    return
                previous = ids
                yield page
                if len(body["Orders"]) < self.page_size:
                    return

    def parse(self, payload: Mapping[str, Any]) -> Order:
        return parse_order(payload, self.name)

    def _bodies(self, params: Mapping[str, Any]) -> Iterator[tuple[int, Any]]:
        """(page number, body) from page 0 on, in order, for as long as the caller asks: one page at a
        time for the first ``READ_AHEAD_AFTER_PAGES`` (for ever without ``ahead``), then with the
        page the caller needs next, the ``ahead`` pages after it in flight too."""
        numbers = itertools.count()
        for number in itertools.islice(numbers, READ_AHEAD_AFTER_PAGES if self.ahead else None):
            yield number, self._get({**params, "Page": number})
        with ThreadPoolExecutor(self.ahead + 1, thread_name_prefix="onesaas") as pool:
            flying: deque[tuple[int, Future[Any]]] = deque()
            try:
                while True:
                    flying.extend((n, pool.submit(self._get, {**params, "Page": n}, 0))
                                  for n in itertools.islice(numbers, self.ahead + 1 - len(flying)))
                    number, early = flying.popleft()
                    try:
                        body = early.result()
                    except Exception:  # noqa: BLE001 - asked again, in turn, with retries: its own error if it lasts
                        body = self._get({**params, "Page": number})
                    yield number, body
            finally:
                for _, early in flying:
                    early.cancel()

    def _get(self, params: Mapping[str, Any], retries: int | None = None) -> Any:
        return self.http.get_json(self.base_url, params={"AccessKey": self.access_key, **params}, retries=retries)


def parse_page(body: object, number: int, source: str = SOURCE) -> Page:
    """Map one page body; a bad order is rejected, not fatal. A bare ``""`` is an empty page."""
    page = Page(number)
    results: dict[str | int, Order | Rejected] = {}
    for index, entry in enumerate(_page_entries(body, number)):
        if not _has_identity(entry):
            page.skipped += 1
            continue
        result = _map_entry(entry, source)
        key = result.external_id if result.external_id is not None else index
        results.pop(key, None)  # a duplicate Id: the later entry wins, in its own position
        results[key] = result
    page.orders = [r for r in results.values() if isinstance(r, Order)]
    page.rejected = [r for r in results.values() if isinstance(r, Rejected)]
    return page


def parse_order(payload: Mapping[str, Any], source: str = SOURCE) -> Order:
    """One OneSaas order into records; raises ``MappingError`` naming the first bad field."""
    return _order(*_storable(payload), source)


def _order(payload: Mapping[str, Any], raw_json: str, source: str) -> Order:
    order = Fields(payload)
    external_id = _entity_id(order)
    order_date = order.time("Date")
    updated_at = order.time("LastUpdatedDate") or order_date
    if updated_at is None:
        raise MappingError("LastUpdatedDate: missing, and Date too")
    contact = order.child("Contact") or Fields({}, "Contact")
    items = [_item(line, line_no) for line_no, line in enumerate(order.objects("Items"), start=1)]
    shipping = _shipping(order)
    subtotal, tax_amount = _totals(items, shipping.tax)
    payment_method, payment_amount = _payment(order)
    replaces_external_id, replaces_order_number = _replaces(order)
    discounts = order.decimal("Discounts")
    return Order(
        source=source, external_id=external_id, order_number=order.text("OrderNumber"),
        status=order.text("Status"), order_date=order_date, source_updated_at=updated_at,
        currency_code=order.text("CurrencyCode"), notes=order.text("Notes"),
        customer_email=contact.text("Email"), customer_name=_customer_name(contact),
        customer_external_id=contact.text("Id"),
        subtotal=subtotal, tax_amount=tax_amount, grand_total=order.decimal("Total"),
        discount_amount=None if discounts is None else abs(discounts),
        shipping_method=shipping.method, shipping_amount=shipping.amount,
        shipping_tax_amount=shipping.tax, shipping_incl_tax=shipping.incl_tax,
        payment_method=payment_method, payment_amount=payment_amount,
        store_name=(order.text("Tags") or "").removeprefix("StoreName:").strip() or None,
        replaces_external_id=replaces_external_id, replaces_order_number=replaces_order_number,
        raw_json=raw_json, content_hash=content_hash(raw_json),
        items=items, addresses=_addresses(order, contact),
        credits=[credit_memo(credit) for credit in order.objects("Credits")],
    )


class _Shipping(NamedTuple):
    method: str | None = None
    amount: Decimal | None = None  # excluding tax
    tax: Decimal | None = None
    incl_tax: Decimal | None = None


def _page_entries(body: object, number: int) -> list[Any]:
    if body == "":
        return []
    _raise_error_body(body, f"page {number}")
    if not isinstance(body, dict) or not isinstance(body.get("Orders"), list):
        raise ProtocolError(f'page {number}: expected "" or an object with an "Orders" list, got {type_name(body)}')
    return body["Orders"]


def _raise_error_body(body: object, where: str) -> None:
    """OneSaas reports every failure as HTTP 200 ``{"Error": ...}``; a wrong key is an AuthError."""
    if not isinstance(body, dict) or "Error" not in body:
        return
    text = cut(" ".join(replace_lone_surrogates(str(body["Error"])).split()), 200)
    if text.lower() == "invalid api key":
        raise AuthError(f"{where}: OneSaas refused the access key ({text}); check MAGENTO_ACCESS_KEY")
    raise RemoteError(f"{where}: OneSaas error: {text}")


def _map_entry(entry: dict[str, Any], source: str) -> Order | Rejected:
    payload, raw_json = _storable(entry)
    try:
        return _order(payload, raw_json, source)
    except MappingError as error:
        number = identifier(payload.get("OrderNumber"))
        return Rejected(source, identifier(payload.get("Id")), number, raw_json, str(error))


def _storable(payload: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The payload to map and its canonical JSON, both storable as they are.

    JSON text holds no NaN or Infinity (nor a number past a float's range, which ``canonical_json``
    writes through one) and UTF-8 no lone surrogate. The rare payload holding one is mapped and
    kept with such numbers as their text (a field that needs one then rejects it by name) and such
    surrogates as U+FFFD; every other payload is used as it is."""
    raw_json = canonical_json(payload)
    if not _unstorable_json(raw_json):
        return payload, raw_json
    payload = map_json(payload, _storable_scalar)
    return payload, canonical_json(payload)


def _unstorable_json(text: str) -> bool:
    """Whether ``text`` may hold ``NaN``, ``Infinity`` or a lone surrogate (which UTF-8 cannot
    encode); a cheap test, as it runs on every payload."""
    if "NaN" in text or "Infinity" in text:
        return True
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _storable_scalar(value: Any) -> Any:
    if isinstance(value, (Decimal, float)) and not math.isfinite(value):
        return str(value)
    return replace_lone_surrogates(value)


def _has_identity(entry: object) -> bool:
    """OneSaas's ``""`` entry (an order without addresses) and the like cannot be stored or rejected."""
    return isinstance(entry, dict) and bool(identifier(entry.get("Id")) or identifier(entry.get("OrderNumber")))


def _item(line: Fields, line_no: int) -> Item:
    """A deleted product's line carries only an error code and message; it is kept, not rejected."""
    if "ErrorCode" in line.data:
        return Item(line_no, None, line.text("Message"), None, None, None, None, None, None, None,
                    error_code=line.text("ErrorCode"))
    quantity = line.decimal("Quantity")
    discount = line.decimal("Discount")  # per unit, present only when > 0
    taxes = line.child("Taxes")  # present only when tax > 0
    return Item(
        line_no=line_no, sku=line.text("ProductCode"), name=line.text("ProductName"),
        product_id=line.text("ProductId"), quantity=quantity,
        unit_price_ex_tax=line.decimal("UnitPriceExTax"), price_incl_tax=line.decimal("Price"),
        tax_rate=taxes.decimal("TaxRate") if taxes else ZERO,
        tax_amount=taxes.decimal("TaxAmount") if taxes else ZERO,
        tax_code=(taxes.text("TaxCode") or taxes.text("TaxName")) if taxes else None,
        discount_amount=ZERO if discount is None else (None if quantity is None else money(discount * quantity)),
        line_total_incl_tax=line.decimal("LineTotalIncTax"),
    )


def _shipping(order: Fields) -> _Shipping:
    """OneSaas gives shipping including tax; the contract's ``shipping_amount`` excludes it."""
    shipping = order.child("Shipping")
    if shipping is None:
        return _Shipping()
    taxes = shipping.child("Taxes")
    tax = (taxes.decimal("TaxAmount") if taxes else None) or ZERO
    incl_tax = shipping.decimal("Amount")
    return _Shipping(shipping.text("ShippingMethod"), None if incl_tax is None else incl_tax - tax, tax, incl_tax)


def _totals(items: list[Item], shipping_tax: Decimal | None) -> tuple[Decimal | None, Decimal]:
    """(subtotal excluding tax, tax of lines and shipping); no priced line means no subtotal."""
    priced = [item for item in items if item.line_total_incl_tax is not None]
    subtotal = sum((i.line_total_incl_tax - (i.tax_amount or ZERO) for i in priced), ZERO) if priced else None
    tax = sum((item.tax_amount for item in items if item.tax_amount is not None), ZERO) + (shipping_tax or ZERO)
    return subtotal, tax


def _payment(order: Fields) -> tuple[str | None, Decimal | None]:
    payments = order.child("Payments")
    method = payments.child("PaymentMethod") if payments else None
    if method is None:
        return None, None
    return method.text("MethodName"), method.decimal("Amount")


def _replaces(order: Fields) -> tuple[str | None, str | None]:
    """An edited order names its parent in the key itself: ``ReplaceOrderNumber Id="<entity id>"``."""
    for key in order.data:
        match = _REPLACES_KEY.fullmatch(key)
        if match:
            return match[1] or None, order.text(key) or None
    return None, order.text("ReplaceOrderNumber") or None


def _customer_name(contact: Fields) -> str | None:
    name = " ".join(part.strip() for part in (contact.text("FirstName"), contact.text("LastName")) if part)
    return name.strip() or (contact.text("OrganizationName") or "").strip() or None


def _addresses(order: Fields, contact: Fields) -> list[Address]:
    """Billing then shipping, each only when present; a virtual order has no shipping address.

    The extension nests them in ``Contact``; builds that also (or only) emit them at the top level
    are read from there."""
    book = contact.child("Addresses") or order.child("Addresses")
    kinds: tuple[tuple[str, AddressType], ...] = (("BillingAddress", "billing"), ("ShippingAddress", "shipping"))
    found = [(book.child(key), kind) for key, kind in kinds] if book else []
    return [
        Address(kind, email=contact.text("Email") if kind == "billing" else None,
                **{attr: fields.text(key) for attr, key in _ADDRESS_KEYS.items()})
        for fields, kind in found
        if fields is not None
    ]


def _entity_id(order: Fields) -> str:
    """``Id`` is Magento's ``entity_id``, an integer. Free text cannot be a key: MariaDB's collation
    folds case, accents and trailing spaces, so two such ids could land on one stored order."""
    external_id = required_text(order, "Id")
    if not ENTITY_ID.fullmatch(external_id):
        raise MappingError(f"Id: {quoted(external_id)} is not an entity id (1 to 20 digits)")
    return external_id
