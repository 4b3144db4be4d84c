"""The sandbox's source-neutral truth: one order as the shop's database holds it.

Every API the sandbox fakes renders these same objects, and integration tests compare a synced
database with ``Order.truth()``, so all money arithmetic lives here, in one place:

* money is ``Decimal`` at 4 places (Magento's ``decimal(20,4)``), rounded ``ROUND_HALF_UP``;
* ``line tax       = round(unit_price_ex_tax * qty * tax_rate)`` (tax is on the undiscounted price);
* ``line discount  = round(unit_discount * qty)``;
* ``line total ex  = round(unit_price_ex_tax * qty) - line discount``;
* ``line total inc = line total ex + line tax``; ``price_incl_tax = round(unit * (1 + rate))``;
* ``shipping tax   = round(shipping ex tax * shipping rate)``;
* ``grand_total    = sum(line total ex) + sum(line tax) + shipping ex tax + shipping tax`` over
  every line, including a line whose product was later deleted (the shop still charged for it).
  Discounts are already inside the line totals, so they are not subtracted again.

A deleted-product line is always untaxed and undiscounted, so order tax and discount are the same
whether or not a source can see that line; only ``subtotal`` (visible lines only) leaves it out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MONEY = Decimal("0.0001")
ZERO = Decimal("0.0000")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

#: tax rate (fraction) -> (tax id, tax code, tax name) as the shop's tax rules name them
TAX_RULES: dict[Decimal, tuple[str, str, str]] = {
    Decimal("0.2000"): ("1", "GB-VAT-20", "VAT 20%"),
    Decimal("0.0500"): ("2", "GB-VAT-5", "VAT 5% (reduced)"),
}


def money(value: Decimal) -> Decimal:
    """``value`` at the database's 4 places, half up, as every stored amount is."""
    return value.quantize(MONEY, rounding=ROUND_HALF_UP)


def fmt_money(value: Decimal | None) -> str | None:
    """``Decimal('12.5')`` -> ``'12.5000'``: the string a database column of money reads back as."""
    return None if value is None else str(money(value))


def fmt_time(value: datetime | None) -> str | None:
    return None if value is None else value.strftime(TIME_FORMAT)


@dataclass(slots=True)
class Customer:
    contact_id: str  # "0" for a guest checkout
    first_name: str | None
    last_name: str | None
    email: str
    phone: str | None
    organization: str | None
    business_number: str | None = None

    @property
    def display_name(self) -> str | None:
        """"First Last", or the organisation when the customer left no name."""
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or self.organization


@dataclass(slots=True)
class Address:
    first_name: str | None
    last_name: str | None
    company: str | None
    phone: str | None
    line1: str
    line2: str | None
    city: str
    region: str | None
    postcode: str | None
    country_code: str

    def truth(self, address_type: str) -> dict[str, Any]:
        return {
            "address_type": address_type,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "company": self.company,
            "phone": self.phone,
            "line1": self.line1,
            "line2": self.line2,
            "city": self.city,
            "region": self.region,
            "postcode": self.postcode,
            "country_code": self.country_code,
        }


@dataclass(slots=True)
class Line:
    product_id: int
    sku: str
    name: str
    qty: Decimal
    unit_price_ex_tax: Decimal
    tax_rate: Decimal = ZERO  # fraction: 0.2 is 20 %
    unit_discount: Decimal = ZERO
    deleted_product: bool = False  # the catalogue no longer has the product

    @property
    def taxed(self) -> bool:
        return self.tax_rate > 0

    @property
    def tax_rule(self) -> tuple[str, str, str] | None:
        """(tax id, code, name) for a taxed line, else None."""
        return TAX_RULES.get(money(self.tax_rate)) if self.taxed else None

    @property
    def tax_amount(self) -> Decimal:
        return money(self.unit_price_ex_tax * self.qty * self.tax_rate)

    @property
    def discount_amount(self) -> Decimal:
        return money(self.unit_discount * self.qty)

    @property
    def total_ex_tax(self) -> Decimal:
        return money(self.unit_price_ex_tax * self.qty) - self.discount_amount

    @property
    def total_incl_tax(self) -> Decimal:
        return self.total_ex_tax + self.tax_amount

    @property
    def price_incl_tax(self) -> Decimal:
        return money(self.unit_price_ex_tax * (1 + self.tax_rate))

    def truth(self, line_no: int) -> dict[str, Any]:
        """A line as a synced database should hold it; an untaxed line has tax_rate "0.0000"."""
        return {
            "line_no": line_no,
            "sku": self.sku,
            "name": self.name,
            "quantity": fmt_money(self.qty),
            "unit_price_ex_tax": fmt_money(self.unit_price_ex_tax),
            "price_incl_tax": fmt_money(self.price_incl_tax),
            "tax_rate": fmt_money(self.tax_rate),
            "tax_amount": fmt_money(self.tax_amount),
            "discount_amount": fmt_money(self.discount_amount),
            "line_total_incl_tax": fmt_money(self.total_incl_tax),
            "deleted_product": self.deleted_product,
        }


@dataclass(slots=True)
class Shipping:
    method: str  # carrier_method code, e.g. flatrate_flatrate
    description: str
    amount_ex_tax: Decimal
    tax_rate: Decimal = ZERO

    @property
    def tax_amount(self) -> Decimal:
        return money(self.amount_ex_tax * self.tax_rate)

    @property
    def amount_incl_tax(self) -> Decimal:
        return self.amount_ex_tax + self.tax_amount


@dataclass(slots=True)
class CreditItem:
    """A refunded line, copied when the credit memo was made (later order edits do not move it)."""

    product_id: int
    sku: str
    name: str
    qty: Decimal
    unit_price_ex_tax: Decimal
    price_incl_tax: Decimal
    tax_amount: Decimal
    unit_discount: Decimal


