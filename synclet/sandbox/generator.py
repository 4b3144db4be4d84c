"""Deterministic random orders: every choice comes from one ``random.Random``, so a seed replays.

The quirk mix is what real Magento shops produce and what a sync client has to survive: guests,
organisation-only customers, virtual orders, orders with no address, deleted products, 4-place
prices derived from VAT-inclusive ones, shared seconds, credit memos, unicode and quotes in text.
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import accumulate

from synclet.sandbox.model import (
    ZERO, Address, CreditItem, CreditMemo, Customer, Invoice, Line, Order, Shipping, money,
)

STATUSES = ("pending", "processing", "complete", "canceled", "closed", "holded")
STATUS_CUM = tuple(accumulate((10, 25, 50, 6, 5, 4)))
PAYMENT_METHODS = ("checkmo", "paypal_express", "stripe_payments", "banktransfer")
CURRENCIES, CURRENCY_CUM = ("GBP", "EUR", "USD"), tuple(accumulate((85, 10, 5)))
LINE_COUNTS, LINE_COUNT_CUM = (1, 2, 3, 4, 5), tuple(accumulate((40, 25, 15, 12, 8)))
QUANTITIES, QUANTITY_CUM = tuple(Decimal(q) for q in (1, 2, 3, 5, 10)), tuple(accumulate((60, 20, 10, 7, 3)))
CREDIT_STATES, CREDIT_STATE_CUM = (2, 1, 3), tuple(accumulate((85, 10, 5)))
STORE_NAMES = {
    "GBP": "Main Website\nMain Store\nDefault Store View",
    "EUR": "Main Website\nEU Store\nFrançais",
    "USD": "US Website\nUS Store\nEnglish (US)",
}
SHIPPING_METHODS = (
    ("flatrate_flatrate", "Flat Rate - Fixed", Decimal("4.1667")),
    ("tablerate_bestway", "Best Way - Table Rate", Decimal("7.5000")),
    ("freeshipping_freeshipping", "Free Shipping - Free", ZERO),
)
FIRST_NAMES = ("Alice", "Bob", "Chloë", "Dmitri", "Émile", "Fatima", "George", "Hannah", "Ian",
               "Jürgen", "Kate", "Łukasz", "María", "Niamh", "Oliver", "Priya", "Seán", "Zoë")
LAST_NAMES = ("Smith", "O'Brien", "Jones", "Müller", "García", "Nowak", "Patel", "Taylor",
              "Brown", "Dubois", "Kowalski", "Wilson", "Ó Súilleabháin", "Evans")
COMPANIES = ("Acme Ltd", "Widgets & Co", "Büro Schmidt GmbH", "The \"Best\" Shop", "Tea Rooms Ltd")
STREETS = ("High Street", "Station Road", "Church Lane", "Rue de la Paix", "Main St", "Mill Road")
CITIES = (("London", None, "GB"), ("Manchester", None, "GB"), ("Cardiff", "Wales", "GB"),
          ("Paris", "Île-de-France", "FR"), ("Berlin", "Berlin", "DE"), ("Austin", "Texas", "US"),
          ("Dublin", None, "IE"))
NOTES = ("Please leave with neighbour", "Gift — please don't include the invoice",
         'Ring the bell twice, say "parcel"', "Livraison après 18h, merci", "Call 07700 900123 first",
         "Fragile ☕ handle with care", "Deliver to the back door\nthrough the gate")
PRODUCT_WORDS = ("Mug", "T-Shirt", "Poster", "Notebook", "Tea Caddy", "Candle", "Café Crème Set",
                 "Tote Bag", "Lamp", "Scarf", "Umbrella", "Jigsaw")
VIRTUAL_WORDS = ("Gift Card", "E-book", "Online Course", "Digital Download")


@dataclass(frozen=True, slots=True)
class Product:
    product_id: int
    sku: str
    name: str
    price_ex_tax: Decimal
    tax_rate: Decimal
    virtual: bool


class Factory:
    """Makes orders, lines and credit memos from one random stream; the Store owns the numbering."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.catalogue = self._catalogue(False, 240, start=1)
        self.virtual_catalogue = self._catalogue(True, 20, start=500)

    def _catalogue(self, virtual: bool, size: int, start: int) -> list[Product]:
        rng, words = self.rng, VIRTUAL_WORDS if virtual else PRODUCT_WORDS
        products = []
        for n in range(size):
            word = words[n % len(words)]
            taxed = rng.random() < 0.4
            rate = (Decimal("0.2000") if rng.random() < 0.85 else Decimal("0.0500")) if taxed else ZERO
            if taxed and rng.random() < 0.3:  # priced VAT-inclusive: the ex-tax price has 4 places
                price = money(Decimal(rng.randrange(100, 20000)) / 100 / (1 + rate))
            else:
                price = Decimal(rng.randrange(100, 25000)) / 100
            sku = f"{'VIRT' if virtual else word[:3].upper()}-{start + n:04d}"
            products.append(Product(start + n, sku, f"{word} #{n + 1}", money(price), rate, virtual))
        return products

    def timeline(self, count: int, now: datetime, days: int) -> list[tuple[datetime, datetime]]:
        """(created_at, updated_at) pairs, ascending by creation, some sharing a second."""
        rng, start, span = self.rng, now - timedelta(days=days), max(days * 86400, 1)
        offsets = sorted(rng.randrange(span) for _ in range(count))
        for i in range(1, count):
            if rng.random() < 0.05:
                offsets[i] = offsets[i - 1]
        pairs = []
        for offset in offsets:
            created = start + timedelta(seconds=offset)
            lag = 0 if rng.random() < 0.4 else int(rng.expovariate(1 / 21600))
            pairs.append((created, min(created + timedelta(seconds=lag), now)))
        return pairs

    def customer(self) -> Customer:
        rng = self.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        org = rng.choice(COMPANIES) if rng.random() < 0.2 else None
        local = unicodedata.normalize("NFKD", f"{first}.{last}").encode("ascii", "ignore").decode()
        email = f"{local.lower().replace(chr(39), '').replace(' ', '')}{rng.randrange(1000)}@example.com"
        customer = Customer(
            contact_id="0" if rng.random() < 0.3 else str(rng.randrange(1, 5000)),
            first_name=first, last_name=last, email=email,
            phone=f"07700 9{rng.randrange(100000):05d}" if rng.random() < 0.8 else None,
            organization=org, business_number=f"GB{rng.randrange(10**9):09d}" if org else None,
        )
        if org and rng.random() < 0.15:  # a business that left the name fields empty
            customer.first_name = customer.last_name = None
        return customer

    def address(self, customer: Customer) -> Address:
        rng = self.rng
        city, region, country = rng.choice(CITIES)
        postcode = f"{rng.choice('ENSWM')}{rng.randrange(1, 20)} {rng.randrange(1, 9)}AB"
        return Address(
            first_name=customer.first_name or "Accounts", last_name=customer.last_name or "Dept",
            company=customer.organization, phone=customer.phone,
            line1=f"{rng.randrange(1, 300)} {rng.choice(STREETS)}",
            line2=f"Flat {rng.randrange(1, 40)}" if rng.random() < 0.25 else None,
            city=city, region=region,
            postcode=postcode if rng.random() < 0.97 else None,
            country_code=country,
        )

    def line(self, virtual: bool) -> Line:
        rng = self.rng
        product = rng.choice(self.virtual_catalogue if virtual else self.catalogue)
        qty = rng.choices(QUANTITIES, cum_weights=QUANTITY_CUM)[0]
        if rng.random() < 0.01:
            qty = Decimal("1.5000")
        return Line(product.product_id, product.sku, product.name, money(qty), product.price_ex_tax,
                    product.tax_rate)

    def deleted_line(self) -> Line:
        """A line whose product has since left the catalogue: untaxed and undiscounted by design."""
        n = self.rng.randrange(1, 100)
        return Line(9000 + n, f"OLD-{n:04d}", f"Discontinued item {n}", money(Decimal(1)),
                    money(Decimal(self.rng.randrange(100, 5000)) / 100), deleted_product=True)

    def discount(self, lines: list[Line]) -> None:
        """Take 10 % or 25 % off the unit price of some visible lines."""
        share = Decimal("0.10") if self.rng.random() < 0.7 else Decimal("0.25")
        visible = [line for line in lines if not line.deleted_product]
        for line in self.rng.sample(visible, k=max(1, len(visible) // 2)):
            line.unit_discount = money(line.unit_price_ex_tax * share)

    def order(self, entity_id: int, increment_id: str, created: datetime, updated: datetime,
              *, no_address: bool = False, virtual: bool = False, deleted_line: bool = False) -> Order:
        rng = self.rng
        currency = rng.choices(CURRENCIES, cum_weights=CURRENCY_CUM)[0]
        customer = self.customer()
        lines = [self.line(virtual) for _ in range(rng.choices(LINE_COUNTS, cum_weights=LINE_COUNT_CUM)[0])]
        if deleted_line:
            lines.insert(rng.randrange(len(lines) + 1), self.deleted_line())
        if rng.random() < 0.15:
            self.discount(lines)
        shipping = None
        if not virtual:
            code, description, amount = rng.choice(SHIPPING_METHODS)
            rate = Decimal("0.2000") if any(line.tax_rate == Decimal("0.2") for line in lines) else ZERO
            shipping = Shipping(code, description, amount, rate if amount else ZERO)
        status = rng.choices(STATUSES, cum_weights=STATUS_CUM)[0]
        order = Order(
            entity_id=entity_id, increment_id=increment_id, created_at=created, updated_at=updated,
            status=status, currency=currency, store_name=STORE_NAMES[currency],
            notes=rng.choice(NOTES) if rng.random() < 0.15 else None, customer=customer,
            billing=None if no_address else self.address(customer),
            shipping_address=None if no_address or virtual else self.address(customer),
            lines=lines, shipping=shipping, payment_method=rng.choice(PAYMENT_METHODS), amount_paid=None,
        )
        if status in ("processing", "complete", "closed") or (status == "holded" and rng.random() < 0.5):
            self.pay(order, increment_id)
        return order

    def pay(self, order: Order, invoice_number: str) -> None:
        order.amount_paid = order.grand_total
        order.invoices = [Invoice(invoice_number, order.created_at)]
        if order.payment_method in ("paypal_express", "stripe_payments"):
            prefix = "pi_" if order.payment_method == "stripe_payments" else "PAY-"
            order.last_transaction_id = f"{prefix}{self.rng.getrandbits(48):012x}"

    def credit_memo(self, order: Order, entity_id: int, increment_id: str, at: datetime) -> CreditMemo:
        """Refund part of an order: one or two visible lines, sometimes shipping and adjustments."""
        rng = self.rng
        visible = [line for line in order.lines if not line.deleted_product] or order.lines
        items = []
        for line in rng.sample(visible, k=min(len(visible), rng.choice((1, 1, 2)))):
            qty = money(Decimal(rng.randrange(1, int(line.qty) + 1))) if line.qty >= 1 else line.qty
            items.append(CreditItem(line.product_id, line.sku, line.name, qty, line.unit_price_ex_tax,
                                    line.price_incl_tax, money(line.unit_price_ex_tax * qty * line.tax_rate),
                                    line.unit_discount))
        refund_shipping = order.shipping is not None and rng.random() < 0.3
        subtotal = sum((money(i.unit_price_ex_tax * i.qty) - money(i.unit_discount * i.qty) for i in items), ZERO)
        tax = sum((i.tax_amount for i in items), ZERO) + (order.shipping_tax if refund_shipping else ZERO)
        return CreditMemo(
            entity_id=entity_id, increment_id=increment_id,
            state=rng.choices(CREDIT_STATES, cum_weights=CREDIT_STATE_CUM)[0],
            created_at=at, updated_at=at, subtotal=subtotal, tax_amount=tax,
            shipping_amount=order.shipping_ex_tax if refund_shipping else ZERO,
            adjustment_positive=money(Decimal(rng.randrange(0, 500)) / 100) if rng.random() < 0.2 else ZERO,
            adjustment_negative=money(Decimal(rng.randrange(0, 300)) / 100) if rng.random() < 0.1 else ZERO,
            items=items,
        )

    def other_status(self, current: str) -> str:
        return self.rng.choice([name for name in STATUSES if name != current])

    def note(self, revision: int) -> str:
        return f"{self.rng.choice(NOTES)} (update {revision})"
