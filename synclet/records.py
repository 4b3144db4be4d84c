"""The typed records every source yields and the store writes.

Sources map API payloads into these and nothing else, so the store never sees a source's JSON shape.
Money and quantities are ``Decimal``; datetimes are naive UTC.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import operator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

AddressType = Literal["billing", "shipping"]
_Record = TypeVar("_Record")


def _pickled_as_arguments(cls: type[_Record]) -> type[_Record]:
    """Pickle the record as its class and field values, rebuilt by ``__init__``: pages cross from
    the reader process to the writer's (``synclet.readahead``), and the default for a slotted
    dataclass (a dict of its slots) makes that a fifth slower both ways."""
    read = operator.attrgetter(*(f.name for f in dataclasses.fields(cls)))  # type: ignore[arg-type]

    def __reduce__(self: Any) -> tuple[type[_Record], tuple[Any, ...]]:
        return cls, read(self)

    cls.__reduce__ = __reduce__  # type: ignore[assignment,method-assign]
    return cls


@_pickled_as_arguments
@dataclass(slots=True)
class Item:
    line_no: int
    sku: str | None
    name: str | None
    quantity: Decimal | None
    unit_price_ex_tax: Decimal | None
    price_incl_tax: Decimal | None
    tax_rate: Decimal | None  # fraction: 0.2 is 20 %
    tax_amount: Decimal | None
    discount_amount: Decimal | None
    line_total_incl_tax: Decimal | None
    product_id: str | None = None
    tax_code: str | None = None
    error_code: str | None = None  # e.g. Product.ProductNotFound: the line's product was deleted


@_pickled_as_arguments
@dataclass(slots=True)
class Address:
    address_type: AddressType
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    phone: str | None = None
    email: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postcode: str | None = None
    country_code: str | None = None


@_pickled_as_arguments
@dataclass(slots=True)
class Credit:
    external_id: str
    credit_number: str | None
    state: str | None
    credit_date: datetime | None
    subtotal: Decimal | None
    tax_amount: Decimal | None
    shipping_amount: Decimal | None
    adjustment_positive: Decimal | None
    adjustment_negative: Decimal | None
    grand_total: Decimal | None
    raw_json: str
    source_updated_at: datetime | None = None


@_pickled_as_arguments
@dataclass(slots=True)
class Order:
    """One order (or purchase order) as the source reported it.

    ``raw_json`` is the payload as received, in canonical JSON; ``content_hash`` is derived
    from it, so an order whose payload did not change is recognised without reading the children.
    """

    source: str
    external_id: str
    order_number: str | None
    status: str | None
    order_date: datetime | None
    source_updated_at: datetime
    currency_code: str | None
    customer_email: str | None
    customer_name: str | None
    subtotal: Decimal | None
    tax_amount: Decimal | None
    shipping_amount: Decimal | None  # excluding tax
    discount_amount: Decimal | None  # positive: what was taken off
    grand_total: Decimal | None
    payment_method: str | None
    payment_amount: Decimal | None
    shipping_method: str | None
    notes: str | None
    raw_json: str
    content_hash: str
    shipping_tax_amount: Decimal | None = None
    shipping_incl_tax: Decimal | None = None
    customer_external_id: str | None = None
    store_name: str | None = None
    replaces_external_id: str | None = None  # an edited order names the order it replaces
    replaces_order_number: str | None = None
    items: list[Item] = field(default_factory=list)
    addresses: list[Address] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)


@_pickled_as_arguments
@dataclass(slots=True)
class Rejected:
    """A payload that could not be mapped: kept whole, with why, so nothing is lost."""

    source: str
    external_id: str | None
    order_number: str | None
    raw_json: str
    error: str


@_pickled_as_arguments
@dataclass(slots=True)
class Page:
    """One page of a source, the unit of one database transaction."""

    number: int
    orders: list[Order] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: int = 0  # entries with no identity at all (OneSaas's "" inside Orders)
    #: False for pages outside the source's update-time order (orders fetched because a credit
    #: memo changed): their updated_at says nothing about how far the walk has come.
    advances_cursor: bool = True
    #: Orders the source left out because the database holds them at the same version already.
    unchanged: int = 0
    #: The newest update time the page covers when it covers more than its orders (the ids it
    #: skipped as unchanged or found deleted): the cursor may move that far.
    covered_until: datetime | None = None


def canonical_json(payload: object) -> str:
    """Stable JSON text of a payload: sorted keys, no spaces, Decimals written as numbers.

    Numbers keep their value, not their spelling (``165.0000`` is written ``165.0``): the hash of
    the same payload is the same on every read, which is what the store needs. The text is strict
    JSON: a number no float can hold (``NaN``, ``1E+400``) is written as its text, in quotes."""
    try:
        return _CANONICAL_FINITE.encode(payload)
    except (ValueError, TypeError):  # such a number, or a value JSON cannot hold: the careful way
        return _CANONICAL.encode(payload)


def content_hash(raw_json: str) -> str:
    """Fingerprint of an order's canonical payload: equal hashes mean nothing to rewrite."""
    return hashlib.sha256(raw_json.encode("utf-8")).hexdigest()


def _json_number(value: object) -> float | str:
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


#: Payloads are decoded JSON (or built from it), which cannot refer to itself: without the
#: encoder's check for cycles (a dict entry per object, list and hooked number) it is 15 % faster.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_number,
                              allow_nan=False, check_circular=False)
#: The same text for payloads whose numbers all fit a float, a quarter faster: ``float`` itself is
#: the hook, with no Python frame per amount (a REST order has about 130).
_CANONICAL_FINITE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=float,
                                     allow_nan=False, check_circular=False)