@dataclass(slots=True)
class CreditMemo:
    """A refund. ``subtotal`` is net of line discounts, so
    ``grand_total = subtotal + tax + shipping + adjustment_positive - adjustment_negative``."""

    entity_id: int
    increment_id: str
    state: int  # Magento: 1 open, 2 refunded, 3 canceled
    created_at: datetime
    updated_at: datetime
    subtotal: Decimal
    tax_amount: Decimal  # refunded line tax + refunded shipping tax
    shipping_amount: Decimal  # excluding tax
    adjustment_positive: Decimal
    adjustment_negative: Decimal
    items: list[CreditItem] = field(default_factory=list)

    @property
    def grand_total(self) -> Decimal:
        return (self.subtotal + self.tax_amount + self.shipping_amount
                + self.adjustment_positive - self.adjustment_negative)

    @property
    def discount_amount(self) -> Decimal:
        """What the refunded lines' discounts took off: Magento's memo row holds its ``subtotal``
        before it and this (negated) beside it."""
        return sum((money(item.unit_discount * item.qty) for item in self.items), ZERO)

    def truth(self) -> dict[str, Any]:
        return {
            "external_id": str(self.entity_id),
            "credit_number": self.increment_id,
            "state": str(self.state),
            "credit_date": fmt_time(self.created_at),
            "source_updated_at": fmt_time(self.updated_at),
            "subtotal": fmt_money(self.subtotal),
            "tax_amount": fmt_money(self.tax_amount),
            "shipping_amount": fmt_money(self.shipping_amount),
            "adjustment_positive": fmt_money(self.adjustment_positive),
            "adjustment_negative": fmt_money(self.adjustment_negative),
            "grand_total": fmt_money(self.grand_total),
        }


@dataclass(slots=True)
class Invoice:
    increment_id: str
    created_at: datetime


@dataclass(slots=True)
class EditedFrom:
    """An edited order replaces an earlier one, which the shop then cancels."""

    entity_id: int
    increment_id: str


@dataclass(slots=True)
class Order:
    entity_id: int
    increment_id: str
    created_at: datetime
    updated_at: datetime
    status: str
    currency: str
    store_name: str
    notes: str | None
    customer: Customer
    billing: Address | None
    shipping_address: Address | None  # None for a virtual order
    lines: list[Line]
    shipping: Shipping | None  # None for a virtual order
    payment_method: str
    amount_paid: Decimal | None  # None while unpaid
    credit_memos: list[CreditMemo] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    edited_from: EditedFrom | None = None
    last_transaction_id: str | None = None
    # Raw API fields served in place of the rendered ones: a store's bug or hostile data, for tests.
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def has_identity(self) -> bool:
        """False for an order with no address at all, which OneSaas renders as a bare ``""``."""
        return self.billing is not None or self.shipping_address is not None

    @property
    def subtotal(self) -> Decimal:
        return sum((line.total_ex_tax for line in self.lines if not line.deleted_product), ZERO)

    @property
    def line_tax(self) -> Decimal:
        return sum((line.tax_amount for line in self.lines), ZERO)

    @property
    def shipping_ex_tax(self) -> Decimal:
        return self.shipping.amount_ex_tax if self.shipping else ZERO

    @property
    def shipping_tax(self) -> Decimal:
        return self.shipping.tax_amount if self.shipping else ZERO

    @property
    def tax_amount(self) -> Decimal:
        return self.line_tax + self.shipping_tax

    @property
    def discount_amount(self) -> Decimal:
        return sum((line.discount_amount for line in self.lines), ZERO)

    @property
    def grand_total(self) -> Decimal:
        lines_ex = sum((line.total_ex_tax for line in self.lines), ZERO)
        return lines_ex + self.line_tax + self.shipping_ex_tax + self.shipping_tax

    def truth(self) -> dict[str, Any]:
        """Plain-JSON values a synced database should hold for this order (see module docstring)."""
        addresses = []
        if self.billing:
            addresses.append(self.billing.truth("billing"))
        if self.shipping_address:
            addresses.append(self.shipping_address.truth("shipping"))
        return {
            "external_id": str(self.entity_id),
            "order_number": self.increment_id,
            "status": self.status,
            "order_date": fmt_time(self.created_at),
            "source_updated_at": fmt_time(self.updated_at),
            "currency_code": self.currency,
            "customer_external_id": self.customer.contact_id,
            "customer_email": self.customer.email,
            "customer_name": self.customer.display_name,
            "subtotal": fmt_money(self.subtotal),
            "tax_amount": fmt_money(self.tax_amount),
            "shipping_amount": fmt_money(self.shipping_ex_tax),
            "shipping_tax_amount": fmt_money(self.shipping_tax),
            "shipping_incl_tax": fmt_money(self.shipping_ex_tax + self.shipping_tax),
            "discount_amount": fmt_money(self.discount_amount),
            "grand_total": fmt_money(self.grand_total),
            "payment_method": self.payment_method,
            "payment_amount": fmt_money(self.amount_paid),
            "shipping_method": self.shipping.method if self.shipping else None,
            "notes": self.notes,
            "store_name": self.store_name,
            "replaces_external_id": str(self.edited_from.entity_id) if self.edited_from else None,
            "replaces_order_number": self.edited_from.increment_id if self.edited_from else None,
            "has_identity": self.has_identity,
            "items": [line.truth(n) for n, line in enumerate(self.lines, start=1)],
            "addresses": addresses,
            "credits": [memo.truth() for memo in self.credit_memos],
        }
